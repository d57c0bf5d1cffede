"""The Mercado Pago adapter (real SDK) against the local fake, with the portal's real webhook
endpoint on 127.0.0.1 receiving the fake's signed notifications."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from astra.domain.errors import PaymentUnavailable
from astra.entrypoints.portal.app import create_portal_app
from astra.entrypoints.workers import Reconciler
from tests.fakes.mercadopago import FakeMercadoPagoThread
from tests.integration.sales_world import INSTANCE, OWNER, RecordingChat, Shop, make_shop
from tests.ports import free_port

BUYER = "111111111111111111"
SECRET = "whsec-test-1234567890"


@dataclass
class World:
    shop: Shop
    fake: FakeMercadoPagoThread
    portal_url: str

    async def wait_status(self, order_id: str, status: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            order = await asyncio.to_thread(self.shop.sales.get_order, INSTANCE, order_id)
            if order.status == status:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"order {order_id} never became {status} (is {order.status})")

    def ledger(self) -> list[dict]:
        return self.shop.wallet.ledger(OWNER)

    async def wait_ledger(self, check, timeout: float = 10.0) -> list[dict]:
        """The order commits first and its postings reach the wallet's ledger right after (the
        outbox is settled once the instance's transaction is done), so a test that has seen the
        order's new status waits a moment for the ledger to agree."""
        deadline = time.monotonic() + timeout
        while True:
            entries = await asyncio.to_thread(self.ledger)
            if check(entries) or time.monotonic() >= deadline:
                return entries
            await asyncio.sleep(0.05)


@pytest.fixture
async def world(data_dir: Path, store_backend) -> AsyncIterator[World]:
    # store_backend: every test here runs on both store adapters (make_shop follows it).
    fake = FakeMercadoPagoThread(webhook_secret=SECRET)
    base = fake.start()
    port = free_port()
    portal_url = f"http://127.0.0.1:{port}"
    shop = make_shop(
        data_dir, keys=5, start=datetime.now(UTC),
        mercadopago_access_token=fake.access_token, mercadopago_api_base=base,
        mercadopago_webhook_secret=SECRET, public_url=portal_url,
    )
    runner = web.AppRunner(create_portal_app(shop.container))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield World(shop, fake, portal_url)
    finally:
        await runner.cleanup()
        await asyncio.to_thread(fake.stop)


async def _pay(world: World, quantity: int = 1, buyer: str = BUYER):
    shop = world.shop
    await asyncio.to_thread(shop.sales.add_item, INSTANCE, buyer, shop.product_id,
                            shop.variant_id, quantity)
    return await asyncio.to_thread(shop.payments.pay_cart, INSTANCE, buyer)


async def test_pix_created_with_idempotency_key_expiry_and_notification_url(world: World) -> None:
    order, charge = await _pay(world)
    payment = world.fake.payment(charge.id)
    assert payment["payment_method_id"] == "pix" and payment["external_reference"] == order.id
    assert payment["metadata"]["instance_id"] == INSTANCE
    assert payment["notification_url"] == (
        f"{world.portal_url}/api/webhooks/mercadopago?source_news=webhooks")
    assert charge.qr_code.startswith("000201") and charge.qr_code_png_base64
    creates = [r for r in world.fake.requests if r.method == "POST" and r.path == "/v1/payments"]
    assert creates[0].idempotency_key == f"order-{INSTANCE}-{order.id}"
    # pressing "Pagar" again reuses the charge without calling the gateway
    _, again = await asyncio.to_thread(world.shop.payments.pay_cart, INSTANCE, BUYER)
    assert again.id == charge.id
    assert len([r for r in world.fake.requests if r.path == "/v1/payments"]) == 1


async def test_approval_webhook_pays_once_even_when_replayed(world: World) -> None:
    order, charge = await _pay(world)
    world.fake.webhook_mode.duplicate = 3
    world.fake.approve(charge.id)
    await world.wait_status(order.id, "paid")
    await asyncio.to_thread(world.fake.drain)
    url, headers, body = world.fake.build_webhook(charge.id)
    async with aiohttp.ClientSession() as http:
        for _ in range(10):
            async with http.post(url, headers=headers, data=body) as resp:
                assert resp.status == 200
                assert (await resp.json())["queued"] is True
    await asyncio.sleep(0.3)
    entries = await world.wait_ledger(lambda es: len(es) > 0)
    credits = [e for e in entries if e["kind"] == "sale_credit"]
    assert len(credits) == 1 and credits[0]["amount_cents"] == 1871
    with world.shop.store.instance(INSTANCE, write=False) as uow:
        assert uow.deliveries.count() == 1


