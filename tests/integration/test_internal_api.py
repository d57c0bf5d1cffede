"""The internal API as a compromised tenant sees it.

`evil` controls one seller's bot: it holds that instance's runtime credential and can send
anything at all to the platform's internal API (other instances' ids, forged fields, replayed
idempotency keys, floods, oversized and malformed bodies). The victim is another seller whose
bot uses the real HTTP adapter at the same time. After every attack nothing of the victim's
changed (its whole instance domain and its wallet), the attacker got no money, and the victim's
calls were answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from astra.adapters.instance_api.http import HttpInstanceAPI
from astra.domain.errors import DomainError, NotFoundError
from astra.domain.wallet import EntryKind, Posting
from astra.entrypoints.internal.app import create_internal_app
from astra.ports.instance_api import InstanceAPIUnavailable
from astra.ports.store import INSTANCE_COLLECTIONS
from tests.e2e.bot_world import free_port
from tests.integration.sales_world import INSTANCE, OWNER, Shop, make_shop

VICTIM = INSTANCE
EVIL = "loja-do-mal"
EVIL_OWNER = "usr_evil"
BUYER = "111111111111111111"
EVIL_BUYER = "222222222222222222"


@dataclass
class World:
    shop: Shop
    base: str
    victim: HttpInstanceAPI
    evil_credential: str
    victim_credential: str
    evil_product: str
    evil_variant: str
    victim_order: str
    victim_cart: str

    def snapshot(self) -> dict[str, Any]:
        """Everything of the victim's: its instance domain and its owner's wallet."""
        with self.shop.store.instance(VICTIM, write=False) as uow:
            data = {name: getattr(uow, name).all() for name in INSTANCE_COLLECTIONS}
        data["ledger"] = self.shop.wallet.ledger(OWNER)
        data["balance"] = self.shop.wallet.balance(OWNER)
        return data


@pytest.fixture
async def world(data_dir: Path) -> AsyncIterator[World]:
    shop = make_shop(data_dir, keys=5)
    instances = shop.instances
    instances.create(EVIL, owner_id=EVIL_OWNER, name="Loja do Mal", actor="test")
    product = shop.catalog.create_product(
        EVIL, {"name": "Isca", "variants": [{"name": "X", "price_cents": 500}]}, actor="test"
    )
    shop.catalog.import_stock(EVIL, product.id, product.variants[0].id, "EVIL-1", actor="test")
    # The victim has a paid order and an open cart.
    shop.sales.add_item(VICTIM, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(VICTIM, BUYER)
    shop.settlement.confirm_payment(VICTIM, order.id, amount_cents=1990, payment_id="p-1")
    shop.sales.add_item(VICTIM, "333333333333333333", shop.product_id, shop.variant_id, 1)
    cart = shop.sales.get_cart(VICTIM, "333333333333333333").cart
    runner = web.AppRunner(create_internal_app(shop.container))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    victim = HttpInstanceAPI(base, VICTIM, instances.runtime_credential(VICTIM))
    try:
        yield World(
            shop,
            base,
            victim,
            instances.runtime_credential(EVIL),
            instances.runtime_credential(VICTIM),
            product.id,
            product.variants[0].id,
            order.id,
            cart.id,
        )
    finally:
        await victim.close()
        await runner.cleanup()
        shop.store.close()


class Evil:
    """What a compromised runtime does: raw HTTP with its own credential."""

    def __init__(self, world: World, session: aiohttp.ClientSession) -> None:
        self.world = world
        self.http = session
        self.auth = {"Authorization": f"Bearer {world.evil_credential}"}

    async def send(
        self, method: str, path: str, *, instance: str = EVIL, body: Any = None,
        raw: bytes | None = None, headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = f"{self.world.base}/internal/instances/{instance}{path}"
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        async with self.http.request(
            method, url, data=data, headers={**self.auth, **(headers or {})}
        ) as resp:
            text = await resp.read()
            try:
                return resp.status, orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                return resp.status, text


@pytest.fixture
async def evil(world: World) -> AsyncIterator[Evil]:
    async with aiohttp.ClientSession() as session:
        yield Evil(world, session)


async def test_another_instances_routes_are_closed_to_a_runtime_credential(
    world: World, evil: Evil
) -> None:
    before = world.snapshot()
    attempts = [
        ("GET", "/settings", None),
        ("GET", f"/buyers/{BUYER}/cart", None),
        ("GET", f"/orders/{world.victim_order}", None),
        ("POST", f"/orders/{world.victim_order}/check", {}),
        ("POST", f"/buyers/{BUYER}/cart/pay", {}),
        ("DELETE", "/buyers/333333333333333333/cart", None),
        ("POST", "/heartbeat", {"ready_at": 1.0, "latency_ms": 1, "guilds": 1,
                                "bot_user": None, "pid": 1, "error": "invalid_token"}),
        ("PATCH", "/settings", {"changes": {"language": "en"}, "actor_user": "99999"}),
        ("POST", f"/variants/{world.shop.variant_id}/keys",
         {"interaction_token": "x" * 40, "limit": 100, "actor_user": "99999"}),
    ]
    for method, path, body in attempts:
        status, answer = await evil.send(method, path, instance=VICTIM, body=body)
        assert status == 401, (method, path, status, answer)
        assert "KEY-" not in orjson.dumps(answer).decode()
    # Neither the seller's instance key nor a made-up credential opens anything either.
    key = world.shop.instances.rotate_instance_key(EVIL, actor="test")
    for token in (key, "rt_" + "0" * 40, world.evil_credential + "x", ""):
        async with evil.http.get(
            f"{world.base}/internal/instances/{EVIL}/settings",
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 401
    world.evil_credential = world.shop.instances.runtime_credential(EVIL)  # rotated with the key
    evil.auth = {"Authorization": f"Bearer {world.evil_credential}"}
    assert world.snapshot() == before
    assert world.shop.container.heartbeats()(VICTIM) is None  # no forged heartbeat


async def test_the_victims_ids_on_its_own_routes_find_nothing(world: World, evil: Evil) -> None:
    before = world.snapshot()
    shop = world.shop
    for method, path, body in [
        ("GET", f"/orders/{world.victim_order}", None),
        ("POST", f"/orders/{world.victim_order}/check", {}),
        ("GET", f"/carts/{world.victim_cart}", None),
        ("PUT", f"/carts/{world.victim_cart}/channel",
         {"channel_id": "123456789012", "message_id": "123456789013"}),
        ("POST", f"/carts/{world.victim_cart}/channel/closed", {}),
        ("GET", f"/products/{shop.product_id}", None),
        ("PATCH", f"/products/{shop.product_id}",
         {"changes": {"name": "roubado"}, "actor_user": "99999"}),
        ("DELETE", f"/products/{shop.product_id}", {"actor_user": "99999"}),
        ("PUT", f"/products/{shop.product_id}/posts", {"posts": []}),
        ("POST", f"/buyers/{EVIL_BUYER}/cart/items",
         {"product_id": shop.product_id, "variant_id": shop.variant_id, "quantity": 1,
          "username": "x"}),
        ("POST", f"/products/{shop.product_id}/variants/{shop.variant_id}/stock",
         {"data": "INJECTED-KEY", "actor_user": "99999"}),
    ]:
        status, answer = await evil.send(method, path, body=body)
        assert status == 404, (method, path, status, answer)
        assert world.victim_order not in orjson.dumps(answer).decode() or "not_found" in str(
            answer
        )
    # Asking for the victim's keys by variant id reveals nothing: no operation answers with
    # keys at all (the platform shows a seller's keys in Discord itself), and this instance
    # has none of that variant anyway.
    status, answer = await evil.send(
        "POST", f"/variants/{shop.variant_id}/keys",
        body={"interaction_token": "x" * 40, "limit": 100, "actor_user": "99999"},
    )
    assert status == 422 and "KEY-" not in orjson.dumps(answer).decode()
    assert world.snapshot() == before


async def test_money_comes_only_from_the_platforms_records(world: World, evil: Evil) -> None:
    """No call can name an amount, an owner or a kind of money; a posting that got into an
    instance's data some other way (the old tenant-writable directory) is checked against the
    order and rejected, so no withdrawal can take it out."""
    before = world.snapshot()
    shop = world.shop
    status, _ = await evil.send(
        "POST", f"/buyers/{EVIL_BUYER}/cart/items",
        body={"product_id": world.evil_product, "variant_id": world.evil_variant,
              "quantity": 1, "username": "x", "amount_cents": 1, "owner_id": OWNER},
    )
    assert status == 422  # unknown fields are refused, not ignored
    forged = [
        Posting(id=f"sale:{EVIL}:fake", owner_id=EVIL_OWNER, kind=EntryKind.SALE_CREDIT,
                amount_cents=100_000_000, order_id="fake", created_at="2026-11-29T12:00:00Z"),
        Posting(id=f"sale:{EVIL}:x2", owner_id=OWNER, kind=EntryKind.SALE_REVERSAL,
                amount_cents=-50_000, order_id="x2", created_at="2026-11-29T12:00:00Z"),
    ]
    shop.sales.add_item(EVIL, EVIL_BUYER, world.evil_product, world.evil_variant, 1)
    pending = shop.sales.checkout(EVIL, EVIL_BUYER)  # unpaid: no credit may come of it
    # The right id and amount, for an order that was never paid.
    forged.append(Posting(id=f"sale:{EVIL}:{pending.id}", owner_id=EVIL_OWNER,
                          kind=EntryKind.SALE_CREDIT, amount_cents=470,
                          order_id=pending.id, created_at="2026-11-29T12:00:00Z"))
    with shop.store.instance(EVIL) as uow:
        for posting in forged:
            uow.postings.add(posting.to_doc())
        uow.commit()
    assert shop.wallet.settle_postings(EVIL) == 0
    assert shop.wallet.balance(EVIL_OWNER) == 0
    with pytest.raises(DomainError):
        shop.wallet.request_withdrawal(EVIL_OWNER, 1_000_000, "evil@example.com")
    with shop.store.instance(EVIL, write=False) as uow:
        assert {p["status"] for p in uow.postings.all()} == {"rejected"}
        assert len([a for a in uow.audit.all() if a["action"] == "wallet.posting_rejected"]) == 3
    # A real sale of the attacker's credits exactly its net, once.
    shop.settlement.confirm_payment(EVIL, pending.id, amount_cents=500, payment_id="p-evil")
    assert shop.wallet.balance(EVIL_OWNER) == 470
    assert world.snapshot() == before


async def test_fields_are_checked_like_the_public_api(world: World, evil: Evil) -> None:
    before = world.snapshot()
    cases: list[tuple[str, str, Any, bytes | None, int]] = [
        ("POST", f"/buyers/{EVIL_BUYER}/cart/items", {"product_id": "../../portal",
         "variant_id": "x", "quantity": 1, "username": "x"}, None, 422),
        ("POST", f"/buyers/{EVIL_BUYER}/cart/items", {"product_id": world.evil_product,
         "variant_id": world.evil_variant, "quantity": 10**9, "username": "x"}, None, 422),
        ("POST", f"/buyers/{EVIL_BUYER}/cart/items", {"product_id": world.evil_product,
         "variant_id": world.evil_variant, "quantity": True, "username": "x"}, None, 422),
        ("POST", "/buyers/not-a-snowflake/cart/pay", {}, None, 422),
        ("PATCH", "/settings", {"changes": {"language": "en"}, "actor_user": "admin"}, None, 422),
        ("PATCH", "/settings", {"changes": {"owner_id": OWNER}, "actor_user": "12345"}, None,
         422),
        ("POST", f"/buyers/{EVIL_BUYER}/cart/coupon", None, b"{not json", 422),
        ("POST", f"/buyers/{EVIL_BUYER}/cart/coupon", None, b"[1,2]", 422),
        ("POST", f"/buyers/{EVIL_BUYER}/cart/coupon", None,
         b'{"code":' + b"[" * 5000 + b"]" * 5000 + b"}", 422),
        ("POST", f"/buyers/{EVIL_BUYER}/cart/coupon", None,
         b'{"code":"' + b"A" * 200_000 + b'"}', 413),
        ("POST", "/heartbeat", {"ready_at": "now", "latency_ms": 1, "guilds": 1,
                                "bot_user": None, "pid": 1, "error": None}, None, 422),
    ]
    for method, path, body, raw, expected in cases:
        status, answer = await evil.send(method, path, body=body, raw=raw)
        assert status == expected, (method, path, status, answer)
        assert isinstance(answer, dict) and answer["error"]["code"]
    assert world.snapshot() == before


async def test_idempotency_keys_are_per_instance(world: World, evil: Evil) -> None:
    """A replayed write gets its first answer and is not done twice; the same key from
    another instance gets its own answer, never the victim's."""
    key = {"Idempotency-Key": "shared-key-123"}
    shop = world.shop
    victim_buyer = "444444444444444444"
    add = {"product_id": shop.product_id, "variant_id": shop.variant_id, "quantity": 1,
           "username": "v"}
    victim_auth = {"Authorization": f"Bearer {world.victim_credential}", **key}
    url = f"{world.base}/internal/instances/{VICTIM}/buyers/{victim_buyer}/cart/items"
    async with evil.http.post(url, data=orjson.dumps(add), headers=victim_auth) as resp:
        assert resp.status == 200
        victim_answer = await resp.read()
    victim_cart = orjson.loads(victim_answer)["result"]["cart"]["id"]
    before = world.snapshot()
    status, answer = await evil.send(
        "POST", f"/buyers/{EVIL_BUYER}/cart/items", headers=key,
        body={"product_id": world.evil_product, "variant_id": world.evil_variant,
              "quantity": 1, "username": "e"},
    )
    assert status == 200 and victim_cart not in orjson.dumps(answer).decode()
    # The victim's replay returns the first answer, and reserves nothing more.
    async with evil.http.post(url, data=orjson.dumps(add), headers=victim_auth) as resp:
        assert await resp.read() == victim_answer
    assert world.snapshot() == before


