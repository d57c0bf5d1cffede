"""The admin panel's words, in pt-BR (the default) and English.

A page asks `translator(lang)` for its `t`; a key missing in English falls back to pt-BR, and a
key missing everywhere shows itself, so a forgotten entry is visible instead of blank.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("pt-BR", "en")
DEFAULT = "pt-BR"

TEXTS: dict[str, tuple[str, str]] = {
    # chrome
    "brand": ("Astra · Admin", "Astra · Admin"),
    "nav.resumo": ("Resumo", "Overview"),
    "nav.operacao": ("Operação", "Operations"),
    "nav.catalogo": ("Catálogo", "Catalog"),
    "nav.solicitacoes": ("Solicitações", "Withdrawals"),
    "nav.contas": ("Contas", "Accounts"),
    "nav.runtime": ("Runtime", "Runtime"),
    "nav.plugins": ("Plugins", "Plugins"),
    "nav.auditoria": ("Auditoria", "Audit log"),
    "nav.diagnostico": ("Diagnóstico", "Diagnostics"),
    "tab.pedidos": ("Pedidos", "Orders"),
    "tab.carrinhos": ("Carrinhos", "Carts"),
    "tab.entregas": ("Entregas", "Deliveries"),
    "tab.clientes": ("Clientes", "Buyers"),
    "logout": ("Sair", "Log out"),
    "menu": ("Menu", "Menu"),
    "signed_as": ("Conectado como", "Signed in as"),
    "role.admin": ("operador", "operator"),
    "role.monitor": ("monitor", "monitor"),
    "monitor.banner": ("Modo monitor: somente leitura. As ações estão desativadas e a API recusa "
                       "qualquer alteração.",
                       "Monitor mode: read-only. Actions are disabled and the API refuses any "
                       "change."),
    "lang.switch": ("English", "Português"),
    "noscript": ("Este painel precisa de JavaScript para as ações.",
                 "This panel needs JavaScript for its actions."),
    # login
    "login.title": ("Entrar no painel", "Sign in to the panel"),
    "login.user": ("Usuário", "User"),
    "login.password": ("Senha", "Password"),
    "login.monitor": ("Modo monitor (somente leitura)", "Monitor mode (read-only)"),
    "login.submit": ("Entrar", "Sign in"),
    "login.locked": ("(bloqueado por mais {minutes} min)", "(locked for {minutes} more min)"),
    "login.failed": ("Não foi possível entrar.", "Could not sign in."),
    "login.hint": ("Credenciais ADMIN_PANEL_USER / ADMIN_PANEL_PASSWORD (em desenvolvimento, a "
                   "senha gerada fica em data/.secrets.json). Após 5 tentativas erradas, o acesso "
                   "fica bloqueado por 15 minutos.",
                   "ADMIN_PANEL_USER / ADMIN_PANEL_PASSWORD credentials (in development, the "
                   "generated password is in data/.secrets.json). After 5 wrong attempts, access "
                   "is locked for 15 minutes."),
    # common
    "filter": ("Filtrar", "Filter"),
    "clear": ("Limpar", "Clear"),
    "all": ("Todos", "All"),
    "instance": ("Instância", "Instance"),
    "status": ("Status", "Status"),
    "search": ("Buscar", "Search"),
    "search.placeholder": ("id, comprador, produto…", "id, buyer, product…"),
    "actions": ("Ações", "Actions"),
    "empty": ("Nada por aqui.", "Nothing here."),
    "created": ("Criado", "Created"),
    "buyer": ("Comprador", "Buyer"),
    "items": ("Itens", "Items"),
    "total": ("Total", "Total"),
    "id": ("ID", "ID"),
    "reason": ("Motivo", "Reason"),
    "reason.optional": ("Motivo (opcional)", "Reason (optional)"),
    "confirm": ("Confirmar", "Confirm"),
    "cancel": ("Cancelar", "Cancel"),
    "done": ("Feito: {what}", "Done: {what}"),
    "error.generic": ("Erro {status}", "Error {status}"),
    "error.network": ("Sem resposta do servidor.", "No answer from the server."),
    "limit.note": ("Mostrando até 500 registros, os mais recentes primeiro.",
                   "Showing up to 500 records, newest first."),
    "yes": ("sim", "yes"),
    "no": ("não", "no"),
    "never": ("—", "—"),
    "count": ("{n} registro(s)", "{n} record(s)"),
    # resumo
    "resumo.title": ("Resumo executivo", "Executive overview"),
    "kpi.gmv": ("GMV (vendas pagas)", "GMV (paid sales)"),
    "kpi.net": ("Receita líquida dos vendedores", "Sellers' net revenue"),
    "kpi.fees": ("Taxas da plataforma", "Platform fees"),
    "kpi.plans": ("Receita de planos", "Plan revenue"),
    "kpi.owed": ("Saldos a pagar (carteiras)", "Wallet balances owed"),
    "kpi.wd_pending": ("Saques pendentes", "Withdrawals pending"),
    "kpi.wd_paid": ("Saques pagos", "Withdrawals paid"),
    "kpi.users": ("Contas no portal", "Portal accounts"),
    "instances.title": ("Instâncias", "Instances"),
    "funnel.title": ("Funil", "Funnel"),
    "funnel.carts": ("Carrinhos", "Carts"),
    "funnel.orders": ("Pedidos", "Orders"),
    "funnel.paid": ("Pagos", "Paid"),
    "funnel.delivered": ("Entregues", "Delivered"),
    "chart.gmv": ("GMV por período", "GMV per period"),
    "chart.orders": ("Pedidos pagos por período", "Paid orders per period"),
    "chart.empty": ("Sem vendas pagas no período.", "No paid sales yet."),
    "period.day": ("Dia", "Day"),
    "period.week": ("Semana", "Week"),
    "period.month": ("Mês", "Month"),
    "orders_by_status": ("Pedidos por status", "Orders by status"),
    "platform": ("Plataforma", "Platform"),
    "platform.payments": ("Pagamentos", "Payments"),
    "platform.runtime": ("Runtime", "Runtime"),
    "platform.store": ("Armazenamento", "Store"),
    "generated_at": ("Gerado em", "Generated at"),
    # operação
    "operacao.title": ("Operação", "Operations"),
    "paid_at": ("Pago em", "Paid at"),
    "coupon": ("Cupom", "Coupon"),
    "expires": ("Expira", "Expires"),
    "order": ("Pedido", "Order"),
    "attempts": ("Tentativas", "Attempts"),
    "last_error": ("Último erro", "Last error"),
    "channel": ("Canal", "Channel"),
    "next_attempt": ("Próxima tentativa", "Next attempt"),
    "delivery_when": ("Próxima / entregue", "Next / delivered"),
    "delivered_at": ("Entregue em", "Delivered at"),
    "orders_count": ("Pedidos", "Orders"),
    "total_spent": ("Total gasto", "Total spent"),
    "last_order": ("Último pedido", "Last order"),
    "blocked": ("Bloqueado", "Blocked"),
    "active": ("Ativo", "Active"),
    "filter.blocked": ("Bloqueados", "Blocked"),
    "filter.active": ("Ativos", "Active"),
    "act.redeliver": ("Reentregar", "Redeliver"),
    "act.redeliver.q": ("Entregar o pedido {id} de novo agora? A entrega volta para a fila.",
                        "Deliver order {id} again now? Its delivery goes back to the queue."),
    "act.sandbox_approve": ("Aprovar (sandbox)", "Approve (sandbox)"),
    "act.sandbox_approve.q": ("Simular o pagamento PIX do pedido {id}? Só no sandbox: nenhum "
                              "dinheiro se move.", "Simulate the PIX payment of order {id}? "
                              "Sandbox only: no money moves."),
    "act.resync": ("Sincronizar", "Resync"),
    "act.resync.q": ("Consultar o gateway sobre o pagamento do pedido {id} e aplicar o resultado?",
                     "Ask the gateway about order {id}'s payment and apply what it says?"),
    "act.refund": ("Reembolsar", "Refund"),
    "act.refund.q": ("Reembolsar o pedido {id} integralmente? O crédito do vendedor é estornado.",
                     "Refund order {id} in full? The seller's credit is reversed."),
    "act.retry_stock": ("Tentar pedidos aguardando estoque", "Retry orders waiting for stock"),
    "act.retry_stock.q": ("Atender agora os pedidos aguardando estoque com o estoque disponível?",
                          "Serve the orders waiting for stock from the stock there is now?"),
    "act.cart_cancel": ("Cancelar", "Cancel"),
    "act.cart_cancel.q": ("Cancelar o carrinho {id}? As chaves voltam para o estoque.",
                          "Cancel cart {id}? Its keys go back to stock."),
    "act.cart_confirm": ("Confirmar pagamento", "Confirm payment"),
    "act.cart_confirm.q": ("Confirmar manualmente o pagamento do carrinho {id} (dinheiro recebido "
                           "fora do gateway)?",
                           "Confirm cart {id}'s payment by hand (money received outside the "
                           "gateway)?"),
    "act.block": ("Bloquear", "Block"),
    "act.block.q": ("Bloquear o comprador {id} na instância {instance}?",
                    "Block buyer {id} in instance {instance}?"),
    "act.unblock": ("Desbloquear", "Unblock"),
    "act.unblock.q": ("Desbloquear o comprador {id} na instância {instance}?",
                      "Unblock buyer {id} in instance {instance}?"),
    # catálogo
    "catalogo.title": ("Catálogo", "Catalog"),
    "products": ("Produtos", "Products"),
    "coupons": ("Cupons", "Coupons"),
    "product": ("Produto", "Product"),
    "variant": ("Variante", "Variant"),
    "price": ("Preço", "Price"),
    "kind": ("Tipo", "Kind"),
    "delivery_kind": ("Entrega", "Delivery"),
    "stock.available": ("Disponível", "Available"),
    "stock.reserved": ("Reservado", "Reserved"),
    "stock.sold": ("Vendido", "Sold"),
    "code": ("Código", "Code"),
    "value": ("Valor", "Value"),
    "min_order": ("Pedido mínimo", "Min. order"),
    "uses": ("Usos", "Uses"),
    "per_buyer": ("Por comprador", "Per buyer"),
    "inactive": ("inativo", "inactive"),
    # solicitações
    "solicitacoes.title": ("Solicitações de saque", "Withdrawal requests"),
    "user": ("Usuário", "User"),
    "amount": ("Valor", "Amount"),
    "pix_key": ("Chave PIX", "PIX key"),
    "requested_at": ("Solicitado em", "Requested at"),
    "decided": ("Decidido", "Decided"),
    "act.complete": ("Concluir", "Complete"),
    "act.complete.q": ("Marcar o saque {id} de {amount} como pago? Confirme que o PIX para {pix} "
                       "foi enviado.",
                       "Mark withdrawal {id} of {amount} as paid? Confirm the PIX to {pix} was "
                       "sent."),
    "act.reject": ("Rejeitar", "Reject"),
    "act.reject.q": ("Rejeitar o saque {id} de {amount}? O valor volta para a carteira.",
                     "Reject withdrawal {id} of {amount}? The amount returns to the wallet."),
    "pending_total": ("Pendentes: {n} · {amount}", "Pending: {n} · {amount}"),
    # contas
    "contas.title": ("Contas do portal", "Portal accounts"),
    "name": ("Nome", "Name"),
    "email": ("E-mail", "E-mail"),
    "discord": ("Discord", "Discord"),
    "role": ("Perfil", "Role"),
    "plan": ("Plano", "Plan"),
    "plan.until": ("Válido até", "Valid until"),
    "plan.days_left": ("{n} dia(s)", "{n} day(s)"),
    "balance": ("Saldo", "Balance"),
    "seller_balance": ("Saldo do vendedor", "Seller balance"),
    "negative_balance.note": ("Saldo negativo (estornos): não pague este saque",
                              "Negative balance (chargebacks): do not pay this withdrawal"),
    "instances": ("Instâncias", "Instances"),
    "plan.none": ("sem plano", "no plan"),
    "plan.trial": ("teste", "trial"),
    "plan.paid": ("pago", "paid"),
    "plan.expired": ("expirado", "expired"),
    "contas.note": ("Estender adiciona 30 dias ao plano; bloquear encerra as sessões e "
                    "suspende as instâncias da conta.",
                    "Extend adds 30 days to the plan; blocking ends the account's sessions and "
                    "suspends its instances."),
    "act.extend": ("Estender 30 dias", "Extend 30 days"),
    "act.extend.q": ("Adicionar 30 dias ao plano de {name}?", "Add 30 days to {name}'s plan?"),
    "act.block_account": ("Bloquear", "Block"),
    "act.block_account.q": ("Bloquear a conta {name}? As sessões serão encerradas e as "
                            "instâncias, suspensas.",
                            "Block the account {name}? Its sessions end and its "
                            "instances are suspended."),
    "act.unblock_account": ("Desbloquear", "Unblock"),
    "act.unblock_account.q": ("Desbloquear a conta {name}?", "Unblock the account {name}?"),
    # runtime
    "runtime.title": ("Runtime das instâncias", "Instance runtime"),
    "owner": ("Proprietário", "Owner"),
    "status_reason": ("Motivo do status", "Status reason"),
    "runtime.placement": ("Onde roda", "Runs in"),
    "runtime.isolated": ("sozinho", "alone"),
    "bot_token": ("Token do bot", "Bot token"),
    "logs": ("Logs", "Logs"),
    "logs.of": ("Logs de {id}", "Logs of {id}"),
    "logs.empty": ("Nenhuma linha de log.", "No log lines."),
    "act.start": ("Iniciar", "Start"),
    "act.start.q": ("Iniciar o bot da instância {id}?", "Start instance {id}'s bot?"),
    "act.stop": ("Parar", "Stop"),
    "act.stop.q": ("Parar o bot da instância {id}? As vendas dessa instância ficam "
                   "suspensas.",
                   "Stop instance {id}'s bot? Its sales stop."),
    "act.restart": ("Reiniciar", "Restart"),
    "act.restart.q": ("Reiniciar o bot da instância {id}?", "Restart instance {id}'s bot?"),
    # plugins
    "plugins.title": ("Plugins", "Plugins"),
    "plugin": ("Plugin", "Plugin"),
    "description": ("Descrição", "Description"),
    "hooks": ("Hooks", "Hooks"),
    "errors": ("Erros", "Errors"),
    "global": ("Global", "Global"),
    "default": ("Padrão", "Default"),
    "enabled": ("ativado", "enabled"),
    "disabled": ("desativado", "disabled"),
    "override": ("Nesta instância", "In this instance"),
    "inherits": ("herda o global", "inherits global"),
    "not_loaded": ("não carregado", "failed to load"),
    "plugins.pick": ("Escolha uma instância no filtro para ver e alterar o estado do plugin "
                     "nela.",
                     "Pick an instance in the filter to see and change its state."),
    "act.enable": ("Ativar", "Enable"),
    "act.disable": ("Desativar", "Disable"),
    "act.enable_global.q": ("Ativar o plugin {name} em todas as instâncias sem configuração "
                            "própria?",
                            "Enable plugin {name} for every instance without its own override?"),
    "act.disable_global.q": ("Desativar o plugin {name} em todas as instâncias sem configuração "
                             "própria? Passa a valer na hora, sem reiniciar.",
                             "Disable plugin {name} for every instance without its own override? "
                             "Takes effect at once, without a restart."),
    "act.enable_here": ("Ativar aqui", "Enable here"),
    "act.disable_here": ("Desativar aqui", "Disable here"),
    "act.inherit": ("Herdar global", "Inherit global"),
    "act.instance_toggle.q": ("Alterar o plugin {name} na instância {instance}?",
                              "Change plugin {name} in instance {instance}?"),
    # auditoria
    "auditoria.title": ("Auditoria", "Audit log"),
    "at": ("Quando", "When"),
    "actor": ("Quem", "Who"),
    "action": ("Ação", "Action"),
    "target": ("Alvo", "Target"),
    "details": ("Detalhes", "Details"),
    "action.placeholder": ("prefixo, ex.: order.", "prefix, e.g. order."),
    "actor.placeholder": ("ex.: admin:ops", "e.g. admin:ops"),
    # diagnóstico
    "diagnostico.title": ("Diagnóstico", "Diagnostics"),
    "check": ("Verificação", "Check"),
    "severity": ("Severidade", "Severity"),
    "message": ("Problema", "Problem"),
    "hint": ("Como corrigir", "How to fix"),
    "ref": ("Referência", "Reference"),
    "diag.ok": ("Nenhum problema encontrado.", "No problems found."),
    "diag.summary": ("{errors} erro(s), {warnings} aviso(s), {infos} informação(ões)",
                     "{errors} error(s), {warnings} warning(s), {infos} info"),
    "severity.error": ("erro", "error"),
    "severity.warning": ("aviso", "warning"),
    "severity.info": ("info", "info"),
    # statuses
    "st.pending": ("pendente", "pending"),
    "st.paid": ("pago", "paid"),
    "st.waiting_stock": ("aguardando estoque", "waiting for stock"),
    "st.delivered": ("entregue", "delivered"),
    "st.expired": ("expirado", "expired"),
    "st.cancelled": ("cancelado", "cancelled"),
    "st.refunded": ("reembolsado", "refunded"),
    "st.open": ("aberto", "open"),
    "st.checkout": ("aguardando pagamento", "awaiting payment"),
    "st.failed": ("falhou", "failed"),
    "st.requested": ("solicitado", "requested"),
    "st.rejected": ("rejeitado", "rejected"),
    "st.online": ("online", "online"),
    "st.offline": ("offline", "offline"),
    "st.error": ("erro", "error"),
    "st.suspended": ("suspenso", "suspended"),
    "st.blocked": ("bloqueado", "blocked"),
    "st.active": ("ativo", "active"),
    "st.enabled": ("ativado", "enabled"),
    "st.disabled": ("desativado", "disabled"),
}


def translator(lang: str) -> Callable[..., str]:
    index = 1 if lang == "en" else 0

    def t(key: str, **values: object) -> str:
        pair = TEXTS.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t


def status_label(t: Callable[..., str], status: object) -> str:
    """A status word in the page's language (an unknown status shows as it is)."""
    key = f"st.{status}"
    return t(key) if key in TEXTS else str(status)
