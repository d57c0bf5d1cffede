"""The internal API as a compromised tenant sees it.

`evil` controls one seller's bot: it holds that instance's runtime credential and bot token,
receives the interactions its bot's users make (and can defer or answer them over REST, as the
bot could), and can send anything at all to the platform's internal API (other instances' ids,
forged fields and interactions, replayed idempotency keys, floods, oversized and malformed
bodies). The victim is another seller whose bot uses the real HTTP adapter at the same time.
Both bots are applications of one fake Discord (the fleet), as on discord.com. After every
attack nothing of the victim's changed (its whole instance domain and its wallet), the attacker
got no money, and the victim's calls were answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
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
from astra.ports.chat import InteractionRef
from astra.ports.instance_api import InstanceAPIUnavailable
from astra.ports.store import INSTANCE_COLLECTIONS
from tests.e2e.bot_world import free_port
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.bot_side import deferred
from tests.fakes.discord.fleet import FakeDiscordFleet
from tests.integration.sales_world import INSTANCE, OWNER, Shop, make_shop

VICTIM = INSTANCE
EVIL = "loja-do-mal"
EVIL_OWNER = "usr_evil"
BUYER = "111111111111111111"
EVIL_BUYER = "222222222222222222"
EVIL_SELLER = "555555555555555555"
VICTIM_SELLER = "666666666666666666"


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
    fleet: FakeDiscordFleet
    victim_bot: FakeDiscord
    evil_bot: FakeDiscord

    def snapshot(self) -> dict[str, Any]:
        """Everything of the victim's: its instance domain and its owner's wallet."""
        with self.shop.store.instance(VICTIM, write=False) as uow:
            data = {name: getattr(uow, name).all() for name in INSTANCE_COLLECTIONS}
        data["ledger"] = self.shop.wallet.ledger(OWNER)
        data["balance"] = self.shop.wallet.balance(OWNER)
        return data


def _discord_shop(fake: FakeDiscord, seller: str, buyers: list[str]) -> None:
    """The bot's server: its seller owns it (Manage Server), its buyers are plain members."""
    owner = fake.add_user("dono", user_id=seller)
    guild = fake.add_guild("Servidor", owner=owner.id)
    fake.add_member(guild.id, owner.id, admin=True)
    for buyer in buyers:
        fake.add_member(guild.id, fake.add_user(f"comprador{buyer[-3:]}", user_id=buyer).id)


@pytest.fixture
async def world(data_dir: Path) -> AsyncIterator[World]:
    fleet = FakeDiscordFleet()
    await fleet.start()
    victim_bot = await fleet.add_bot()
    evil_bot = await fleet.add_bot()
    _discord_shop(victim_bot, VICTIM_SELLER, [BUYER, "333333333333333333",
                                              "444444444444444444"])
    _discord_shop(evil_bot, EVIL_SELLER, [EVIL_BUYER])
    shop = make_shop(data_dir, keys=5, discord_api_base=fleet.api_url)
    instances = shop.instances
    instances.create(EVIL, owner_id=EVIL_OWNER, name="Loja do Mal", actor="test")
    for instance, fake in ((VICTIM, victim_bot), (EVIL, evil_bot)):
        profile = {"id": str(fake.bot.id), "username": fake.bot.username,
                   "application_id": str(fake.application_id)}
        instances.set_bot_token(instance, fake.bot_token, profile, actor="test")
        guild_id = next(iter(fake.world.guilds))
        instances.update_settings(instance, {"guild_id": guild_id}, actor="test")
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
            fleet,
            victim_bot,
            evil_bot,
        )
    finally:
        await victim.close()
        await runner.cleanup()
        await fleet.stop()
        shop.store.close()


