"""The PostgreSQL server goes away under load and comes back: two `astra serve` replicas (real
processes), buyers checking out over the internal API (a click on the shop's bot in the Discord
fake, add to cart, pay), portal requests (/health, logins, a Mercado Pago webhook), and the real
server of a throwaway cluster of this module's own stopped (`pg_ctl stop`) for a few seconds and
started again on the same data and port. No mock: what the replicas see is a real server going.

While it is down every request answers a clear 503 (JSON, `store_unavailable`, Retry-After) in
under a second; the replicas neither crash nor spin; once it is back checkouts succeed again
within seconds with no restart, every acknowledged checkout is in the database, and no key is
sold twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.pg_replicas import (
    LOOPS,
    BuyerClicks,
    Replica,
    ReplicaSet,
    Shop,
    audit,
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

INSTANCE = "outage-shop"
KEYS = 3000
BUYERS_IN_FLIGHT = 6  # concurrent buyers, alternating between the replicas
DOWN_SECONDS = float(os.environ.get("ASTRA_OUTAGE_SECONDS", "6"))
# While the database is down, no request may take longer than this to be answered.
ANSWER_LIMIT = 1.0
# Once it is back, checkouts succeed again on every replica within this.
RECOVERY_LIMIT = 5.0
PROBE_EVERY = 0.2


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A throwaway cluster of this module's own: the test stops and starts its server."""
    from tests.pg import PostgresUnavailable, TestServer, ThrowawayCluster, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None or os.environ.get("ASTRA_TEST_DATABASE_URL"):
        pytest.skip("needs PostgreSQL server binaries to stop and start a server of its own")
    cluster = ThrowawayCluster(bin_dir)
    try:
        dsn = cluster.start()
    except PostgresUnavailable as exc:
        cluster.stop()
        pytest.skip(f"no PostgreSQL: {exc}")
    server = TestServer(dsn, cluster)
    yield server
    server.stop()


@dataclass
class World:
    server: Any
    dsn: str
    container: Any
    replicas: ReplicaSet
    fake: FakeMercadoPagoThread
    shop: Shop
    clicks: BuyerClicks


@pytest.fixture
async def world(cluster: Any, tmp_path: Path, fake: FakeMercadoPagoThread,
                discord: FakeDiscordThread) -> AsyncIterator[World]:
    if not cluster.cluster.started:  # a failed test may have left it stopped
        cluster.cluster.resume()
    dsn = cluster.create_database()
    base = fake.base  # type: ignore[attr-defined]
    container = platform_container(dsn, tmp_path / "setup", base, fake.access_token)
    shop = prepare_shop(container, INSTANCE, KEYS)
    clicks = shop_bot(container, INSTANCE, discord, discord.api_url)
    replicas = ReplicaSet(dsn, tmp_path, base, fake.access_token, count=2,
                          extra_env={"DISCORD_API_BASE": discord.api_url})
    try:
        yield World(cluster, dsn, container, replicas, fake, shop, clicks)
    finally:
        replicas.stop()
        container.store().close()
        container.coordination().close()
        if not cluster.cluster.started:
            cluster.cluster.resume()
        cluster.drop_database(dsn)


# -- what happened, as seen from outside -----------------------------------------------------


@dataclass
class Answer:
    what: str
    replica: str
    started: float  # monotonic
    seconds: float
    status: int | str  # HTTP status, or the exception's name
    body: Any = None
    retry_after: str | None = None
    text: str = ""


@dataclass
class Timeline:
    halting: float = float("inf")  # pg_ctl stop called
    down: float = float("inf")  # pg_ctl stop returned: nothing listens
    resuming: float = float("inf")  # pg_ctl start called
    back: float = float("inf")  # pg_ctl start returned: it accepts connections
    answers: list[Answer] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # order id -> charge id
    checkouts: list[tuple[str, float]] = field(default_factory=list)  # replica, finished
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def while_down(self) -> list[Answer]:
        """Answers to requests made wholly while nothing listened."""
        return [a for a in self.answers
                if a.started >= self.down and a.started + a.seconds <= self.resuming]


