"""Page text of the seller's automation (API tokens, outgoing webhooks) and card checkout:
(pt-BR, English) pairs merged into `i18n.TEXT`."""

from __future__ import annotations

TEXT: dict[str, tuple[str, str]] = {
    # Conta: API tokens
    "tok.title": ("Tokens de API", "API tokens"),
    "tok.intro": (
        "Para automações: chame as mesmas rotas /api/* do portal com o cabeçalho "
        "Authorization: Bearer <token>, sem cookie nem CSRF.",
        "For automation: call the portal's same /api/* routes with the header "
        "Authorization: Bearer <token>, with no cookie and no CSRF token.",
    ),
    "tok.name": ("Nome", "Name"),
    "tok.name.hint": ("Para você reconhecer o token depois.", "So you recognise the token later."),
    "tok.scope": ("Permissão", "Scope"),
    "tok.scope.read": ("Somente leitura", "Read only"),
    "tok.scope.read-write": ("Leitura e escrita", "Read and write"),
    "tok.create": ("Criar token", "Create token"),
    "tok.none": ("Nenhum token ainda.", "No tokens yet."),
    "tok.created_at": ("Criado", "Created"),
    "tok.last_used": ("Último uso", "Last used"),
    "tok.never": ("nunca", "never"),
    "tok.status": ("Situação", "Status"),
    "tok.active": ("Ativo", "Active"),
    "tok.revoked": ("Revogado", "Revoked"),
    "tok.revoke": ("Revogar", "Revoke"),
    "tok.revoke.confirm": (
        "Revogar este token? Automações que o usam param na hora.",
        "Revoke this token? Automation using it stops at once.",
    ),
    "tok.revoked_flash": ("Token revogado.", "Token revoked."),
    "tok.new_title": ("Seu novo token", "Your new token"),
    "tok.once": (
        "Copie o token agora: ele não será mostrado de novo.",
        "Copy the token now: it will not be shown again.",
    ),
    "tok.value": ("Token", "Token"),
    # Instâncias: outgoing webhook
    "wh.title": ("Webhook de saída", "Outgoing webhook"),
    "wh.intro": (
        "Receba no seu sistema avisos assinados (HMAC-SHA256) de pedido pago, entregue, "
        "reembolsado e estoque baixo. Falhas são reenviadas com espera crescente.",
        "Get signed (HMAC-SHA256) notices of orders paid, delivered, refunded and low stock "
        "in your own system. Failures are retried with growing waits.",
    ),
    "wh.url": ("URL (https)", "URL (https)"),
    "wh.events": ("Eventos", "Events"),
    "wh.event.order.paid": ("Pedido pago", "Order paid"),
    "wh.event.order.delivered": ("Pedido entregue", "Order delivered"),
    "wh.event.order.refunded": ("Pedido reembolsado", "Order refunded"),
    "wh.event.stock.low": ("Estoque baixo", "Low stock"),
    "wh.threshold": ("Estoque baixo com até (chaves)", "Low stock at (keys)"),
    "wh.save": ("Salvar webhook", "Save webhook"),
    "wh.saved": ("Webhook salvo.", "Webhook saved."),
    "wh.secret": ("Segredo de assinatura", "Signing secret"),
    "wh.secret.title": ("Seu segredo de assinatura", "Your signing secret"),
    "wh.rotate": ("Gerar novo segredo", "Rotate secret"),
    "wh.rotate.confirm": (
        "Gerar um novo segredo? O atual deixa de assinar na hora.",
        "Make a new secret? The current one stops signing at once.",
    ),
    "wh.remove": ("Remover webhook", "Remove webhook"),
    "wh.remove.confirm": (
        "Remover o webhook? Envios pendentes são cancelados.",
        "Remove the webhook? Pending deliveries are cancelled.",
    ),
    "wh.removed": ("Webhook removido.", "Webhook removed."),
    "wh.log": ("Entregas", "Deliveries"),
    "wh.log.none": ("Nenhuma entrega ainda.", "No deliveries yet."),
    "wh.col.event": ("Evento", "Event"),
    "wh.col.status": ("Situação", "Status"),
    "wh.col.attempts": ("Tentativas", "Attempts"),
    "wh.col.code": ("Resposta", "Response"),
    "wh.col.next": ("Próxima tentativa", "Next retry"),
    "wh.col.created": ("Criado", "Created"),
    "wh.status.pending": ("Pendente", "Pending"),
    "wh.status.delivered": ("Entregue", "Delivered"),
    "wh.status.failed": ("Falhou", "Failed"),
    "wh.status.cancelled": ("Cancelado", "Cancelled"),
    "wh.redeliver": ("Reenviar", "Redeliver"),
    "wh.redelivered": ("Reenvio agendado.", "Redelivery scheduled."),
    "wh.docs": ("Como verificar a assinatura: docs/webhooks.md", "How to verify the signature: "
                "docs/webhooks.md"),
    # plan by card (Checkout Pro) and its sandbox page
    "card.pay": ("Pagar com cartão", "Pay by card"),
    "card.sandbox.title": ("Checkout de cartão (sandbox)", "Card checkout (sandbox)"),
    "card.sandbox.notice": (
        "Pagamentos simulados: nenhum dinheiro se move. Em produção, esta é a página do "
        "Mercado Pago.",
        "Simulated payments: no money moves. In production this is Mercado Pago's page.",
    ),
    "card.sandbox.pay": ("Pagar com cartão de teste", "Pay with a test card"),
    "card.sandbox.back": ("Voltar ao portal", "Back to the portal"),
    "plan.instances": ("Até {n} instância(s)", "Up to {n} instance(s)"),
}
