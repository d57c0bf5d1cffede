"""The default sales and coupon plugins' rules, called as plain functions on domain objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astra.domain.cart import Cart, CartLine, CartState
from astra.domain.catalog import Product, Variant
from astra.domain.coupon import Coupon, CouponKind
from astra.domain.hooks import CouponOutcome, SaleContext, Veto
from astra.domain.pricing import Quote
from astra.plugins import coupons, sales

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def ctx(*, buyer: dict | None = None, **settings: object) -> SaleContext:
    return SaleContext(
        instance_id="shop-1", buyer_id="u1", now=NOW, settings=dict(settings), buyer=buyer
    )


def line(product_id: str = "p1", quantity: int = 1, unit: int = 1000) -> CartLine:
    return CartLine(
        product_id=product_id,
        variant_id=f"{product_id}-v",
        product_name=product_id.upper(),
        variant_name="Std",
        delivery_kind="key",
        quantity=quantity,
        unit_price_cents=unit,
    )


def cart(*lines: CartLine) -> Cart:
    return Cart(
        id="c1",
        buyer_id="u1",
        state=CartState.OPEN,
        created_at=NOW.isoformat(),
        expires_at=(NOW + timedelta(minutes=15)).isoformat(),
        lines=list(lines),
    )


def coupon(**kw: object) -> Coupon:
    base: dict = {"id": "cp1", "code": "SAVE10", "kind": CouponKind.PERCENT, "value": 10}
    base.update(kw)
    return Coupon(**base).validate()


PRODUCT = Product(
    id="p1",
    name="Game",
    variants=[Variant(id="v1", name="Steam", price_cents=1000, max_per_order=3)],
)


# -- sales ----------------------------------------------------------------------------------------


def test_quantity_limit_allows_the_maximum_and_refuses_one_more() -> None:
    variant = PRODUCT.variants[0]
    assert sales.astra_cart_line_check(ctx(), PRODUCT, variant, 3) is None
    veto = sales.astra_cart_line_check(ctx(), PRODUCT, variant, 4)
    assert veto == Veto("quantity_limit", {"limit": 3, "item": "Game — Steam"})
    assert "3" in veto.text("en") and "Game — Steam" in veto.text("en")


def test_blocked_buyer_is_refused_in_the_cart_and_at_checkout() -> None:
    blocked = ctx(buyer={"id": "u1", "blocked": True})
    variant = PRODUCT.variants[0]
    assert sales.astra_cart_line_check(blocked, PRODUCT, variant, 1) == Veto("buyer_blocked")
    c = cart(line())
    assert sales.astra_checkout_check(blocked, c, Quote(1000)) == Veto("buyer_blocked")
    fine = ctx(buyer={"id": "u1", "blocked": False})
    assert sales.astra_cart_line_check(fine, PRODUCT, variant, 1) is None
    assert sales.astra_checkout_check(fine, c, Quote(1000)) is None


def test_minimum_order_boundary() -> None:
    c = cart(line())
    assert sales.astra_checkout_check(ctx(min_order_cents=1000), c, Quote(1000)) is None
    veto = sales.astra_checkout_check(ctx(min_order_cents=1000), c, Quote(999))
    assert veto == Veto("min_order", {"minimum": "R$ 10,00"})
    assert veto.text() == "O pedido mínimo é de R$ 10,00."
    assert sales.astra_checkout_check(ctx(), c, Quote(1)) is None  # no minimum set


# -- coupons --------------------------------------------------------------------------------------


def evaluate(cp: Coupon, c: Cart | None = None, at: datetime = NOW) -> CouponOutcome:
    context = SaleContext(instance_id="shop-1", buyer_id="u1", now=at)
    return coupons.astra_coupon_evaluate(context, c or cart(line(quantity=2)), cp)


def refused(outcome: CouponOutcome) -> str:
    assert outcome.veto is not None, outcome
    assert outcome.discount_cents == 0
    return outcome.veto.code


def test_valid_percent_coupon_discounts() -> None:
    assert evaluate(coupon()) == CouponOutcome(discount_cents=200)


def test_inactive_coupon() -> None:
    outcome = evaluate(coupon(active=False))
    assert refused(outcome) == "coupon_inactive"
    assert outcome.veto is not None and outcome.veto.params == {"code": "SAVE10"}
    assert "SAVE10" in outcome.veto.text("en")


def test_expiry_is_exclusive_of_the_instant() -> None:
    cp = coupon(expires_at=NOW.isoformat())
    assert refused(evaluate(cp, at=NOW)) == "coupon_expired"
    assert evaluate(cp, at=NOW - timedelta(microseconds=1)).discount_cents == 200


def test_max_uses() -> None:
    assert refused(evaluate(coupon(max_uses=5, uses=5))) == "coupon_exhausted"
    assert evaluate(coupon(max_uses=5, uses=4)).discount_cents == 200


def test_per_buyer_limit_counts_only_that_buyer() -> None:
    assert (
        refused(evaluate(coupon(per_buyer_limit=1, redemptions={"u1": 1}))) == "coupon_buyer_limit"
    )
    assert evaluate(coupon(per_buyer_limit=2, redemptions={"u1": 1})).discount_cents == 200
    assert evaluate(coupon(per_buyer_limit=1, redemptions={"u2": 1})).discount_cents == 200


def test_min_order_boundary() -> None:
    c = cart(line(quantity=2))  # 20,00
    assert evaluate(coupon(min_order_cents=2000), c).discount_cents == 200
    outcome = evaluate(coupon(min_order_cents=2001), c)
    assert refused(outcome) == "coupon_min_order"
    assert outcome.veto is not None and outcome.veto.params["minimum"] == "R$ 20,01"


def test_product_filter() -> None:
    c = cart(line("p1", 1, 1000), line("p2", 1, 3000))
    # only p2's 30,00 counts
    assert evaluate(coupon(product_ids=["p2"]), c).discount_cents == 300
    assert refused(evaluate(coupon(product_ids=["p9"]), c)) == "coupon_not_applicable"


@pytest.mark.parametrize(
    ("percent", "total", "expected"),
    [(10, 1005, 101), (10, 1004, 100), (15, 999, 150), (33, 1, 0), (50, 1, 1), (100, 999, 999)],
)
def test_percent_rounds_half_up(percent: int, total: int, expected: int) -> None:
    c = cart(line(quantity=1, unit=total))
    assert evaluate(coupon(value=percent), c).discount_cents == expected


def test_fixed_coupon_never_exceeds_what_it_applies_to() -> None:
    c = cart(line("p1", 1, 500), line("p2", 1, 800))
    assert evaluate(coupon(kind=CouponKind.FIXED, value=300), c).discount_cents == 300
    assert evaluate(coupon(kind=CouponKind.FIXED, value=5000), c).discount_cents == 1300
    assert (
        evaluate(coupon(kind=CouponKind.FIXED, value=5000, product_ids=["p2"]), c).discount_cents
        == 800
    )