def _error_code(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):  # the internal API's shape
        return error.get("code")
    return error if isinstance(error, str) else None


async def _timed(timeline: Timeline, what: str, replica: Replica,
                 request: Any) -> Answer:
    started = time.monotonic()
    try:
        async with request as resp:
            text = await resp.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            answer = Answer(what, replica.name, started, time.monotonic() - started,
                            resp.status, body, resp.headers.get("Retry-After"), text[:500])
    except (aiohttp.ClientError, TimeoutError) as exc:
        answer = Answer(what, replica.name, started, time.monotonic() - started,
                        type(exc).__name__)
    timeline.answers.append(answer)
    return answer


async def _buyers(world: World, timeline: Timeline) -> None:
    """Buyers one after another in each of BUYERS_IN_FLIGHT lanes, alternating replicas, each
    a click then add to cart then pay; no client retries (every answer is seen as it is)."""
    from astra.adapters.instance_api.http import HttpInstanceAPI
    from astra.domain.errors import DomainError

    replicas = world.replicas.replicas
    apis = [HttpInstanceAPI(r.internal_url, INSTANCE, world.shop.credential, retry_pauses=())
            for r in replicas]
    numbers = itertools.count()
    shop = world.shop

    async def call(replica: Replica, what: str, coro: Any) -> Any:
        started = time.monotonic()
        try:
            result = await coro
        except DomainError as exc:
            timeline.answers.append(Answer(what, replica.name, started,
                                           time.monotonic() - started, exc.code))
            return None
        except Exception as exc:
            text = str(exc)
            status: int | str = type(exc).__name__
            for code in (500, 502, 503, 504):
                if f"HTTP {code}" in text:
                    status = code
            timeline.answers.append(Answer(what, replica.name, started,
                                           time.monotonic() - started, status, text=text))
            return None
        timeline.answers.append(Answer(what, replica.name, started,
                                       time.monotonic() - started, 200))
        return result

    async def lane(http: aiohttp.ClientSession) -> None:
        while not timeline.stop.is_set():
            n = next(numbers)
            replica, api = replicas[n % 2], apis[n % 2]
            click = await world.clicks(http, str(300_000_000_000_000_000 + n))
            if await call(replica, "add_item", api.add_item(
                    click, shop.product_id, shop.variant_id, 1)) is None:
                await asyncio.sleep(0.05)
                continue
            start = await call(replica, "pay", api.pay(click))
            if start is not None and start.charge is not None:
                timeline.acknowledged[start.order.id] = start.charge.id
                timeline.checkouts.append((replica.name, time.monotonic()))
            else:
                await asyncio.sleep(0.05)

    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(lane(http) for _ in range(BUYERS_IN_FLIGHT)))
    finally:
        for api in apis:
            await api.close()


async def _prober(world: World, timeline: Timeline, charge_id: str) -> None:
    """The portal's face and the internal API's, asked plainly every PROBE_EVERY seconds on
    both replicas: /health, a login, a signed webhook, the bot's settings."""
    emails = itertools.count()
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        while not timeline.stop.is_set():
            for replica in world.replicas.replicas:
                url, headers, body = world.fake.build_webhook(
                    charge_id, url=f"{replica.portal_url}/api/webhooks/mercadopago")
                await asyncio.gather(
                    _timed(timeline, "health", replica,
                           http.get(f"{replica.portal_url}/health")),
                    _timed(timeline, "login", replica, http.post(
                        f"{replica.portal_url}/auth/local/login",
                        json={"email": f"ghost{next(emails)}@example.com",
                              "password": "not the password"})),
                    _timed(timeline, "webhook", replica,
                           http.post(url, headers=headers, data=body)),
                    _timed(timeline, "settings", replica, http.get(
                        f"{replica.internal_url}/internal/instances/{INSTANCE}/settings",
                        headers={"Authorization": f"Bearer {world.shop.credential}"})),
                )
            await asyncio.sleep(PROBE_EVERY)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_events(replica: Replica) -> list[dict[str, Any]]:
    events = []
    for line in replica.log_tail(50_000_000).splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            events.append(doc)
    return events