async def test_forged_stale_or_malformed_webhooks_change_nothing(world: World) -> None:
    world.fake.webhook_mode.drop = 10  # the fake's own notifications are lost
    order, charge = await _pay(world)
    world.fake.approve(charge.id)  # paid at the gateway; only a genuine webhook may tell us
    await asyncio.to_thread(world.fake.drain)
    endpoint = f"{world.portal_url}/api/webhooks/mercadopago"
    url, headers, body = world.fake.build_webhook(charge.id, url=endpoint)
    forged = dict(headers, **{"x-signature": world.fake.sign(charge.id, "other-request")})
    wrong_secret = world.fake.build_webhook(charge.id, url=endpoint, secret="not-the-secret")
    stale = world.fake.build_webhook(charge.id, url=endpoint, ts=int(time.time()) - 3600)
    no_headers = {k: v for k, v in headers.items() if k.lower() not in ("x-signature",)}
    cases = [
        (url, forged, body, 401), (*wrong_secret, 401), (*stale, 401), (url, no_headers, body, 401),
        (url, dict(headers, **{"x-signature": "garbage"}), body, 401),
        (f"{endpoint}?data.id=&type=payment", headers, body, 401),
        (url, headers, b"{not json", 400),
        (url, headers, b"x" * 70_000, 413),
    ]
    async with aiohttp.ClientSession() as http:
        for target, hdrs, payload, status in cases:
            async with http.post(target, headers=hdrs, data=payload) as resp:
                assert resp.status == status, (target, hdrs)
                assert "error" in await resp.json()
    assert (await asyncio.to_thread(world.shop.sales.get_order, INSTANCE, order.id)).status \
        == "pending"
    assert world.ledger() == []


async def test_unsigned_legacy_ipn_is_refused_when_a_secret_is_set(world: World) -> None:
    """`?topic=payment&id=N` carries no signature: with MERCADOPAGO_WEBHOOK_SECRET set it would
    let anyone make the platform look up any payment, as often as they like."""
    world.fake.webhook_mode.drop = 10  # the fake's own notifications are lost
    order, charge = await _pay(world)
    world.fake.approve(charge.id)
    await asyncio.to_thread(world.fake.drain)
    await asyncio.sleep(0.3)
    endpoint = f"{world.portal_url}/api/webhooks/mercadopago"
    lookups = len([r for r in world.fake.requests if r.method == "GET"])
    async with aiohttp.ClientSession() as http:
        for query in (f"topic=payment&id={charge.id}", f"id={charge.id}&topic=payment",
                      "topic=payment&id=999999"):
            async with http.post(f"{endpoint}?{query}") as resp:
                assert resp.status == 401, query
                assert (await resp.json())["error"] == "invalid_signature"
    await asyncio.sleep(0.3)
    assert len([r for r in world.fake.requests if r.method == "GET"]) == lookups
    assert (await asyncio.to_thread(world.shop.sales.get_order, INSTANCE, order.id)).status \
        == "pending"
    # The same form signed with the secret is a notification like any other.
    signed = {"x-request-id": "req-legacy-1",
              "x-signature": world.fake.sign(charge.id, "req-legacy-1")}
    async with aiohttp.ClientSession() as http, http.post(
            f"{endpoint}?topic=payment&id={charge.id}", headers=signed) as resp:
        assert resp.status == 200
    await world.wait_status(order.id, "paid")


def _garbage(charge_id: str, order_id: str) -> list[bytes]:
    """Answers a broken proxy, a CDN page or a confused upstream could give for a payment."""
    other = {"kind": "order", "instance_id": INSTANCE, "order_id": order_id}
    return [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b'{"id": ' + charge_id.encode() + b', "status": "appro',
        b"[]",
        b"",
        b'{"status": "approved", "transaction_amount": 19.9}',
        b'{"id": ' + charge_id.encode() + b', "status": "approved", "transaction_amount": '
        b'"lots", "metadata": "nope", "refunds": 7}',
        # a well-formed approved payment, but not the one asked for
        json.dumps({"id": 42, "status": "approved", "transaction_amount": 19.9,
                    "external_reference": order_id, "metadata": other}).encode(),
    ]


