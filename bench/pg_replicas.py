"""Replicas on PostgreSQL (DESIGN.md "Performance" 6): `astra serve` as one and as two processes
on one database, same run.

    python bench/pg_replicas.py [--buyers 1000] [--keys 100] [--webhooks 400] [--shops 8]

Buyers come the way a bot brings them, over the internal API (add to cart, pay: a PIX charge on
the Mercado Pago fake, tests/fakes/mercadopago.py), split across the replicas, each with a real
click on the shop's bot in the Discord fake (the replicas ask Discord who clicked); the charges are
approved and their signed webhooks sprayed across the replicas' portals. Checkouts per second
spread the buyers over `--shops` sellers (one instance's writes are serialised by design, so
a second replica can only add throughput across sellers); the race is 1,000 buyers for one
shop's 100 keys. Prints, as its last lines:
    RESULT pg_checkout_race sold=<n> duplicates=<n> lost=<n>          (2 replicas)
    RESULT pg_checkouts_per_s_1 <x>
    RESULT pg_checkouts_per_s_2 <x>
    RESULT pg_checkouts_per_s_ratio <x> target>1
    RESULT pg_machine_cpu_busy_1 <0..1>, pg_machine_cpu_busy_2 <0..1>  (all processes)
    RESULT webhook_to_paid_p99_ms <x>                                  (2 replicas, PostgreSQL)
and exits 0. The PostgreSQL server is ASTRA_TEST_DATABASE_URL's or a throwaway cluster
(tests/pg.py). `ReplicaSet` and the helpers below are what tests/integration/test_replicas.py
drives too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.ports import free_ports  # noqa: E402

INSTANCE = "replica-shop"
OWNER = "usr_replica_owner"
WEBHOOK_SECRET = "replica-webhook-secret"
# Buyers served at once through one replica: the internal API runs 6 requests of one instance at
# a time (entrypoints/internal/api.py, CONCURRENT) and queues the rest, so more in flight only
# waits there, and on a loaded machine past its 5 s queue limit.
IN_FLIGHT = 6
# The loops `astra serve` runs on one replica at a time (serve.led_loops), sorted.
LOOPS = ["courier", "housekeeping", "monitor", "notifier", "reconcile", "stock-importer",
         "subscriptions", "webhook-sender"]
# The same platform secrets for every replica: one platform, several processes.
SECRETS = {
    "PORTAL_SESSION_SECRET": secrets.token_urlsafe(32),
    "ADMIN_PANEL_TOKEN": secrets.token_urlsafe(32),
    "ASTRA_MASTER_KEY": secrets.token_urlsafe(32),
    "ADMIN_PANEL_PASSWORD": secrets.token_urlsafe(16),
}


@dataclass
class Replica:
    name: str
    data_dir: Path
    env: dict[str, str]
    portal_port: int = 0
    admin_port: int = 0
    internal_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def start(self) -> None:
        """A fresh process (on fresh ports: a killed one's may linger in TIME_WAIT)."""
        self.portal_port, self.admin_port, self.internal_port = free_ports(3)
        env = dict(self.env)
        env.update({
            "ASTRA_DATA_DIR": str(self.data_dir),
            "ASTRA_PORTAL_PORT": str(self.portal_port),
            "ASTRA_ADMIN_PORT": str(self.admin_port),
            "ASTRA_INTERNAL_PORT": str(self.internal_port),
        })
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "astra.entrypoints.cli", "serve"],
            cwd=self.data_dir.parent, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to the database."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def health(self, http: aiohttp.ClientSession) -> dict[str, Any] | None:
        try:
            async with http.get(f"{self.portal_url}/health",
                                timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return await resp.json() if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
                if await self.health(http) is not None:
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {timeout}s:\n{self.log_tail()}")


@dataclass
class ReplicaSet:
    """N `astra serve` processes on one database, with the Mercado Pago fake."""

    dsn: str
    root: Path
    mp_base: str
    mp_token: str
    count: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("ASTRA_", "MERCADOPAGO_", "PORTAL_", "ADMIN_"))}
        base.update(SECRETS)
        base.update({
            "ASTRA_DATABASE_URL": self.dsn,
            "ASTRA_RUNTIME": "process",
            "ASTRA_LOG_LEVEL": "info",
            "ASTRA_LOG_FORMAT": "json",
            "MERCADOPAGO_ACCESS_TOKEN": self.mp_token,
            "MERCADOPAGO_API_BASE": self.mp_base,
            "MERCADOPAGO_WEBHOOK_SECRET": WEBHOOK_SECRET,
            # Buyers in a race come much faster than one bot's share of the internal API.
            "ASTRA_INTERNAL_RATE_PER_SECOND": "100000",
            "ASTRA_INTERNAL_RATE_BURST": "100000",
            # Only webhooks settle orders here; the reconcile loop's search would hide whether
            # they did.
            "ASTRA_RECONCILE_INTERVAL_SECONDS": "3600",
            "ASTRA_RECONCILE_OPEN_INTERVAL_SECONDS": "3600",
        })
        base.update(self.extra_env)
        self.replicas = [Replica(f"replica{i + 1}", self.root / f"replica{i + 1}" / "data", base)
                         for i in range(self.count)]

    async def start(self) -> None:
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            await replica.wait_ready()

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()

    async def leaders(self) -> dict[str, list[str]]:
        """Replica name -> the loops it leads, as its /health says."""
        async with aiohttp.ClientSession() as http:
            out = {}
            for replica in self.replicas:
                body = await replica.health(http) if replica.alive() else None
                out[replica.name] = (body or {}).get("leads", [])
            return out


