"""Stock import benchmark: 50,000 keys into one variant, on the JSON store and on PostgreSQL.

    python bench/stock_import.py [--keys N]

Each store gets a fresh shop (the real container and services, as the sales tests build it) and
two imports of N keys: a new file (every key added), then the same file again (every key found
already in stock: the dedupe against a stock of N). The figure is the first import's wall time,
from the file's bytes to the last chunk committed; the second is printed beside it.

The JSON store's instance lock is watched throughout (`HOLDS`, astra/adapters/store/json/locks.py):
the longest any unit of work kept the instance from its buyers. For PostgreSQL the longest chunk
(one transaction, holding the instance's advisory lock) is printed for reading.

PostgreSQL is a throwaway cluster started as the tests do (tests/pg.py), fsync on.

Prints, as its last lines:
    RESULT stock_import_50k_s_json <x> target<10
    RESULT stock_import_50k_s_pg <x> target<10
    RESULT max_lock_hold_ms <x> target<1500
Exits 0 whatever the figures are: they are for reading, not for failing a build.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astra.adapters.store.json.locks import HOLDS
from tests.integration.sales_world import INSTANCE, make_shop
from tests.pg import start_server


def run(data_dir: Path, keys: int, database_url: str = "") -> tuple[float, float, float]:
    """(first import s, second import s, longest chunk ms) on a fresh shop."""
    shop = make_shop(data_dir, keys=0, database_url=database_url)
    data = "\n".join(f"BENCH-{i:06d}-{(i * 7919) % 1000003:07d}-XYZW" for i in range(keys))
    longest = 0.0
    last: list[float | None] = [None]

    def progress(_view: dict[str, Any]) -> None:
        # From one chunk's end to the next: a chunk's unit of work (the first interval would
        # also hold the parsing, sealing and writing of the parts, so it is not counted).
        nonlocal longest
        now = time.perf_counter()
        if last[0] is not None:
            longest = max(longest, now - last[0])
        last[0] = now

    timings = []
    for expect_added in (keys, 0):
        last[0] = None
        t = time.perf_counter()
        report = shop.catalog.import_stock(
            INSTANCE, shop.product_id, shop.variant_id, data, actor="bench", progress=progress
        )
        timings.append(time.perf_counter() - t)
        assert report.added == expect_added, report
    with shop.container.store().instance(INSTANCE, write=False) as uow:
        stored = uow.stock.count(variant_id=shop.variant_id, state="available")
    assert stored == keys, f"{stored} keys in stock, expected {keys}"
    return timings[0], timings[1], longest * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=50_000)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        HOLDS.reset()
        json_first, json_again, json_chunk = run(Path(tmp) / "json", args.keys)
        max_hold = HOLDS.max_ms()
    print(f"json: {args.keys} keys new {json_first:.2f} s, again (all duplicates) "
          f"{json_again:.2f} s; longest chunk {json_chunk:.0f} ms, longest lock hold "
          f"{max_hold:.0f} ms")
    server = start_server()
    try:
        with server.database() as dsn, tempfile.TemporaryDirectory() as tmp:
            pg_first, pg_again, pg_chunk = run(Path(tmp), args.keys, dsn)
    finally:
        server.stop()
    print(f"postgresql: {args.keys} keys new {pg_first:.2f} s, again (all duplicates) "
          f"{pg_again:.2f} s; longest chunk (transaction) {pg_chunk:.0f} ms")
    label = f"{args.keys // 1000}k"
    print(f"RESULT stock_import_{label}_s_json {json_first:.2f} target<10")
    print(f"RESULT stock_import_{label}_s_pg {pg_first:.2f} target<10")
    print(f"RESULT max_lock_hold_ms {max_hold:.0f} target<1500")
    return 0


if __name__ == "__main__":
    sys.exit(main())
