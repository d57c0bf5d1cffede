"""The portal pages' text: pt-BR by default, English with the `lang` cookie.

`TEXT` maps a key to its (pt-BR, English) pair. `CLIENT_KEYS` are the ones the page's script
needs (it reads them from a JSON block in the page, never from the network).
"""

from __future__ import annotations

from aiohttp import web

from astra.domain.messages import DEFAULT_LANGUAGE, LANGUAGES

LANGUAGE_COOKIE = "lang"

TEXT: dict[str, tuple[str, str]] = {
    # layout
    "brand.tagline": ("Bots de venda no Discord com PIX", "Discord sales bots paid by PIX"),
    "nav.main": ("Navegação principal", "Main navigation"),
    "nav.dashboard": ("Painel", "Dashboard"),
    "nav.instances": ("Instâncias", "Instances"),
    "nav.store": ("Loja", "Store"),
    "nav.wallet": ("Carteira", "Wallet"),
    "nav.account": ("Conta", "Account"),
    "lang.label": ("Idioma", "Language"),
    "lang.switch": ("Mudar idioma", "Change language"),
    "skip": ("Pular para o conteúdo", "Skip to content"),
    "noscript": (
        "Ative o JavaScript para fazer alterações nesta página.",
        "Turn on JavaScript to make changes on this page.",
    ),
    "close": ("Fechar", "Close"),
    "cancel": ("Cancelar", "Cancel"),
    "confirm": ("Confirmar", "Confirm"),
    "copy": ("Copiar", "Copy"),
    "save": ("Salvar", "Save"),
    "optional": ("opcional", "optional"),
    "logout": ("Sair", "Log out"),
    "footer": ("Astra · pagamentos por PIX", "Astra · payments by PIX"),
    # landing and auth
    "landing.title": ("Sua loja no Discord, paga por PIX", "Your store on Discord, paid by PIX"),
    "landing.lead": (
        "Crie um bot de vendas com seu próprio token, cadastre produtos e estoque de chaves, "
        "e receba por PIX com entrega automática na DM do comprador.",
        "Create a sales bot with your own token, add products and key stock, and get paid "
        "by PIX with automatic delivery to the buyer's DMs.",
    ),
    "landing.f1.title": ("Seu bot, sua marca", "Your bot, your brand"),
    "landing.f1.text": (
        "Cada loja roda isolada com o token do seu bot.",
        "Each store runs isolated with your own bot token.",
    ),
    "landing.f2.title": ("PIX na hora", "Instant PIX"),
    "landing.f2.text": (
        "QR code e PIX copia e cola no carrinho; a chave chega sozinha.",
        "QR code and copy-paste code in the cart; the key arrives by itself.",
    ),
    "landing.f3.title": ("Saque quando quiser", "Withdraw any time"),
    "landing.f3.text": (
        "Acompanhe o saldo e peça o saque para sua chave PIX.",
        "Follow your balance and withdraw to your PIX key.",
    ),
    "landing.pricing": (
        "{days} dias grátis, depois {price}/mês. Taxa de {fee} por venda.",
        "{days} days free, then {price}/month. {fee} fee per sale.",
    ),
    "landing.go": ("Ir para o painel", "Go to the dashboard"),
    "landing.signed_in": ("Você entrou como {email}.", "You are logged in as {email}."),
    "auth.login": ("Entrar", "Log in"),
    "auth.register": ("Criar conta", "Sign up"),
    "auth.login.title": ("Entrar no Astra", "Log in to Astra"),
    "auth.register.title": ("Crie sua conta", "Create your account"),
    "auth.email": ("E-mail", "E-mail"),
    "auth.password": ("Senha", "Password"),
    "auth.password.hint": ("Pelo menos 8 caracteres.", "At least 8 characters."),
    "auth.name": ("Seu nome", "Your name"),
    "auth.or": ("ou", "or"),
    "auth.discord": ("Entrar com Discord", "Log in with Discord"),
    "auth.no_account": ("Ainda não tem conta?", "No account yet?"),
    "auth.have_account": ("Já tem conta?", "Already have an account?"),
    "auth.tabs": ("Entrar ou criar conta", "Log in or sign up"),
    # plan banner
    "plan.none": (
        "Você ainda não tem um plano. Comece o teste grátis de {days} dias para criar seu bot.",
        "You have no plan yet. Start the {days}-day free trial to create your bot.",
    ),
    "plan.none_no_trial": (
        "Você ainda não tem um plano. Assine para criar seu bot.",
        "You have no plan yet. Subscribe to create your bot.",
    ),
    "plan.trial": (
        "Teste grátis: restam {days} dia(s), até {until}.",
        "Free trial: {days} day(s) left, until {until}.",
    ),
    "plan.paid": (
        "Plano mensal ativo: restam {days} dia(s), até {until}.",
        "Monthly plan active: {days} day(s) left, until {until}.",
    ),
    "plan.expired": (
        "Seu plano expirou em {until}. Seus bots estão suspensos até a renovação.",
        "Your plan expired on {until}. Your bots are suspended until you renew.",
    ),
    "plan.start_trial": ("Começar teste grátis", "Start free trial"),
    "plan.buy": ("Assinar plano · {price}", "Buy plan · {price}"),
    "plan.renew": ("Renovar · {price}", "Renew · {price}"),
    "plan.trial_started": ("Teste grátis iniciado!", "Free trial started!"),
    "pix.title": ("Pague com PIX", "Pay with PIX"),
    "pix.scan": (
        "Escaneie o QR code no app do seu banco ou use o código PIX copia e cola.",
        "Scan the QR code in your bank's app or use the copy-paste code.",
    ),
    "pix.code": ("PIX copia e cola", "PIX copy-paste code"),
    "pix.amount": ("Valor", "Amount"),
    "pix.expires": ("Vence em", "Expires"),
    "pix.qr_alt": ("QR code do PIX", "PIX QR code"),
    "pix.waiting": (
        "Aguardando o pagamento… esta página se atualiza sozinha.",
        "Waiting for the payment… this page updates by itself.",
    ),
    "pix.sandbox": (
        "Pagamentos simulados (sandbox): aprove com o comando astra payments approve {charge}",
        "Simulated payments (sandbox): approve with the command astra payments approve {charge}",
    ),
    "pix.paid": ("Pagamento confirmado! Plano ativo.", "Payment confirmed! Plan active."),
    # dashboard
    "dash.title": ("Painel", "Dashboard"),
    "dash.hello": ("Olá, {name}!", "Hello, {name}!"),
    "dash.instances": ("Instâncias", "Instances"),
    "dash.instances.sub": ("{online} online de {total}", "{online} online of {total}"),
    "dash.sales": ("Vendas", "Sales"),
    "dash.sales.sub": ("{paid} paga(s) · {pending} aguardando", "{paid} paid · {pending} pending"),
    "dash.net": ("Líquido", "Net"),
    "dash.balance": ("Saldo na carteira", "Wallet balance"),
    "dash.balance.sub": ("{amount} em saque", "{amount} being withdrawn"),
    "dash.start": ("Primeiros passos", "Getting started"),
    "dash.step.plan": ("Ative um plano ou o teste grátis", "Activate a plan or the free trial"),
    "dash.step.instance": ("Crie uma instância (seu bot)", "Create an instance (your bot)"),
    "dash.step.token": ("Cadastre o token do bot", "Set the bot token"),
    "dash.step.product": ("Cadastre um produto com estoque", "Add a product with stock"),
    "dash.step.post": ("Publique o produto em um canal", "Post the product in a channel"),
    "dash.done": ("feito", "done"),
    "dash.todo": ("a fazer", "to do"),
    "dash.your_instances": ("Suas instâncias", "Your instances"),
    "dash.no_instances": ("Nenhuma instância ainda.", "No instances yet."),
    "dash.create_first": ("Criar minha primeira instância", "Create my first instance"),
    "dash.open_store": ("Abrir loja", "Open store"),
    "dash.recent": ("Últimas vendas", "Latest sales"),
    "dash.no_sales": (
        "Nenhuma venda ainda. Publique um produto no Discord para começar.",
        "No sales yet. Post a product on Discord to get started.",
    ),
    "dash.all_sales": ("Ver vendas", "See sales"),
    "dash.manage": ("Gerenciar", "Manage"),
    # instance status
    "status.online": ("online", "online"),
    "status.offline": ("offline", "offline"),
    "status.error": ("erro", "error"),
    "status.suspended": ("suspenso", "suspended"),
    "status.starting": ("iniciando", "starting"),
    "desired.running": ("ligado", "on"),
    "desired.stopped": ("desligado", "off"),
    "desired.restart": ("reiniciando", "restarting"),
    # instances page
    "inst.title": ("Instâncias", "Instances"),
    "inst.lead": (
        "Cada instância é um bot do Discord com sua própria loja.",
        "Each instance is a Discord bot with its own store.",
    ),
    "inst.new": ("Nova instância", "New instance"),
    "inst.name": ("Nome da loja", "Store name"),
    "inst.id": ("Identificador", "Identifier"),
    "inst.id.hint": (
        "3 a 40 letras minúsculas, números ou hífens. Não muda depois.",
        "3 to 40 lowercase letters, digits or hyphens. It cannot change later.",
    ),
    "inst.token": ("Token do bot", "Bot token"),
    "inst.token.hint": (
        "Discord Developer Portal → seu app → Bot → Reset Token. Guardado criptografado e nunca "
        "mostrado de novo.",
        "Discord Developer Portal → your app → Bot → Reset Token. Stored encrypted and never "
        "shown again.",
    ),
    "inst.create": ("Criar instância", "Create instance"),
    "inst.created": ("Instância criada.", "Instance created."),
    "inst.none": (
        "Você ainda não tem instâncias. Crie a primeira acima.",
        "You have no instances yet. Create the first one above.",
    ),
    "inst.plan_needed": (
        "Ative o teste grátis ou um plano para criar instâncias.",
        "Start the free trial or a plan to create instances.",
    ),
    "inst.bot": ("Bot", "Bot"),
    "inst.no_token": ("Sem token", "No token"),
    "inst.desired": ("Estado desejado", "Requested state"),
    "inst.start": ("Ligar", "Start"),
    "inst.stop": ("Desligar", "Stop"),
    "inst.restart": ("Reiniciar", "Restart"),
    "inst.started": (
        "Pedido enviado: o bot liga em instantes.",
        "Requested: the bot starts shortly.",
    ),
    "inst.stopped": ("Bot desligado.", "Bot stopped."),
    "inst.restarted": ("Reinício solicitado.", "Restart requested."),
    "inst.set_token": ("Definir token", "Set token"),
    "inst.change_token": ("Trocar token", "Change token"),
    "inst.clear_token": ("Remover token", "Remove token"),
    "inst.clear_token.confirm": (
        "Remover o token? O bot será desligado.",
        "Remove the token? The bot will stop.",
    ),
    "inst.token_saved": ("Token verificado e salvo.", "Token checked and saved."),
    "inst.token_cleared": ("Token removido.", "Token removed."),
    "inst.invite": ("Convidar bot para o servidor", "Invite the bot to your server"),
    "inst.invite.none": (
        "Defina o token para gerar o link de convite.",
        "Set the token to get the invite link.",
    ),
    "inst.key": ("Chave da instância", "Instance key"),
    "inst.key.has": ("Chave definida", "Key set"),
    "inst.key.none": ("Sem chave", "No key"),
    "inst.rotate": ("Gerar nova chave", "Generate a new key"),
    "inst.rotate.confirm": (
        "Gerar uma nova chave? A chave atual deixa de funcionar.",
        "Generate a new key? The current key stops working.",
    ),
    "inst.key.title": ("Sua nova chave", "Your new key"),
    "inst.key.once": (
        "Guarde esta chave agora: ela não será mostrada de novo. Use-a em /loja vincular.",
        "Save this key now: it will not be shown again. Use it with /loja vincular.",
    ),
    "inst.logs": ("Últimas linhas do log", "Last log lines"),
    "inst.logs.none": ("Nenhuma linha de log ainda.", "No log lines yet."),
    "inst.logs.unavailable": ("Log indisponível agora.", "Log unavailable right now."),
    "inst.settings": ("Configurações", "Settings"),
    "inst.bot_language": ("Idioma do bot", "Bot language"),
    "inst.cart_minutes": ("Tempo do carrinho (minutos)", "Cart time (minutes)"),
    "inst.saved": ("Configurações salvas.", "Settings saved."),
    "inst.delete": ("Excluir instância", "Delete instance"),
    "inst.delete.confirm": (
        "Excluir esta instância? O bot será desligado e ela sairá da lista; os dados "
        "continuam guardados.",
        "Delete this instance? The bot stops and it leaves your list; its data is kept.",
    ),
    "inst.deleted": ("Instância excluída.", "Instance deleted."),
    "inst.reason": ("Motivo", "Reason"),
    "inst.updated": ("Atualizado", "Updated"),
    # store page
    "store.title": ("Loja", "Store"),
    "store.instance": ("Instância", "Instance"),
    "store.switch": ("Trocar", "Switch"),
    "store.none": (
        "Crie uma instância para montar sua loja.",
        "Create an instance to set up your store.",
    ),
    "store.missing": ("Instância não encontrada.", "Instance not found."),
    "store.products": ("Produtos", "Products"),
    "store.no_products": ("Nenhum produto ainda.", "No products yet."),
    "store.new_product": ("Novo produto", "New product"),
    "store.product_name": ("Nome do produto", "Product name"),
    "store.description": ("Descrição", "Description"),
    "store.delivery": ("Entrega", "Delivery"),
    "delivery.key": ("Chave (estoque)", "Key (stock)"),
    "delivery.text": ("Texto", "Text"),
    "delivery.file": ("Arquivo (link)", "File (link)"),
    "delivery.role": ("Cargo", "Role"),
    "store.content": ("Conteúdo entregue", "Delivered content"),
    "store.content.hint": (
        "Para texto: o texto; arquivo: o link; cargo: o ID do cargo.",
        "For text: the text; file: the link; role: the role id.",
    ),
    "store.variants": ("Variantes", "Variants"),
    "store.variant": ("Variante", "Variant"),
    "store.variant_name": ("Nome da variante", "Variant name"),
    "store.price": ("Preço (R$)", "Price (R$)"),
    "store.price_col": ("Preço", "Price"),
    "store.max": ("Máx. por pedido", "Max per order"),
    "store.add_variant": ("+ Variante", "+ Variant"),
    "store.remove_variant": ("Remover variante", "Remove variant"),
    "store.create_product": ("Cadastrar produto", "Add product"),
    "store.product_created": ("Produto cadastrado.", "Product added."),
    "store.stock": ("Estoque", "Stock"),
    "store.available": ("disponível", "available"),
    "store.reserved": ("reservado", "reserved"),
    "store.sold": ("vendido", "sold"),
    "store.upload": ("Adicionar estoque", "Add stock"),
    "store.keys": ("Chaves (uma por linha)", "Keys (one per line)"),
    "store.file": ("ou um arquivo .txt", "or a .txt file"),
    "store.send_stock": ("Enviar estoque", "Upload stock"),
    "store.report": (
        "{added} chave(s) adicionada(s), {skipped} ignorada(s).",
        "{added} key(s) added, {skipped} skipped.",
    ),
    "store.report.detail": (
        "Repetidas no envio: {dup} · já no estoque: {existing} · em branco: {blank} · "
        "longas demais: {long} · inválidas: {invalid}.",
        "Repeated in the upload: {dup} · already in stock: {existing} · blank: {blank} · "
        "too long: {long} · invalid: {invalid}.",
    ),
    "store.report.lines": ("Linhas ignoradas: {lines}", "Skipped lines: {lines}"),
    "store.report.job": ("Importação de estoque", "Stock import"),
    "store.report.job_progress": (
        "Importando: {processed} de {total} chaves ({percent}%)",
        "Importing: {processed} of {total} keys ({percent}%)",
    ),
    "store.report.job_failed": (
        "A importação parou antes do fim; as chaves já adicionadas ficaram no estoque.",
        "The import stopped before the end; keys already added stay in stock.",
    ),
    "store.post": ("Publicar no Discord", "Post on Discord"),
    "store.channel": ("Canal", "Channel"),
    "store.guild": ("Servidor", "Server"),
    "store.loading": ("Carregando canais…", "Loading channels…"),
    "store.no_channels": (
        "O bot não está em nenhum servidor: convide-o primeiro.",
        "The bot is in no server: invite it first.",
    ),
    "store.pick_guild": ("Escolha o servidor", "Pick the server"),
    "store.need_token": (
        "Defina o token do bot em Instâncias para publicar.",
        "Set the bot token in Instances to post.",
    ),
    "store.posted": ("Produto publicado no canal.", "Product posted in the channel."),
    "store.posted_in": ("Publicado em {n} canal(is)", "Posted in {n} channel(s)"),
    "store.deactivate": ("Desativar", "Deactivate"),
    "store.activate": ("Ativar", "Activate"),
    "store.inactive": ("desativado", "inactive"),
    "store.deactivate.confirm": (
        "Suspender a venda deste produto? O estoque e os pedidos continuam guardados.",
        "Take this product off sale? Its stock and orders are kept.",
    ),
    "store.product_updated": ("Produto atualizado.", "Product updated."),
    "store.coupons": ("Cupons", "Coupons"),
    "store.no_coupons": ("Nenhum cupom ainda.", "No coupons yet."),
    "store.code": ("Código", "Code"),
    "store.kind": ("Tipo", "Type"),
    "store.kind.percent": ("Porcentagem", "Percent"),
    "store.kind.fixed": ("Valor fixo", "Fixed amount"),
    "store.value": ("Desconto", "Discount"),
    "store.value.hint": (
        "Porcentagem: 1 a 100. Valor fixo: em reais, como 5,00.",
        "Percent: 1 to 100. Fixed: in reais, like 5,00.",
    ),
    "store.min_order": ("Pedido mínimo (R$)", "Minimum order (R$)"),
    "store.max_uses": ("Usos máximos", "Maximum uses"),
    "store.per_buyer": ("Usos por comprador", "Uses per buyer"),
    "store.expires": ("Expira em", "Expires"),
    "store.uses": ("Usos", "Uses"),
    "store.state": ("Situação", "State"),
    "store.active": ("ativo", "active"),
    "store.disabled": ("desativado", "disabled"),
    "store.create_coupon": ("Criar cupom", "Create coupon"),
    "store.coupon_created": ("Cupom criado.", "Coupon created."),
    "store.disable": ("Desativar", "Disable"),
    "store.enable": ("Reativar", "Enable"),
    "store.coupon_updated": ("Cupom atualizado.", "Coupon updated."),
    "store.sales": ("Vendas", "Sales"),
    "store.no_sales": ("Nenhuma venda ainda.", "No sales yet."),
    "store.gross": ("Bruto", "Gross"),
    "store.fee": ("Taxa", "Fee"),
    "store.net": ("Líquido", "Net"),
    "store.orders": ("Pedidos", "Orders"),
    "store.paid_orders": ("Pagos", "Paid"),
    "store.orders_sub": (
        "{paid} pago(s) de {orders} pedido(s)",
        "{paid} paid of {orders} order(s)",
    ),
    "store.refunded": ("Reembolsado", "Refunded"),
    "store.order": ("Pedido", "Order"),
    "store.date": ("Data", "Date"),
    "store.buyer": ("Comprador", "Buyer"),
    "store.items": ("Itens", "Items"),
    "store.total": ("Total", "Total"),
    "store.showing": ("Mostrando {shown} de {total}.", "Showing {shown} of {total}."),
    "store.actions": ("Ações", "Actions"),
    "order.pending": ("aguardando PIX", "awaiting PIX"),
    "order.paid": ("pago", "paid"),
    "order.waiting_stock": ("aguardando estoque", "waiting for stock"),
    "order.delivered": ("entregue", "delivered"),
    "order.expired": ("expirado", "expired"),
    "order.cancelled": ("cancelado", "cancelled"),
    "order.refunded": ("reembolsado", "refunded"),
    # wallet
    "wallet.title": ("Carteira", "Wallet"),
    "wallet.balance": ("Saldo disponível", "Available balance"),
    "wallet.withdrawing": ("Em saque", "Being withdrawn"),
    "wallet.fee_note": (
        "Cada venda entra no saldo já sem a taxa da plataforma ({fee}).",
        "Each sale is credited net of the platform fee ({fee}).",
    ),
    "wallet.request": ("Solicitar saque", "Request a withdrawal"),
    "wallet.amount": ("Valor (R$)", "Amount (R$)"),
    "wallet.amount.hint": ("Mínimo de {min}.", "Minimum {min}."),
    "wallet.pix_key": ("Chave PIX", "PIX key"),
    "wallet.pix_key.hint": (
        "CPF, CNPJ, e-mail, celular (+55…) ou chave aleatória.",
        "CPF, CNPJ, e-mail, phone (+55…) or random key.",
    ),
    "wallet.requested": ("Saque solicitado.", "Withdrawal requested."),
    "wallet.withdrawals": ("Saques", "Withdrawals"),
    "wallet.no_withdrawals": ("Nenhum saque ainda.", "No withdrawals yet."),
    "wallet.cancel": ("Cancelar saque", "Cancel withdrawal"),
    "wallet.cancel.confirm": (
        "Cancelar este saque? O valor volta para o saldo.",
        "Cancel this withdrawal? The amount returns to your balance.",
    ),
    "wallet.cancelled": ("Saque cancelado.", "Withdrawal cancelled."),
    "wallet.ledger": ("Extrato", "Statement"),
    "wallet.no_entries": ("Nenhum lançamento ainda.", "No entries yet."),
    "wallet.description": ("Descrição", "Description"),
    "wallet.kind": ("Tipo", "Type"),
    "wallet.status": ("Situação", "Status"),
    "wallet.reason": ("Motivo", "Reason"),
    "ledger.sale_credit": ("venda", "sale"),
    "ledger.sale_reversal": ("estorno de venda", "sale reversal"),
    "ledger.withdrawal_debit": ("saque", "withdrawal"),
    "ledger.withdrawal_reversal": ("estorno de saque", "withdrawal returned"),
    "withdrawal.requested": ("solicitado", "requested"),
    "withdrawal.paid": ("pago", "paid"),
    "withdrawal.rejected": ("recusado", "rejected"),
    "withdrawal.cancelled": ("cancelado", "cancelled"),
    # account
    "acct.title": ("Conta", "Account"),
    "acct.profile": ("Perfil", "Profile"),
    "acct.name": ("Nome", "Name"),
    "acct.member_since": ("Cliente desde", "Member since"),
    "acct.plan": ("Plano", "Plan"),
    "plan_kind.none": ("nenhum", "none"),
    "plan_kind.trial": ("teste grátis", "free trial"),
    "plan_kind.paid": ("mensal", "monthly"),
    "acct.password": ("Trocar senha", "Change password"),
    "acct.set_password": ("Definir senha", "Set a password"),
    "acct.current_password": ("Senha atual", "Current password"),
    "acct.new_password": ("Nova senha", "New password"),
    "acct.confirm_password": ("Repita a nova senha", "Repeat the new password"),
    "acct.password_mismatch": ("As senhas não conferem.", "The passwords do not match."),
    "acct.password_changed": (
        "Senha alterada. As outras sessões foram encerradas.",
        "Password changed. Your other sessions were ended.",
    ),
    "acct.discord": ("Discord", "Discord"),
    "acct.discord.linked": ("Vinculado como {name}.", "Linked as {name}."),
    "acct.discord.not_linked": (
        "Vincule sua conta do Discord para entrar com ela.",
        "Link your Discord account to log in with it.",
    ),
    "acct.discord.link": ("Vincular Discord", "Link Discord"),
    "acct.discord.relink": ("Vincular outra conta", "Link another account"),
    "acct.discord.off": (
        "O login com Discord não está configurado nesta instalação.",
        "Discord login is not set up on this installation.",
    ),
    "acct.session": ("Sessão", "Session"),
    "acct.logout.text": ("Encerrar a sessão neste navegador.", "Log out of this browser."),
    # client-side
    "js.error": (
        "Algo deu errado. Tente novamente em instantes.",
        "Something went wrong. Please try again shortly.",
    ),
    "js.network": (
        "Sem conexão com o servidor. Confira sua internet.",
        "Cannot reach the server. Check your connection.",
    ),
    "js.bad_price": (
        "Preço inválido: {value}. Use, por exemplo, 19,90.",
        "Invalid price: {value}. Use, for example, 19,90.",
    ),
    "js.bad_amount": (
        "Valor inválido: {value}. Use, por exemplo, 50,00.",
        "Invalid amount: {value}. Use, for example, 50,00.",
    ),
    "js.copied": ("Copiado!", "Copied!"),
    "js.working": ("Enviando…", "Sending…"),
    "js.need_keys": (
        "Cole as chaves ou escolha um arquivo .txt.",
        "Paste the keys or pick a .txt file.",
    ),
    "js.pick_channel": ("Escolha um canal.", "Pick a channel."),
}

