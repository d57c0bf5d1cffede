"""Sellers' outgoing webhooks, end to end: a sale paid through the sandbox gateway puts events in
the instance's outbox; the sender loop posts them to a real HTTP receiver on 127.0.0.1 that
verifies each signature the way docs/webhooks.md tells sellers to, fails the first attempts and
sees the retries (same event id, growing waits); a restart mid-retry loses nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from dependency_injector import providers

from astra.adapters.clock import SystemClock
from astra.container import build_container
from astra.domain.errors import InvalidInput
from astra.domain.services.outgoing_webhooks import check_url
from astra.entrypoints.webhook_sender import GuardedResolver, RefusedAddress, WebhookSender
from astra.settings import Settings, ensure_dev_secrets
from tests.integration.sales_world import INSTANCE, Shop, make_shop
from tests.ports import free_port

BUYER = "222222222222222222"
OTHER_BUYER = "333333333333333333"


def verify(secret: str, headers: Any, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/webhooks.md shows it (independent of Astra's code)."""
    parts = dict(p.split("=", 1) for p in headers["X-Astra-Signature"].split(","))
    ts, v1 = parts["ts"], parts["v1"]
    manifest = (f"id:{headers['X-Astra-Event-Id']};request-id:{headers['X-Request-Id']};"
                f"ts:{ts};sha256:{hashlib.sha256(body).hexdigest()};")
    expected = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1) and abs(time.time() - int(ts)) <= tolerance


@dataclass
class Receiver:
    """A seller's endpoint: answers `fail_first` attempts with 500, then 200."""

    secret: str = ""
    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify(self.secret, request.headers, body)
        event = orjson.loads(body)
        self.received.append({"event": event, "valid": ok, "at": time.monotonic(),
                              "attempt": request.headers.get("X-Astra-Delivery-Attempt"),
                              "event_id": request.headers.get("X-Astra-Event-Id")})
        if not ok:
            return web.Response(status=401)
        if len(self.received) <= self.fail_first:
            return web.Response(status=500)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/astra", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hooks/astra"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(self.received) >= count, self.received


def shop_with_real_clock(data_dir: Path, **settings: Any) -> Shop:
    shop = make_shop(data_dir, keys=4, start=datetime.now(UTC),
                     webhook_retry_base_seconds=0.2, **settings)
    # Retries are scheduled on the wall clock the sender waits on.
    shop.container.clock.override(providers.Object(SystemClock()))
    return shop


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def run_sender(container: Any, scan_seconds: float = 0.1
                     ) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    sender = WebhookSender(container.outgoing_webhooks(), allow_private=True,
                           scan_seconds=scan_seconds)
    task = asyncio.create_task(sender.run(stop))
    return stop, task


async def sell(shop: Shop, buyer: str = BUYER, quantity: int = 1) -> tuple[str, str]:
    await asyncio.to_thread(shop.sales.add_item, INSTANCE, buyer, shop.product_id,
                            shop.variant_id, quantity)
    order, charge = await asyncio.to_thread(shop.payments.pay_cart, INSTANCE, buyer)
    assert charge is not None
    await asyncio.to_thread(shop.gateway.approve, charge.id)
    outcome = await asyncio.to_thread(shop.payments.handle_notification, charge.id)
    assert outcome.action == "paid", outcome
    return order.id, charge.id


def configure(shop: Shop, url: str, **kw: Any) -> str:
    _, secret = shop.outgoing_webhooks.configure(INSTANCE, url, actor="test", **kw)
    assert secret and secret.startswith("whsec_")
    return secret


async def test_paid_order_is_signed_retried_with_backoff_and_delivered_once(
    data_dir: Path, receiver: Receiver
) -> None:
    shop = shop_with_real_clock(data_dir)
    receiver.secret = configure(shop, receiver.url, events=["order.paid"])
    receiver.fail_first = 2
    stop, task = await run_sender(shop.container)
    try:
        order_id, charge_id = await sell(shop)
        await receiver.wait(3)
        # The same notification replayed (a webhook replayed to the platform) makes no new event.
        await asyncio.to_thread(shop.payments.handle_notification, charge_id)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await task
    got = receiver.received
    assert len(got) == 3 and all(r["valid"] for r in got)
    assert {r["event_id"] for r in got} == {got[0]["event"]["id"]}  # one event, three attempts
    assert [r["attempt"] for r in got] == ["1", "2", "3"]
    event = got[0]["event"]
    assert event["type"] == "order.paid" and event["instance_id"] == INSTANCE
    assert event["data"]["order"]["id"] == order_id
    assert event["data"]["order"]["total_cents"] == 1990
    text = orjson.dumps(event).decode()
    assert "key_ids" not in text and "KEY-0" not in text  # never the keys sold
    # Exponential backoff: never sooner than 0.2 s, then 0.4 s (a loaded machine may be later).
    first_wait = got[1]["at"] - got[0]["at"]
    second_wait = got[2]["at"] - got[1]["at"]
    assert 0.18 <= first_wait < 5 and 0.38 <= second_wait < 5, (first_wait, second_wait)
    log = shop.outgoing_webhooks.deliveries(INSTANCE)
    assert len(log) == 1
    row = log[0]
    assert row["status"] == "delivered" and row["attempts"] == 3
    assert [h["status_code"] for h in row["history"]] == [500, 500, 204]
    assert row["last_status_code"] == 204 and row["next_attempt_at"] is None


