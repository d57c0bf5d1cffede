"""PostgreSQL store benchmark (DESIGN.md "Performance" 6): durable commits through the adapter
against bare psycopg, on the same server, in the same run.

    python bench/pg_commits.py [--samples N] [--rounds R]

Starts its own throwaway PostgreSQL cluster (as the tests do: tests/pg.py; or uses
ASTRA_TEST_DATABASE_URL), fsync on as in production. Both sides run on one connection, one
durable commit at a time, in alternating rounds so that the disk's noise falls on both:

- adapter: one unit of work per order on `PostgresStore` (pool checkout, domain lock, the order
  upserted into its JSONB table with its indexes, COMMIT, checkin);
- bare: `INSERT` of the same order JSON into a table with only a primary key, then COMMIT.

Prints, as its last line:
    RESULT pg_commits_vs_bare <x> target>=0.5
Exits 0 whatever the figure is: it is for reading, not for failing a build.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson
import psycopg
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astra.adapters.store.postgresql import PostgresStore
from bench.store import order
from tests.pg import start_server

INSTANCE = "bench-shop"


def adapter_round(store: PostgresStore, start: int, n: int) -> float:
    docs = [order(i) for i in range(start, start + n)]
    t = time.perf_counter()
    for doc in docs:
        with store.instance(INSTANCE) as uow:
            uow.orders.put(doc)
            uow.commit()
    return time.perf_counter() - t


def bare_round(conn: psycopg.Connection, start: int, n: int) -> float:
    rows = [(doc["id"], orjson.dumps(doc).decode()) for doc in map(order, range(start, start + n))]
    t = time.perf_counter()
    for row in rows:
        conn.execute("INSERT INTO bare_orders (id, doc) VALUES (%s, %s::jsonb)", row)
        conn.commit()
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="commits per side")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    server = start_server()
    try:
        with server.database() as dsn:
            store = PostgresStore(dsn, pool_min=1, pool_max=2)
            with psycopg.connect(dsn) as conn:
                conn.execute("CREATE TABLE bare_orders (id text PRIMARY KEY, doc jsonb NOT NULL)")
                conn.commit()
                fsync = conn.execute("SHOW fsync").fetchone()[0]
                sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
                print(f"server: fsync={fsync} synchronous_commit={sync_commit}")
                # warm-up: connections, prepared statements, the first pages of each table
                adapter_round(store, 10_000_000, 200)
                bare_round(conn, 10_000_000, 200)
                per_round = max(1, args.samples // args.rounds)
                ours = bare = 0.0
                for r in range(args.rounds):
                    first = r * per_round
                    # alternate which side goes first, so neither always gets the quieter disk
                    if r % 2:
                        bare += bare_round(conn, first, per_round)
                        ours += adapter_round(store, first, per_round)
                    else:
                        ours += adapter_round(store, first, per_round)
                        bare += bare_round(conn, first, per_round)
                total = per_round * args.rounds
                with store.instance(INSTANCE, write=False) as uow:
                    stored = uow.orders.count()
                assert stored == total + 200, f"{stored} orders stored, expected {total + 200}"
            store.close()
        rate_ours, rate_bare = total / ours, total / bare
        print(
            f"durable commits/s, {total} each: adapter {rate_ours:,.0f}  "
            f"bare psycopg INSERT {rate_bare:,.0f}"
        )
        print(f"RESULT pg_commits_vs_bare {rate_ours / rate_bare:.2f} target>=0.5")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
