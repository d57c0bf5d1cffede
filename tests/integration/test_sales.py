"""Carts, checkout, payment, refunds and waiting stock on the real store (each test on both
adapters: the JSON store and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from astra.domain.errors import (
    CouponRejected,
    DomainError,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    NotFoundError,
    OutOfStock,
)
from tests.integration.sales_world import (
    INSTANCE,
    OWNER,
    RecordingChat,
    check_key_invariants,
    key_states,
    make_shop,
    stored_bytes,
)

pytestmark = pytest.mark.usefixtures("store_backend")

BUYER = "111111111111111111"
BUYER2 = "222222222222222222"


def test_full_purchase_credits_once_and_delivers(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=5)
    view = shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 2)
    assert view.quote.total_cents == 3980
    assert key_states(shop) == {"reserved": 2, "available": 3}
    order = shop.sales.checkout(INSTANCE, BUYER)
    assert order.status == "pending" and order.total_cents == 3980
    assert shop.sales.checkout(INSTANCE, BUYER).id == order.id  # a double click: same order
    paid = shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=3980, payment_id="mp-1")
    assert paid.status == "paid" and paid.fee_cents == 239 and paid.net_cents == 3741
    assert shop.wallet.balance(OWNER) == 3741
    assert key_states(shop) == {"sold": 2, "available": 3}
    chat = RecordingChat()
    delivered = asyncio.run(shop.delivery.deliver(INSTANCE, order.id, {"chat": chat}))
    assert delivered.status == "delivered"
    assert len(chat.dms) == 1 and chat.dms[0][0] == BUYER
    assert "KEY-00000" in chat.dms[0][1] and "KEY-00001" in chat.dms[0][1]
    assert shop.sales.get_order(INSTANCE, order.id).status == "delivered"
    with shop.store.instance(INSTANCE, write=False) as uow:
        buyer = uow.buyers.require(BUYER)
        actions = [a["action"] for a in uow.audit.all()]
    assert buyer["orders_count"] == 1 and buyer["total_spent_cents"] == 3980
    assert {"order.created", "order.paid", "delivery.delivered", "stock.imported"} <= set(actions)
    check_key_invariants(shop)


def test_keys_are_stored_encrypted(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    for where, raw in stored_bytes(shop).items():
        assert b"KEY-0000" not in raw, where


def test_confirm_payment_replayed_and_concurrent_credits_once(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    for _ in range(10):
        shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id="p1")
    threads = [
        threading.Thread(
            target=shop.settlement.confirm_payment,
            args=(INSTANCE, order.id),
            kwargs={"amount_cents": 1990, "payment_id": "p1"},
        )
        for _ in range(10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with shop.store.portal(write=False) as uow:
        credits = uow.ledger.find(user_id=OWNER)
    assert len(credits) == 1 and credits[0]["amount_cents"] == 1871
    with shop.store.instance(INSTANCE, write=False) as uow:
        assert uow.deliveries.count() == 1
        assert uow.postings.count() == 1
        assert uow.buyers.require(BUYER)["orders_count"] == 1
    assert key_states(shop) == {"sold": 1, "available": 2}


def test_underpayment_does_not_settle(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=2)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    after = shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1000, payment_id="p1")
    assert after.status == "pending" and shop.wallet.balance(OWNER) == 0


def test_expiry_and_cancel_release_stock(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 3)
    with pytest.raises(OutOfStock) as err:
        shop.sales.add_item(INSTANCE, BUYER2, shop.product_id, shop.variant_id, 1)
    assert "Sem estoque" in err.value.message()
    shop.clock.advance(timedelta(minutes=15))
    # the next buyer finds the expired cart's keys free again
    shop.sales.add_item(INSTANCE, BUYER2, shop.product_id, shop.variant_id, 1)
    assert key_states(shop) == {"reserved": 1, "available": 2}
    shop.sales.cancel_cart(INSTANCE, BUYER2)
    assert key_states(shop) == {"available": 3}
    with pytest.raises(InvalidTransition):
        shop.sales.checkout(INSTANCE, BUYER2)
    check_key_invariants(shop)


def test_worker_expiry_ends_pending_order_and_returns_coupon_use(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.coupons.create(
        INSTANCE, {"code": "once", "kind": "fixed", "value": 500, "max_uses": 1}, actor="test"
    )
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    shop.sales.apply_coupon(INSTANCE, BUYER, "ONCE")
    order = shop.sales.checkout(INSTANCE, BUYER)
    assert order.total_cents == 1490
    assert shop.coupons.list(INSTANCE)[0].uses == 1
    shop.clock.advance(timedelta(minutes=16))
    assert len(shop.sales.expire_due(INSTANCE)) == 1
    assert shop.sales.get_order(INSTANCE, order.id).status == "expired"
    assert shop.coupons.list(INSTANCE)[0].uses == 0
    assert key_states(shop) == {"available": 3}


def test_payment_after_expiry_with_stock_left_sells(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=2)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    shop.clock.advance(timedelta(minutes=20))
    shop.sales.expire_due(INSTANCE)
    paid = shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id="late")
    assert paid.status == "paid" and len(paid.lines[0].key_ids) == 1
    assert key_states(shop) == {"sold": 1, "available": 1}
    check_key_invariants(shop)


def test_payment_after_expiry_without_stock_waits_and_is_served_first(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=1)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    shop.clock.advance(timedelta(minutes=20))
    # the key goes to someone else after the expiry
    shop.sales.add_item(INSTANCE, BUYER2, shop.product_id, shop.variant_id, 1)
    other = shop.sales.checkout(INSTANCE, BUYER2)
    shop.settlement.confirm_payment(INSTANCE, other.id, amount_cents=1990, payment_id="p2")
    late = shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id="p1")
    assert late.status == "waiting_stock"
    assert shop.wallet.balance(OWNER) == 2 * 1871  # the buyer paid: the seller is credited
    assert shop.delivery.due(INSTANCE) == [other.id]
    report = shop.catalog.import_stock(
        INSTANCE, shop.product_id, shop.variant_id, "NEW-1\nNEW-2", actor="test"
    )
    assert report.added == 2
    served = shop.sales.get_order(INSTANCE, order.id)
    assert served.status == "paid" and len(served.lines[0].key_ids) == 1
    assert sorted(shop.delivery.due(INSTANCE)) == sorted([other.id, order.id])
    assert key_states(shop) == {"sold": 2, "available": 1}
    check_key_invariants(shop)


def test_refund_reverses_credit_and_keeps_keys_sold(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=2)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id="p1")
    asyncio.run(shop.delivery.deliver(INSTANCE, order.id, {"chat": RecordingChat()}))
    refunded = shop.settlement.refund(INSTANCE, order.id, kind="chargeback", reason="MP dispute")
    assert refunded.status == "refunded"
    shop.settlement.refund(INSTANCE, order.id, kind="chargeback")  # replay: nothing more
    assert shop.wallet.balance(OWNER) == 0
    kinds = sorted(e["kind"] for e in shop.wallet.ledger(OWNER))
    assert kinds == ["sale_credit", "sale_reversal"]
    assert key_states(shop) == {"sold": 1, "available": 1}
    with pytest.raises(InvalidTransition):
        pending_shop_order = shop.sales.add_item(
            INSTANCE, BUYER2, shop.product_id, shop.variant_id, 1
        )
        pending = shop.sales.checkout(INSTANCE, BUYER2)
        assert pending_shop_order
        shop.settlement.refund(INSTANCE, pending.id)


def test_refund_of_waiting_order_returns_its_keys(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=1)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    shop.clock.advance(timedelta(minutes=20))
    shop.sales.add_item(INSTANCE, BUYER2, shop.product_id, shop.variant_id, 1)
    shop.settlement.confirm_payment(
        INSTANCE, shop.sales.checkout(INSTANCE, BUYER2).id, amount_cents=1990, payment_id="p2"
    )
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id="p1")
    shop.settlement.refund(INSTANCE, order.id, reason="buyer gave up")
    shop.catalog.import_stock(INSTANCE, shop.product_id, shop.variant_id, "NEW-1", actor="t")
    assert shop.sales.get_order(INSTANCE, order.id).status == "refunded"
    assert key_states(shop) == {"sold": 1, "available": 1}
    check_key_invariants(shop)


def test_limits_blocked_buyers_and_minimum_order(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=10)
    with pytest.raises(LimitExceeded) as err:
        shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 6)
    assert "no máximo 5" in err.value.message()
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 5)
    with pytest.raises(LimitExceeded):
        shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    shop.sales.cancel_cart(INSTANCE, BUYER)
    with shop.store.instance(INSTANCE) as uow:
        buyer = uow.buyers.require(BUYER)
        buyer["blocked"] = True
        uow.buyers.put(buyer)
        uow.commit()
    with pytest.raises(DomainError) as err:
        shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    assert err.value.code == "buyer_blocked"
    shop.instances.update_settings(INSTANCE, {"min_order_cents": 5000}, actor="test")
    shop.sales.add_item(INSTANCE, BUYER2, shop.product_id, shop.variant_id, 2)
    with pytest.raises(DomainError) as err:
        shop.sales.checkout(INSTANCE, BUYER2)
    assert err.value.code == "min_order" and "R$ 50,00" in err.value.message()
    assert key_states(shop)["reserved"] == 2


def test_disabled_coupons_plugin_makes_codes_unusable(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.coupons.create(INSTANCE, {"code": "promo", "kind": "percent", "value": 10}, actor="test")
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    view = shop.sales.apply_coupon(INSTANCE, BUYER, "Promo")  # case-insensitive
    assert view.quote.total_cents == 1791
    shop.plugins.set_global("coupons", False, actor="admin:test")
    view = shop.sales.get_cart(INSTANCE, BUYER)
    assert view.quote.total_cents == 1990 and "não estão disponíveis" in view.coupon_problem
    with pytest.raises(CouponRejected) as err:
        shop.sales.checkout(INSTANCE, BUYER)
    assert err.value.code == "coupons_unavailable"
    shop.sales.remove_coupon(INSTANCE, BUYER)
    assert shop.sales.checkout(INSTANCE, BUYER).total_cents == 1990


def test_free_order_is_settled_at_checkout(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=2)
    shop.coupons.create(
        INSTANCE, {"code": "free100", "kind": "percent", "value": 100}, actor="test"
    )
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    shop.sales.apply_coupon(INSTANCE, BUYER, "free100")
    order = shop.sales.checkout(INSTANCE, BUYER)
    assert order.status == "paid" and order.total_cents == 0
    assert shop.wallet.balance(OWNER) == 0
    assert shop.delivery.due(INSTANCE) == [order.id]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            lambda s: s.catalog.create_product(
                INSTANCE, {"name": "X", "variants": [{"name": "a", "price_cents": -1}]}, actor="t"
            ),
            InvalidInput,
        ),
        (
            lambda s: s.catalog.create_product(INSTANCE, {"name": "X", "variants": []}, actor="t"),
            InvalidInput,
        ),
        (
            lambda s: s.catalog.create_product(
                INSTANCE, {"name": "X", "variants": [{"name": "a", "price_cents": 10.5}]}, actor="t"
            ),
            InvalidInput,
        ),
        (lambda s: s.sales.add_item(INSTANCE, BUYER, s.product_id, s.variant_id, 0), InvalidInput),
        (lambda s: s.sales.add_item(INSTANCE, BUYER, s.product_id, s.variant_id, -3), InvalidInput),
        (lambda s: s.sales.add_item(INSTANCE, BUYER, s.product_id, "var_nope", 1), NotFoundError),
        (
            lambda s: s.sales.add_item(INSTANCE, "not-a-snowflake", s.product_id, s.variant_id, 1),
            InvalidInput,
        ),
        (
            lambda s: s.catalog.import_stock(
                INSTANCE, s.product_id, s.variant_id, b"K" * (10 * 1024 * 1024), actor="t"
            ),
            InvalidInput,
        ),
        (
            lambda s: s.catalog.import_stock(
                INSTANCE, s.product_id, s.variant_id, b"\xff\xfe\x00bad", actor="t"
            ),
            InvalidInput,
        ),
        (
            lambda s: s.catalog.import_stock(INSTANCE, s.product_id, "var_nope", b"K1", actor="t"),
            NotFoundError,
        ),
        (
            lambda s: s.coupons.create(
                INSTANCE, {"code": "x", "kind": "percent", "value": 10}, actor="t"
            ),
            InvalidInput,
        ),
        (
            lambda s: s.coupons.create(
                INSTANCE, {"code": "BIG", "kind": "percent", "value": 101}, actor="t"
            ),
            InvalidInput,
        ),
        (lambda s: s.wallet.request_withdrawal(OWNER, 5000, "not a pix key"), InvalidInput),
        (lambda s: s.wallet.request_withdrawal(OWNER, 999, "test@example.com"), InvalidInput),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(data_dir: Path, call, error) -> None:
    shop = make_shop(data_dir, keys=3)
    before = stored_bytes(shop)
    with pytest.raises(error) as err:
        call(shop)
    assert err.value.message() and err.value.message("en")
    assert stored_bytes(shop) == before


def test_stock_import_dedupes_and_reports(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=0)
    text = "A1\n\nB2\nA1\n" + "x" * 600 + "\nbad\x07key\nC3\r\n"
    report = shop.catalog.import_stock(
        INSTANCE, shop.product_id, shop.variant_id, text, actor="seller"
    )
    assert (
        report.added,
        report.duplicate_in_file,
        report.blank,
        report.too_long,
        report.invalid,
    ) == (3, 1, 1, 1, 1)
    assert report.skipped_lines == [4, 5, 6]
    again = shop.catalog.import_stock(
        INSTANCE, shop.product_id, shop.other_variant_id, "A1\nD4", actor="seller"
    )
    assert (again.added, again.already_in_stock) == (1, 1)
    counts = shop.catalog.stock_counts(INSTANCE)
    assert counts[shop.variant_id]["available"] == 3
    assert counts[shop.other_variant_id]["available"] == 1


def test_delivery_retries_with_backoff_then_fails(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=2)

    class Broken(RecordingChat):
        async def send_dm(self, user_id, message):
            from astra.ports.chat import ChatError

            raise ChatError("discord 503")

    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id="p1")
    waits = []
    for _ in range(6):
        delivery = asyncio.run(shop.delivery.deliver(INSTANCE, order.id, {"chat": Broken()}))
        if delivery.next_attempt_at:
            from astra.domain.timestamps import parse_iso

            waits.append(parse_iso(delivery.next_attempt_at) - shop.clock.now())
            assert shop.delivery.due(INSTANCE) == []
            shop.clock.advance(waits[-1])
    assert waits == [
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=12),
    ]
    assert delivery.status == "failed" and len(delivery.attempts) == 6
    shop.delivery.redeliver(INSTANCE, order.id, actor="admin:ops")
    shop.instances.update_settings(
        INSTANCE, {"staff_channel_id": "900000000000000001"}, actor="test"
    )
    chat = RecordingChat(dms_closed=True)
    done = asyncio.run(shop.delivery.deliver(INSTANCE, order.id, {"chat": chat}))
    assert done.status == "delivered" and done.channel == "staff"
    assert chat.channel_messages[0][0] == "900000000000000001"
    assert "KEY-00000" in chat.channel_messages[0][1]


def test_housekeeping_expires_carts_of_every_instance(data_dir: Path) -> None:
    from astra.entrypoints.workers import housekeeping_pass

    shop = make_shop(data_dir, keys=2)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 2)
    idle = {"expired_carts": 0, "postings": 0, "warned_carts": 0}
    assert housekeeping_pass(shop.container) == idle
    shop.clock.advance(timedelta(minutes=15))
    assert housekeeping_pass(shop.container) == {**idle, "expired_carts": 1}
    assert key_states(shop) == {"available": 2}
    with shop.store.instance(INSTANCE, write=False) as uow:
        actions = [a["action"] for a in uow.audit.all()]
    assert actions.count("cart.keys_reserved") == 1 and "cart.expired" in actions
