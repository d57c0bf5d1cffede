"""Draining: buyers click without pause while their shops' pool is replaced (a restart, an
instance added: a new generation of the pool, started first, then the old one drained), and
not one click goes unanswered. Real bots in `astra runtime pool` processes (the process
runtime), a fleet of fake Discord bots, the platform's internal API over HTTP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from astra.adapters.chat.discord import ui
from astra.adapters.chat.discord.rest import DiscordRest
from astra.adapters.runtime.pooled import PooledRuntime
from astra.adapters.runtime.process import ProcessRuntime
from astra.ports.runtime import RuntimeSpec, is_pool_id
from tests.pool_world import PoolWorld, Shop, pool_world

pytestmark = pytest.mark.slow

CLICK_TIMEOUT = 10.0  # Discord gives a bot 3 s; a loaded CI machine gets more


def _spec(world: PoolWorld, shop: Shop) -> RuntimeSpec:
    environment = {"DISCORD_API_BASE": world.fleet.api_url,
                   "ASTRA_PLATFORM_URL": world.internal_url,
                   "ASTRA_LOG_FORMAT": "json", "ASTRA_LOG_LEVEL": "info"}
    credential = world.container.instances().runtime_credential(shop.instance_id)
    return RuntimeSpec(shop.instance_id, "usr_pool_owner", shop.discord.bot_token, credential,
                       environment)


async def _clicker(world: PoolWorld, stop: asyncio.Event, results: list[tuple[str, float]],
                   failures: list[str]) -> None:
    """Each shop's buyers pick its product in turn, one click per shop at a time, until told to
    stop; every click must be answered (acknowledged) within CLICK_TIMEOUT."""
    turn = 0

    async def one(shop) -> None:
        buyer = shop.buyers[turn % len(shop.buyers)]
        try:
            results.append((shop.instance_id, await shop.pick(buyer, timeout=CLICK_TIMEOUT)))
        except Exception as exc:  # an unanswered click: what the test is about
            failures.append(f"{time.time():.2f} {shop.instance_id} click {turn}: "
                            f"{type(exc).__name__}: {exc}")

    while not stop.is_set():
        await asyncio.gather(*(one(shop) for shop in world.shops))
        turn += 1
        await asyncio.sleep(0.05)


async def test_no_click_goes_unanswered_while_a_pool_is_replaced(tmp_path: Path) -> None:
    world = await pool_world(tmp_path / "data", instances=3, buyers=30)
    runtime = PooledRuntime(ProcessRuntime(tmp_path / "runtimes", restart_limit=1),
                            pool_size=10, handoff_timeout=45)
    specs = [_spec(world, shop) for shop in world.shops]
    stop = asyncio.Event()
    results: list[tuple[str, float]] = []
    failures: list[str] = []
    clicker = None
    try:
        with runtime.batch():
            for spec in specs:
                runtime.ensure(spec)
        first_pool = runtime.placement_of(specs[0].instance_id)
        assert first_pool and is_pool_id(first_pool)
        assert {runtime.placement_of(s.instance_id) for s in specs} == {first_pool}
        await world.wait_ready([s.instance_id for s in specs], timeout=90)
        clicker = asyncio.create_task(_clicker(world, stop, results, failures))
        await asyncio.sleep(1.0)

        # 1. A seller restarts their bot: the whole pool gets a new generation.
        ready_before = {s.instance_id: world.beat(s.instance_id)["ready_at"] for s in specs}
        await asyncio.to_thread(runtime.restart, specs[0].instance_id)
        second_pool = runtime.placement_of(specs[0].instance_id)
        assert second_pool != first_pool
        await _wait(lambda: first_pool not in runtime.units.instances(), 90,
                    "the old generation to be drained and gone")
        # Every bot of the new generation is READY (a new session); its next heartbeat says
        # so (the old generation's last beats may arrive after the new one's first).
        await _wait(lambda: all(world.beat(s.instance_id)["ready_at"]
                                > ready_before[s.instance_id] for s in specs), 30,
                    "the new generation's heartbeats")
        await asyncio.sleep(1.0)

        # 2. A new shop joins the pool: another generation, the same hand-off.
        extra = await _add_shop(world, len(specs))
        new_spec = _spec(world, extra)
        await asyncio.to_thread(runtime.ensure, new_spec)
        third_pool = runtime.placement_of(new_spec.instance_id)
        assert third_pool not in (first_pool, second_pool)
        await _wait(lambda: second_pool not in runtime.units.instances(), 90,
                    "the second generation to be drained and gone")
        await world.wait_ready([new_spec.instance_id], timeout=60)
        world.shops.append(extra)
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        if clicker is not None:
            await clicker
        await asyncio.to_thread(runtime.shutdown)
        await world.close()

    assert not failures, "\n".join(failures)
    clicks_per_shop = {s.instance_id: sum(1 for i, _ in results if i == s.instance_id)
                       for s in world.shops[:3]}
    assert all(n >= 5 for n in clicks_per_shop.values()), clicks_per_shop
    for shop in world.shops:  # one answer per click, never two (the other session lost)
        assert all(i.acknowledged for i in shop.discord.interactions)


async def _add_shop(world: PoolWorld, n: int) -> Shop:
    c = world.container
    discord = await world.fleet.add_bot()
    instance_id = f"pool-shop-{n:03d}"
    owner = discord.add_user("dono")
    guild = discord.add_guild("Loja nova", owner=owner.id)
    channel = discord.add_channel(guild.id, "produtos")
    c.instances().create(instance_id, owner_id="usr_pool_owner", name="Loja nova", actor="test")
    c.instances().set_bot_token(instance_id, discord.bot_token, {"id": str(discord.bot.id),
                                 "application_id": str(discord.application_id)},
                                actor="test")
    product = c.catalog().create_product(instance_id, {
        "name": "Novo", "variants": [{"name": "M", "price_cents": 500}]}, actor="test")
    buyer = discord.add_user("comprador-novo")
    discord.add_member(guild.id, buyer.id)
    c.catalog().import_stock(instance_id, product.id, product.variants[0].id, "NOVO-1\nNOVO-2",
                             actor="test")
    async with DiscordRest(discord.bot_token, world.fleet.api_url) as rest:
        await rest.send_message(str(channel.id), ui.product_post(
            product, c.catalog().stock_counts(instance_id), "pt-BR"))
    # Clicked (appended to world.shops) once its bot serves.
    return Shop(instance_id, discord, guild, channel, product, [str(buyer.id)])


async def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)