async def test_garbage_from_the_gateway_changes_nothing(world: World) -> None:
    """Whatever Mercado Pago's side answers, a webhook or a reconcile pass never pays an order
    on it, never crashes, and the real answer still gets through afterwards."""
    world.fake.webhook_mode.drop = 10
    order, charge = await _pay(world)
    garbage = _garbage(charge.id, order.id)
    endpoint = f"{world.portal_url}/api/webhooks/mercadopago"
    url, headers, body = world.fake.build_webhook(charge.id, url=endpoint)
    async with aiohttp.ClientSession() as http:
        for answer in garbage:
            world.fake.garble_next(answer, content_type="text/html" if b"<html" in answer
                                   else "application/json")
            async with http.post(url, headers=headers, data=body) as resp:
                assert resp.status == 200
            await asyncio.sleep(0.15)
    reconciler = Reconciler(world.shop.container)
    for answer in garbage:
        world.fake.garble_next(answer)
        reconciler._next.clear()  # due now
        counts = await asyncio.to_thread(reconciler.pass_once)
        assert set(counts) <= {"gateway_errors", "noted"}, (answer, counts)
    now = await asyncio.to_thread(world.shop.sales.get_order, INSTANCE, order.id)
    assert now.status == "pending" and world.ledger() == []
    assert (await asyncio.to_thread(world.shop.catalog.stock_counts, INSTANCE))[
        world.shop.variant_id]["sold"] == 0
    # the real approval still pays it, once
    world.fake.webhook_mode.drop = 0
    world.fake.approve(charge.id)
    await world.wait_status(order.id, "paid")
    entries = await world.wait_ledger(lambda es: len(es) > 0)
    assert [e["kind"] for e in entries] == ["sale_credit"]


async def test_unknown_payment_and_other_topics_are_acknowledged(world: World) -> None:
    endpoint = f"{world.portal_url}/api/webhooks/mercadopago"
    url, headers, body = world.fake.build_webhook("999999", url=endpoint)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, headers=headers, data=body) as resp:
            assert resp.status == 200 and (await resp.json())["queued"] is True
        async with http.post(f"{endpoint}?id=123&topic=merchant_order") as resp:
            assert resp.status == 200 and (await resp.json())["ignored"] is True


async def test_lost_webhook_is_found_by_reconcile(world: World) -> None:
    world.fake.webhook_mode.drop = 5
    order, charge = await _pay(world)
    world.fake.approve(charge.id)
    await asyncio.to_thread(world.fake.drain)
    assert (await asyncio.to_thread(world.shop.sales.get_order, INSTANCE, order.id)).status \
        == "pending"
    counts = await asyncio.to_thread(Reconciler(world.shop.container).pass_once)
    assert counts == {"paid": 1}
    await world.wait_status(order.id, "paid", timeout=1)


def _gateway_reads(world: World, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in world.fake.requests[since:]]


async def test_reconcile_asks_once_per_pass_whatever_the_number_of_open_charges(
        world: World) -> None:
    """Lost webhooks are found by one search per pass (ranged and sorted by
    date_last_updated), not by one read per open charge; a charge the search misses is still
    read on its own, a few per pass."""
    shop = world.shop
    world.fake.webhook_mode.drop = 1000
    await asyncio.to_thread(shop.catalog.import_stock, INSTANCE, shop.product_id,
                            shop.variant_id, shop.keys(40, "MORE"), actor="test")
    charges = []
    for n in range(30):
        _, charge = await _pay(world, buyer=str(500_000_000_000_000_000 + n))
        charges.append(charge)
    reconciler = Reconciler(shop.container)
    seen = len(world.fake.requests)
    assert await asyncio.to_thread(reconciler.pass_once) == {}
    assert _gateway_reads(world, seen) == ["GET /v1/payments/search"]
    assert reconciler.open_pix and reconciler.last_pass_calls == 1
    search = world.fake.requests[seen].query
    assert search["sort"] == search["range"] == "date_last_updated"
    assert search["criteria"] == "asc" and search["end_date"] == "NOW"

    for charge in charges[:3]:
        world.fake.approve(charge.id)
    world.fake.unindexed.add(int(charges[3].id))
    world.fake.approve(charges[3].id)  # approved, but not in the search results yet
    seen = len(world.fake.requests)
    assert await asyncio.to_thread(reconciler.pass_once) == {"paid": 3}
    assert _gateway_reads(world, seen) == ["GET /v1/payments/search"]
    for charge in charges[:3]:
        assert (await asyncio.to_thread(shop.sales.get_order, INSTANCE,
                                        charge.external_reference)).status == "paid"
    # a quiet pass: the overlapping window shows the same changes again, nothing is re-applied
    assert await asyncio.to_thread(reconciler.pass_once) == {}

    # The missed one: its own read comes when due (forced to now here). Charges the search
    # has just shown are not read again.
    reconciler._next = {k: (0.0, n) for k, (_, n) in reconciler._next.items()}
    seen = len(world.fake.requests)
    assert await asyncio.to_thread(reconciler.pass_once) == {"paid": 1}
    assert _gateway_reads(world, seen) == ["GET /v1/payments/search",
                                           f"GET /v1/payments/{charges[3].id}"]
    assert (await asyncio.to_thread(shop.sales.get_order, INSTANCE,
                                    charges[3].external_reference)).status == "paid"