class Evil:
    """What a compromised runtime does: raw HTTP with its own credential."""

    def __init__(self, world: World, session: aiohttp.ClientSession) -> None:
        self.world = world
        self.http = session
        self.auth = {"Authorization": f"Bearer {world.evil_credential}"}

    async def interaction(self, user: str, *, fake: FakeDiscord | None = None,
                          defer: bool = True) -> dict[str, str]:
        """A real interaction `user` made with the attacker's bot (or `fake`, a pool-mate's),
        deferred over REST as the bot would: what the attacker can hand the platform."""
        fake = fake or self.world.evil_bot
        member_of = next(g for g in fake.world.guilds.values() if user in g.members)
        channel = next(c for c in member_of.channel_ids
                       if fake.world.channels[c].type == 0)
        handle = fake.interaction_from(user, channel)
        if defer:
            await deferred(self.http, self.world.fleet.api_url, handle)
        return {"id": handle.id, "token": handle.token}

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


    async def send_slowly(
        self, path: str, body: bytes, *, chunk: int = 997, pause: float = 0.002
    ) -> tuple[int, Any]:
        """POST `body` with chunked transfer, a few hundred bytes at a time: the server's
        first read sees only the start of it."""
        async def pieces() -> AsyncIterator[bytes]:
            for at in range(0, len(body), chunk):
                yield body[at:at + chunk]
                await asyncio.sleep(pause)

        url = f"{self.world.base}/internal/instances/{EVIL}{path}"
        async with self.http.post(url, data=pieces(), headers=self.auth) as resp:
            return resp.status, orjson.loads(await resp.read())


@pytest.fixture
async def evil(world: World) -> AsyncIterator[Evil]:
    async with aiohttp.ClientSession() as session:
        yield Evil(world, session)