async def test_a_flooding_tenant_is_limited_and_the_others_are_served(
    world: World, evil: Evil
) -> None:
    before = world.snapshot()
    statuses: list[int] = []

    async def flood() -> None:
        for _ in range(60):
            status, _ = await evil.send("GET", "/products")
            statuses.append(status)

    async def victim_calls() -> list[float]:
        took = []
        for _ in range(20):
            started = time.monotonic()
            products = await world.victim.list_products()
            took.append(time.monotonic() - started)
            assert products and products[0].id == world.shop.product_id
        return took

    results = await asyncio.gather(*(flood() for _ in range(8)), victim_calls())
    assert 429 in statuses  # the flood was cut
    assert max(results[-1]) < 2.0  # the victim was answered all along
    assert world.snapshot() == before


async def test_domain_errors_cross_the_wire_as_the_bot_expects(world: World) -> None:
    with pytest.raises(NotFoundError):
        await world.victim.get_order("ord_nope")
    with pytest.raises(DomainError) as refused:
        await world.victim.add_item(BUYER, world.shop.product_id, world.shop.variant_id, 99,
                                    username="x")
    assert refused.value.message("pt-BR")
    unreachable = HttpInstanceAPI("http://127.0.0.1:9", VICTIM, world.victim_credential,
                                  retry_pauses=(0.01,))
    with pytest.raises(InstanceAPIUnavailable):
        await unreachable.settings()
    await unreachable.close()