# -- the editors (issue 15): settings pickers, branding, templates, products, keys, profile,
# public pages ---------------------------------------------------------------------------------
TEXT.update({
    "inst.cart_idle": (
        "Expirar carrinho parado após (minutos)", "Expire an idle cart after (minutes)"
    ),
    "inst.cart_idle.hint": (
        "0 desliga: vale só o tempo do carrinho. Qualquer ação do comprador renova.",
        "0 turns it off: only the cart time applies. Any buyer action renews it.",
    ),
    "inst.keep_days": (
        "Manter o canal do carrinho após a entrega (dias)",
        "Keep the cart channel after delivery (days)",
    ),
    "inst.staff_notifications": (
        "Avisar a equipe no canal de logs (carrinhos, PIX, pagamentos, entregas, estoque)",
        "Notify the staff in the log channel (carts, PIX, payments, deliveries, stock)",
    ),
    "inst.manual_confirmation": (
        "Permitir que a equipe confirme pagamentos manualmente no Discord (auditado)",
        "Let the staff confirm payments by hand in Discord (audited)",
    ),
    "picker.title": ("Servidor, canais e cargos", "Server, channels and roles"),
    "picker.none": ("nenhum", "none"),
    "picker.loading": ("Carregando do Discord…", "Loading from Discord…"),
    "picker.loaded": (
        "Listados do Discord com o bot desta instância.",
        "Listed from Discord with this instance's bot.",
    ),
    "picker.need_token": (
        "Cadastre o token do bot para escolher canais e cargos do seu servidor.",
        "Set the bot token to pick your server's channels and roles.",
    ),
    "picker.gone": ("{id} (o bot não vê mais)", "{id} (the bot no longer sees it)"),
    "picker.guild": ("Servidor", "Server"),
    "picker.guild.hint": (
        "O servidor onde a loja vende (o /loja vincular também define).",
        "The server the store sells in (/loja vincular sets it too).",
    ),
    "picker.cart_category": ("Categoria dos carrinhos", "Cart category"),
    "picker.staff_channel": ("Canal da equipe", "Staff channel"),
    "picker.log_channel": ("Canal de logs", "Log channel"),
    "picker.sales_channel": ("Canal de anúncio de vendas", "Sales announcement channel"),
    "picker.buyer_role": ("Cargo de comprador", "Buyer role"),
    "picker.staff_role": ("Cargo da equipe", "Staff role"),
    "picker.stock_alert_role": (
        "Cargo avisado quando o estoque acaba", "Role pinged when stock runs out"
    ),
    "brand.title": ("Marca da loja", "Store branding"),
    "brand.lead": (
        "Como a loja aparece no Discord: valem para todos os produtos, que podem ter os seus.",
        "How the store looks in Discord: they apply to every product, which may set their own.",
    ),
    "brand.color": ("Cor dos embeds", "Embed colour"),
    "brand.banner_url": ("Banner do sistema (imagem ou GIF)", "System banner (image or GIF)"),
    "brand.banner_url.hint": (
        "Mostrado acima dos posts e na mensagem de boas-vindas. Só https://.",
        "Shown above posts and in the welcome message. https:// only.",
    ),
    "brand.thumbnail_url": ("Miniatura dos posts", "Post thumbnail"),
    "brand.footer_text": ("Rodapé dos posts", "Post footer"),
    "brand.cart_footer": ("Rodapé do carrinho", "Cart footer"),
    "brand.pix_instructions": ("Instruções do PIX", "PIX instructions"),
    "brand.terms_text": (
        "Termos (botão \"Termos\" no PIX)", "Terms (\"Termos\" button on the PIX)"
    ),
    "brand.terms_text.hint": ("Vazio esconde o botão.", "Empty hides the button."),
    "brand.welcome_text": ("Mensagem de boas-vindas", "Welcome message"),
    "tpl.title": ("Mensagens de entrega (DM)", "Delivery messages (DM)"),
    "tpl.lead": (
        "Vazio usa o texto padrão. Variáveis aceitas:",
        "Empty uses the built-in text. Placeholders:",
    ),
    "tpl.sale": ("Venda (entrega automática)", "Sale (automatic delivery)"),
    "tpl.staff": ("Entrega feita pela equipe", "Delivery made by the staff"),
    "tpl.field.title": ("Título", "Title"),
    "tpl.field.body": ("Texto", "Text"),
    "tpl.field.footer": ("Rodapé", "Footer"),
    "tpl.field.color": ("Cor", "Colour"),
    "tpl.default": ("(padrão)", "(built-in)"),
    # product editor
    "edit.open": ("Editar produto", "Edit product"),
    "edit.save": ("Salvar produto", "Save product"),
    "edit.saved": ("Produto salvo.", "Product saved."),
    "edit.basics": ("Produto", "Product"),
    "edit.media": ("Imagens e aparência", "Images and look"),
    "edit.texts": ("Textos", "Texts"),
    "edit.category": ("Categoria", "Category"),
    "edit.image_url": ("Imagem do post", "Post image"),
    "edit.banner_url": (
        "Banner antes do post (imagem ou GIF)", "Banner before the post (image or GIF)"
    ),
    "edit.color": ("Cor do embed", "Embed colour"),
    "edit.show_thumbnail": ("Mostrar a miniatura da loja", "Show the store's thumbnail"),
    "edit.footer_text": ("Rodapé do post", "Post footer"),
    "edit.demo_url": ("Link de demonstração", "Demo link"),
    "edit.demo_label": ("Texto do botão de demonstração", "Demo button label"),
    "edit.sections": ("Seções extras da descrição", "Extra description sections"),
    "edit.section_title": ("Título da seção", "Section title"),
    "edit.section_text": ("Texto da seção", "Section text"),
    "edit.add_section": ("Adicionar seção", "Add section"),
    "edit.remove_section": ("Remover seção", "Remove section"),
    "edit.dm_template": ("Mensagem da DM (venda)", "DM message (sale)"),
    "edit.staff_dm_template": ("Mensagem da DM (entrega da equipe)", "DM message (staff delivery)"),
    "edit.template.hint": (
        "Vazio usa a mensagem da instância. Variáveis: {placeholders}",
        "Empty uses the instance's message. Placeholders: {placeholders}",
    ),
    "edit.unlimited_stock": (
        "Estoque ilimitado (a mesma chave do campo acima para todos)",
        "Unlimited stock (the same key, above, for everyone)",
    ),
    "edit.variant_active": ("À venda", "On sale"),
    "edit.emoji": ("Emoji", "Emoji"),
    "edit.duration": ("Duração", "Duration"),
    "edit.duration.placeholder": ("30 dias", "30 days"),
    "edit.preview": ("Prévia no Discord", "Preview in Discord"),
    "edit.preview.hint": (
        "Como o bot vai postar, com preços e estoque de agora. Imagens externas aparecem como "
        "moldura com o endereço.",
        "How the bot will post it, with current prices and stock. External images show as a "
        "frame with their address.",
    ),
    "js.preview.loading": ("Atualizando a prévia…", "Updating the preview…"),
    "js.preview.image": ("imagem", "image"),
    "js.preview.bot": ("BOT", "BOT"),
    "js.preview.today": ("Hoje", "Today"),
    # stock editor
    "keys.open": ("Gerenciar chaves", "Manage keys"),
    "keys.variant": ("Variante", "Variant"),
    "keys.load": ("Listar chaves", "List keys"),
    "keys.remove": ("Remover selecionadas", "Remove selected"),
    "keys.select_all": ("Selecionar todas as disponíveis", "Select every available key"),
    "keys.hint": (
        "As chaves aparecem mascaradas. Só as disponíveis podem ser removidas; reservadas "
        "(em um carrinho) e vendidas ficam.",
        "Keys are shown masked. Only available keys can be removed; reserved (in a cart) and "
        "sold ones stay.",
    ),
    "js.keys.none": ("Nenhuma chave nesta variante.", "No keys in this variant."),
    "js.keys.loading": ("Carregando chaves…", "Loading keys…"),
    "js.keys.confirm": ("Remover {n} chave(s)? Isso não pode ser desfeito.",
                        "Remove {n} key(s)? This cannot be undone."),
    "js.keys.removed": ("{n} chave(s) removida(s).", "{n} key(s) removed."),
    "js.keys.kept": (
        "{n} chave(s) não foram removidas: foram reservadas ou vendidas nesse meio tempo.",
        "{n} key(s) were not removed: they were reserved or sold meanwhile.",
    ),
    "js.keys.pick": ("Escolha ao menos uma chave disponível.", "Pick at least one available key."),
    "js.keys.count": (
        "{available} disponível(is) · {reserved} reservada(s) · {sold} vendida(s)",
        "{available} available · {reserved} reserved · {sold} sold",
    ),
    "js.keys.state.available": ("disponível", "available"),
    "js.keys.state.reserved": ("reservada", "reserved"),
    "js.keys.state.sold": ("vendida", "sold"),
    "js.keys.select": ("Selecionar {masked}", "Select {masked}"),
    # account
    "acct.edit_profile": ("Alterar nome e e-mail", "Change name and e-mail"),
    "acct.profile_password": ("Senha atual (para confirmar)", "Current password (to confirm)"),
    "acct.profile_saved": ("Perfil salvo.", "Profile saved."),
    "acct.profile_no_password": (
        "Defina uma senha abaixo para poder mudar o e-mail.",
        "Set a password below to be able to change the e-mail.",
    ),
    # sensitive changes (withdrawals, keys, tokens): the password again, asked by the page
    "reauth.title": ("Confirme com sua senha", "Confirm with your password"),
    "reauth.password": ("Sua senha atual", "Your current password"),
    "reauth.hint": (
        "Saques, chaves, tokens, o bot e o webhook pedem a senha de novo, mesmo com você já "
        "logado.",
        "Withdrawals, keys, tokens, the bot and the webhook ask for the password again, even "
        "when logged in.",
    ),
    "reauth.no_password": (
        "Sua conta ainda não tem senha (entrada pelo Discord): defina uma em Conta para sacar, "
        "trocar chaves, o bot ou o webhook, ou criar tokens.",
        "Your account has no password yet (Discord login): set one in Account to withdraw, "
        "change keys, the bot or the webhook, or create tokens.",
    ),
    # public pages
    "public.plans": ("Planos", "Plans"),
    "public.tutorials": ("Tutoriais", "Tutorials"),
    "public.terms": ("Termos de uso", "Terms of use"),
    "public.privacy": ("Privacidade", "Privacy"),
    "public.start": ("Começar grátis", "Start for free"),
    "public.updated": ("Atualizado em {date}", "Updated on {date}"),
    "store.purge": (
        "Substituir as publicações antigas deste produto (apaga as anteriores)",
        "Replace this product's older posts (deletes the earlier ones)",
    ),
})

