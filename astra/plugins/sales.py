"""The default sales rules: per-order quantity limits, blocked buyers, minimum order value."""

from __future__ import annotations

from astra.domain.cart import Cart
from astra.domain.catalog import Product, Variant
from astra.domain.hooks import SaleContext, Veto
from astra.domain.money import format_brl
from astra.domain.pricing import Quote
from astra.plugins import hookimpl

NAME = "sales"
DESCRIPTION = "Sales rules: quantity per order, blocked buyers, minimum order value."
DEFAULT_ENABLED = True


def _blocked(ctx: SaleContext) -> Veto | None:
    if ctx.buyer and ctx.buyer.get("blocked"):
        return Veto("buyer_blocked")
    return None


@hookimpl
def astra_cart_line_check(
    ctx: SaleContext, product: Product, variant: Variant, quantity: int
) -> Veto | None:
    blocked = _blocked(ctx)
    if blocked is not None:
        return blocked
    if quantity > variant.max_per_order:
        return Veto(
            "quantity_limit",
            {"limit": variant.max_per_order, "item": f"{product.name} — {variant.name}"},
        )
    return None


@hookimpl
def astra_checkout_check(ctx: SaleContext, cart: Cart, quote: Quote) -> Veto | None:
    # Checked again at checkout: a buyer may be blocked while the cart is open.
    blocked = _blocked(ctx)
    if blocked is not None:
        return blocked
    minimum = ctx.settings.get("min_order_cents", 0)
    # A setting that is not a whole number of cents is ignored rather than blocking every sale.
    if (
        isinstance(minimum, int)
        and not isinstance(minimum, bool)
        and quote.subtotal_cents < minimum
    ):
        return Veto("min_order", {"minimum": format_brl(minimum)})
    return None
