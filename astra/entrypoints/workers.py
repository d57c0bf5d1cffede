"""Background loops of `astra serve` that keep sales moving when nobody clicks anything.

Housekeeping, every few seconds for every instance: carts past their expiry are closed (their
keys go back to stock, their pending orders expire), and wallet postings a tenant runtime wrote
are moved to the portal ledger. Each pass is idempotent, so running it late or twice is harmless.
"""

from __future__ import annotations

import asyncio

from astra.container import Container
from astra.logs import get_logger
from astra.ports.store import StoreError

log = get_logger("astra.workers")

HOUSEKEEPING_INTERVAL_SECONDS = 5.0


def housekeeping_pass(container: Container) -> dict[str, int]:
    store, sales, wallet = container.store(), container.sales(), container.wallet()
    expired = posted = 0
    for instance_id in store.instance_ids():
        try:
            expired += len(sales.expire_due(instance_id))
            posted += wallet.settle_postings(instance_id)
        except StoreError as exc:
            # One damaged instance must not stop the others' carts from expiring.
            log.error("housekeeping.instance_failed", instance=instance_id, error=str(exc))
    return {"expired_carts": expired, "postings": posted}


async def housekeeping_loop(
    container: Container, stop: asyncio.Event, interval: float = HOUSEKEEPING_INTERVAL_SECONDS
) -> None:
    while not stop.is_set():
        try:
            result = await asyncio.to_thread(housekeeping_pass, container)
            if any(result.values()):
                log.info("housekeeping.pass", **result)
        except Exception:
            log.exception("housekeeping.failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