# Keys the browser script needs; everything else is rendered on the server.
# -- subscriptions (issue 18) ----------------------------------------------------------------------
TEXT.update({
    "subs.title": ("Assinaturas", "Subscriptions"),
    "inst.sub_reminders": (
        "Lembretes de assinatura (dias antes)", "Subscription reminders (days before)"
    ),
    "inst.sub_reminders.hint": (
        "Ex.: 3, 1. Vazio: sem lembretes.", "E.g. 3, 1. Empty: no reminders."
    ),
    "inst.sub_card": ("Oferecer renovação automática por cartão", "Offer automatic card renewal"),
    "inst.member_events": (
        "Devolver cargos a quem volta ao servidor (ative o Server Members Intent do bot)",
        "Give roles back to members who rejoin (turn on the bot's Server Members Intent)",
    ),
    "store.period_days": ("Dias (assinatura)", "Days (subscription)"),
    "delivery.subscription": ("Assinatura (cargos por período)", "Subscription (roles per period)"),
    "subs.link": ("Assinaturas e assinantes", "Subscriptions and subscribers"),
    "subs.month": ("Mês", "Month"),
    "subs.active": ("Assinantes ativos", "Active subscribers"),
    "subs.mrr": ("Receita recorrente (MRR)", "Recurring revenue (MRR)"),
    "subs.new": ("Novas no mês", "New this month"),
    "subs.renewals": ("Renovações no mês", "Renewals this month"),
    "subs.churn": ("Cancelamentos no mês", "Churn this month"),
    "subs.chart.renewals": ("Novas e renovações por dia", "New and renewals per day"),
    "subs.chart.churn": ("Encerradas por dia", "Ended per day"),
    "subs.chart.empty": ("Nada neste mês.", "Nothing this month."),
    "subs.per_product": ("Por produto", "Per product"),
    "subs.product": ("Produto", "Product"),
    "subs.subscribers": ("Assinantes", "Subscribers"),
    "subs.buyer": ("Comprador", "Buyer"),
    "subs.ends_at": ("Válida até", "Valid until"),
    "subs.status": ("Situação", "Status"),
    "subs.status.active": ("Ativa", "Active"),
    "subs.status.ended": ("Encerrada", "Ended"),
    "subs.card": ("Renovação por cartão", "Card renewal"),
    "subs.extend": ("+7 dias", "+7 days"),
    "subs.extended": ("Assinatura estendida.", "Subscription extended."),
    "subs.end": ("Encerrar", "End"),
    "subs.end.confirm": ("Encerrar esta assinatura agora? O cargo será removido.",
                         "End this subscription now? The role will be removed."),
    "subs.ended": ("Assinatura encerrada.", "Subscription ended."),
    "subs.card_cancel": ("Parar cartão", "Stop card"),
    "subs.card_cancelled": ("Renovação automática cancelada.", "Automatic renewal cancelled."),
    "subs.none": ("Nenhum assinante ainda. Crie um produto do tipo assinatura na Loja.",
                  "No subscribers yet. Create a subscription product in the Store."),
})

