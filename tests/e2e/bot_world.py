"""A whole shop for the bot tests: fake Discord + fake Mercado Pago + the portal (webhook and
internal API) + the platform's courier + one instance's real bot (interactions.py), on one data
directory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from astra.adapters.instance_api.http import HttpInstanceAPI
from astra.adapters.instance_api.inprocess import InProcessInstanceAPI
from astra.container import Container, build_container
from astra.entrypoints.bot.runtime import InstanceBot
from astra.entrypoints.courier import Courier
from astra.entrypoints.internal.app import create_internal_app
from astra.entrypoints.notifier import Notifier
from astra.entrypoints.portal.app import create_portal_app
from astra.entrypoints.workers import housekeeping_loop
from astra.settings import Settings, ensure_dev_secrets
from tests.fakes.discord import FakeDiscord
from tests.fakes.mercadopago import FakeMercadoPagoThread
from tests.ports import free_port, free_ports  # noqa: F401 - imported from here by tests

INSTANCE = "loja-bot"
OWNER = "usr_bot_owner"
BOT_TOKEN = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
WEBHOOK_SECRET = "whsec-bot-tests"


@dataclass
class Shop:
    container: Container
    discord: FakeDiscord
    mp: FakeMercadoPagoThread
    bot: InstanceBot
    guild: Any
    seller: Any
    sales_channel: Any
    post_channel: Any
    buyer_role: Any
    instance_key: str
    # How the bot is (re)started: see restart_bot.
    new_bot: Callable[[], InstanceBot] | None = None
    bot_stop: asyncio.Event | None = None
    bot_runner: asyncio.Task[None] | None = None
    # The platform's courier (deliveries), as `astra serve` runs it.
    courier: Courier | None = None
    courier_stop: asyncio.Event | None = None
    courier_task: asyncio.Task[None] | None = None
    # The platform's internal API (its own listener), where a tenant bot reaches its data.
    internal_url: str = ""
    # The platform's notifier (staff notices, cart warnings), as `astra serve` runs it.
    notifier: Notifier | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.container, name)()

    async def eventually(
        self, check: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = await asyncio.to_thread(check)
            if result:
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    async def run_bot(self) -> None:
        self.bot_stop = asyncio.Event()
        self.bot_runner = asyncio.create_task(self.bot.run(self.bot_stop))
        await asyncio.wait_for(self.bot.ready.wait(), 10)
        await self.discord.wait_ready()

    def start_courier(self, interval: float = 0.2) -> Courier:
        """A courier as a (re)started platform runs it: a new holder for its leases."""
        self.courier = Courier(self.container, interval=interval)
        self.courier_stop = asyncio.Event()
        self.courier_task = asyncio.create_task(self.courier.run(self.courier_stop))
        return self.courier

    async def stop_courier(self) -> None:
        """What SIGTERM does to the platform's courier: the delivery in hand is finished."""
        if self.courier_stop is not None and self.courier_task is not None:
            self.courier_stop.set()
            await asyncio.wait_for(self.courier_task, 15)
        self.courier_stop = self.courier_task = None

    async def stop_bot(self) -> None:
        """What SIGTERM does to `astra instance run`."""
        if self.bot_stop is not None and self.bot_runner is not None:
            self.bot_stop.set()
            await asyncio.wait_for(self.bot_runner, 15)
        self.bot_stop = self.bot_runner = None

    async def restart_bot(self) -> None:
        """What a runtime restart does: the bot stopped, a new one (a new process, as far as
        delivery leases go) started on the same data and the same Discord."""
        assert self.new_bot is not None
        await self.stop_bot()
        self.bot = self.new_bot()
        await self.run_bot()

    def buyer(self, name: str, *, dms_closed: bool = False) -> Any:
        user = self.discord.add_user(name, dms_closed=dms_closed)
        self.discord.add_member(self.guild.id, user.id)
        return user

    async def command(
        self, name: str, options: dict[str, Any] | None = None, user: Any = None
    ) -> Any:
        handle = await self.discord.slash(
            self.guild.id,
            (user or self.seller).id,
            name,
            options or {},
            channel=self.post_channel.id,
        )
        await handle.wait_message()
        return handle