# -- the world the replicas serve ----------------------------------------------------------------


def platform_container(dsn: str, data_dir: Path, mp_base: str, mp_token: str) -> Any:
    """A container on the same database and secrets as the replicas (to prepare and audit)."""
    from astra.container import build_container
    from astra.settings import Settings

    return build_container(Settings(
        data_dir=data_dir, database_url=dsn,
        session_secret=SECRETS["PORTAL_SESSION_SECRET"],
        admin_token=SECRETS["ADMIN_PANEL_TOKEN"], master_key=SECRETS["ASTRA_MASTER_KEY"],
        admin_password=SECRETS["ADMIN_PANEL_PASSWORD"],
        mercadopago_access_token=mp_token, mercadopago_api_base=mp_base,
        mercadopago_webhook_secret=WEBHOOK_SECRET,
    ))


@dataclass
class Shop:
    instance_id: str
    product_id: str
    variant_id: str
    credential: str
    keys: int


def _paying_owner(c: Any) -> None:
    """The shops' seller, on a paid plan: the replicas' runtime monitor suspends an instance
    whose owner has no live plan, and the internal API then refuses its bot."""
    from datetime import UTC, timedelta

    from astra.domain.timestamps import iso

    with c.store().portal() as uow:
        if uow.users.get(OWNER) is None:
            until = datetime.now(UTC) + timedelta(days=30)
            uow.users.put({"id": OWNER, "email": "replicas@example.com", "name": "Replicas",
                           "plan": {"kind": "paid", "until": iso(until)}})
            uow.commit()


def prepare_shop(c: Any, instance_id: str, keys: int, *, cart_ttl: int | None = None) -> Shop:
    _paying_owner(c)
    c.instances().create(instance_id, owner_id=OWNER, name="Replicas", actor="bench")
    if cart_ttl is not None:
        c.instances().update_settings(instance_id, {"cart_ttl_seconds": cart_ttl},
                                      actor="bench")
    product = c.catalog().create_product(instance_id, {
        "name": "Chave", "variants": [{"name": "Única", "price_cents": 1000,
                                       "max_per_order": 1}]}, actor="bench")
    variant = product.variants[0].id
    if keys:
        c.catalog().import_stock(instance_id, product.id, variant,
                                 "\n".join(f"{instance_id}-{i:06d}" for i in range(keys)),
                                 actor="bench")
    credential = c.instances().runtime_credential(instance_id)
    return Shop(instance_id, product.id, variant, credential, keys)