CLIENT_PREFIXES = (
    "js.",
    "status.",
    "desired.",
    "store.report",
    "store.loading",
    "store.no_channels",
    "store.pick_guild",
    "store.channel",
    "store.available",
    "store.reserved",
    "store.sold",
    "inst.logs.",
    "picker.",
    "pix.",
    "acct.password_mismatch",
    "close",
    "confirm",
    "cancel",
)


def language_of(request: web.Request) -> str:
    wanted = request.cookies.get(LANGUAGE_COOKIE, "")
    return wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE


# The automation pages' text lives in its own module (API tokens, outgoing webhooks, card).
from astra.entrypoints.portal.texts_automation import TEXT as _AUTOMATION_TEXT  # noqa: E402

TEXT.update(_AUTOMATION_TEXT)


class Translator:
    """`t("key", **params)` in a template: the text in the page's language."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.index = 0 if self.language == DEFAULT_LANGUAGE else 1

    def __call__(self, key: str, **params: object) -> str:
        pair = TEXT.get(key)
        if pair is None:
            return key
        text = pair[self.index]
        return text.format(**params) if params else text


def client_strings(language: str) -> dict[str, str]:
    t = Translator(language)
    return {key: t(key) for key in TEXT if key.startswith(CLIENT_PREFIXES)}