async def _leaders(world: World) -> list[str]:
    leads = await world.replicas.leaders()
    return sorted(x for v in leads.values() for x in v)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_database_goes_away_under_load_and_comes_back(world: World, mode: str) -> None:
    cluster = world.server.cluster
    await world.replicas.start()
    replicas = world.replicas.replicas
    deadline = time.monotonic() + 15
    while await _leaders(world) != LOOPS and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await _leaders(world) == LOOPS

    timeline = Timeline()
    buyers = asyncio.create_task(_buyers(world, timeline))
    # Load before the outage, and a charge for the webhook probe.
    while len(timeline.acknowledged) < 20:
        await asyncio.sleep(0.05)
    probe_charge = next(iter(timeline.acknowledged.values()))
    prober = asyncio.create_task(_prober(world, timeline, probe_charge))
    await asyncio.sleep(1.0)
    acknowledged_before = len(timeline.acknowledged)

    timeline.halting = time.monotonic()
    await asyncio.to_thread(cluster.halt, mode)
    timeline.down = time.monotonic()
    cpu_before = {r.name: _cpu_seconds(r.proc.pid) for r in replicas}  # type: ignore[union-attr]
    await asyncio.sleep(DOWN_SECONDS)
    assert all(r.alive() for r in replicas), [r.log_tail(6000) for r in replicas]
    cpu_down = {r.name: (_cpu_seconds(r.proc.pid) - cpu_before[r.name]) / DOWN_SECONDS
                for r in replicas}  # type: ignore[union-attr]
    timeline.resuming = time.monotonic()
    await asyncio.to_thread(cluster.resume)
    timeline.back = time.monotonic()

    # Recovery: a checkout succeeds on each replica, /health says ok, every loop has a leader.
    recovered: dict[str, float] = {}
    deadline = timeline.back + 30
    while len(recovered) < len(replicas) and time.monotonic() < deadline:
        for name, finished in timeline.checkouts:
            if finished > timeline.back and name not in recovered:
                recovered[name] = finished - timeline.back
        await asyncio.sleep(0.05)
    led_again = None
    while time.monotonic() < deadline:
        if await _leaders(world) == LOOPS:
            led_again = time.monotonic() - timeline.back
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # more load after the recovery
    timeline.stop.set()
    await asyncio.gather(buyers, prober)

    assert all(r.alive() for r in replicas), [r.log_tail() for r in replicas]
    down = timeline.while_down()
    # Requests caught by the server going (or coming back) mid-way are answered too.
    going = [a.seconds for a in timeline.answers if timeline.halting <= a.started < timeline.down]
    print(f"\n[{mode}] down {timeline.resuming - timeline.down:.1f} s, "
          f"{len(down)} answers while down, slowest {max(a.seconds for a in down):.3f} s; "
          f"{len(going)} answers to requests made as it went, slowest "
          f"{max(going, default=0):.3f} s; slowest of all "
          f"{max(a.seconds for a in timeline.answers):.3f} s; "
          f"checkouts again after {recovered} s; all loops led again after "
          f"{led_again} s; replicas' CPU while down {cpu_down}; "
          f"acknowledged {acknowledged_before} before, {len(timeline.acknowledged)} in all")

    # While down: every request is answered, quickly, with a clear 503.
    assert {a.what for a in down} >= {"health", "login", "webhook", "settings", "add_item"}
    slow = [a for a in down if a.seconds > ANSWER_LIMIT]
    assert not slow, slow[:5]
    wrong = [a for a in down if a.status != 503]
    assert not wrong, wrong[:5]
    for a in down:
        if a.what in ("add_item", "pay"):
            continue  # the bot's client reports the status only; probes check the body
        assert _error_code(a.body) == "store_unavailable", a
        assert a.retry_after is not None and int(a.retry_after) >= 1, a
        assert "Traceback" not in a.text and "psycopg" not in a.text, a
    # No request hung (before, during, after), and none was a 500.
    slowest = max(timeline.answers, key=lambda a: a.seconds)
    assert slowest.seconds < 6.0, slowest
    errors = [a for a in timeline.answers if a.status == 500]
    assert not errors, errors[:5]

    # Neither spinning nor crashing meanwhile: a fraction of one CPU while serving the 503s,
    # and the background work tried again at a bounded pace.
    assert all(load < 0.6 for load in cpu_down.values()), cpu_down
    for replica in replicas:
        events = _log_events(replica)
        names = [e.get("event") for e in events]
        assert "database.down" in names and "database.back" in names, replica.name
        tries = names.count("leases.unavailable")
        assert tries <= DOWN_SECONDS / 0.5 + 4, (replica.name, tries)
        assert names.count("webhook.inbox_unavailable") <= 4 * (DOWN_SECONDS + 4), replica.name

    # Back: checkouts on both replicas within seconds, without restarting them.
    assert set(recovered) == {r.name for r in replicas}, recovered
    assert max(recovered.values()) < RECOVERY_LIMIT, recovered
    assert led_again is not None and led_again < 15, led_again
    assert len(timeline.acknowledged) > acknowledged_before

    # Every acknowledged checkout is in the database, then paid once, credited once, and no
    # key is in two orders.
    c = world.container
    with c.store().instance(INSTANCE, write=False) as uow:
        orders = {o["id"]: o for o in uow.orders.all()}
    missing = [o for o in timeline.acknowledged if o not in orders]
    assert not missing, missing[:5]
    assert all(orders[o]["charge_id"] == ch for o, ch in timeline.acknowledged.items())
    charges = list(timeline.acknowledged.values())
    for charge_id in charges:
        world.fake.approve(charge_id)
    _, statuses = await spray_webhooks(world.fake, charges, replicas, copies=1)
    assert statuses.get("200", 0) == len(charges), statuses
    paid = await asyncio.to_thread(wait_paid, c, INSTANCE, list(timeline.acknowledged), 120)
    assert len(paid) == len(timeline.acknowledged)
    result = await asyncio.to_thread(wait_credited, c, INSTANCE, KEYS, 60)
    assert result.duplicates == 0 and result.lost == 0, result
    assert result.sold == result.paid_orders == len(timeline.acknowledged), result
    assert (result.credits, result.credited_orders) == (result.paid_orders,) * 2, result
    final = await asyncio.to_thread(audit, c, INSTANCE, KEYS)
    assert (final.duplicates, final.lost) == (0, 0)


