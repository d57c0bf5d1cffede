"""Two sellers on one `astra serve` (in this process), one of them under attack: another process
holds seller A's store lock (as a long stock import does) while a flood of A's own requests hits
its portal routes; seller B's sales are timed meanwhile, end to end.

    world = await held_world(data_dir, dsn)   # dsn "" for the JSON store
    idle = await world.sale()                 # B: PIX approved -> paid, webhook, key DM, notice
    with world.holding():                     # A's lock held from another process
        async with world.flooding():          # A's routes flooded (its seller's own session)
            busy = await world.sale()
    await world.close()

Payments go through the Mercado Pago adapter (real SDK) against the fake, its signed webhooks
to the portal; keys and staff notices go to the fake Discord; B's outgoing webhooks to a local
receiver that notes when each arrived. Used by tests/integration/test_held_instance.py and
bench/other_seller.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from dependency_injector import providers

from astra.container import Container, build_container
from astra.ports.store import StoreBusy
from astra.settings import Settings, ensure_dev_secrets
from tests.fakes.discord.fleet import FakeDiscordFleet
from tests.fakes.mercadopago import FakeMercadoPagoThread
from tests.ports import free_port

HELD, OTHER = "loja-atacada", "loja-vizinha"
PASSWORD = "senha-forte-1234"
WEBHOOK_SECRET = "whsec-held-1234567890"

# Holds one instance's lock until killed: flock on the JSON store's lock file, or the advisory
# lock PostgreSQL units of work take on the domain, in a connection of its own.
_HOLD_JSON = (
    "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
    "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(3600)"
)
_HOLD_PG = (
    "import sys, time, psycopg; c = psycopg.connect(sys.argv[1], autocommit=True); "
    "c.execute('SELECT pg_advisory_lock(%s, hashtext(%s))', [int(sys.argv[2]), sys.argv[3]]); "
    "print('held', flush=True); time.sleep(3600)"
)


@dataclass
class Sale:
    """One sale of seller B, in seconds from the PIX approval."""

    order_id: str
    paid: float
    webhook: float
    dm: float
    notice: float


@dataclass
class Seller:
    instance_id: str
    email: str
    discord: Any
    guild: Any
    log_channel: Any
    product_id: str
    variant_id: str
    buyers: list[str] = field(default_factory=list)


@dataclass
class HeldWorld:
    container: Container
    fake_mp: FakeMercadoPagoThread
    fleet: FakeDiscordFleet
    held: Seller
    other: Seller
    portal: str
    data_dir: Path
    dsn: str
    stop: asyncio.Event
    server: asyncio.Task[None]
    receiver: web.AppRunner
    arrived: dict[str, float]  # order id -> when its order.paid webhook came (monotonic)
    flood_statuses: dict[int, int] = field(default_factory=dict)
    _sold: int = 0

    # -- B's sale ---------------------------------------------------------------------------

    async def checkout(self, seller: Seller | None = None) -> tuple[Seller, str, str, Any]:
        """A buyer's cart and PIX (seller B by default): (seller, buyer, order id, charge)."""
        seller = seller or self.other
        c = self.container
        buyer = seller.buyers[self._sold % len(seller.buyers)]
        self._sold += 1
        await asyncio.to_thread(c.sales().add_item, seller.instance_id, buyer,
                                seller.product_id, seller.variant_id, 1)
        order, charge = await asyncio.to_thread(c.payments().pay_cart, seller.instance_id, buyer)
        assert charge is not None
        return seller, buyer, order.id, charge

    async def sale(self, seller: Seller | None = None, timeout: float = 30.0) -> Sale:
        return await self.pay(await self.checkout(seller), timeout)

    async def pay(self, checkout: tuple[Seller, str, str, Any], timeout: float = 30.0) -> Sale:
        """The buyer pays the PIX: times to paid, webhook, key DM and staff notice."""
        seller, buyer, order_id, charge = checkout
        c = self.container
        dms_before = len(seller.discord.dm_messages(buyer))
        approved = time.monotonic()
        await asyncio.to_thread(self.fake_mp.approve, charge.id)  # its webhook goes out now
        times: dict[str, float] = {}
        deadline = approved + timeout
        while len(times) < 4 and time.monotonic() < deadline:
            now = time.monotonic() - approved
            if "paid" not in times:
                try:
                    got = await asyncio.to_thread(c.sales().get_order, seller.instance_id,
                                                  order_id)
                except StoreBusy:
                    got = None
                if got is not None and got.status.value in ("paid", "delivered"):
                    times["paid"] = time.monotonic() - approved
            if "webhook" not in times and order_id in self.arrived:
                times["webhook"] = self.arrived[order_id] - approved
            if "dm" not in times and len(seller.discord.dm_messages(buyer)) > dms_before:
                times["dm"] = now
            if "notice" not in times and any(
                    order_id in str(m.get("content")) and "✅" in str(m.get("content"))
                    for m in seller.discord.messages(seller.log_channel)):
                times["notice"] = now
            await asyncio.sleep(0.01)
        missing = {"paid", "webhook", "dm", "notice"} - set(times)
        assert not missing, f"{seller.instance_id}: no {sorted(missing)} within {timeout}s"
        return Sale(order_id, times["paid"], times["webhook"], times["dm"], times["notice"])

    async def login_and_me(self, seller: Seller | None = None) -> tuple[float, float]:
        """Seconds for the seller's login, then for their /api/me."""
        seller = seller or self.other
        # unsafe: the portal is at an IP address, whose cookies aiohttp drops by default.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            started = time.monotonic()
            async with http.post(f"{self.portal}/auth/local/login",
                                 json={"email": seller.email, "password": PASSWORD}) as resp:
                assert resp.status == 200, (resp.status, await resp.text())
            login = time.monotonic() - started
            started = time.monotonic()
            async with http.get(f"{self.portal}/api/me") as resp:
                assert resp.status == 200, resp.status
                await resp.read()
            return login, time.monotonic() - started

    # -- the attack -------------------------------------------------------------------------

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Seller A's lock held by another process until the block ends."""
        if self.dsn:
            from astra.adapters.store.postgresql.unit_of_work import DOMAIN_LOCK_NAMESPACE

            args = [sys.executable, "-c", _HOLD_PG, self.dsn, str(DOMAIN_LOCK_NAMESPACE),
                    self.held.instance_id]
        else:
            lock = self.data_dir / "instances" / self.held.instance_id / ".lock"
            args = [sys.executable, "-c", _HOLD_JSON, str(lock)]
        holder = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            yield
        finally:
            holder.kill()
            holder.wait()

    @contextlib.asynccontextmanager
    async def flooding(self, clients: int = 40) -> AsyncIterator[None]:
        """`clients` connections of seller A's own session, from another process (an
        attacker's CPU is not the platform's), each asking for A's products and changing one,
        again and again, until the block ends; `flood_statuses` then counts the answers."""
        flooder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.held_instance", self.portal, self.held.email,
            self.held.instance_id, self.held.product_id, str(clients),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parents[1]))
        assert flooder.stdin is not None and flooder.stdout is not None
        try:
            assert (await asyncio.wait_for(flooder.stdout.readline(), 30)).strip() == b"flooding"
            yield
        finally:
            flooder.stdin.close()  # the end of its stdin stops it
            out, _ = await asyncio.wait_for(flooder.communicate(), 30)
            self.flood_statuses = {int(k): v for k, v in json.loads(out or b"{}").items()}

    async def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server, 60)
        await self.receiver.cleanup()
        await self.fleet.stop()
        await asyncio.to_thread(self.fake_mp.stop)
        self.container.store().close()