async def test_a_runtimes_log_lines_reach_the_platform_as_text(world: World, evil: Evil) -> None:
    """Warnings and errors of a bot reach the operator through the API (forwarded by the bot's
    log handler), under the calling instance's name, redacted, bounded; never as data."""
    import io
    import logging

    from astra.entrypoints.bot.log_forwarder import PlatformLogForwarder
    from astra.logs import configure_logging

    stream = io.StringIO()
    configure_logging("info", fmt="json", stream=stream)
    try:
        forwarder = PlatformLogForwarder(world.victim, asyncio.get_running_loop())
        record = logging.LogRecord("astra.bot", logging.WARNING, __file__, 1,
                                   "discord call failed for %s", ("loja",), None)
        forwarder.emit(record)
        await asyncio.sleep(0)  # the line is queued on the loop
        assert await forwarder.flush_once() == 1
        bot_token = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
        status, _ = await evil.send("POST", "/logs", body={"lines": [
            {"level": "error", "logger": "astra.bot", "text": f"leaked {bot_token}"}]})
        assert status == 200
        for bad in ([], [{"level": "critical", "logger": "x", "text": "y"}],
                    [{"level": "error", "logger": "x", "text": "y"}] * 51,
                    [{"level": "error", "logger": "x", "text": "y", "instance": VICTIM}]):
            status, _ = await evil.send("POST", "/logs", body={"lines": bad})
            assert status == 422
    finally:
        logging.getLogger().handlers.clear()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    forwarded = [line for line in lines if line.get("event") == "runtime.log"]
    assert [(f["instance"], f["text"]) for f in forwarded][:1] == [
        (VICTIM, "discord call failed for loja")]
    assert forwarded[1]["instance"] == EVIL and forwarded[1]["level"] == "error"
    assert "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL" not in stream.getvalue()