async def test_cancelled_cart_cancels_the_pix_and_a_payment_that_crosses_it_is_served(
        world: World) -> None:
    order, charge = await _pay(world)
    await asyncio.to_thread(world.shop.sales.cancel_cart, INSTANCE, BUYER)
    assert world.fake.payment(charge.id)["status"] == "cancelled"
    # A transfer that crossed the cancellation: the gateway says approved after all.
    world.fake.set_status(charge.id, "approved")
    await world.wait_status(order.id, "paid")
    paid = await asyncio.to_thread(world.shop.sales.get_order, INSTANCE, order.id)
    assert len(paid.lines[0].key_ids) == 1


async def test_refund_and_chargeback_after_delivery(world: World) -> None:
    orders = []
    for buyer in (BUYER, "222222222222222222"):
        order, charge = await _pay(world, buyer=buyer)
        world.fake.approve(charge.id)
        await world.wait_status(order.id, "paid")
        await world.shop.delivery.deliver(INSTANCE, order.id, {"chat": RecordingChat()})
        orders.append((order, charge))
    world.fake.refund(orders[0][1].id)
    world.fake.chargeback(orders[1][1].id)
    await world.wait_status(orders[0][0].id, "refunded")
    await world.wait_status(orders[1][0].id, "refunded")
    entries = await world.wait_ledger(lambda es: len(es) == 4)
    assert sum(e["amount_cents"] for e in entries) == 0
    with world.shop.store.instance(INSTANCE, write=False) as uow:
        actions = [a["action"] for a in uow.audit.all()]
        sold = uow.stock.count(state="sold")
    assert "order.refund" in actions and "order.chargeback" in actions
    assert sold == 2  # the buyers saw their keys: they stay sold


async def test_gateway_down_tells_the_buyer_to_retry_and_keeps_one_charge(world: World) -> None:
    shop = world.shop
    await asyncio.to_thread(shop.sales.add_item, INSTANCE, BUYER, shop.product_id,
                            shop.variant_id, 1)
    world.fake.fail_next(10, status=503)
    with pytest.raises(PaymentUnavailable) as err:
        await asyncio.to_thread(shop.payments.pay_cart, INSTANCE, BUYER)
    assert "Tente novamente" in err.value.message()
    order = (await asyncio.to_thread(shop.sales.list_orders, INSTANCE))[0]
    assert order.status == "pending" and order.charge_id is None
    world.fake.fail_next(0)
    world.fake._fail.clear()
    again, charge = await asyncio.to_thread(shop.payments.pay_cart, INSTANCE, BUYER)
    assert again.id == order.id and charge.status == "pending"
    creates = [r for r in world.fake.requests if r.method == "POST" and r.path == "/v1/payments"]
    assert {r.idempotency_key for r in creates} == {f"order-{INSTANCE}-{order.id}"}
    assert len({p["id"] for p in world.fake.payments.values()}) == 1
    # paid while the gateway fails our reads: the webhook is accepted and retried until it works
    world.fake.webhook_mode.drop = 10
    world.fake.approve(charge.id)
    world.fake.fail_next(2, status=500)
    url, headers, body = world.fake.build_webhook(charge.id)
    async with aiohttp.ClientSession() as http, http.post(url, headers=headers,
                                                           data=body) as resp:
        assert resp.status == 200
    await world.wait_status(order.id, "paid", timeout=15)