async def test_a_restart_mid_retry_loses_nothing(data_dir: Path, receiver: Receiver) -> None:
    shop = shop_with_real_clock(data_dir)
    receiver.secret = configure(shop, receiver.url)
    receiver.fail_first = 10**6  # down until we say so
    stop, task = await run_sender(shop.container)
    order_id, _ = await sell(shop)
    await receiver.wait(1)
    stop.set()
    await task  # the process stops with the event still pending
    pending = shop.outgoing_webhooks.deliveries(INSTANCE)
    assert {r["status"] for r in pending} == {"pending"}
    # At least one was tried and is waiting for its retry (the other may not have been tried).
    assert any(r["attempts"] >= 1 and r["next_attempt_at"] for r in pending), pending
    seen_before = {r["event_id"] for r in receiver.received}

    # A new process on the same data directory (new store, new container, new sender).
    settings = shop.container.settings()
    again = build_container(ensure_dev_secrets(Settings(
        data_dir=settings.data_dir, master_key=settings.master_key,
        webhook_retry_base_seconds=0.2)))
    receiver.fail_first = 0
    receiver.received.clear()
    stop, task = await run_sender(again)
    try:
        await receiver.wait(len(pending))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rows = again.outgoing_webhooks().deliveries(INSTANCE)
            if all(r["status"] == "delivered" for r in rows):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    rows = again.outgoing_webhooks().deliveries(INSTANCE)
    assert rows and all(r["status"] == "delivered" for r in rows), rows
    # Every event that was waiting arrives, under the id it had before the restart.
    resent = {r["event_id"] for r in receiver.received}
    assert resent == {r["id"] for r in pending} and seen_before <= resent
    assert all(r["valid"] for r in receiver.received)
    paid = [r for r in receiver.received if r["event"]["type"] == "order.paid"]
    assert paid and paid[0]["event"]["data"]["order"]["id"] == order_id


async def test_stock_low_is_sent_once_per_fall(data_dir: Path, receiver: Receiver) -> None:
    shop = shop_with_real_clock(data_dir)
    receiver.secret = configure(shop, receiver.url, events=["stock.low"], stock_low_threshold=2)
    await sell(shop)  # 3 left: above the threshold
    assert shop.outgoing_webhooks.deliveries(INSTANCE) == []
    await sell(shop, OTHER_BUYER)  # 2 left: low
    await sell(shop, "444444444444444444")  # 1 left: still low, no second event
    rows = shop.outgoing_webhooks.deliveries(INSTANCE)
    assert [r["type"] for r in rows] == ["stock.low"]
    stop, task = await run_sender(shop.container)
    try:
        await receiver.wait(1)
    finally:
        stop.set()
        await task
    data = receiver.received[0]["event"]["data"]
    assert data["variant_id"] == shop.variant_id and data["available"] == 2
    assert data["threshold"] == 2 and receiver.received[0]["valid"]


async def test_failed_events_stop_after_max_attempts_and_a_forged_secret_fails(
    data_dir: Path, receiver: Receiver
) -> None:
    shop = shop_with_real_clock(data_dir, webhook_max_attempts=2)
    configure(shop, receiver.url, events=["order.paid"])
    receiver.secret = "whsec_not-the-right-one"  # the receiver refuses every signature
    stop, task = await run_sender(shop.container)
    try:
        await sell(shop)
        await receiver.wait(2)
        await asyncio.sleep(0.8)
    finally:
        stop.set()
        await task
    assert len(receiver.received) == 2 and not any(r["valid"] for r in receiver.received)
    row = shop.outgoing_webhooks.deliveries(INSTANCE)[0]
    assert row["status"] == "failed" and row["attempts"] == 2 and row["last_status_code"] == 401
    # Redelivery puts it back in line (same id).
    again = shop.outgoing_webhooks.redeliver(INSTANCE, row["id"], actor="test")
    assert again["status"] == "pending" and again["id"] == row["id"]


