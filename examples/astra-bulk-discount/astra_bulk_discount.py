"""An Astra plugin: 10% off every cart line of 3 units or more."""

from __future__ import annotations

from astra.domain.cart import Cart
from astra.domain.hooks import SaleContext
from astra.domain.money import percent_of
from astra.domain.pricing import Adjustment
from astra.plugins import hookimpl

NAME = "bulk_discount"
DESCRIPTION = "10% off every cart line with 3 units or more."
DEFAULT_ENABLED = True

MIN_QUANTITY = 3
PERCENT = 10


@hookimpl
def astra_cart_adjustments(ctx: SaleContext, cart: Cart) -> list[Adjustment]:
    # One adjustment per line, so the buyer sees which item earned the discount.
    return [
        Adjustment(
            source=NAME,
            label=f"{PERCENT}% off from {MIN_QUANTITY} units",
            amount_cents=-percent_of(line.total_cents, PERCENT),  # rounded half up
        )
        for line in cart.lines
        if line.quantity >= MIN_QUANTITY
    ]
