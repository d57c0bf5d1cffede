"""A child process for the store's crash and concurrency tests (run with `python -m`).

crash DATA          commit forever; print each acknowledged order number after commit returns
increment DATA N    N read-modify-write increments of one counter in the portal domain

DATA is a JSON data directory, or a postgresql:// URL for the PostgreSQL store.
"""

from __future__ import annotations

import sys

import structlog

from astra.adapters.store.json import JsonStore
from astra.adapters.store.json import state as state_module


def open_store(data: str):
    if data.startswith(("postgresql://", "postgres://")):
        from astra.adapters.store.postgresql import PostgresStore

        return PostgresStore(data)
    return JsonStore(data)


def crash(data: str) -> None:
    # Compact often so that kills also land in the middle of compactions.
    state_module.COMPACT_MIN_BYTES = 32 * 1024
    store = open_store(data)
    with store.instance("shop-1", write=False) as uow:
        n = len(uow.orders.ids())
    while True:
        n += 1
        with store.instance("shop-1") as uow:
            # One order and the key it sold, in one unit of work: both or neither must survive.
            uow.orders.put({"id": f"o{n}", "n": n, "key_id": f"k{n}", "pad": "x" * (n % 700)})
            uow.stock.put({"id": f"k{n}", "variant_id": "v1", "state": "sold", "order_id": f"o{n}"})
            uow.commit()
        sys.stdout.write(f"{n}\n")
        sys.stdout.flush()


def increment(data: str, times: int) -> None:
    store = open_store(data)
    for _ in range(times):
        with store.portal() as uow:
            doc = uow.meta.get("counter") or {"id": "counter", "value": 0}
            doc["value"] += 1
            uow.meta.put(doc)
            uow.commit()
    print("done", flush=True)


if __name__ == "__main__":
    # stdout carries the acknowledgements only.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if sys.argv[1] == "crash":
        crash(sys.argv[2])
    else:
        increment(sys.argv[2], int(sys.argv[3]))
