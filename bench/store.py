"""Store benchmark (DESIGN.md "Performance" 1): commit cost flat in data size, and vs SQLite.

    python bench/store.py [--dir DIR] [--samples N]

Prints, as its last lines:
    RESULT store_flatness <x> target<=1.5
    RESULT store_vs_sqlite <x> target>=1.0
Both sides of each ratio are measured in this run, on the same filesystem. Exits 0 whatever the
figures are: they are for reading, not for failing a build.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astra.adapters.store.json import JsonStore


def order(i: int) -> dict:
    # Shaped like a real order: frozen lines, totals, payment reference, buyer.
    return {
        "id": f"ord-{i:08d}",
        "cart_id": f"cart-{i:08d}",
        "buyer_id": f"{100000000000000000 + i}",
        "status": "pending",
        "lines": [
            {
                "product_id": "prod-1",
                "variant_id": "var-1",
                "name": "Chave Steam",
                "variant": "Mensal",
                "quantity": 1,
                "unit_price_cents": 1990,
            }
        ],
        "subtotal_cents": 1990,
        "discount_cents": 0,
        "total_cents": 1990,
        "coupon": None,
        "charge_id": f"{900000000 + i}",
        "created_at": "2026-11-29T12:00:00+00:00",
        "expires_at": "2026-11-29T12:15:00+00:00",
    }


def populate(store: JsonStore, instance: str, count: int, batch: int = 2000) -> None:
    done = 0
    while done < count:
        n = min(batch, count - done)
        with store.instance(instance) as uow:
            for i in range(done, done + n):
                uow.orders.put(order(i))
            uow.commit()
        done += n


def commit_latencies(store: JsonStore, instance: str, start: int, samples: int) -> list[float]:
    out = []
    for i in range(start, start + samples):
        doc = order(i)
        t = time.perf_counter()
        with store.instance(instance) as uow:
            uow.orders.put(doc)
            uow.commit()
        out.append(time.perf_counter() - t)
    return out


def sqlite_rate(directory: Path, samples: int) -> float:
    con = sqlite3.connect(directory / "bench.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, doc BLOB NOT NULL)")
    t = time.perf_counter()
    for i in range(samples):
        doc = order(i)
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT OR REPLACE INTO orders VALUES (?, ?)", (doc["id"], orjson.dumps(doc)))
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t
    con.close()
    return samples / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    root = Path(tempfile.mkdtemp(prefix="astra-bench-", dir=args.dir))
    try:
        store = JsonStore(root / "data")
        t0 = time.perf_counter()
        populate(store, "small-shop", args.small)
        populate(store, "large-shop", args.large)
        print(f"populated {args.small} + {args.large} orders in {time.perf_counter() - t0:.1f}s")
        small = commit_latencies(store, "small-shop", args.small, args.samples)
        large = commit_latencies(store, "large-shop", args.large, args.samples)
        small_med, large_med = statistics.median(small), statistics.median(large)
        print(f"median commit with {args.small:>7} orders stored: {small_med * 1e6:8.1f} us")
        print(f"median commit with {args.large:>7} orders stored: {large_med * 1e6:8.1f} us")

        rate_ours = args.samples / sum(commit_latencies(store, "rate-shop", 0, args.samples))
        (root / "sqlite").mkdir()
        rate_sqlite = sqlite_rate(root / "sqlite", args.samples)
        print(
            f"durable order commits/s: astra json {rate_ours:,.0f}  sqlite3 WAL FULL "
            f"{rate_sqlite:,.0f}"
        )
        store.close()
        print(f"RESULT store_flatness {large_med / small_med:.2f} target<=1.5")
        print(f"RESULT store_vs_sqlite {rate_ours / rate_sqlite:.2f} target>=1.0")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