def _instance_doc(container: Container) -> dict[str, Any]:
    with container.store().portal(write=False) as uow:
        return uow.instances.require(INSTANCE)


def text_of(handle: Any) -> str:
    message = handle.message or {}
    followups = " ".join(m.get("content") or "" for m in handle.followup_messages)
    return f"{message.get('content') or ''} {followups}".strip()


@asynccontextmanager
async def running_shop(data_dir: Path, *, tenant: bool = False,
                       **extra_settings: Any) -> AsyncIterator[Shop]:
    """With `tenant=True` the bot runs as an instance runtime does: everything through the
    platform's internal API over HTTP, with its runtime credential and nothing else."""
    discord = FakeDiscord(bot_token=BOT_TOKEN)
    await discord.start()
    mp = FakeMercadoPagoThread(webhook_secret=WEBHOOK_SECRET)
    mp_base = await asyncio.to_thread(mp.start)
    port = free_port()
    settings = ensure_dev_secrets(
        Settings(
            data_dir=data_dir,
            discord_api_base=discord.api_url,
            mercadopago_access_token=mp.access_token,
            mercadopago_api_base=mp_base,
            mercadopago_webhook_secret=WEBHOOK_SECRET,
            public_url=f"http://127.0.0.1:{port}",
            **extra_settings,
        )
    )
    container = build_container(settings)
    portal = web.AppRunner(create_portal_app(container))
    await portal.setup()
    await web.TCPSite(portal, "127.0.0.1", port).start()
    internal = web.AppRunner(create_internal_app(container))
    await internal.setup()
    internal_url = f"http://127.0.0.1:{free_port()}"
    await web.TCPSite(internal, "127.0.0.1", int(internal_url.rsplit(":", 1)[1])).start()

    seller_user = discord.add_user("vendedor")
    guild = discord.add_guild("Loja do Vendedor", owner=seller_user.id)
    discord.add_member(guild.id, seller_user.id, admin=True)
    sales_channel = discord.add_channel(guild.id, "vendas")
    post_channel = discord.add_channel(guild.id, "produtos")
    buyer_role = discord.add_role(guild.id, "Cliente")

    instances = container.instances()
    await asyncio.to_thread(
        instances.create, INSTANCE, owner_id=OWNER, name="Loja do Bot", actor="test"
    )
    profile = {
        "id": str(discord.bot.id),
        "username": discord.bot.username,
        "application_id": str(discord.application_id),
    }
    await asyncio.to_thread(instances.set_bot_token, INSTANCE, BOT_TOKEN, profile, actor="test")
    key = await asyncio.to_thread(instances.rotate_instance_key, INSTANCE, actor="test")
    token = await asyncio.to_thread(instances.bot_token, INSTANCE)
    credential = await asyncio.to_thread(instances.runtime_credential, INSTANCE)

    def new_bot() -> InstanceBot:
        api: Any = (
            HttpInstanceAPI(internal_url, INSTANCE, credential)
            if tenant
            else InProcessInstanceAPI(container, INSTANCE)
        )
        return InstanceBot(
            api,
            token,
            discord_api_base=discord.api_url,
            janitor_interval=0.1,
            close_paid_after=timedelta(seconds=0),
        )

    shop = Shop(
        container,
        discord,
        mp,
        new_bot(),
        guild,
        seller_user,
        sales_channel,
        post_channel,
        buyer_role,
        key,
        new_bot=new_bot,
        internal_url=internal_url,
    )
    # The platform's housekeeping (cart expiry, wallet postings), as `astra serve` runs it.
    housekeeping_stop = asyncio.Event()
    housekeeping = asyncio.create_task(housekeeping_loop(container, housekeeping_stop, 0.2))
    shop.notifier = Notifier(container, tick=0.1)
    notifier = asyncio.create_task(shop.notifier.run(housekeeping_stop))
    try:
        shop.start_courier()
        await shop.run_bot()
        yield shop
    finally:
        await shop.stop_bot()
        await shop.stop_courier()
        housekeeping_stop.set()
        await asyncio.wait_for(housekeeping, 10)
        await asyncio.wait_for(notifier, 10)
        await internal.cleanup()
        await portal.cleanup()
        await discord.stop()
        await asyncio.to_thread(mp.stop)
        container.store().close()
