"""Two `astra serve` replicas (real processes) on one PostgreSQL database: what only a real
multi-process setup can show. Buyers come over the internal API as a bot brings them, payments
through the Mercado Pago fake and its signed webhooks, keys by DM through the Discord fake (the
replicas' courier, on the shop's bot token); the harness is bench/pg_replicas.py's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from astra.domain.services.instances import SETTINGS_ID
from bench.pg_replicas import (
    LOOPS,
    BuyerClicks,
    ReplicaSet,
    audit,
    checkout_race,
    platform_container,
    prepare_shop,
    shop_bot,
    spray_webhooks,
    wait_credited,
    wait_paid,
)
from tests.fakes.discord.thread import FakeDiscordThread
from tests.fakes.mercadopago import FakeMercadoPagoThread

pytestmark = pytest.mark.slow



@dataclass
class World:
    dsn: str
    container: Any
    replicas: ReplicaSet
    fake: FakeMercadoPagoThread
    discord: FakeDiscordThread

    def give_bot(self, instance_id: str) -> BuyerClicks:
        """The shop's bot (its token, its server): its buyers click there (the replicas ask
        Discord who they are) and can get a DM (the replicas' courier delivers on it)."""
        return shop_bot(self.container, instance_id, self.discord, self.discord.api_url)


@pytest.fixture
async def world(pg_dsn: str, tmp_path: Path, fake: FakeMercadoPagoThread,
                discord: FakeDiscordThread) -> AsyncIterator[World]:
    base = fake.base  # type: ignore[attr-defined]
    container = platform_container(pg_dsn, tmp_path / "setup", base, fake.access_token)
    replicas = ReplicaSet(pg_dsn, tmp_path, base, fake.access_token, count=2,
                          extra_env={"DISCORD_API_BASE": discord.api_url})
    try:
        yield World(pg_dsn, container, replicas, fake, discord)
    finally:
        replicas.stop()
        container.store().close()
        container.coordination().close()


async def test_thousand_buyers_on_two_replicas_race_for_hundred_keys(world: World) -> None:
    shop = prepare_shop(world.container, "race-shop", 100)
    clicks = world.give_bot("race-shop")
    await world.replicas.start()
    race = await checkout_race(shop, world.replicas.replicas, 1000, clicks=clicks)
    assert race.errors == []
    assert len(race.charges) == 100 and race.refused == 900
    for charge_id in race.charges.values():
        world.fake.approve(charge_id)
    await spray_webhooks(world.fake, list(race.charges.values()), world.replicas.replicas)
    paid = await asyncio.to_thread(wait_paid, world.container, "race-shop",
                                   list(race.charges), 60)
    assert len(paid) == 100
    result = await asyncio.to_thread(wait_credited, world.container, "race-shop", 100, 30)
    assert (result.sold, result.duplicates, result.lost) == (100, 0, 0)
    assert result.paid_orders == 100
    assert (result.credits, result.credited_orders) == (100, 100)


def _inbox_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM webhook_inbox").fetchone()
    return int(row[0]) if row else -1


async def test_webhooks_sprayed_twice_while_a_replica_is_killed_pay_each_order_once(
    world: World,
) -> None:
    shop = prepare_shop(world.container, "hook-shop", 400)
    clicks = world.give_bot("hook-shop")
    await world.replicas.start()
    # Buyers of their own (the module's Discord fake keeps the DMs of earlier tests' buyers).
    race = await checkout_race(shop, world.replicas.replicas, 400, first_buyer=10**6,
                               clicks=clicks)
    assert race.errors == [], race.errors[:5]
    assert len(race.charges) == 400
    for charge_id in race.charges.values():
        world.fake.approve(charge_id)
    # The victim does not lead the reconcile loop: its search (which would settle every
    # approved charge by itself) then never runs again during the test, and only webhooks,
    # processed from the shared inbox, can pay these orders.
    leads = await world.replicas.leaders()
    victim = next(r for r in world.replicas.replicas if "reconcile" not in leads[r.name])
    restarted: list[asyncio.Task[None]] = []
    accepted_then_killed: list[str] = []

    async def chaos(sent: int, target: Any, status: str, charge_id: str) -> None:
        # Half-way through, the victim dies without a word right after answering 200 to a
        # webhook (which may still wait in the inbox, or be in its workers' hands); about a
        # hundred webhooks later it comes back.
        if sent >= 400 and not accepted_then_killed and target is victim and status == "200":
            accepted_then_killed.append(charge_id)
            victim.kill()
        elif sent >= 500 and accepted_then_killed and not restarted:
            victim.start()
            restarted.append(asyncio.create_task(victim.wait_ready()))

    _, statuses = await spray_webhooks(world.fake, list(race.charges.values()),
                                       world.replicas.replicas, copies=2, during=chaos)
    assert statuses.get("200", 0) == 800
    assert accepted_then_killed and restarted
    await asyncio.gather(*restarted)
    paid = await asyncio.to_thread(wait_paid, world.container, "hook-shop",
                                   list(race.charges), 90)
    assert len(paid) == 400
    result = await asyncio.to_thread(wait_credited, world.container, "hook-shop", 400, 30)
    assert (result.sold, result.duplicates, result.lost) == (400, 0, 0)
    assert (result.credits, result.credited_orders) == (400, 400)
    deadline = time.monotonic() + 20
    while _inbox_rows(world.dsn) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert _inbox_rows(world.dsn) == 0
    # Delivered once: every buyer holds exactly one DM, with the key of their own order.
    keys = await asyncio.to_thread(_keys_by_buyer, world.container, "hook-shop")
    delivered = await asyncio.to_thread(_wait_delivered, world.container, "hook-shop", 400, 120)
    assert delivered == 400, [
        line for r in world.replicas.replicas for line in r.log_tail(200_000).splitlines()
        if "deliver" in line or "courier" in line][-6:]
    dms = {buyer: world.discord.dm_texts(buyer) for buyer in keys}
    assert sorted(len(texts) for texts in dms.values()) == [1] * 400
    assert all(key in dms[buyer][0] for buyer, key in keys.items())


def _keys_by_buyer(container: Any, instance_id: str) -> dict[str, str]:
    """Buyer id -> the key their paid order holds (decrypted: what the DM must carry)."""
    with container.store().instance(instance_id, write=False) as uow:
        orders = {o["id"]: o for o in uow.orders.all() if o["status"] in ("paid", "delivered")}
        stock = {k["id"]: k for k in uow.stock.all()}
    vault = container.vaults()(instance_id)
    out = {}
    for order in orders.values():
        (key_id,) = [kid for line in order["lines"] for kid in line["key_ids"]]
        key = stock[key_id]
        out[order["buyer_id"]] = vault.decrypt(key["secret"], context=key["fingerprint"])
    return out


def _wait_delivered(container: Any, instance_id: str, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        with container.store().instance(instance_id, write=False) as uow:
            done = uow.deliveries.count(status="delivered")
        if done >= expected or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


async def _wait_for(predicate: Any, timeout: float, step: float = 0.2) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(step)
    raise AssertionError(f"not within {timeout}s")


async def test_killed_leader_is_replaced_and_carts_still_expire_on_time(world: World) -> None:
    shop = prepare_shop(world.container, "ttl-shop", 3)
    # A reservation short enough to watch expire (the seller's setting starts at 60 s).
    ttl = 6
    with world.container.store().instance("ttl-shop") as uow:
        doc = uow.settings.get(SETTINGS_ID) or {"id": SETTINGS_ID}
        uow.settings.put({**doc, "cart_ttl_seconds": ttl})
        uow.commit()
    await world.replicas.start()
    replicas = world.replicas.replicas

    async def one_leader() -> bool:
        leads = await world.replicas.leaders()
        return sorted(x for v in leads.values() for x in v) == LOOPS

    await _wait_for(one_leader, 15)
    leads = await world.replicas.leaders()
    # Every loop runs on exactly one replica.
    assert sorted(x for v in leads.values() for x in v) == LOOPS
    leader = next(r for r in replicas if "housekeeping" in leads[r.name])
    survivor = next(r for r in replicas if r is not leader)

    # A cart (and a pending order).
    race = await checkout_race(shop, [survivor], 1, clicks=world.give_bot("ttl-shop"))
    assert len(race.charges) == 1
    reserved_at = time.monotonic()
    leader.kill()

    async def survivor_leads() -> bool:
        return (await world.replicas.leaders())[survivor.name] == LOOPS

    took = await _wait_for(survivor_leads, 10)
    assert took < 10

    async def released() -> bool:
        counts = await asyncio.to_thread(world.container.catalog().stock_counts, "ttl-shop")
        return counts[shop.variant_id]["available"] == 3

    await _wait_for(released, ttl + 15)
    # On time: the TTL, plus one housekeeping interval (5 s), plus the takeover.
    assert time.monotonic() - reserved_at <= ttl + 5 + took + 3
    order_id = next(iter(race.charges))
    order = await asyncio.to_thread(world.container.sales().get_order, "ttl-shop", order_id)
    assert order.status in ("expired", "cancelled")
    result = await asyncio.to_thread(audit, world.container, "ttl-shop", 3)
    assert (result.sold, result.duplicates, result.lost) == (0, 0, 0)


async def test_an_attacker_gains_nothing_by_spreading_over_replicas(world: World) -> None:
    """Guesses spread over both replicas count as one; a session logged out on one replica is
    refused by the other; an admin lockout holds on both."""
    import aiohttp

    from bench.pg_replicas import SECRETS

    await world.replicas.start()
    one, two = world.replicas.replicas
    jar = aiohttp.DummyCookieJar()  # cookies by hand: the two replicas are two origins
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        # Unknown e-mail: five wrong passwords alternating between replicas lock it on both.
        statuses = []
        for n in range(6):
            target = (one, two)[n % 2]
            async with http.post(f"{target.portal_url}/auth/local/login", json={
                    "email": "ghost@example.com", "password": "wrong password"}) as resp:
                statuses.append(resp.status)
        assert statuses == [401, 401, 401, 401, 423, 423]

        # A session made on one replica works on the other, and a logout on the other ends it
        # everywhere (a copy of the cookie saved before is refused).
        async with http.post(f"{one.portal_url}/auth/local/register", json={
                "email": "seller@example.com", "password": "a good password",
                "name": "Seller"}) as resp:
            assert resp.status == 201
            cookie = resp.cookies["astra_session"].value
            csrf = (await resp.json())["csrf_token"]
        headers = {"Cookie": f"astra_session={cookie}"}
        async with http.get(f"{two.portal_url}/api/me", headers=headers) as resp:
            assert resp.status == 200
        async with http.post(f"{two.portal_url}/auth/logout",
                             headers={**headers, "X-CSRF-Token": csrf}) as resp:
            assert resp.status < 400
        for target in (one, two):
            async with http.get(f"{target.portal_url}/api/me", headers=headers) as resp:
                assert resp.status == 401

        # Admin panel: five wrong passwords over both replicas lock this address on both, and
        # then even the right password is refused.
        admin_urls = [f"http://127.0.0.1:{r.admin_port}/admin/login" for r in (one, two)]
        statuses = []
        for n in range(5):
            async with http.post(admin_urls[n % 2], json={
                    "user": "admin", "password": "not the password"}) as resp:
                statuses.append(resp.status)
        assert statuses == [401] * 5
        for url in admin_urls:
            async with http.post(url, json={
                    "user": "admin", "password": SECRETS["ADMIN_PANEL_PASSWORD"]}) as resp:
                assert resp.status == 429
