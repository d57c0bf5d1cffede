"""The coordination port's two adapters: local (one process) and PostgreSQL (replicas), on a real
server. What two replicas would do is done here by two adapters on one database, each with its
own connections, as two processes would have."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from astra.adapters.coordination.local import LocalInbox, local_coordination
from astra.ports.coordination import Coordination


@pytest.fixture
def pair(pg_dsn: str) -> Iterator[tuple[Coordination, Coordination]]:
    from astra.adapters.coordination.postgresql import PostgresCoordination

    a, b = PostgresCoordination(pg_dsn), PostgresCoordination(pg_dsn)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture(params=["local", "postgresql"])
def coordination(request: pytest.FixtureRequest) -> Iterator[Coordination]:
    if request.param == "local":
        c = local_coordination()
    else:
        from astra.adapters.coordination.postgresql import PostgresCoordination

        c = PostgresCoordination(request.getfixturevalue("pg_dsn"))
    try:
        yield c
    finally:
        c.close()


# -- both adapters -------------------------------------------------------------------------------


def test_inbox_keeps_a_charge_once_and_hands_it_out_once(coordination: Coordination) -> None:
    inbox = coordination.inbox
    assert inbox.put("111", time.time()) and inbox.put("111", time.time())
    assert inbox.put("222", time.time())
    assert inbox.waiting() == 2
    first, second = inbox.claim(), inbox.claim()
    assert first is not None and second is not None
    assert {first.charge_id, second.charge_id} == {"111", "222"}
    assert inbox.claim() is None
    inbox.finish(first)
    inbox.retry(second, 0.3)
    assert inbox.claim() is None  # not due yet
    time.sleep(0.4)
    again = inbox.claim()
    assert again is not None and again.charge_id == second.charge_id and again.tries == 1
    inbox.finish(again)
    assert inbox.waiting() == 0


def test_new_news_makes_a_charge_waiting_for_a_retry_due_now(coordination: Coordination) -> None:
    inbox = coordination.inbox
    inbox.put("333", time.time())
    claim = inbox.claim()
    assert claim is not None
    inbox.retry(claim, 60)
    assert inbox.claim() is None
    inbox.put("333", time.time())
    again = inbox.claim()
    assert again is not None and again.charge_id == "333"
    inbox.finish(again)


def test_throttles_count_in_a_window_and_lock(coordination: Coordination) -> None:
    throttles = coordination.throttles
    now = time.time()
    key = "login-unknown:someone@example.com\0203.0.113.9"  # NUL and all: any text is a key
    throttles.add(key, now - 700, 600)
    throttles.add(key, now - 10, 600)
    throttles.add(key, now, 600)
    assert len(throttles.recent(key, now - 600)) == 2
    assert throttles.recent("other", now - 600) == []
    throttles.lock(key, now + 900)
    assert abs(throttles.locked_until(key) - (now + 900)) < 0.01
    throttles.clear(key)
    assert throttles.recent(key, now - 600) == []
    assert throttles.locked_until(key) > now  # clearing the count keeps the lock
    assert throttles.locked_until("never-locked") == 0.0


def test_local_leases_are_always_this_process_s() -> None:
    c = local_coordination()
    assert c.leases.try_lead("housekeeping") and c.leases.still_leading()
    assert c.leases.held() == ["housekeeping"]
    c.leases.release("housekeeping")
    assert c.leases.held() == []


def test_local_inbox_refuses_past_its_bound() -> None:
    inbox = LocalInbox(max_waiting=2)
    assert inbox.put("1", 0) and inbox.put("2", 0)
    assert not inbox.put("3", 0)


# -- PostgreSQL: two replicas ----------------------------------------------------------------------


def test_a_lease_has_one_holder_and_passes_on_when_it_dies(pair) -> None:
    a, b = pair
    assert a.leases.try_lead("reconcile")
    assert not b.leases.try_lead("reconcile")
    assert b.leases.try_lead("monitor") and not a.leases.try_lead("monitor")
    assert a.leases.held() == ["reconcile"] and b.leases.held() == ["monitor"]
    # a's process dies: its connection goes, and the server drops its locks with it.
    a.leases._conn.close()  # type: ignore[attr-defined]
    assert not a.leases.still_leading() and a.leases.held() == []
    deadline = time.monotonic() + 5
    while not b.leases.try_lead("reconcile"):
        assert time.monotonic() < deadline, "the lease was not taken over"
        time.sleep(0.05)
    assert b.leases.held() == ["monitor", "reconcile"]
    # a comes back: it does not get what b holds.
    assert not a.leases.try_lead("reconcile")


def test_a_released_lease_is_free_at_once(pair) -> None:
    a, b = pair
    assert a.leases.try_lead("courier")
    a.leases.release("courier")
    assert b.leases.try_lead("courier")


def test_claims_are_disjoint_across_replicas(pair) -> None:
    a, b = pair
    for n in range(200):
        a.inbox.put(str(10_000 + n), time.time())
    taken: dict[str, list[str]] = {"a": [], "b": []}

    def drain(name: str, c: Coordination) -> None:
        while (claim := c.inbox.claim()) is not None:
            taken[name].append(claim.charge_id)
            c.inbox.finish(claim)

    threads = [threading.Thread(target=drain, args=(n, c)) for n, c in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = taken["a"] + taken["b"]
    assert len(everything) == 200 and len(set(everything)) == 200
    assert a.inbox.waiting() == 0


def test_a_claim_whose_replica_dies_is_claimed_again(pair) -> None:
    a, b = pair
    a.inbox.put("424242", time.time())
    claim = a.inbox.claim()
    assert claim is not None
    assert b.inbox.claim() is None  # locked by a's open transaction
    # a dies mid-way: its connection closes without a commit.
    conn, _ = claim.handle
    conn.close()
    deadline = time.monotonic() + 5  # the server notices the closed socket at once, or nearly
    while (again := b.inbox.claim()) is None:
        assert time.monotonic() < deadline, "the dead replica's claim was never released"
        time.sleep(0.05)
    assert again.charge_id == "424242"
    b.inbox.finish(again)
    assert b.inbox.waiting() == 0
    a.inbox.pool.putconn(conn)  # type: ignore[attr-defined]


def test_news_for_a_charge_being_processed_is_kept_for_after(pair) -> None:
    a, b = pair
    a.inbox.put("515151", time.time())
    claim = a.inbox.claim()
    assert claim is not None
    # The worker may have read the charge before this news: it must be looked at again.
    assert b.inbox.put("515151", time.time())
    a.inbox.finish(claim)
    again = b.inbox.claim()
    assert again is not None and again.charge_id == "515151"
    b.inbox.finish(again)


def test_throttles_are_shared_by_replicas(pair) -> None:
    a, b = pair
    now = time.time()
    a.throttles.add("admin-client:198.51.100.7", now, 600)
    b.throttles.add("admin-client:198.51.100.7", now + 1, 600)
    assert len(a.throttles.recent("admin-client:198.51.100.7", now - 600)) == 2
    b.throttles.lock("admin-client:198.51.100.7", now + 900)
    assert a.throttles.locked_until("admin-client:198.51.100.7") > now
    assert a.throttles.prune(now + 2000, 600) >= 2  # type: ignore[attr-defined]
    assert b.throttles.recent("admin-client:198.51.100.7", 0) == []


def test_replays_are_shared_and_the_first_answer_stays(pair) -> None:
    a, b = pair
    now = time.time()
    a.replays.put("shop-1", "key-1", 200, b'{"result": 1}', now)
    b.replays.put("shop-1", "key-1", 200, b'{"result": 2}', now + 1)  # a retry's: not kept
    assert b.replays.get("shop-1", "key-1", now - 60) == (200, b'{"result": 1}')
    assert b.replays.get("shop-2", "key-1", now - 60) is None  # never another instance's
    assert b.replays.get("shop-1", "key-1", now + 30) is None  # older than asked for
    assert a.replays.prune(now + 30) == 1  # type: ignore[attr-defined]
    assert a.replays.get("shop-1", "key-1", 0) is None


async def test_a_retry_sent_to_another_replica_gets_the_first_answer(
    pg_dsn: str, tmp_path
) -> None:
    """Two platform processes on one database, each with its internal API: a bot's write sent
    to one and retried (same Idempotency-Key) on the other is done once."""
    from aiohttp import ClientSession, web

    from astra.container import build_container
    from astra.entrypoints.internal.app import create_internal_app
    from astra.settings import Settings, ensure_dev_secrets
    from tests.e2e.bot_world import BOT_TOKEN
    from tests.fakes.discord import FakeDiscord
    from tests.fakes.discord.bot_side import deferred
    from tests.ports import free_port

    discord = FakeDiscord(bot_token=BOT_TOKEN)
    await discord.start()
    buyer = discord.add_user("comprador", user_id="555555555555555555")
    guild = discord.add_guild("Loja", owner=buyer.id)
    channel = discord.add_channel(guild.id, "produtos")
    settings = ensure_dev_secrets(Settings(data_dir=tmp_path / "data", database_url=pg_dsn,
                                           discord_api_base=discord.api_url))
    first, second = build_container(settings), build_container(settings)
    first.instances().create("shop-1", owner_id="usr_1", name="Loja", actor="test")
    first.instances().set_bot_token("shop-1", discord.bot_token, {
        "id": str(discord.bot.id), "application_id": str(discord.application_id)},
        actor="test")
    product = first.catalog().create_product("shop-1", {
        "name": "Chave", "variants": [{"name": "Única", "price_cents": 1000,
                                       "max_per_order": 5}]}, actor="test")
    variant = product.variants[0].id
    first.catalog().import_stock("shop-1", product.id, variant, "K-1\nK-2\nK-3", actor="test")
    credential = first.instances().runtime_credential("shop-1")
    runners, urls = [], []
    for container in (first, second):
        runner = web.AppRunner(create_internal_app(container))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{port}/internal/instances/shop-1/cart/items")
    headers = {"Authorization": f"Bearer {credential}", "Idempotency-Key": "add-once-1"}
    try:
        async with ClientSession() as http:
            click = await deferred(http, discord.api_url,
                                   discord.interaction_from(buyer.id, channel.id))
            # add_item adds to what the cart holds: done twice, the cart would hold 2.
            body = {"product_id": product.id, "variant_id": variant, "quantity": 1,
                    "interaction": {"id": click.id, "token": click.token}}
            answers = []
            for url in urls:
                async with http.post(url, json=body, headers=headers) as resp:
                    assert resp.status == 200, await resp.text()
                    answers.append(await resp.read())
        assert answers[0] == answers[1]
        view = second.sales().get_cart("shop-1", "555555555555555555")
        assert [line.quantity for line in view.cart.lines] == [1]
    finally:
        for runner in runners:
            await runner.cleanup()
        for container in (first, second):
            container.store().close()
            container.coordination().close()
        await discord.stop()


# -- leader loops ----------------------------------------------------------------------------------


async def test_each_loop_runs_once_and_moves_when_its_leader_loses_the_database(
    pg_dsn: str,
) -> None:
    """Two replicas' Leadership on one database: every loop runs on exactly one of them; when
    the server ends one replica's lease session (its host gone, say), that replica stops its
    loops and the other runs them within a couple of seconds."""
    import asyncio

    import psycopg

    from astra.adapters.coordination.postgresql import PostgresLeases
    from astra.entrypoints.leadership import Leadership

    running: dict[str, set[str]] = {"a": set(), "b": set()}

    def loops(replica: str) -> dict:
        def make(name: str):
            async def loop(stop: asyncio.Event) -> None:
                running[replica].add(name)
                try:
                    await stop.wait()
                finally:
                    running[replica].discard(name)
            return loop
        return {name: make(name) for name in ("housekeeping", "reconcile", "monitor")}

    leases_a, leases_b = PostgresLeases(pg_dsn), PostgresLeases(pg_dsn)
    a = Leadership(leases_a, loops("a"), check_seconds=0.2)
    b = Leadership(leases_b, loops("b"), check_seconds=0.2)
    stop = asyncio.Event()
    clock = asyncio.get_running_loop().time
    tasks = [asyncio.create_task(a.run(stop))]
    try:
        started = clock()
        while len(running["a"]) < 3:  # a starts first and takes everything
            assert clock() - started < 10, running
            await asyncio.sleep(0.05)
        tasks.append(asyncio.create_task(b.run(stop)))
        await asyncio.sleep(0.6)  # b tries, three times over
        assert running["a"] == {"housekeeping", "reconcile", "monitor"} and running["b"] == set()
        assert a.leading() == ["housekeeping", "monitor", "reconcile"] and b.leading() == []
        pid = leases_a._conn.info.backend_pid  # type: ignore[union-attr]
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        started = clock()
        while running["b"] != {"housekeeping", "reconcile", "monitor"}:
            assert clock() - started < 10, running
            await asyncio.sleep(0.05)
        # Never both at once (after a's next check at the latest): a stepped down.
        await asyncio.sleep(0.5)
        assert running["a"] == set() and a.leading() == []
        # a keeps trying, and gets nothing while b lives.
        await asyncio.sleep(0.5)
        assert running["a"] == set()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        leases_a.close()
        leases_b.close()
    assert running == {"a": set(), "b": set()}