def test_secret_is_stored_sealed(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=0)
    secret = configure(shop, "http://127.0.0.1:9/hook")
    raw = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert secret.encode() not in raw
    assert shop.outgoing_webhooks.endpoint(INSTANCE)["url"] == "http://127.0.0.1:9/hook"
    rotated = shop.outgoing_webhooks.rotate_secret(INSTANCE, actor="test")
    assert rotated != secret and rotated.encode() not in b"".join(
        p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


@pytest.mark.parametrize("url", [
    "http://example.com/hook",  # not https
    "https://127.0.0.1/hook", "https://[::1]/hook", "https://10.1.2.3/hook",
    "https://192.168.0.10/hook", "https://169.254.169.254/latest/meta-data",
    "https://[fe80::1]/hook", "https://localhost/hook", "https://metadata.internal/x",
    "https://127.1/hook", "https://0x7f000001/hook", "https://user:pw@example.com/hook",
    "https://[::ffff:10.0.0.1]/hook", "ftp://example.com/x", "https:///nohost",
])
def test_production_refuses_urls_that_reach_inside(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url, allow_private=False)


def test_production_accepts_public_https_and_dev_allows_loopback() -> None:
    assert check_url("https://hooks.example.com:8443/astra?x=1", allow_private=False)
    assert check_url("https://8.8.8.8/astra", allow_private=False)
    assert check_url("http://127.0.0.1:8080/hook", allow_private=True)


async def test_names_that_resolve_inside_are_refused_at_connect_time() -> None:
    resolver = GuardedResolver(allow_private=False)
    try:
        with pytest.raises(RefusedAddress):
            await resolver.resolve("localhost", 443)
    finally:
        await resolver.close()
    relaxed = GuardedResolver(allow_private=True)
    try:
        assert await relaxed.resolve("localhost", 443)
    finally:
        await relaxed.close()


async def test_an_event_lost_between_two_commits_is_queued_again_at_start(
    data_dir: Path, receiver: Receiver
) -> None:
    shop = shop_with_real_clock(data_dir)
    await sell(shop)  # before the endpoint existed: never an event
    receiver.secret = configure(shop, receiver.url, events=["order.paid"])
    order_id, _ = await sell(shop, OTHER_BUYER)
    [queued] = shop.outgoing_webhooks.deliveries(INSTANCE)
    # The process dies after the order's commit, before the event's: the event is not there.
    with shop.store.instance(INSTANCE) as uow:
        uow.webhook_events.delete(queued["id"])
        uow.commit()
    assert shop.outgoing_webhooks.deliveries(INSTANCE) == []
    stop, task = await run_sender(shop.container)  # a new sender catches up when it starts
    try:
        await receiver.wait(1)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await task
    assert [r["event_id"] for r in receiver.received] == [queued["id"]]
    assert receiver.received[0]["event"]["data"]["order"]["id"] == order_id
    assert shop.outgoing_webhooks.catch_up() == 0  # already there: not queued twice


def test_settled_events_are_pruned_after_their_time_and_pending_ones_never(
    store_backend: Any, data_dir: Path
) -> None:
    """The outbox does not grow with every sale for ever: delivered, failed and cancelled events
    go SETTLED_KEPT_DAYS after they settled; a pending one stays however old; an event
    redelivered in time is pending again and stays."""
    from datetime import timedelta

    from astra.domain.services.outgoing_webhooks import SETTLED_KEPT_DAYS, event_id_for

    shop = make_shop(data_dir, keys=0)
    hooks = shop.outgoing_webhooks
    configure(shop, "http://127.0.0.1:9/hook")
    ids = [f"ord-{n}" for n in range(4)]
    for order_id in ids:
        assert hooks.enqueue(INSTANCE, "order.paid", order_id, {"order": {"id": order_id}})
    delivered, failed, kept_pending, redelivered = (
        event_id_for(INSTANCE, "order.paid", i) for i in ids)
    hooks.record_attempt(INSTANCE, delivered, status_code=204, error=None, duration_ms=3)
    hooks.record_attempt(INSTANCE, redelivered, status_code=204, error=None, duration_ms=3)
    for _ in range(hooks.policy.max_attempts):
        hooks.record_attempt(INSTANCE, failed, status_code=500, error=None, duration_ms=3)
    statuses = {r["id"]: r["status"] for r in hooks.deliveries(INSTANCE)}
    assert statuses == {delivered: "delivered", failed: "failed", kept_pending: "pending",
                        redelivered: "delivered"}

    shop.clock.advance(timedelta(days=SETTLED_KEPT_DAYS - 1))
    assert hooks.prune_settled() == 0  # still within their time
    hooks.redeliver(INSTANCE, redelivered, actor="test")
    shop.clock.advance(timedelta(days=2))
    assert hooks.prune_settled() == 2
    assert {r["id"]: r["status"] for r in hooks.deliveries(INSTANCE)} == {
        kept_pending: "pending", redelivered: "pending"}
    assert hooks.prune_settled() == 0  # nothing left to prune; the pending ones stay

    # Removing the endpoint cancels what waits; cancelled events go in their turn.
    hooks.remove(INSTANCE, actor="test")
    shop.clock.advance(timedelta(days=SETTLED_KEPT_DAYS + 1))
    assert hooks.prune_settled() == 2
    assert hooks.deliveries(INSTANCE) == []


async def test_a_store_failing_under_one_instances_sends_does_not_spin_on_its_endpoint(
    data_dir: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording an attempt fails (the instance's store is stuck): the event stays due, and the
    sender rests that instance a scan instead of calling its endpoint again at once."""
    from astra.ports.store import StoreBusy

    shop = shop_with_real_clock(data_dir)
    receiver.secret = configure(shop, receiver.url, events=["order.paid"])
    service = shop.container.outgoing_webhooks()

    def stuck(*args: Any, **kwargs: Any) -> None:
        raise StoreBusy("instance lock not free")

    monkeypatch.setattr(service, "record_attempt", stuck)
    stop, task = await run_sender(shop.container, scan_seconds=5.0)
    try:
        await sell(shop)
        await receiver.wait(1)
        await asyncio.sleep(2.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)  # a resting instance does not hold the stop up
    # One attempt, then a rest of a scan: not one call after another.
    assert len(receiver.received) == 1, len(receiver.received)
    assert shop.outgoing_webhooks.deliveries(INSTANCE)[0]["status"] == "pending"


# IPv6 forms that carry an inside IPv4 address: the cloud metadata service, loopback, a
# private network (6to4, Teredo with a public server, NAT64, NAT64 local-use, mapped, compatible).
INSIDE_IN_IPV6 = [
    "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:5601:5601", "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::7f00:1", "::ffff:169.254.169.254", "::169.254.169.254", "2002:a00:1::1",
    "64:ff9b::10.0.0.1",
]


async def test_a_webhook_url_on_an_ipv6_form_of_an_inside_address_cannot_be_saved(
    tmp_path: Path,
) -> None:
    from astra.domain.services.outgoing_webhooks import WebhookPolicy
    from tests.integration.test_portal_api import PASSWORD, running_portal, shop

    async with running_portal(tmp_path) as portal:
        # The production policy (`ASTRA_MODE=production` sets it), on the real portal route.
        portal.container.outgoing_webhooks().policy = WebhookPolicy(allow_private=False)
        seller = await portal.seller("hooks@example.com")
        await shop(seller)
        path = "/api/instances/loja-teste/webhook"
        for address in INSIDE_IN_IPV6:
            status, body = await seller.put(path, json={"url": f"https://[{address}]/hook",
                                                        "password": PASSWORD})
            assert status == 422, (address, status, body)
            assert body["error"] == "webhook_url_refused", body
        status, body = await seller.put(path, json={"url": "https://[2002:808:808::1]/hook",
                                                    "password": PASSWORD})
        assert status == 200, body
        status, body = await seller.get(path)
        assert body["webhook"]["url"] == "https://[2002:808:808::1]/hook"


async def test_the_sender_refuses_ipv6_forms_of_inside_addresses(data_dir: Path) -> None:
    import socket

    resolver = GuardedResolver(allow_private=False)
    try:
        for address in INSIDE_IN_IPV6:
            with pytest.raises(RefusedAddress):
                await resolver.resolve(address, 443, socket.AF_INET6)
        assert await resolver.resolve("2002:808:808::1", 443, socket.AF_INET6)
    finally:
        await resolver.close()
    # A URL kept from before (saved under a laxer policy) is refused when sent, not connected.
    shop = shop_with_real_clock(data_dir)
    configure(shop, "https://[2002:a9fe:a9fe::1]/latest/meta-data")
    await sell(shop)
    stop = asyncio.Event()
    sender = WebhookSender(shop.outgoing_webhooks, allow_private=False, scan_seconds=0.1)
    task = asyncio.create_task(sender.run(stop))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = await asyncio.to_thread(shop.outgoing_webhooks.deliveries, INSTANCE)
            if rows and rows[0].get("attempts"):
                break
            await asyncio.sleep(0.05)
        assert rows and rows[0]["last_error"] == "address not allowed", rows
        assert rows[0]["last_status_code"] is None
    finally:
        stop.set()
        await task
        shop.store.close()
