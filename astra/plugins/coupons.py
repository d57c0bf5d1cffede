"""The default coupon rules (astra.domain.coupon): activity, expiry, use limits, minimum order,
product filter; percent or fixed discounts."""

from __future__ import annotations

from astra.domain.cart import Cart
from astra.domain.coupon import Coupon, check_coupon, coupon_discount
from astra.domain.errors import CouponRejected
from astra.domain.hooks import CouponOutcome, SaleContext, Veto
from astra.plugins import hookimpl

NAME = "coupons"
DESCRIPTION = "Coupons: percent or fixed discounts with expiry, use limits and minimum order."
DEFAULT_ENABLED = True


@hookimpl
def astra_coupon_evaluate(ctx: SaleContext, cart: Cart, coupon: Coupon) -> CouponOutcome:
    lines = [(line.product_id, line.total_cents) for line in cart.lines]
    try:
        check_coupon(coupon, buyer_id=ctx.buyer_id or cart.buyer_id, lines=lines, now=ctx.now)
    except CouponRejected as err:
        return CouponOutcome(veto=Veto(err.code, dict(err.params)))
    return CouponOutcome(discount_cents=coupon_discount(coupon, lines))
