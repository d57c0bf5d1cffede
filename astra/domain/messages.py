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
        "pt-BR": "Cupom {code} não existe.",
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
    "insufficient_balance": {
        "pt-BR": "Saldo insuficiente: disponível {balance}.",
        "en": "Insufficient balance: {balance} available.",
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
    "payment_unavailable": {
        "pt-BR": "Não foi possível gerar o PIX agora. Tente novamente em alguns instantes.",
        "en": "The PIX charge could not be created right now. Please try again in a moment.",
    },
    "plugin_failed": {
        "pt-BR": "Um complemento da loja falhou. Tente novamente.",
        "en": "A store add-on failed. Please try again.",
    },
}


def render(code: str, language: str = DEFAULT_LANGUAGE, /, **params: object) -> str:
    table = MESSAGES.get(code)
    if table is None:
        return code
    template = table.get(language) or table[DEFAULT_LANGUAGE]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
