"""What only the PostgreSQL store has: indexes under EXPLAIN, its lock timeout, schema versions,
a process killed inside a transaction, and a DSN's password kept out of every message."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import psycopg
import psycopg.sql
import pytest

from astra.adapters.store.postgresql import PostgresStore, SchemaMismatch
from astra.adapters.store.postgresql import migrations as pg_migrations
from astra.adapters.store.postgresql.unit_of_work import domains_sql, select_sql
from astra.ports.store import StoreBusy, StoreError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(pg_dsn: str):
    s = PostgresStore(pg_dsn)
    yield s
    s.close()


# Every query the services make on the big collections (grep `.find(`/`.first(`/`.count(` in
# astra/domain): (collection, fields).
HOT_QUERIES = [
    ("stock", {"variant_id": "v3", "state": "available"}),
    ("stock", {"fingerprint": "fp-17"}),
    ("stock", {"cart_id": "c5"}),
    ("stock", {"order_id": "o5"}),
    ("orders", {"charge_id": "ch-9"}),
    ("orders", {"status": "waiting_stock"}),
    ("orders", {"buyer_id": "b7"}),
    ("orders", {"cart_id": "c7"}),
    ("carts", {"buyer_id": "b7", "state": "open"}),
    ("carts", {"state": "open"}),
    ("deliveries", {"status": "pending"}),
    ("deliveries", {"order_id": "o3"}),
    ("postings", {"status": "pending"}),
    ("postings", {"order_id": "o3"}),
    ("coupons", {"code": "PROMO"}),
    ("ledger", {"user_id": "u3"}),
    ("withdrawals", {"user_id": "u3"}),
    ("plan_transactions", {"charge_id": "ch-1"}),
]


def _plan_nodes(plan: dict) -> list[str]:
    out = [plan["Node Type"]]
    for child in plan.get("Plans", []):
        out.extend(_plan_nodes(child))
    return out


def test_hot_queries_use_indexes_not_sequential_scans(store: PostgresStore) -> None:
    for shop in ("shop-1", "shop-2", "shop-3"):
        with store.instance(shop) as uow:
            for i in range(3000):
                uow.stock.put({"id": f"k{i}", "variant_id": f"v{i % 20}",
                               "state": ("available", "reserved", "sold")[i % 3],
                               "fingerprint": f"fp-{i}", "cart_id": f"c{i % 50}",
                               "order_id": f"o{i}"})
            for i in range(1500):
                uow.orders.put({"id": f"o{i}", "status": ("pending", "paid", "delivered")[i % 3],
                                "charge_id": f"ch-{i}", "buyer_id": f"b{i % 300}",
                                "cart_id": f"c{i}"})
                uow.carts.put({"id": f"c{i}", "buyer_id": f"b{i % 300}",
                               "state": ("expired", "paid", "open")[i % 3]})
                uow.deliveries.put({"id": f"d{i}", "order_id": f"o{i}", "status": "done"})
                uow.postings.put({"id": f"p{i}", "order_id": f"o{i}", "status": "applied"})
            for i in range(1000):
                uow.coupons.put({"id": f"cp{i}", "code": "PROMO" if i == 7 else f"C{i}"})
            uow.commit()
    with store.portal() as uow:
        for i in range(3000):
            uow.ledger.put({"id": f"l{i}", "user_id": f"u{i % 100}", "amount_cents": 94})
            uow.withdrawals.put({"id": f"w{i}", "user_id": f"u{i % 100}", "status": "paid"})
            uow.plan_transactions.put({"id": f"t{i}", "user_id": f"u{i % 100}",
                                       "charge_id": f"ch-{i}", "status": "paid"})
        uow.commit()
    with store.connect(autocommit=True) as conn:
        conn.execute("ANALYZE")
        n = 0
        for mode in ("force_custom_plan", "force_generic_plan"):
            # psycopg prepares a statement run often, and the server may then plan it once for
            # any parameters (a generic plan): that plan must not fall back to a scan either.
            conn.execute(f"SET plan_cache_mode = {mode}")
            for collection, equals in HOT_QUERIES:
                domain = "portal" if collection in ("ledger", "withdrawals",
                                                    "plan_transactions") else "shop-2"
                for what, tail in (("doc::text", ""), ("doc::text", " LIMIT 1"),
                                   ("count(*)", "")):
                    query, params = select_sql(collection, what, equals, tail)
                    numbered = query
                    for i in range(1, query.count("%s") + 1):
                        numbered = numbered.replace("%s", f"${i}", 1)
                    n += 1
                    conn.execute(f"PREPARE q{n} AS {numbered}")
                    args = ", ".join(
                        psycopg.sql.Literal(v).as_string(conn) for v in [domain, *params])
                    plan = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE q{n}({args})")
                    nodes = _plan_nodes(plan.fetchone()[0][0]["Plan"])
                    assert "Seq Scan" not in nodes, (mode, collection, equals, what, nodes)
                    assert any("Index" in n for n in nodes), (collection, equals, nodes)
        # Which instances have work (the background loops' scans): across domains, from the
        # index led by the field, not every instance's rows. Work is the rare case (most
        # deliveries done, postings applied, carts ended); where a third of the rows match (the
        # "open" carts above) the planner rightly prefers reading the table.
        for collection, equals in (("deliveries", {"status": "pending"}),
                                   ("carts", {"state": "checkout"}),
                                   ("postings", {"status": "pending"})):
            query, params = domains_sql(collection, equals)
            plan = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", ["portal", *params])
            nodes = _plan_nodes(plan.fetchone()[0][0]["Plan"])
            assert "Seq Scan" not in nodes and any("Index" in n for n in nodes), (
                collection, nodes)
        # A document by id, and a whole collection of one domain in insertion order.
        for table in ("docs_orders", "docs_carts", "docs_stock"):
            for query in (f"SELECT doc FROM {table} WHERE domain = %s AND id = %s",
                          f"SELECT doc FROM {table} WHERE domain = %s AND id <> %s ORDER BY seq"):
                plan = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", ["shop-2", "o7"])
                nodes = _plan_nodes(plan.fetchone()[0][0]["Plan"])
                assert "Seq Scan" not in nodes, (table, query, nodes)


def test_a_unit_goes_on_after_commit_and_rollback_discards_what_was_sent(
    store: PostgresStore,
) -> None:
    with store.instance("shop-1") as uow:
        uow.stock.put({"id": "a", "state": "available"})
        uow.commit()
        # the unit goes on after a commit, under the lock again
        uow.stock.put({"id": "d", "state": "available"})
        assert uow.stock.count() == 2  # the write is on the server now
        uow.rollback()  # and still discarded
        assert uow.stock.get("d") is None
        with pytest.raises(StoreError, match="NUL"):
            uow.stock.put({"id": "z", "key": "a\x00b"})  # JSONB cannot hold it: said clearly
    with store.instance("shop-1", write=False) as uow:
        assert uow.stock.ids() == ["a"]


def test_read_units_see_one_snapshot(store: PostgresStore) -> None:
    with store.instance("shop-1") as uow:
        uow.orders.put({"id": "o1", "status": "pending"})
        uow.commit()
    with store.instance("shop-1", write=False) as reader:
        assert reader.orders.count() == 1

        def write_more() -> None:
            with store.instance("shop-1") as uow:
                uow.orders.put({"id": "o2", "status": "pending"})
                uow.commit()

        t = threading.Thread(target=write_more)
        t.start()
        t.join()  # a reader blocks no writer
        assert reader.orders.count() == 1 and reader.orders.get("o2") is None
    with store.instance("shop-1", write=False) as reader:
        assert reader.orders.count() == 2


def test_what_a_unit_remembers_ends_with_its_transaction(store: PostgresStore) -> None:
    """`get` answers a second time from memory, within one transaction only: after a commit
    or a rollback the unit holds no lock, and a document another writer changed meanwhile is
    read afresh."""
    with store.instance("shop-1") as uow:
        uow.settings.put({"id": "settings", "colour": "red"})
        uow.commit()

    def recolour(colour: str) -> threading.Thread:
        def write() -> None:
            with store.instance("shop-1") as other:
                other.settings.put({"id": "settings", "colour": colour})
                other.commit()

        t = threading.Thread(target=write)
        t.start()
        t.join(timeout=0.5)
        return t

    with store.instance("shop-1") as uow:
        first = uow.settings.get("settings")
        first["colour"] = "changed by the caller"  # callers hold copies
        assert uow.settings.get("settings") == {"id": "settings", "colour": "red"}
        assert uow.settings.get("missing") is None
        blocked = recolour("green")  # waits for this unit's lock
        assert blocked.is_alive()
        uow.settings.put({"id": "settings", "colour": "blue"})
        assert uow.settings.get("settings")["colour"] == "blue"  # its own write
        uow.commit()
        blocked.join(timeout=10)
        assert uow.settings.get("settings")["colour"] == "green"  # read afresh after commit
        uow.rollback()  # (that read took the lock again: let it go)
        done = recolour("black")
        done.join(timeout=10)
        assert not done.is_alive()
        assert uow.settings.get("settings")["colour"] == "black"  # and after a rollback


def test_store_busy_when_the_domain_lock_is_not_free(pg_dsn: str) -> None:
    holder = PostgresStore(pg_dsn)
    impatient = PostgresStore(pg_dsn, lock_timeout=0.5)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.instance("shop-1") as uow:
            uow.orders.put({"id": "o1"})
            uow.orders.count()  # sends the write: the lock is taken
            holding.set()
            release.wait(30)
            uow.commit()

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(StoreBusy) as err, impatient.instance("shop-1") as uow:
            uow.orders.put({"id": "o2"})
            uow.commit()
        assert 0.4 < time.monotonic() - started < 5
        assert err.value.domain == "shop-1"
        # other domains and readers are not affected
        with impatient.instance("shop-2") as uow:
            uow.orders.put({"id": "x"})
            uow.commit()
        with impatient.instance("shop-1", write=False) as uow:
            assert uow.orders.count() == 0
    finally:
        release.set()
        t.join()
        holder.close()
    with impatient.instance("shop-1") as uow:  # free again
        uow.orders.put({"id": "o2"})
        uow.commit()
        assert uow.orders.ids() == ["o1", "o2"]
    impatient.close()


KILLED_CHILD = """
import sys, time
from astra.adapters.store.postgresql import PostgresStore
store = PostgresStore(sys.argv[1])
with store.instance("shop-1") as uow:
    uow.orders.put({"id": "o-half", "key_id": "k1"})
    uow.stock.put({"id": "k1", "state": "sold", "order_id": "o-half"})
    uow.orders.count()  # both writes are on the server, inside the open transaction
    print("inside", flush=True)
    time.sleep(60)
    uow.commit()
