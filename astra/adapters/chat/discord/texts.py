"""What the bot says, in pt-BR (default) and English. Domain errors bring their own messages."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "choose_variant": {"pt-BR": "Escolha uma opção para comprar", "en": "Choose an option to buy"},
    "stock_left": {"pt-BR": "{n} em estoque", "en": "{n} in stock"},
    "sold_out": {"pt-BR": "esgotado", "en": "sold out"},
    "added": {
        "pt-BR": "Adicionado ao carrinho! Continue em {channel}.",
        "en": "Added to your cart! Continue in {channel}.",
    },
    "cart_here": {
        "pt-BR": "Seu carrinho está em {channel}.",
        "en": "Your cart is in {channel}.",
    },
    "cart_title": {"pt-BR": "🛒 Seu carrinho", "en": "🛒 Your cart"},
    "cart_expires": {"pt-BR": "Reservado até {when}", "en": "Reserved until {when}"},
    "subtotal": {"pt-BR": "Subtotal", "en": "Subtotal"},
    "discount": {"pt-BR": "Desconto", "en": "Discount"},
    "total": {"pt-BR": "Total", "en": "Total"},
    "coupon": {"pt-BR": "Cupom", "en": "Coupon"},
    "coupon_problem": {"pt-BR": "⚠️ {problem}", "en": "⚠️ {problem}"},
    "btn_quantity": {"pt-BR": "Quantidade", "en": "Quantity"},
    "btn_coupon": {"pt-BR": "Cupom", "en": "Coupon"},
    "btn_remove_coupon": {"pt-BR": "Remover cupom", "en": "Remove coupon"},
    "btn_pay": {"pt-BR": "Pagar com PIX", "en": "Pay with PIX"},
    "btn_cancel": {"pt-BR": "Cancelar", "en": "Cancel"},
    "btn_copy": {"pt-BR": "Copiar código PIX", "en": "Copy PIX code"},
    "btn_check": {"pt-BR": "Já paguei", "en": "I have paid"},
    "quantity_title": {"pt-BR": "Alterar quantidades", "en": "Change quantities"},
    "coupon_title": {"pt-BR": "Aplicar cupom", "en": "Apply a coupon"},
    "coupon_field": {"pt-BR": "Código do cupom", "en": "Coupon code"},
    "coupon_applied": {"pt-BR": "Cupom {code} aplicado.", "en": "Coupon {code} applied."},
    "coupon_removed": {"pt-BR": "Cupom removido.", "en": "Coupon removed."},
    "quantity_updated": {"pt-BR": "Quantidades atualizadas.", "en": "Quantities updated."},
    "not_a_number": {
        "pt-BR": "Informe um número inteiro em cada campo.",
        "en": "Enter a whole number in each field.",
    },
    "pix_title": {"pt-BR": "💠 Pagamento via PIX", "en": "💠 PIX payment"},
    "pix_body": {
        "pt-BR": "Escaneie o QR Code ou use o código copia e cola abaixo.\n"
        "**Valor:** {total}\n**Pedido:** {order}\n**Expira:** {when}",
        "en": "Scan the QR code or use the copy-and-paste code below.\n"
        "**Amount:** {total}\n**Order:** {order}\n**Expires:** {when}",
    },
    "pix_sandbox": {
        "pt-BR": "🧪 Pagamento de teste (sandbox): nenhum dinheiro é cobrado.",
        "en": "🧪 Test payment (sandbox): no money is charged.",
    },
    "not_paid_yet": {
        "pt-BR": "Ainda não recebemos o pagamento. Assim que o PIX for confirmado, você "
        "recebe as chaves por DM.",
        "en": "Payment not received yet. As soon as the PIX clears, the keys arrive in your DMs.",
    },
    "paid": {
        "pt-BR": "✅ Pagamento aprovado! Seu pedido {order} foi entregue por DM.",
        "en": "✅ Payment approved! Your order {order} was delivered by DM.",
    },
    "paid_here": {
        "pt-BR": "✅ Pagamento aprovado! Não consegui te enviar uma DM; aqui está o seu pedido:",
        "en": "✅ Payment approved! I could not DM you, so here is your order:",
    },
    "cancelled": {
        "pt-BR": "Carrinho cancelado. As chaves reservadas foram liberadas.",
        "en": "Cart cancelled. The reserved keys were released.",
    },
    "expired_dm": {
        "pt-BR": "⏰ Seu carrinho em **{shop}** expirou e as chaves reservadas foram "
        "liberadas. Você pode começar de novo pelo anúncio do produto.",
        "en": "⏰ Your cart at **{shop}** expired and the reserved keys were "
        "released. You can start again from the product post.",
    },
    "closing": {
        "pt-BR": "Este canal será fechado em instantes.",
        "en": "This channel will close shortly.",
    },
    "sale_announcement": {
        "pt-BR": "🎉 {buyer} comprou **{product}**! {feedback}",
        "en": "🎉 {buyer} bought **{product}**! {feedback}",
    },
    "feedback_link": {
        "pt-BR": "Deixe seu feedback em {channel}.",
        "en": "Leave your feedback in {channel}.",
    },
    "staff_delivery": {
        "pt-BR": "⚠️ Não consegui entregar o pedido {order} de {buyer} por DM "
        "nem no carrinho. Entregue manualmente:",
        "en": "⚠️ Could not deliver order {order} of {buyer} by DM or in the "
        "cart. Deliver it by hand:",
    },
    "not_allowed": {
        "pt-BR": "Você precisa da permissão **Gerenciar Servidor** para isso.",
        "en": "You need the **Manage Server** permission for this.",
    },
    "not_bound": {
        "pt-BR": "Este servidor ainda não está vinculado a esta loja. Use "
        "`/loja vincular` com a chave da instância.",
        "en": "This server is not linked to this store yet. Use `/loja vincular` "
        "with the instance key.",
    },
    "wrong_guild": {
        "pt-BR": "Esta loja está vinculada a outro servidor.",
        "en": "This store is linked to another server.",
    },
    "bound": {
        "pt-BR": "✅ Servidor vinculado à instância {instance}.",
        "en": "✅ Server linked to instance {instance}.",
    },
    "bad_key": {"pt-BR": "Chave de instância inválida.", "en": "Invalid instance key."},
    "product_created": {
        "pt-BR": "Produto **{name}** criado (`{id}`). Variantes: {variants}",
        "en": "Product **{name}** created (`{id}`). Variants: {variants}",
    },
    "product_updated": {
        "pt-BR": "Produto **{name}** atualizado.",
        "en": "Product **{name}** updated.",
    },
    "product_removed": {
        "pt-BR": "Produto **{name}** retirado da venda (estoque e pedidos mantidos).",
        "en": "Product **{name}** taken off sale (stock and orders kept).",
    },
    "no_products": {"pt-BR": "Nenhum produto cadastrado.", "en": "No products yet."},
    "stock_report": {
        "pt-BR": "Estoque de **{variant}**: {added} chave(s) adicionada(s), {skipped} "
        "ignorada(s) (repetidas no arquivo: {dup}; já em estoque: {existing}; longas "
        "demais: {long}; inválidas: {invalid}; linhas em branco: {blank}).",
        "en": "Stock of **{variant}**: {added} added; skipped {skipped} (duplicates in the "
        "file {dup}, already in stock {existing}, too long {long}, invalid {invalid}, "
        "blank lines {blank}).",
    },
    "stock_modal_title": {"pt-BR": "Adicionar chaves", "en": "Add keys"},
    "stock_modal_field": {"pt-BR": "Uma chave por linha", "en": "One key per line"},
    "posted": {"pt-BR": "Produto publicado em {channel}.", "en": "Product posted in {channel}."},
    "coupon_created": {"pt-BR": "Cupom **{code}** criado.", "en": "Coupon **{code}** created."},
    "coupon_disabled": {
        "pt-BR": "Cupom **{code}** desativado.",
        "en": "Coupon **{code}** disabled.",
    },
    "no_coupons": {"pt-BR": "Nenhum cupom.", "en": "No coupons."},
    "sales_summary": {
        "pt-BR": "**Vendas:** {count} pedidos pagos, total {total}.",
        "en": "**Sales:** {count} paid orders, {total} in total.",
    },
    "config_saved": {"pt-BR": "Configurações salvas.", "en": "Settings saved."},
    "error_generic": {
        "pt-BR": "Algo deu errado. Tente de novo em instantes.",
        "en": "Something went wrong. Please try again in a moment.",
    },
    "variant_unknown": {
        "pt-BR": "Variante não encontrada: {name}.",
        "en": "Variant not found: {name}.",
    },
    "bad_variants": {
        "pt-BR": "Use o formato `Nome=19,90;Outro=29,90`.",
        "en": "Use the format `Name=19.90;Other=29.90`.",
    },
    "file_too_big": {"pt-BR": "Arquivo grande demais.", "en": "File too large."},
    # A delivery made in the cart channel (the buyer's DMs are closed): the channel stays.
    "kept_channel": {
        "pt-BR": "📦 {buyer}, suas chaves do pedido {order} estão acima, porque sua DM está "
        "fechada. Este canal fica aberto por {days} dias para você guardá-las; quando tiver "
        "guardado, clique em **Recebi**. Você também pode vê-las de novo a qualquer momento "
        "com `/minhas-compras`.",
        "en": "📦 {buyer}, the keys of your order {order} are above, because your DMs are "
        "closed. This channel stays open for {days} days so you can save them; once you have, "
        "press **Got it**. You can also see them again at any time with `/minhas-compras`.",
    },
    "btn_received": {"pt-BR": "Recebi", "en": "Got it"},
    "no_keys_to_show": {
        "pt-BR": "Nenhuma chave disponível nesta variante.",
        "en": "No available keys in this variant.",
    },
    "received_thanks": {
        "pt-BR": "Obrigado! Este canal será fechado em instantes. Suas chaves continuam "
        "disponíveis em `/minhas-compras`.",
        "en": "Thank you! This channel will close shortly. Your keys stay available with "
        "`/minhas-compras`.",
    },
    "my_purchases_none": {
        "pt-BR": "Você ainda não tem compras entregues nesta loja.",
        "en": "You have no delivered purchases in this shop yet.",
    },
    "my_purchases_title": {
        "pt-BR": "🧾 Suas compras (só você vê esta mensagem):",
        "en": "🧾 Your purchases (only you can see this message):",
    },
    "my_purchases_order": {
        "pt-BR": "**Pedido {order}** · {when}",
        "en": "**Order {order}** · {when}",
    },
    # -- issue 15: branding, staff, posting -------------------------------------------------
    "btn_demo": {"pt-BR": "Ver demonstração", "en": "See a demo"},
    "btn_terms": {"pt-BR": "Termos", "en": "Terms"},
    "terms_title": {"pt-BR": "📜 Termos da loja", "en": "📜 Store terms"},
    "no_terms": {
        "pt-BR": "Esta loja não publicou termos.",
        "en": "This store has not published any terms.",
    },
    "btn_staff_confirm": {"pt-BR": "Confirmar pagamento", "en": "Confirm payment"},
    "staff_confirmed": {
        "pt-BR": "✅ Pagamento do pedido {order} confirmado manualmente por {staff}.",
        "en": "✅ Payment of order {order} confirmed by hand by {staff}.",
    },
    "welcome_title": {"pt-BR": "Olá! Sou o bot da {shop}", "en": "Hi! I am {shop}'s bot"},
    "welcome_body": {
        "pt-BR": "Obrigado por me adicionar. Um administrador deste servidor deve usar "
        "`/loja vincular` com a chave da instância (no portal) e depois `/loja permcheck` "
        "para conferir minhas permissões.",
        "en": "Thanks for adding me. A server admin should run `/loja vincular` with the "
        "instance key (from the portal), then `/loja permcheck` to check my permissions.",
    },
    "portal_link": {
        "pt-BR": "🔗 Painel da sua loja: {url}",
        "en": "🔗 Your store's dashboard: {url}",
    },
    "posted_purged": {
        "pt-BR": "Produto publicado em {channel} ({n} publicação(ões) antiga(s) removida(s)).",
        "en": "Product posted in {channel} ({n} older post(s) removed).",
    },
    "cart_warning": {
        "pt-BR": "⏰ {buyer}, seu carrinho expira {when} por inatividade ou tempo limite. "
        "Qualquer ação no carrinho (quantidade, cupom) mantém ele aberto.",
        "en": "⏰ {buyer}, your cart expires {when} (inactivity or time limit). Any action "
        "in the cart (quantity, coupon) keeps it open.",
    },
    "perm_ok": {
        "pt-BR": "✅ Tenho todas as permissões de que preciso nos canais configurados.",
        "en": "✅ I have every permission I need in the configured channels.",
    },
    "perm_missing": {
        "pt-BR": "⚠️ Faltam permissões:",
        "en": "⚠️ Missing permissions:",
    },
    "perm_line": {
        "pt-BR": "• {where}: {perms}",
        "en": "• {where}: {perms}",
    },
    "perm_fix": {
        "pt-BR": "Como corrigir: em Configurações do servidor → Cargos, dê essas permissões ao "
        "cargo do bot ({role}), ou, no canal, em Editar canal → Permissões, adicione o bot e "
        "permita-as (uma negação no canal ou na categoria vence a permissão do cargo).",
        "en": "How to fix: in Server Settings → Roles, give these permissions to the bot's role "
        "({role}), or in the channel's Edit Channel → Permissions, add the bot and allow them "
        "(a deny on the channel or its category beats the role's permission).",
    },
    "perm_nothing_configured": {
        "pt-BR": "Nenhum canal configurado ainda: use `/loja config` ou o portal.",
        "en": "No channel configured yet: use `/loja config` or the portal.",
    },
    "perm_unknown_channel": {
        "pt-BR": "• {where}: canal não encontrado (foi apagado ou o bot não o vê).",
        "en": "• {where}: channel not found (deleted, or the bot cannot see it).",
    },
}


def t(language: str, key: str, **params: object) -> str:
    table = TEXTS[key]
    text = table.get(language) or table["pt-BR"]
    return text.format(**params) if params else text