async def test_lost_create_answer_is_retried_into_the_same_charge(world: World) -> None:
    shop = world.shop
    await asyncio.to_thread(shop.sales.add_item, INSTANCE, BUYER, shop.product_id,
                            shop.variant_id, 1)
    world.fake.fail_next(1, status=500, after_processing=True)  # created, answer lost
    with pytest.raises(PaymentUnavailable):
        await asyncio.to_thread(shop.payments.pay_cart, INSTANCE, BUYER)
    assert len(world.fake.payments) == 1
    _, charge = await asyncio.to_thread(shop.payments.pay_cart, INSTANCE, BUYER)
    assert len(world.fake.payments) == 1 and charge.id == str(next(iter(world.fake.payments)))
    bodies = [r.body for r in world.fake.requests if r.method == "POST"
              and r.path == "/v1/payments"]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the retry sent the very same body


async def test_partial_refunds_are_told_with_their_amount_and_take_back_a_share_of_the_days(
    world: World,
) -> None:
    """A 30-day subscription bought by PIX, then refunded a quarter, another quarter (each
    webhook replayed), then the rest, through the Mercado Pago fake: each step is an
    `order.refunded` of its own with what it gave back (the seller's outbox), and the
    subscription loses the same share of its days each time."""
    from datetime import timedelta

    shop = world.shop
    product = await asyncio.to_thread(shop.catalog.create_product, INSTANCE, {
        "name": "VIP", "delivery_kind": "subscription", "content": "900000000000000001",
        "variants": [{"name": "30 dias", "price_cents": 4000, "period_days": 30}]},
        actor="test")
    await asyncio.to_thread(lambda: shop.outgoing_webhooks.configure(
        INSTANCE, "http://127.0.0.1:9/hook", events=["order.refunded"], actor="test"))
    await asyncio.to_thread(shop.sales.add_item, INSTANCE, BUYER, product.id,
                            product.variants[0].id, 1)
    order, charge = await asyncio.to_thread(shop.payments.pay_cart, INSTANCE, BUYER)
    world.fake.approve(charge.id)
    await world.wait_status(order.id, "paid")
    await asyncio.to_thread(shop.subscriptions.activate, INSTANCE, order.id)
    sub_id = f"sub_{product.id}_{BUYER}"
    end = (await asyncio.to_thread(shop.subscriptions.get, INSTANCE, sub_id)).end()

    async def refunded(cents: int) -> None:
        for _ in range(3):  # the news arrives more than once: counted once
            await asyncio.to_thread(shop.payments.handle_notification, charge.id)
        deadline = time.monotonic() + 10
        while (await asyncio.to_thread(shop.sales.get_order, INSTANCE, order.id)
               ).refunded_cents != cents:
            assert time.monotonic() < deadline, "the partial refund was not seen"
            await asyncio.sleep(0.05)

    world.fake.refund(charge.id, "10.00")
    await refunded(1000)
    sub = await asyncio.to_thread(shop.subscriptions.get, INSTANCE, sub_id)
    assert abs(sub.end() - (end - timedelta(days=7.5))) < timedelta(seconds=5)
    world.fake.refund(charge.id, "10.00")
    await refunded(2000)
    sub = await asyncio.to_thread(shop.subscriptions.get, INSTANCE, sub_id)
    assert abs(sub.end() - (end - timedelta(days=15))) < timedelta(seconds=5)
    assert sub.live(shop.clock.now())
    world.fake.refund(charge.id)  # the rest
    await world.wait_status(order.id, "refunded")
    sub = await asyncio.to_thread(shop.subscriptions.get, INSTANCE, sub_id)
    assert sub.end() <= shop.clock.now() + timedelta(seconds=5)
    with shop.store.instance(INSTANCE, write=False) as uow:
        events = [(e["data"]["kind"], e["data"]["amount_cents"])
                  for e in uow.webhook_events.all() if e["type"] == "order.refunded"]
        audit = [a for a in uow.audit.all() if a["action"] == "subscription.taken_back"]
    assert events == [("partial", 1000), ("partial", 1000), ("refund", 2000)]
    assert len(audit) == 3
