"""Carts that sit idle (issue 15): any buyer action extends the idle limit, the hard limit
still holds, the buyer is warned once a minute before, and the events staff hears about."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from astra.domain.errors import OutOfStock
from astra.domain.events import DomainEvent
from tests.integration.sales_world import INSTANCE, key_states, make_shop

BUYER = "333333333333333333"


def _events(shop) -> list[DomainEvent]:
    seen: list[DomainEvent] = []
    shop.container.publisher().subscribe(lambda _instance, event: seen.append(event))
    return seen


def test_any_buyer_action_extends_an_idle_cart(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.instances.update_settings(
        INSTANCE, {"cart_idle_seconds": 300, "cart_ttl_seconds": 3600}, actor="test"
    )
    events = _events(shop)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1, username="b")
    assert [e.name for e in events] == ["cart.opened"]
    shop.coupons.create(INSTANCE, {"code": "DEZ", "kind": "percent", "value": 10}, actor="t")
    for step in range(4):  # every 4 minutes an action: never idle for 5
        shop.clock.advance(timedelta(minutes=4))
        if step % 2:
            shop.sales.apply_coupon(INSTANCE, BUYER, "DEZ")
        else:
            shop.sales.set_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 2)
        assert shop.sales.expire_due(INSTANCE) == []
    assert shop.sales.get_cart(INSTANCE, BUYER) is not None
    # Now quiet: warned once within the last minute, then expired.
    shop.clock.advance(timedelta(minutes=3, seconds=59))
    assert shop.sales.warn_expiring(INSTANCE) == []
    shop.clock.advance(timedelta(seconds=2))
    warned = shop.sales.warn_expiring(INSTANCE)
    assert len(warned) == 1 and shop.sales.warn_expiring(INSTANCE) == []
    assert [e.name for e in events].count("cart.expiring") == 1
    shop.clock.advance(timedelta(minutes=1))
    assert shop.sales.expire_due(INSTANCE) == warned
    assert key_states(shop) == {"available": 3}
    assert "cart.expired" in [e.name for e in events]


def test_the_hard_limit_holds_whatever_the_buyer_does(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.instances.update_settings(INSTANCE, {"cart_idle_seconds": 300}, actor="test")
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1, username="b")
    for _ in range(3):
        shop.clock.advance(timedelta(minutes=4))
        shop.sales.set_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    shop.clock.advance(timedelta(minutes=3))  # 15 min since it opened: the cart TTL
    assert len(shop.sales.expire_due(INSTANCE)) == 1


def test_without_an_idle_limit_only_the_hard_limit_applies(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    view = shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    assert view.cart.idle_until is None
    shop.clock.advance(timedelta(minutes=13, seconds=30))
    assert shop.sales.warn_expiring(INSTANCE) == []
    shop.clock.advance(timedelta(seconds=40))
    assert shop.sales.warn_expiring(INSTANCE) == [view.cart.id]


def test_out_of_stock_is_published_even_though_the_buyer_is_refused(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=1)
    events = _events(shop)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    # The last key was just reserved: staff hears the variant ran dry.
    assert [e.data["available"] for e in events if e.name == "stock.out"] == [0]
    try:
        shop.sales.add_item(INSTANCE, "444444444444444444", shop.product_id, shop.variant_id, 1)
    except OutOfStock:
        pass
    else:
        raise AssertionError("a second buyer got a key that is not there")
    refused = [e.data for e in events if e.name == "stock.out"][-1]
    assert refused["wanted"] == 1 and refused["buyer_id"] == "444444444444444444"
