"""What the buyer, the seller and the operator read: pt-BR by default, English available.

Domain errors carry a code and parameters; entrypoints render them in the instance's language.
"""

from __future__ import annotations

DEFAULT_LANGUAGE = "pt-BR"
LANGUAGES = ("pt-BR", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "invalid_amount": {
        "pt-BR": "Valor inválido: {value}. Use, por exemplo, 19,90.",
        "en": "Invalid amount: {value}. Use, for example, 19.90.",
    },
    "invalid_field": {
        "pt-BR": "Campo inválido: {field}.",
        "en": "Invalid field: {field}.",
    },
    "unknown_placeholder": {
        "pt-BR": "Marcador desconhecido em {field}: {unknown}. Marcadores válidos: {known}.",
        "en": "Unknown placeholder in {field}: {unknown}. Valid placeholders: {known}.",
    },
    "manual_confirmation_off": {
        "pt-BR": "A confirmação manual de pagamento está desativada nesta loja.",
        "en": "Manual payment confirmation is turned off in this store.",
    },
    "staff_only": {
        "pt-BR": "Só a equipe da loja (cargo configurado) pode fazer isso.",
        "en": "Only the store's staff (the configured role) can do this.",
    },
    "interaction_unverified": {
        "pt-BR": "Não foi possível confirmar quem fez isso com o Discord. Tente de novo.",
        "en": "Discord could not confirm who did this. Please try again.",
    },
    "rebind_on_portal": {
        "pt-BR": "Esta loja já está vinculada a outro servidor. Para mudar, use o portal.",
        "en": "This store is already bound to another server. Change it on the portal.",
    },
    "not_found": {
        "pt-BR": "{what} não encontrado.",
        "en": "{what} not found.",
    },
    "product_inactive": {
        "pt-BR": "Este produto não está à venda no momento.",
        "en": "This product is not for sale right now.",
    },
    "out_of_stock": {
        "pt-BR": "Sem estoque de {item}. Tente novamente mais tarde.",
        "en": "{item} is out of stock. Please try again later.",
    },
    "quantity_limit": {
        "pt-BR": "Você pode comprar no máximo {limit} unidade(s) de {item} por pedido.",
        "en": "You can buy at most {limit} unit(s) of {item} per order.",
    },
    "invalid_quantity": {
        "pt-BR": "Quantidade inválida. Informe um número inteiro de 1 a {limit}.",
        "en": "Invalid quantity. Enter a whole number from 1 to {limit}.",
    },
    "buyer_blocked": {
        "pt-BR": "Sua conta está bloqueada nesta loja. Fale com a equipe.",
        "en": "Your account is blocked in this store. Please contact the staff.",
    },
    "min_order": {
        "pt-BR": "O pedido mínimo é de {minimum}.",
        "en": "The minimum order is {minimum}.",
    },
    "cart_empty": {
        "pt-BR": "Seu carrinho está vazio.",
        "en": "Your cart is empty.",
    },
    "cart_closed": {
        "pt-BR": "Este carrinho já foi encerrado. Abra um novo pelo produto.",
        "en": "This cart is closed. Open a new one from the product.",
    },
    "cart_expired": {
        "pt-BR": "Seu carrinho expirou e as chaves reservadas foram liberadas.",
        "en": "Your cart expired and the reserved keys were released.",
    },
    "coupon_unknown": {
        "pt-BR": "O cupom {code} não existe.",
        "en": "Coupon {code} does not exist.",
    },
    "coupon_inactive": {
        "pt-BR": "O cupom {code} está desativado.",
        "en": "Coupon {code} is disabled.",
    },
    "coupon_expired": {
        "pt-BR": "O cupom {code} expirou.",
        "en": "Coupon {code} has expired.",
    },
    "coupon_exhausted": {
        "pt-BR": "O cupom {code} atingiu o limite de usos.",
        "en": "Coupon {code} has reached its usage limit.",
    },
    "coupon_buyer_limit": {
        "pt-BR": "Você já usou o cupom {code} o máximo de vezes permitido.",
        "en": "You have already used coupon {code} as many times as allowed.",
    },
    "coupon_min_order": {
        "pt-BR": "O cupom {code} exige pedido mínimo de {minimum}.",
        "en": "Coupon {code} requires a minimum order of {minimum}.",
    },
    "coupon_not_applicable": {
        "pt-BR": "O cupom {code} não vale para os produtos do carrinho.",
        "en": "Coupon {code} does not apply to the products in your cart.",
    },
    "coupons_unavailable": {
        "pt-BR": "Cupons não estão disponíveis nesta loja.",
        "en": "Coupons are not available in this store.",
    },
    "checkout_vetoed": {
        "pt-BR": "{reason}",
        "en": "{reason}",
    },
    "invalid_transition": {
        "pt-BR": "Operação não permitida: {what} está {state}.",
        "en": "Not allowed: {what} is {state}.",
    },
    "trial_used": {
        "pt-BR": "O teste grátis já foi usado nesta conta.",
        "en": "The free trial has already been used on this account.",
    },
    "insufficient_balance": {
        "pt-BR": "Saldo insuficiente: disponível {balance}.",
        "en": "Insufficient balance: {balance} available.",
    },
    "negative_balance": {
        "pt-BR": (
            "O saldo do vendedor está negativo ({balance}) por estornos depois do pedido de "
            "saque: não pague este saque; recuse-o ou espere o saldo cobrir o valor."
        ),
        "en": (
            "The seller's balance is negative ({balance}) after chargebacks that followed the "
            "request: do not pay this withdrawal; reject it or wait until the balance covers it."
        ),
    },
    "instance_limit": {
        "pt-BR": (
            "Seu plano permite até {limit} instância(s). Exclua uma instância para criar outra."
        ),
        "en": "Your plan allows up to {limit} instance(s). Delete one to create another.",
    },
    "api_token_limit": {
        "pt-BR": "Você já tem {limit} tokens de API ativos. Revogue um para criar outro.",
        "en": "You already have {limit} active API tokens. Revoke one to create another.",
    },
    "webhook_url_refused": {
        "pt-BR": "URL de webhook recusada: {reason}.",
        "en": "Webhook URL refused: {reason}.",
    },
    "bot_token_in_use": {
        "pt-BR": "Este bot já está ligado a outra instância.",
        "en": "This bot is already linked to another instance.",
    },
    "min_withdrawal": {
        "pt-BR": "O saque mínimo é de {minimum}.",
        "en": "The minimum withdrawal is {minimum}.",
    },
    "invalid_pix_key": {
        "pt-BR": "Chave PIX inválida. Use CPF, CNPJ, e-mail, telefone (+55...) ou chave aleatória.",
        "en": "Invalid PIX key. Use a CPF, CNPJ, e-mail, phone (+55...) or random key.",
    },
    "stock_file_too_large": {
        "pt-BR": "Arquivo de estoque grande demais (máximo {limit}).",
        "en": "Stock file too large (maximum {limit}).",
    },
    "stock_file_encoding": {
        "pt-BR": (
            "O arquivo de estoque precisa estar em UTF-8 (texto simples, uma chave por linha)."
        ),
        "en": "The stock file must be UTF-8 plain text, one key per line.",
    },
    "stock_not_applicable": {
        "pt-BR": "Este produto é entregue como {kind}; estoque de chaves não se aplica.",
        "en": "This product is delivered as {kind}; key stock does not apply.",
    },
    "stock_import_failed": {
        "pt-BR": "A importação de estoque parou ({reason}); as chaves já adicionadas ficaram.",
        "en": "The stock import stopped ({reason}); keys already added were kept.",
    },
    "payment_unavailable": {
        "pt-BR": "Não foi possível gerar o PIX agora. Tente novamente em alguns instantes.",
        "en": "The PIX charge could not be created right now. Please try again in a moment.",
    },
    "plugin_failed": {
        "pt-BR": "Um complemento da loja falhou. Tente novamente.",
        "en": "A store add-on failed. Please try again.",
    },
    "invalid_email": {
        "pt-BR": "E-mail inválido. Confira o endereço e tente de novo.",
        "en": "Invalid e-mail address. Check it and try again.",
    },
    "email_taken": {
        "pt-BR": "Já existe uma conta com este e-mail. Entre com sua senha ou pelo Discord.",
        "en": "An account with this e-mail already exists. Log in with your password or Discord.",
    },
    "password_length": {
        "pt-BR": "A senha precisa ter de {minimum} a {maximum} caracteres.",
        "en": "The password must have {minimum} to {maximum} characters.",
    },
    "password_too_simple": {
        "pt-BR": "Senha fraca demais: não use um só caractere repetido.",
        "en": "Password too weak: do not repeat a single character.",
    },
    "invalid_name": {
        "pt-BR": "Informe um nome de 1 a {maximum} caracteres.",
        "en": "Enter a name of 1 to {maximum} characters.",
    },
    "invalid_credentials": {
        "pt-BR": "E-mail ou senha incorretos.",
        "en": "Wrong e-mail or password.",
    },
    "account_locked": {
        "pt-BR": (
            "Muitas tentativas erradas. Por segurança, o acesso a esta conta está bloqueado "
            "por {minutes} min."
        ),
        "en": "Too many failed attempts. For safety, this account is locked for {minutes} min.",
    },
    "too_many_attempts": {
        "pt-BR": "Muitas tentativas a partir desta conexão. Tente de novo em {minutes} min.",
        "en": "Too many attempts from this connection. Try again in {minutes} min.",
    },
    "account_blocked": {
        "pt-BR": "Esta conta está bloqueada. Fale com o suporte.",
        "en": "This account is blocked. Please contact support.",
    },
    "wrong_current_password": {
        "pt-BR": "A senha atual não confere.",
        "en": "The current password is wrong.",
    },
    "discord_linked_elsewhere": {
        "pt-BR": "Esta conta do Discord já está vinculada a outro usuário do Astra.",
        "en": "This Discord account is already linked to another Astra user.",
    },
    "discord_email_conflict": {
        "pt-BR": (
            "O e-mail desta conta do Discord pertence a um usuário vinculado a outro Discord. "
            "Entre com e-mail e senha."
        ),
        "en": (
            "This Discord account's e-mail belongs to a user linked to another Discord "
            "account. Log in with e-mail and password."
        ),
    },
    "discord_email_unverified": {
        "pt-BR": (
            "Sua conta do Discord não tem e-mail verificado. Verifique-o no Discord, ou crie "
            "uma conta com e-mail e senha e vincule o Discord depois."
        ),
        "en": (
            "Your Discord account has no verified e-mail. Verify it on Discord, or sign up "
            "with e-mail and password and link Discord afterwards."
        ),
    },
    "invalid_discord_profile": {
        "pt-BR": "O Discord devolveu um perfil inválido. Tente novamente.",
        "en": "Discord returned an invalid profile. Please try again.",
    },
    "discord_oauth_disabled": {
        "pt-BR": "O login pelo Discord não está configurado nesta plataforma.",
        "en": "Discord login is not configured on this platform.",
    },
    "oauth_state_mismatch": {
        "pt-BR": (
            "A autorização do Discord expirou ou não veio deste navegador. "
            "Comece de novo pelo botão \"Entrar com Discord\"."
        ),
        "en": (
            "The Discord authorization expired or did not come from this browser. "
            "Start again from the \"Log in with Discord\" button."
        ),
    },
    "oauth_denied": {
        "pt-BR": "A autorização no Discord foi cancelada.",
        "en": "The Discord authorization was cancelled.",
    },
    "oauth_code_invalid": {
        "pt-BR": "O código do Discord expirou ou já foi usado. Comece de novo.",
        "en": "The Discord code expired or was already used. Start again.",
    },
    "discord_unavailable": {
        "pt-BR": "Não foi possível falar com o Discord agora. Tente novamente em instantes.",
        "en": "Could not reach Discord right now. Please try again in a moment.",
    },
    "cross_site_form": {
        "pt-BR": "Formulário enviado por outro site: recusado. Use a página de login do Astra.",
        "en": "Form sent from another site: refused. Use Astra's login page.",
    },
    "unsupported_body": {
        "pt-BR": "Envie JSON (application/json) ou um formulário.",
        "en": "Send JSON (application/json) or a form.",
    },
    "malformed_json": {
        "pt-BR": "JSON inválido no corpo da requisição.",
        "en": "Malformed JSON in the request body.",
    },
    # -- editing a store and an account in the pages (issue 15, item 2) ------------------------
    "password_needed": {
        "pt-BR": "Confirme com sua senha atual para mudar o e-mail ou o nome.",
        "en": "Confirm with your current password to change your e-mail or name.",
    },
    "password_needed_sensitive": {
        "pt-BR": "Confirme com sua senha atual (campo password) para fazer esta alteração.",
        "en": "Confirm with your current password (field password) to make this change.",
    },
    "password_first_sensitive": {
        "pt-BR": (
            "Esta conta ainda não tem senha: defina uma senha em Conta antes de sacar, trocar "
            "chaves, o token do bot ou o webhook, ou gerenciar tokens."
        ),
        "en": (
            "This account has no password yet: set one in Account before withdrawing, "
            "rotating keys, changing the bot token or the webhook, or managing tokens."
        ),
    },
    "wrong_password": {
        "pt-BR": "A senha não confere.",
        "en": "The password is wrong.",
    },
    "session_required": {
        "pt-BR": (
            "Esta ação não aceita tokens de API: faça login no portal e confirme com sua senha."
        ),
        "en": "This action does not accept API tokens: log in to the portal and confirm with "
        "your password.",
    },
    "password_first": {
        "pt-BR": "Esta conta ainda não tem senha: defina uma senha antes de mudar o e-mail.",
        "en": "This account has no password yet: set one before changing the e-mail.",
    },
    "keys_not_removable": {
        "pt-BR": "Só chaves disponíveis podem ser removidas ({count} reservada(s) ou vendida(s) "
                 "ficaram).",
        "en": "Only available keys can be removed ({count} reserved or sold were kept).",
    },
    "coupon_used": {
        "pt-BR": "O cupom {code} já foi usado em pedidos: desative-o em vez de excluir.",
        "en": "Coupon {code} was already used in orders: disable it instead of deleting it.",
    },
}

# -- subscriptions (issue 18) ----------------------------------------------------------------------
MESSAGES.update({
    "renewal_cart_busy": {
        "pt-BR": "Você tem um carrinho aberto com outros itens. Finalize ou cancele-o antes de "
                 "renovar.",
        "en": "You have an open cart with other items. Finish or cancel it before renewing.",
    },
    "not_a_subscription": {
        "pt-BR": "Este produto não é uma assinatura.",
        "en": "This product is not a subscription.",
    },
    "card_renewal_unavailable": {
        "pt-BR": "A renovação automática por cartão não está disponível nesta loja.",
        "en": "Automatic card renewal is not available in this shop.",
    },
})


def render(code: str, language: str = DEFAULT_LANGUAGE, /, **params: object) -> str:
    table = MESSAGES.get(code)
    if table is None:
        return code
    template = table.get(language) or table[DEFAULT_LANGUAGE]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