"""


def test_a_process_killed_inside_a_transaction_leaves_nothing_half_done(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, lock_timeout=15)
    with store.instance("shop-1") as uow:
        uow.stock.put({"id": "k1", "state": "available", "order_id": None})
        uow.commit()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, pg_dsn], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "inside"
        proc.kill()
        proc.wait(10)
        started = time.monotonic()
        with store.instance("shop-1") as uow:  # the lock died with the process's session
            assert uow.orders.get("o-half") is None
            assert uow.stock.require("k1")["state"] == "available"
            uow.orders.put({"id": "o1", "key_id": "k1"})
            uow.commit()
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
        store.close()


def test_schema_behind_or_ahead_is_refused_with_a_clear_message(pg_server) -> None:
    with pg_server.database(migrated=False) as dsn:
        store = PostgresStore(dsn)
        with pytest.raises(SchemaMismatch, match="run `astra migrate`"):
            store.open()
        with pytest.raises(SchemaMismatch), store.portal(write=False):
            pass
        # two replicas migrating at once: each file is applied once
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(len(store.migrate())))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [0, 0, len(pg_migrations.available())]
        store.open()
        assert store.migrate() == []
        with store.connect() as conn:
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
            conn.commit()
        newer = PostgresStore(dsn)
        with pytest.raises(SchemaMismatch, match="newer Astra"):
            newer.open()
        with pytest.raises(SchemaMismatch, match="newer"):
            newer.migrate()
        newer.close()
        store.close()


def test_a_failed_migration_changes_nothing(pg_server) -> None:
    with pg_server.database(migrated=False) as dsn:
        broken = [*pg_migrations.available(),
                  pg_migrations.Migration(9000, "broken", "CREATE TABLE x (); SELECT 1/0;")]
        with psycopg.connect(dsn) as conn:
            with pytest.raises(psycopg.errors.DivisionByZero):
                pg_migrations.migrate(conn, broken)
            conn.rollback()
            assert pg_migrations.status(conn).applied == ()
            assert conn.execute("SELECT to_regclass('docs_orders')").fetchone()[0] is None


def test_the_password_of_the_dsn_never_shows(pg_server) -> None:
    from tests.ports import free_port

    dsn = f"postgresql://astra:S3cr3t-pw@127.0.0.1:{free_port()}/astra"
    store = PostgresStore(dsn, connect_timeout=1)
    for call in (store.open, store.instance_ids, store.schema_status):
        with pytest.raises(StoreError) as err:
            call()
        assert "S3cr3t-pw" not in str(err.value) and "***" in str(err.value)
    health = store.health()
    assert health["ok"] is False and "S3cr3t-pw" not in orjson.dumps(health).decode()
    assert "S3cr3t-pw" not in repr(store)
    store.close()


def test_astra_migrate_and_serve_refusing_an_unmigrated_database(
    pg_server, data_dir: Path, monkeypatch, capsys
) -> None:
    from astra.entrypoints.cli import main

    with pg_server.database(migrated=False) as dsn:
        monkeypatch.setenv("ASTRA_DATABASE_URL", dsn)
        monkeypatch.setenv("ASTRA_DATA_DIR", str(data_dir))
        assert main(["serve"]) == 1
        err = capsys.readouterr().err
        assert "schema is at version 0" in err and "run `astra migrate`" in err
        assert main(["migrate"]) == 0
        out = capsys.readouterr().out
        latest = pg_migrations.latest_version()
        assert "applied 0001_documents" in out and f"schema version {latest}" in out
        assert main(["migrate"]) == 0
        assert "up to date" in capsys.readouterr().out
    monkeypatch.delenv("ASTRA_DATABASE_URL")
    assert main(["migrate"]) == 1
    assert "set ASTRA_DATABASE_URL" in capsys.readouterr().err


def test_a_blind_delete_waiting_for_the_lock_sees_what_the_holder_committed(
    pg_dsn: str,
) -> None:
    """A unit that only deletes takes the lock before its delete runs: a statement whose snapshot
    predated the holder's commit would not see the row the holder inserted, and leave it."""
    first, second = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    for round_ in range(10):
        doc_id = f"x{round_}"
        holding, committed = threading.Event(), threading.Event()

        def insert(doc_id: str, holding: threading.Event, committed: threading.Event) -> None:
            with first.instance("shop-1") as uow:
                uow.carts.put({"id": doc_id, "state": "open"})
                uow.carts.count()  # sent, lock held
                holding.set()
                time.sleep(0.3)
                uow.commit()
            committed.set()

        t = threading.Thread(target=insert, args=(doc_id, holding, committed))
        t.start()
        assert holding.wait(10)
        with second.instance("shop-1") as uow:
            uow.carts.delete(doc_id)
            uow.commit()  # waits for the holder, then deletes what it committed
        t.join()
        assert committed.is_set()
        with second.instance("shop-1", write=False) as uow:
            assert uow.carts.get(doc_id) is None, round_
    first.close()
    second.close()