@dataclass
class BuyerClicks:
    """Buyers' clicks on one shop's bot in a Discord fake running on its own thread, deferred
    as the bot defers them: what a runtime hands the platform, which asks Discord who clicked.
    `discord` is a FakeDiscordThread (or a fleet member proxied onto the fleet's loop);
    `api_url` is the Discord the replicas talk to."""

    discord: Any
    api_url: str
    guild_id: str
    channel_id: str
    made: set[str] = field(default_factory=set)

    def _click(self, buyer_id: str) -> Any:
        if buyer_id not in self.made:
            if buyer_id not in self.discord.world.users:
                self.discord.add_user(f"buyer{buyer_id[-6:]}", user_id=buyer_id)
            self.discord.add_member(self.guild_id, buyer_id)
            self.made.add(buyer_id)
        return self.discord.interaction_from(buyer_id, self.channel_id)

    async def __call__(self, http: aiohttp.ClientSession, buyer_id: str) -> Any:
        from tests.fakes.discord.bot_side import deferred

        handle = await asyncio.to_thread(self._click, buyer_id)
        return await deferred(http, self.api_url, handle)


def shop_bot(c: Any, instance_id: str, discord: Any, api_url: str) -> BuyerClicks:
    """Give the shop the Discord fake's bot (its token, its server, a channel) and return the
    clicks its buyers make there."""
    bot = discord.bot
    guild = discord.add_guild(f"Servidor de {instance_id}", owner=bot.id)
    channel = discord.add_channel(guild.id, "produtos")
    c.instances().set_bot_token(
        instance_id, discord.bot_token,
        {"id": str(bot.id), "username": bot.username,
         "application_id": str(discord.application_id)}, actor="bench")
    c.instances().bind_guild(instance_id, str(guild.id), actor="bench")
    return BuyerClicks(discord, api_url, str(guild.id), str(channel.id))


@dataclass
class RaceOutcome:
    charges: dict[str, str] = field(default_factory=dict)  # order id -> charge id
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def checkout_race(shop: Shop, replicas: list[Replica], buyers: int,
                        first_buyer: int = 0, in_flight: int = IN_FLIGHT, *,
                        clicks: BuyerClicks) -> RaceOutcome:
    """`buyers` buyers at once, buyer n on replica n % len(replicas): a click on the shop's
    bot, then add the one product to the cart and pay (an order and its PIX charge)."""
    from astra.adapters.instance_api.http import HttpInstanceAPI
    from astra.domain.errors import DomainError, OutOfStock

    apis = [HttpInstanceAPI(r.internal_url, shop.instance_id, shop.credential)
            for r in replicas]
    # What one bot runtime keeps in flight at most (its HTTP client's connection limit): more
    # would only wait in its queue until the client's timeout.
    turns = [asyncio.Semaphore(in_flight) for _ in replicas]
    outcome = RaceOutcome()
    discord_http = aiohttp.ClientSession()

    async def buyer(n: int) -> None:
        async with turns[n % len(apis)]:
            await one_buyer(n)

    async def one_buyer(n: int) -> None:
        api = apis[n % len(apis)]
        buyer_id = str(200_000_000_000_000_000 + first_buyer + n)
        try:
            click = await clicks(discord_http, buyer_id)
            await api.add_item(click, shop.product_id, shop.variant_id, 1)
            start = await api.pay(click)
        except OutOfStock:
            outcome.refused += 1
            return
        except DomainError as exc:
            outcome.errors.append(f"{exc.code}: {exc.message()}")
            return
        except Exception as exc:
            outcome.errors.append(f"{type(exc).__name__}: {exc}")
            return
        if start.charge is None:
            outcome.errors.append("no charge")
            return
        outcome.charges[start.order.id] = start.charge.id

    started = time.perf_counter()
    try:
        await asyncio.gather(*(buyer(n) for n in range(buyers)))
    finally:
        await discord_http.close()
        for api in apis:
            await api.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