async def _seller(c: Container, fleet: FakeDiscordFleet, instance_id: str, n: int,
                  hook_url: str) -> Seller:
    discord = await fleet.add_bot()
    email = f"{instance_id}@example.com"
    user = c.accounts().register(email, PASSWORD, f"Vendedor {n}")
    with c.store().portal() as uow:  # a paying seller: their bot is not suspended
        doc = uow.users.get(user["id"])
        doc["plan"] = {"kind": "paid",
                       "until": (datetime.now(UTC) + timedelta(days=30)).isoformat()}
        uow.users.put(doc)
        uow.commit()
    owner = discord.add_user("dono")
    guild = discord.add_guild(f"Loja {n}", owner=owner.id)
    logs = discord.add_channel(guild.id, "logs")
    instances = c.instances()
    instances.create(instance_id, owner_id=user["id"], name=f"Loja {n}", actor="test")
    instances.set_bot_token(instance_id, discord.bot_token,
                            {"id": str(discord.bot.id),
                             "application_id": str(discord.application_id)}, actor="test")
    instances.bind_guild(instance_id, str(guild.id), actor="test")
    instances.update_settings(instance_id, {"log_channel_id": str(logs.id)}, actor="test")
    # Its bot is not run here (the platform's courier and notifier talk to Discord themselves).
    instances.set_desired_state(instance_id, "stopped", actor="test")
    product = c.catalog().create_product(instance_id, {
        "name": f"Produto {n}", "description": "Chave digital",
        "variants": [{"name": "Mensal", "price_cents": 1990, "max_per_order": 5}]},
        actor="test")
    c.catalog().import_stock(instance_id, product.id, product.variants[0].id,
                             "\n".join(f"KEY-{n}-{i:04d}" for i in range(400)), actor="test")
    c.outgoing_webhooks().configure(instance_id, hook_url, events=["order.paid"], actor="test")
    seller = Seller(instance_id, email, discord, guild, logs, product.id, product.variants[0].id)
    for b in range(8):
        buyer = discord.add_user(f"comprador{b}")
        discord.add_member(guild.id, buyer.id)
        seller.buyers.append(str(buyer.id))
    return seller