def test_a_database_that_is_gone_is_answered_unavailable_quickly() -> None:
    """Nothing listens at the address: the pools' own refused connections mark the database
    down, so every call fails within DOWN_WAIT_SECONDS (the first ones too, not after the 5 s
    a healthy pool may wait), store and coordination alike; the leases do not try again before
    their backoff says so."""
    from astra.adapters.coordination.postgresql import PostgresCoordination
    from astra.adapters.store.postgresql import PostgresStore
    from astra.adapters.store.postgresql.availability import DOWN_WAIT_SECONDS
    from astra.ports.store import StoreUnavailable
    from tests.ports import free_port

    dsn = f"postgresql://astra@127.0.0.1:{free_port()}/astra"
    store = PostgresStore(dsn)
    coordination = PostgresCoordination(dsn)
    try:
        for first in (store.instance_ids, lambda: coordination.throttles.recent("login:x", 0.0)):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                first()
            assert time.monotonic() - started < DOWN_WAIT_SECONDS + 0.5
        times = []
        for _ in range(3):
            for call in (store.instance_ids, lambda: coordination.replays.get("shop", "k", 0.0),
                         coordination.inbox.claim):
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    call()
                times.append(time.monotonic() - started)
        assert max(times) < DOWN_WAIT_SECONDS + 0.3, times
        health = store.health()
        assert health["ok"] is False and health["error"] == "StoreUnavailable"
        assert coordination.leases.try_lead("housekeeping") is False
        started = time.monotonic()
        assert coordination.leases.try_lead("housekeeping") is False  # backing off: no attempt
        assert time.monotonic() - started < 0.05
    finally:
        store.close()
        coordination.close()