async def spray_webhooks(fake: Any, charges: list[str], replicas: list[Replica], *,
                         copies: int = 2, concurrency: int = 16, seed: int = 7,
                         during: Any = None) -> tuple[dict[str, float], dict[str, int]]:
    """Every charge's signed webhook `copies` times, each to a random live replica, shuffled.
    Returns (first send time of each charge, status counts); a refused connection (a replica
    down) is tried on another, as Mercado Pago would retry. `during(sent, replica, status,
    charge id)` is awaited after each answer (a test kills a replica from there)."""
    rng = random.Random(seed)
    jobs = [cid for cid in charges for _ in range(copies)]
    rng.shuffle(jobs)
    sent_at: dict[str, float] = {}
    statuses: dict[str, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for cid in jobs:
        queue.put_nowait(cid)
    sent = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal sent
        while not queue.empty():
            cid = queue.get_nowait()
            sent_at.setdefault(cid, time.time())
            for _ in range(50):
                live = [r for r in replicas if r.alive()] or replicas
                target = rng.choice(live)
                url, headers, body = fake.build_webhook(
                    cid, url=f"{target.portal_url}/api/webhooks/mercadopago")
                try:
                    async with http.post(url, headers=headers, data=body) as resp:
                        await resp.read()
                        key = str(resp.status)
                except (aiohttp.ClientError, TimeoutError):
                    key = "unreachable"
                statuses[key] = statuses.get(key, 0) + 1
                if key == "200":
                    break
                await asyncio.sleep(0.1)
            sent += 1
            if during is not None:
                await during(sent, target, key, cid)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return sent_at, statuses


def paid_times(c: Any, instance_id: str, order_ids: list[str]) -> dict[str, float]:
    """Order id -> paid_at (epoch seconds) of the orders that are paid."""
    wanted = set(order_ids)
    with c.store().instance(instance_id, write=False) as uow:
        orders = [o for o in uow.orders.all() if o["id"] in wanted]
    return {o["id"]: datetime.fromisoformat(o["paid_at"]).timestamp()
            for o in orders if o.get("paid_at")}


def wait_paid(c: Any, instance_id: str, order_ids: list[str], timeout: float
              ) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    paid: dict[str, float] = {}
    while time.monotonic() < deadline:
        paid = paid_times(c, instance_id, order_ids)
        if len(paid) == len(order_ids):
            break
        time.sleep(0.1)
    return paid


@dataclass
class Audit:
    sold: int
    duplicates: int
    lost: int
    paid_orders: int
    credits: int  # sale credits in the seller's wallet
    credited_orders: int  # distinct orders those credits are for


def audit(c: Any, instance_id: str, keys: int) -> Audit:
    """Every key in exactly one consistent state; one wallet credit per paid order."""
    with c.store().instance(instance_id, write=False) as uow:
        stock = uow.stock.all()
        orders = uow.orders.all()
    owners: dict[str, list[str]] = {}
    paid = [o for o in orders if o["status"] in ("paid", "delivered")]
    for o in paid:
        for line in o["lines"]:
            for kid in line["key_ids"]:
                owners.setdefault(kid, []).append(o["id"])
    duplicates = sum(len(v) - 1 for v in owners.values() if len(v) > 1)
    sold = sum(1 for k in stock if k["state"] == "sold")
    consistent = sum(
        1 for k in stock
        if (k["state"] == "sold" and owners.get(k["id"]) == [k["order_id"]])
        or (k["state"] == "available" and k["id"] not in owners and not k.get("cart_id"))
        or (k["state"] == "reserved" and k["id"] not in owners)
    )
    credits = [e for e in c.wallet().ledger(OWNER)
               if e.get("kind") == "sale_credit" and e.get("instance_id") == instance_id]
    refs = {str(e.get("order_id")) for e in credits}
    return Audit(sold, duplicates, keys - consistent, len(paid), len(credits), len(refs))


def wait_credited(c: Any, instance_id: str, keys: int, timeout: float) -> Audit:
    """The audit once every paid order's credit reached the wallet (the housekeeping loop's
    leader moves them there every few seconds), or at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = audit(c, instance_id, keys)
        if result.credits >= result.paid_orders or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


# -- the benchmark -------------------------------------------------------------------------------


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


async def _throughput(server: Any, root: Path, fake: Any, base: str, count: int, buyers: int,
                      shops: int, sets: list[ReplicaSet], fleet: Any) -> tuple[float, float]:
    """Checkouts (cart + PIX charge) per second through `count` replicas, the buyers spread
    over `shops` sellers' instances: one instance's writes are serialised (its keys must never
    be sold twice), so what more processes can add is across sellers, as on a real platform.
    Returns (checkouts per second, how busy the machine's CPUs were meanwhile, 0..1): this
    process, the Mercado Pago fake and the PostgreSQL server share them with the replicas, so
    on a small machine a second replica finds little CPU left to add throughput with."""
    dsn = server.create_database()
    c = platform_container(dsn, root / f"setup{count}", base, fake.access_token)
    per = buyers // shops
    # Enough keys for every buyer: this measures checkouts, not refusals.
    stock = [prepare_shop(c, f"{INSTANCE}-{i}", per) for i in range(shops)]
    clicks = [shop_bot(c, shop.instance_id, fleet_bot(fleet), fleet.api_url) for shop in stock]
    replicas = ReplicaSet(dsn, root / f"set{count}", base, fake.access_token, count=count,
                          extra_env={"ASTRA_LOG_LEVEL": "warning",
                                     "DISCORD_API_BASE": fleet.api_url})
    sets.append(replicas)
    await replicas.start()
    started = time.perf_counter()
    busy0, total0 = cpu_ticks()
    races = await asyncio.gather(*(checkout_race(shop, replicas.replicas, per, clicks=click)
                                   for shop, click in zip(stock, clicks, strict=True)))
    seconds = time.perf_counter() - started
    busy1, total1 = cpu_ticks()
    errors = [e for race in races for e in race.errors]
    if errors:
        print(f"{count} replica(s): {len(errors)} errors, e.g. {errors[:3]}", file=sys.stderr)
    replicas.stop()
    c.store().close()
    return (sum(len(race.charges) for race in races) / seconds,
            (busy1 - busy0) / max(1, total1 - total0))


def fleet_bot(fleet: Any) -> Any:
    """A new bot of a fleet running on its own thread, its methods run on the fleet's loop."""
    from tests.fakes.discord.thread import _OnLoop

    return _OnLoop(fleet.add_bot(), fleet)


async def bench(buyers: int, keys: int, webhooks: int, shops: int) -> int:
    from tests import pg
    from tests.fakes.discord.fleet import FakeDiscordFleet
    from tests.fakes.discord.thread import FakeDiscordThread
    from tests.fakes.mercadopago import FakeMercadoPagoThread

    server = pg.start_server()
    fake = FakeMercadoPagoThread(webhook_secret=WEBHOOK_SECRET)
    base = fake.start()
    fleet = FakeDiscordThread(fake=FakeDiscordFleet())
    fleet.start()
    tmp = tempfile.TemporaryDirectory(prefix="astra-replicas-bench-")
    root = Path(tmp.name)
    sets: list[ReplicaSet] = []
    try:
        # Checkouts per second, one replica then two, each on a database of its own.
        measured = {count: await _throughput(server, root, fake, base, count, buyers, shops,
                                             sets, fleet)
                    for count in (1, 2)}
        rates = {count: rate for count, (rate, _) in measured.items()}
        busy = {count: load for count, (_, load) in measured.items()}

        # The race: `buyers` for `keys` keys across two replicas, then every charge approved
        # and its webhook sprayed twice across both; webhook-to-paid measured on a burst of
        # `webhooks` (their own keys, on one more database).
        dsn = server.create_database()
        c = platform_container(dsn, root / "setup-race", base, fake.access_token)
        shop = prepare_shop(c, INSTANCE, keys)
        burst = prepare_shop(c, "burst-shop", webhooks)
        shop_clicks = shop_bot(c, INSTANCE, fleet_bot(fleet), fleet.api_url)
        burst_clicks = shop_bot(c, "burst-shop", fleet_bot(fleet), fleet.api_url)
        replicas = ReplicaSet(dsn, root / "race", base, fake.access_token, count=2,
                              extra_env={"ASTRA_LOG_LEVEL": "warning",
                                         "DISCORD_API_BASE": fleet.api_url})
        sets.append(replicas)
        await replicas.start()
        race = await checkout_race(shop, replicas.replicas, buyers, clicks=shop_clicks)
        for cid in race.charges.values():
            fake.approve(cid)
        await spray_webhooks(fake, list(race.charges.values()), replicas.replicas)
        wait_paid(c, INSTANCE, list(race.charges), 120)
        result = wait_credited(c, INSTANCE, keys, 30)

        started = await checkout_race(burst, replicas.replicas, webhooks, first_buyer=10**6,
                                      clicks=burst_clicks)
        if started.errors:
            print(f"burst checkouts: {len(started.errors)} errors, e.g. {started.errors[:3]}",
                  file=sys.stderr)
        for cid in started.charges.values():
            fake.approve(cid)
        sent_at, statuses = await spray_webhooks(fake, list(started.charges.values()),
                                                 replicas.replicas, copies=1)
        orders = list(started.charges)
        paid = wait_paid(c, "burst-shop", orders, 120)
        delays = [paid[o] - sent_at[started.charges[o]] for o in orders if o in paid]
        p99 = statistics.quantiles(delays, n=100)[98] * 1000 if len(delays) > 1 else float("nan")
        print(f"race: {buyers} buyers, {keys} keys, 2 replicas: {result.sold} sold, "
              f"{race.refused} told out of stock, {len(race.errors)} errors; "
              f"burst: {len(paid)}/{len(orders)} paid, webhook answers {statuses}")
        print(f"RESULT pg_checkout_race sold={result.sold} duplicates={result.duplicates} "
              f"lost={result.lost}")
        print(f"RESULT pg_checkouts_per_s_1 {rates[1]:.1f}")
        print(f"RESULT pg_checkouts_per_s_2 {rates[2]:.1f}")
        print(f"RESULT pg_checkouts_per_s_ratio {rates[2] / rates[1]:.2f} target>1")
        print(f"RESULT pg_machine_cpu_busy_1 {busy[1]:.2f} of {os.cpu_count()} CPUs")
        print(f"RESULT pg_machine_cpu_busy_2 {busy[2]:.2f} of {os.cpu_count()} CPUs")
        print(f"RESULT webhook_to_paid_p99_ms {p99:.1f}")
        c.store().close()
    finally:
        for replica_set in sets:
            replica_set.stop()
        fake.stop()
        fleet.stop()
        server.stop()
        tmp.cleanup()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--webhooks", type=int, default=400)
    parser.add_argument("--shops", type=int, default=8,
                        help="sellers the throughput buyers are spread over")
    args = parser.parse_args()
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    return asyncio.run(bench(args.buyers, args.keys, args.webhooks, args.shops))


if __name__ == "__main__":
    sys.exit(main())
