"""Many shops for pool tests and benchmarks: a fleet of fake Discord bots (one per instance, one
REST base), the platform (store, internal API over HTTP, courier) with one instance per bot,
each with a guild, a buyer and a product post its buyers pick from.

    world = await pool_world(tmp_path, instances=3)
    ...                                  # a pool's bots use world.fleet.api_url and
    await world.close()                  # world.internal_url with world.members()
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from astra.adapters.chat.discord import ui
from astra.adapters.chat.discord.rest import DiscordRest
from astra.container import Container, build_container
from astra.entrypoints.internal.app import create_internal_app
from astra.settings import Settings, ensure_dev_secrets
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.fleet import FakeDiscordFleet

OWNER = "usr_pool_owner"


@dataclass
class Shop:
    instance_id: str
    discord: FakeDiscord
    guild: Any
    post_channel: Any
    product: Any
    buyers: list[str] = field(default_factory=list)

    async def pick(self, buyer: str, timeout: float = 15.0) -> float:
        """A buyer picks the product's first variant; returns ms until the bot answered (its
        deferral; the cart channel and the follow-up come after)."""
        pressed = time.perf_counter()
        handle = await self.discord.select(
            self.post_channel.id, buyer, f"astra:variant:{self.product.id}",
            [self.product.variants[0].id])
        await handle.response(timeout=timeout)
        return (time.perf_counter() - pressed) * 1000


@dataclass
class PoolWorld:
    container: Container
    fleet: FakeDiscordFleet
    shops: list[Shop]
    internal_url: str
    runner: web.AppRunner

    def members(self, extra: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
        """ASTRA_POOL_MEMBERS entries (id, token, runtime credential) of every shop."""
        instances = self.container.instances()
        out = [{"id": s.instance_id, "token": s.discord.bot_token,
                "key": instances.runtime_credential(s.instance_id)} for s in self.shops]
        return out + list(extra or [])

    def members_json(self, extra: list[dict[str, str]] | None = None) -> str:
        return json.dumps(self.members(extra))

    def beat(self, instance_id: str) -> dict[str, Any]:
        return self.container.heartbeats()(instance_id) or {}

    async def wait_ready(self, ids: list[str], timeout: float = 60.0) -> float:
        started = time.monotonic()
        while not all(self.beat(i).get("ready_at") for i in ids):
            if time.monotonic() - started > timeout:
                missing = [i for i in ids if not self.beat(i).get("ready_at")]
                raise TimeoutError(f"not ready after {timeout}s: {missing}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.fleet.stop()
        self.container.store().close()


async def pool_world(data_dir: Path, *, instances: int, buyers: int = 1,
                     prefix: str = "pool-shop", internal_port: int = 0,
                     host: str = "127.0.0.1") -> PoolWorld:
    """`host`: where the fake Discord and the internal API listen (a bot in a container
    reaches the host through its network's gateway address, never through loopback)."""
    fleet = FakeDiscordFleet()
    await fleet.start(host=host)
    c = build_container(ensure_dev_secrets(Settings(data_dir=data_dir,
                                                    discord_api_base=fleet.api_url)))
    shops = []
    for n in range(instances):
        discord = await fleet.add_bot()
        instance_id = f"{prefix}-{n:03d}"
        owner = discord.add_user("dono")
        guild = discord.add_guild(f"Loja {n}", owner=owner.id)
        post_channel = discord.add_channel(guild.id, "produtos")
        c.instances().create(instance_id, owner_id=OWNER, name=f"Loja {n}", actor="test")
        c.instances().set_bot_token(instance_id, discord.bot_token,
                                    {"id": str(discord.bot.id),
                                     "application_id": str(discord.application_id)},
                                    actor="test")
        c.instances().bind_guild(instance_id, str(guild.id), actor="test")
        product = c.catalog().create_product(instance_id, {
            "name": f"Produto {n}", "description": "Chave digital",
            "variants": [{"name": "Mensal", "price_cents": 1990, "max_per_order": 5}]},
            actor="test")
        c.catalog().import_stock(
            instance_id, product.id, product.variants[0].id,
            "\n".join(f"KEY-{n}-{i:04d}" for i in range(max(buyers, 1) * 2)), actor="test")
        async with DiscordRest(discord.bot_token, fleet.api_url) as rest:
            await rest.send_message(
                str(post_channel.id),
                ui.product_post(product, c.catalog().stock_counts(instance_id), "pt-BR"))
        shop = Shop(instance_id, discord, guild, post_channel, product)
        for b in range(buyers):
            user = discord.add_user(f"comprador{b}")
            discord.add_member(guild.id, user.id)
            shop.buyers.append(str(user.id))
        shops.append(shop)
    runner = web.AppRunner(create_internal_app(c))
    await runner.setup()
    site = web.TCPSite(runner, host, internal_port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return PoolWorld(c, fleet, shops, f"http://{host}:{port}", runner)