async def test_another_instances_routes_are_closed_to_a_runtime_credential(
    world: World, evil: Evil
) -> None:
    before = world.snapshot()
    mine = await evil.interaction(EVIL_SELLER)
    attempts = [
        ("GET", "/settings", None),
        ("POST", "/cart/view", {"interaction": mine}),
        ("GET", f"/orders/{world.victim_order}", None),
        ("POST", f"/orders/{world.victim_order}/check", {}),
        ("POST", "/cart/pay", {"interaction": mine}),
        ("POST", "/cart/cancel", {"interaction": mine}),
        ("POST", "/heartbeat", {"ready_at": 1.0, "latency_ms": 1, "guilds": 1,
                                "bot_user": None, "pid": 1, "error": "invalid_token"}),
        ("PATCH", "/settings", {"changes": {"language": "en"}, "interaction": mine}),
        ("POST", f"/variants/{world.shop.variant_id}/keys",
         {"interaction": mine, "limit": 100}),
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
    staff = await evil.interaction(EVIL_SELLER)  # the attacker's own server: it is staff there
    buyer = await evil.interaction(EVIL_BUYER)
    for method, path, body in [
        ("GET", f"/orders/{world.victim_order}", None),
        ("POST", f"/orders/{world.victim_order}/check", {}),
        ("GET", f"/carts/{world.victim_cart}", None),
        ("PUT", f"/carts/{world.victim_cart}/channel",
         {"channel_id": "123456789012", "message_id": "123456789013"}),
        ("POST", f"/carts/{world.victim_cart}/channel/closed", {}),
        ("GET", f"/products/{shop.product_id}", None),
        ("PATCH", f"/products/{shop.product_id}",
         {"changes": {"name": "roubado"}, "interaction": staff}),
        ("POST", f"/products/{shop.product_id}/remove", {"interaction": staff}),
        ("PUT", f"/products/{shop.product_id}/posts", {"posts": [], "interaction": staff}),
        ("POST", "/cart/items",
         {"product_id": shop.product_id, "variant_id": shop.variant_id, "quantity": 1,
          "interaction": buyer}),
        ("POST", f"/products/{shop.product_id}/variants/{shop.variant_id}/stock",
         {"data": "INJECTED-KEY", "interaction": staff}),
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
        body={"interaction": staff, "limit": 100},
    )
    assert "KEY-" not in orjson.dumps(answer).decode()
    shown = world.evil_bot.interactions_by_id[staff["id"]].followup_messages
    assert shown and not any("KEY-" in (m.get("content") or "") for m in shown)
    assert world.snapshot() == before


async def test_money_comes_only_from_the_platforms_records(world: World, evil: Evil) -> None:
    """No call can name an amount, an owner or a kind of money; a posting that got into an
    instance's data some other way (the old tenant-writable directory) is checked against the
    order and rejected, so no withdrawal can take it out."""
    before = world.snapshot()
    shop = world.shop
    status, _ = await evil.send(
        "POST", "/cart/items",
        body={"product_id": world.evil_product, "variant_id": world.evil_variant,
              "quantity": 1, "interaction": await evil.interaction(EVIL_BUYER),
              "amount_cents": 1, "owner_id": OWNER},
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
    mine = await evil.interaction(EVIL_BUYER)
    staff = await evil.interaction(EVIL_SELLER)
    cases: list[tuple[str, str, Any, bytes | None, int]] = [
        ("POST", "/cart/items", {"product_id": "../../portal",
         "variant_id": "x", "quantity": 1, "interaction": mine}, None, 422),
        ("POST", "/cart/items", {"product_id": world.evil_product,
         "variant_id": world.evil_variant, "quantity": 10**9, "interaction": mine}, None, 422),
        ("POST", "/cart/items", {"product_id": world.evil_product,
         "variant_id": world.evil_variant, "quantity": True, "interaction": mine}, None, 422),
        # "Who" fields are not fields at all: the platform asks Discord.
        ("POST", "/cart/items", {"product_id": world.evil_product,
         "variant_id": world.evil_variant, "quantity": 1, "interaction": mine,
         "buyer_id": BUYER}, None, 422),
        ("POST", "/cart/pay", {"interaction": {"id": "not-a-snowflake", "token": "x" * 40}},
         None, 422),
        ("POST", "/cart/pay", {"interaction": {**mine, "user_id": BUYER}}, None, 422),
        ("POST", "/cart/pay", {}, None, 422),
        ("PATCH", "/settings", {"changes": {"language": "en"}, "interaction": staff,
                                "actor_user": EVIL_SELLER}, None, 422),
        ("PATCH", "/settings", {"changes": {"owner_id": OWNER}, "interaction": staff}, None,
         422),
        ("POST", "/cart/coupon", None, b"{not json", 422),
        ("POST", "/cart/coupon", None, b"[1,2]", 422),
        ("POST", "/cart/coupon", None,
         b'{"code":' + b"[" * 5000 + b"]" * 5000 + b"}", 422),
        ("POST", "/cart/coupon", None,
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
           "interaction": await evil.interaction(victim_buyer, fake=world.victim_bot)}
    victim_auth = {"Authorization": f"Bearer {world.victim_credential}", **key}
    url = f"{world.base}/internal/instances/{VICTIM}/cart/items"
    async with evil.http.post(url, data=orjson.dumps(add), headers=victim_auth) as resp:
        assert resp.status == 200
        victim_answer = await resp.read()
    victim_cart = orjson.loads(victim_answer)["result"]["cart"]["id"]
    before = world.snapshot()
    status, answer = await evil.send(
        "POST", "/cart/items", headers=key,
        body={"product_id": world.evil_product, "variant_id": world.evil_variant,
              "quantity": 1, "interaction": await evil.interaction(EVIL_BUYER)},
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


async def test_domain_errors_cross_the_wire_as_the_bot_expects(
    world: World, evil: Evil
) -> None:
    with pytest.raises(NotFoundError):
        await world.victim.get_order("ord_nope")
    click = await evil.interaction(BUYER, fake=world.victim_bot)
    with pytest.raises(DomainError) as refused:
        await world.victim.add_item(InteractionRef(**click), world.shop.product_id,
                                    world.shop.variant_id, 99)
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


# -- who acted: the platform asks Discord, never the runtime -------------------------------------


def _evil_domain(world: World) -> dict[str, Any]:
    with world.shop.store.instance(EVIL, write=False) as uow:
        return {name: getattr(uow, name).all() for name in INSTANCE_COLLECTIONS
                if name != "audit"}


def _shown(fake: FakeDiscord) -> str:
    """Everything the platform posted to any interaction of `fake`'s bot."""
    return " ".join(m.get("content") or "" for h in fake.interactions
                    for m in h.followup_messages)


def _refusals(world: World, instance: str = EVIL) -> list[dict[str, Any]]:
    with world.shop.store.instance(instance, write=False) as uow:
        return [a for a in uow.audit.all() if a["action"] == "runtime.refused"]


async def test_stock_keys_are_shown_only_to_staff_discord_names(world: World, evil: Evil) -> None:
    """The attacker wants the seller's stock in clear: it names the variant and hands the
    platform whatever interaction it has. Only a staff member's own click gets the keys."""
    before, evil_before = world.snapshot(), _evil_domain(world)
    keys = f"/variants/{world.evil_variant}/keys"
    buyer_click = await evil.interaction(EVIL_BUYER)
    victims_click = await evil.interaction(BUYER, fake=world.victim_bot)
    for interaction in (
        buyer_click,  # a buyer's real click
        {"id": buyer_click["id"], "token": "made-up-" + "x" * 40},  # a token it made up
        {"id": victims_click["id"], "token": buyer_click["token"]},  # one id, another token
        victims_click,  # another application's interaction (a pool-mate's bot)
        await evil.interaction(EVIL_BUYER, defer=False),  # never deferred: nothing to show
    ):
        status, answer = await evil.send("POST", keys, body={"interaction": interaction,
                                                             "limit": 100})
        assert status == 403, (interaction, status, answer)
        assert answer["error"]["code"] in ("staff_only", "interaction_unverified")
    assert "EVIL-1" not in _shown(world.evil_bot) + _shown(world.victim_bot)
    assert world.snapshot() == before and _evil_domain(world) == evil_before
    refused = _refusals(world)
    # Audited under the user Discord named, never a user the runtime chose.
    assert f"discord:{EVIL_BUYER}" in {a["actor"] for a in refused}
    assert all(a["actor"] in (f"discord:{EVIL_BUYER}", "runtime") for a in refused)
    # The honest path: the seller's own click (they own the server) gets the keys, ephemeral.
    staff_click = await evil.interaction(EVIL_SELLER)
    status, answer = await evil.send("POST", keys, body={"interaction": staff_click,
                                                         "limit": 100})
    assert (status, answer["result"]) == (200, 1)
    handle = world.evil_bot.interactions_by_id[staff_click["id"]]
    assert "EVIL-1" in " ".join(m["content"] for m in handle.followup_messages)
    assert all(m["flags"] & 64 for m in handle.followup_messages)


async def test_no_free_stock_without_staff(world: World, evil: Evil) -> None:
    """A 100% coupon needs a staff member's click; so does reading the shop's codes."""
    evil_before = _evil_domain(world)
    buyer = await evil.interaction(EVIL_BUYER)
    status, _ = await evil.send("POST", "/coupons", body={
        "interaction": buyer, "data": {"code": "GRATIS", "percent_off": 100}})
    assert status == 403
    status, _ = await evil.send("POST", "/coupons/list", body={"interaction": buyer})
    assert status == 403
    status, _ = await evil.send("POST", "/orders/list", body={"interaction": buyer})
    assert status == 403
    for path, body in [
        (f"/products/{world.evil_product}", {"changes": {"name": "x"}}),
        (f"/products/{world.evil_product}/variants/{world.evil_variant}/stock",
         {"data": "FORGED-KEY"}),
        (f"/products/{world.evil_product}/posts", {"posts": []}),
        ("/products", {"data": {"name": "x", "variants": [{"name": "a", "price_cents": 1}]}}),
    ]:
        method = "PATCH" if path.endswith(world.evil_product) else (
            "PUT" if path.endswith("/posts") else "POST")
        status, _ = await evil.send(method, path, body={**body, "interaction": buyer})
        assert status == 403, path
    assert _evil_domain(world) == evil_before
    status, _ = await evil.send("POST", "/cart/coupon", body={
        "interaction": buyer, "code": "GRATIS"})
    assert status in (404, 409, 422) and "GRATIS" not in str(world.shop.coupons.list(EVIL))


async def test_settings_that_bind_the_bot_or_move_money_stay_on_the_portal(
    world: World, evil: Evil
) -> None:
    """Even a real staff member's click cannot change them through a runtime: a compromised
    bot could otherwise make its own role staff, or bind the shop to a server it owns."""
    staff = await evil.interaction(EVIL_SELLER)
    settings_before = world.shop.instances.settings(EVIL)
    bot_role = next(r.id for r in world.evil_bot.world.guilds[
        settings_before["guild_id"]].roles.values() if r.managed)
    for changes in ({"staff_role_id": bot_role}, {"guild_id": "123456789012345678"},
                    {"manual_confirmation": True}, {"subscription_card_renewal": True}):
        status, answer = await evil.send("PATCH", "/settings",
                                         body={"changes": changes, "interaction": staff})
        assert status == 403, (changes, answer)
    assert world.shop.instances.settings(EVIL) == settings_before
    # /loja vincular with the right key from another server the attacker owns: refused, the
    # shop stays where the seller bound it (moving it is the portal's).
    key = world.shop.instances.rotate_instance_key(EVIL, actor="test")
    world.evil_credential = world.shop.instances.runtime_credential(EVIL)
    evil.auth = {"Authorization": f"Bearer {world.evil_credential}"}
    other = world.evil_bot.add_guild("Servidor do atacante", owner=EVIL_SELLER)
    world.evil_bot.add_member(other.id, EVIL_SELLER, admin=True)
    elsewhere = world.evil_bot.add_channel(other.id, "geral")
    handle = world.evil_bot.interaction_from(EVIL_SELLER, elsewhere.id)
    await deferred(evil.http, world.fleet.api_url, handle)
    status, answer = await evil.send("POST", "/guild", body={
        "instance_key": key, "interaction": {"id": handle.id, "token": handle.token}})
    assert status == 403 and answer["error"]["code"] == "rebind_on_portal"
    assert world.shop.instances.settings(EVIL)["guild_id"] == settings_before["guild_id"]
    # The same command in the bound server, by its owner, with the key: accepted (a no-op).
    status, answer = await evil.send("POST", "/guild", body={
        "instance_key": key, "interaction": await evil.interaction(EVIL_SELLER)})
    assert (status, answer["result"]) == (200, True)


async def test_bots_and_managed_roles_never_count_as_staff(world: World, evil: Evil) -> None:
    """The seller (on the portal) made the bot's own managed role the staff role: neither the
    bot itself nor a person holding that role is staff; a real staff role still works."""
    guild_id = world.shop.instances.settings(EVIL)["guild_id"]
    guild = world.evil_bot.world.guilds[guild_id]
    bot_role = next(r for r in guild.roles.values() if r.managed)
    world.shop.instances.update_settings(EVIL, {"staff_role_id": bot_role.id}, actor="test")
    holder = world.evil_bot.add_user("cargo-gerenciado").id
    world.evil_bot.add_member(guild_id, holder, [bot_role.id])
    keys = f"/variants/{world.evil_variant}/keys"
    for user in (str(world.evil_bot.bot.id), holder):
        status, _ = await evil.send("POST", keys, body={
            "interaction": await evil.interaction(user), "limit": 5})
        assert status == 403, user
    assert "EVIL-1" not in _shown(world.evil_bot)
    equipe = world.evil_bot.add_role(guild_id, "Equipe")
    world.shop.instances.update_settings(EVIL, {"staff_role_id": equipe.id}, actor="test")
    member = world.evil_bot.add_user("atendente").id
    world.evil_bot.add_member(guild_id, member, [equipe.id])
    status, answer = await evil.send("POST", keys, body={
        "interaction": await evil.interaction(member), "limit": 5})
    assert (status, answer["result"]) == (200, 1)


async def test_a_pool_mate_cannot_act_on_another_members_shop_with_its_own_clicks(
    world: World, evil: Evil
) -> None:
    """A pool holds its members' credentials: the attacker uses the victim's credential with
    the clicks its own bot gets (its own staff's included). Discord does not vouch for another
    application's interaction, so nothing of the victim's moves."""
    before = world.snapshot()
    victim = {"Authorization": f"Bearer {world.victim_credential}"}
    staff = await evil.interaction(EVIL_SELLER)
    buyer = await evil.interaction(EVIL_BUYER)
    for method, path, body in [
        ("POST", f"/variants/{world.shop.variant_id}/keys", {"interaction": staff,
                                                              "limit": 100}),
        ("POST", "/coupons", {"interaction": staff,
                              "data": {"code": "GRATIS", "percent_off": 100}}),
        ("POST", "/purchases", {"interaction": buyer}),
        ("POST", "/cart/items", {"interaction": buyer, "product_id": world.shop.product_id,
                                 "variant_id": world.shop.variant_id, "quantity": 1}),
    ]:
        status, answer = await evil.send(method, path, instance=VICTIM, body=body,
                                         headers=victim)
        assert status == 403 and answer["error"]["code"] == "interaction_unverified", path
    assert "KEY-" not in _shown(world.evil_bot) + _shown(world.victim_bot)
    # Only the refusals were written down (audited, as the runtime, since Discord named no
    # one); nothing else of the victim's changed.
    after = world.snapshot()
    assert {k: v for k, v in after.items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"}
    assert {a["actor"] for a in _refusals(world, VICTIM)} == {"runtime"}


# -- a revoked credential, and bodies sent slowly -----------------------------------------------


def _set_instance(world: World, **fields: Any) -> None:
    with world.shop.store.portal() as uow:
        doc = uow.instances.require(EVIL)
        doc.update(fields)
        uow.instances.put(doc)
        uow.commit()


def _set_owner(world: World, **fields: Any) -> None:
    with world.shop.store.portal() as uow:
        user = uow.users.get(EVIL_OWNER) or {"id": EVIL_OWNER, "email": "mal@example.com"}
        user.update(fields)
        uow.users.put(user)
        uow.commit()


async def test_a_rotated_key_refuses_the_old_credential_at_the_next_request(
    world: World, evil: Evil
) -> None:
    assert (await evil.send("GET", "/settings"))[0] == 200  # fresh: a cache would hold it now
    world.shop.instances.rotate_instance_key(EVIL, actor="test")
    status, answer = await evil.send("GET", "/settings")
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    evil.auth = {"Authorization": f"Bearer {world.shop.instances.runtime_credential(EVIL)}"}
    assert (await evil.send("GET", "/settings"))[0] == 200
    # Two rotations within one tick of the (frozen) clock still make two credentials.
    world.shop.instances.rotate_instance_key(EVIL, actor="test")
    assert (await evil.send("GET", "/settings"))[0] == 401


async def test_a_deleted_instance_is_refused_at_the_next_request(
    world: World, evil: Evil
) -> None:
    from astra.entrypoints.portal.instance_api import _mark_deleted

    assert (await evil.send("GET", "/settings"))[0] == 200
    _mark_deleted(world.shop.container, EVIL, who="seller:test")
    assert (await evil.send("GET", "/settings"))[0] == 401
    assert (await evil.send("POST", "/logs", body={"lines": [
        {"level": "error", "logger": "astra.bot", "text": "still here"}]}))[0] == 401
    # The victim's runtime is untouched.
    assert (await world.victim.settings()) is not None


async def test_a_suspended_instance_is_refused_at_the_next_request(
    world: World, evil: Evil
) -> None:
    until = world.shop.clock.now() + timedelta(days=3)
    _set_owner(world, plan={"kind": "paid", "until": until.isoformat()})
    assert (await evil.send("GET", "/settings"))[0] == 200
    # The operator blocks the account: refused before the monitor's pass records it.
    _set_owner(world, blocked=True)
    assert (await evil.send("GET", "/settings"))[0] == 401
    _set_owner(world, blocked=False)
    assert (await evil.send("GET", "/settings"))[0] == 200
    # The plan ends.
    world.shop.clock.advance(timedelta(days=3, seconds=1))
    assert (await evil.send("GET", "/settings"))[0] == 401
    # Renewed: served again at once, whatever status the monitor last recorded.
    _set_owner(world, plan={"kind": "paid", "until": (until + timedelta(days=30)).isoformat()})
    _set_instance(world, status="suspended", status_reason="plan_expired")
    assert (await evil.send("GET", "/settings"))[0] == 200


async def test_an_instance_the_monitor_suspended_without_an_owner_is_refused(
    world: World, evil: Evil
) -> None:
    assert (await evil.send("GET", "/settings"))[0] == 200
    _set_instance(world, status="suspended", status_reason="owner_missing")
    assert (await evil.send("GET", "/settings"))[0] == 401


def _padded(doc: Any, size: int) -> bytes:
    """`doc` as JSON padded to exactly `size` bytes with whitespace after its opening brace:
    still JSON, and any start of it short of the whole is not."""
    raw = orjson.dumps(doc)
    return raw[:1] + b" " * (size - len(raw)) + raw[1:]


async def test_a_body_sent_slowly_is_read_whole_up_to_the_cap(world: World, evil: Evil) -> None:
    from astra.adapters.instance_api.wire import MAX_BODY, OPERATIONS

    assert OPERATIONS["log"].max_body == MAX_BODY
    line = {"level": "warning", "logger": "astra.bot", "text": "slow"}
    whole = _padded({"lines": [line]}, MAX_BODY)
    status, answer = await evil.send_slowly("/logs", whole)
    assert status == 200, answer
    # One byte over the cap, with no Content-Length to tell in advance.
    status, answer = await evil.send_slowly("/logs", whole + b" ", chunk=8192)
    assert status == 413 and answer["error"]["code"] == "payload_too_large"
    # Declared too long up front.
    status, answer = await evil.send("POST", "/logs", raw=whole + b" ")
    assert status == 413 and answer["error"]["code"] == "payload_too_large"
    # Not JSON is said only of what is not JSON once it is all in.
    status, answer = await evil.send_slowly("/logs", whole[:-1] + b",")
    assert status == 422 and answer["error"]["message"] == "body: is not JSON"
    status, answer = await evil.send_slowly("/logs", orjson.dumps({"lines": [line]})[:-1])
    assert status == 422 and answer["error"]["message"] == "body: is not JSON"
    status, answer = await evil.send_slowly("/logs", orjson.dumps({"lines": [line]}), chunk=3)
    assert status == 200, answer


async def test_a_revocation_on_one_replica_is_refused_by_the_other_at_once(
    pg_dsn: str, data_dir: Path
) -> None:
    """Two replicas (two containers, each its own store connections and internal API server)
    on one PostgreSQL database: whatever revokes a credential on replica A, replica B refuses
    it from its very next request, however recently it served it."""
    from datetime import UTC, datetime

    from astra.container import build_container
    from astra.entrypoints.portal.instance_api import _mark_deleted
    from astra.settings import Settings, ensure_dev_secrets

    shop = make_shop(data_dir, keys=1, database_url=pg_dsn)
    a = shop.container
    # Same data dir: the same development secrets (master key), as replicas share theirs.
    b = build_container(ensure_dev_secrets(Settings(data_dir=data_dir, database_url=pg_dsn)))
    a.instances().create(EVIL, owner_id=EVIL_OWNER, name="Loja do Mal", actor="test")
    with a.store().portal() as uow:
        until = datetime.now(UTC) + timedelta(days=30)
        uow.users.put({"id": EVIL_OWNER, "email": "mal@example.com",
                       "plan": {"kind": "paid", "until": until.isoformat()}})
        uow.commit()
    runners = []
    bases = []
    for container in (a, b):
        runner = web.AppRunner(create_internal_app(container))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        bases.append(f"http://127.0.0.1:{port}/internal/instances/{EVIL}/settings")

    async def status(http: aiohttp.ClientSession, base: str, credential: str) -> int:
        async with http.get(base, headers={"Authorization": f"Bearer {credential}"}) as resp:
            await resp.read()
            return resp.status

    def set_owner(**fields: Any) -> None:
        with a.store().portal() as uow:
            user = uow.users.require(EVIL_OWNER)
            user.update(fields)
            uow.users.put(user)
            uow.commit()

    try:
        async with aiohttp.ClientSession() as http:
            on_a, on_b = bases
            credential = a.instances().runtime_credential(EVIL)
            assert [await status(http, u, credential) for u in (on_b, on_a, on_b)] == [200] * 3
            a.instances().rotate_instance_key(EVIL, actor="test")
            assert await status(http, on_b, credential) == 401
            credential = a.instances().runtime_credential(EVIL)
            assert await status(http, on_b, credential) == 200
            set_owner(blocked=True)  # the admin panel's block, on replica A
            assert await status(http, on_b, credential) == 401
            set_owner(blocked=False)
            assert await status(http, on_b, credential) == 200
            await asyncio.to_thread(_mark_deleted, a, EVIL, who="seller:test")
            assert await status(http, on_b, credential) == 401
            assert await status(http, on_a, credential) == 401
    finally:
        for runner in runners:
            await runner.cleanup()
        b.store().close()
        shop.store.close()