async def held_world(data_dir: Path, dsn: str = "") -> HeldWorld:
    from astra.entrypoints.serve import serve

    fake_mp = FakeMercadoPagoThread(webhook_secret=WEBHOOK_SECRET)
    mp_base = fake_mp.start()
    fleet = FakeDiscordFleet()
    await fleet.start()
    arrived: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        order = ((body.get("data") or {}).get("order") or {}).get("id")
        if order:
            arrived.setdefault(str(order), time.monotonic())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = web.AppRunner(app)
    await receiver.setup()
    hook_port = free_port()
    await web.TCPSite(receiver, "127.0.0.1", hook_port).start()

    portal_port = free_port()
    portal = f"http://127.0.0.1:{portal_port}"
    settings = ensure_dev_secrets(Settings(
        data_dir=data_dir, database_url=dsn, portal_port=portal_port, admin_port=0,
        internal_port=0, runtime="process", public_url=portal,
        discord_api_base=fleet.api_url, mercadopago_access_token=fake_mp.access_token,
        mercadopago_api_base=mp_base, mercadopago_webhook_secret=WEBHOOK_SECRET))
    c = build_container(settings)
    hook_url = f"http://127.0.0.1:{hook_port}/hook"
    held = await _seller(c, fleet, HELD, 0, hook_url)
    other = await _seller(c, fleet, OTHER, 1, hook_url)
    c.store().close()  # serve opens it as it would at start-up
    c.settings.override(providers.Object(settings))
    stop = asyncio.Event()
    ready: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve(c, stop=stop, on_ready=ready.set_result))
    await asyncio.wait_for(ready, 60)
    return HeldWorld(c, fake_mp, fleet, held, other, portal, data_dir, dsn, stop, server,
                     receiver, arrived)


async def _flood(portal: str, email: str, instance_id: str, product_id: str,
                 clients: int) -> dict[int, int]:
    """The flooder's side (`python -m tests.held_instance ...`): until its stdin ends."""
    statuses: dict[int, int] = {}
    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{portal}/auth/local/login",
                             json={"email": email, "password": PASSWORD}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(f"{portal}/api/me") as resp:
            csrf = (await resp.json())["csrf_token"]
        base = f"{portal}/api/instances/{instance_id}"

        async def client(n: int) -> None:
            while not stop.is_set():
                try:
                    if n % 2:
                        request = http.get(f"{base}/products")
                    else:
                        request = http.patch(f"{base}/products/{product_id}",
                                             json={"name": f"Produto {n}"},
                                             headers={"X-CSRF-Token": csrf})
                    async with request as resp:
                        await resp.read()
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(client(n)) for n in range(clients)]
        print("flooding", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return statuses


if __name__ == "__main__":
    portal_, email_, instance_, product_, clients_ = sys.argv[1:6]
    print(json.dumps(asyncio.run(_flood(portal_, email_, instance_, product_, int(clients_)))))
