"""Background loops of `astra serve` that keep sales moving when nobody clicks anything.

Housekeeping, every few seconds for every instance: carts past their expiry are closed (their
keys go back to stock, their pending orders expire), and wallet postings a tenant runtime wrote
are moved to the portal ledger. Each pass is idempotent, so running it late or twice is harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from astra.container import Container
from astra.domain.order import PAID_STATUSES, Order, OrderStatus
from astra.domain.timestamps import parse_iso
from astra.logs import get_logger
from astra.ports.payments import GatewayError
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


async def every(name: str, interval: float, stop: asyncio.Event,
                step: Callable[[], dict[str, Any] | None], quiet: tuple[str, ...] = ()) -> None:
    """Run a blocking `step` in a thread every `interval` seconds until `stop`; log what it
    did (unless only `quiet` counters moved) and survive its failures."""
    while not stop.is_set():
        try:
            result = await asyncio.to_thread(step)
            if any(v for k, v in (result or {}).items() if k not in quiet):
                log.info(f"{name}.pass", **result)
        except Exception:
            log.exception(f"{name}.failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass


async def housekeeping_loop(
    container: Container, stop: asyncio.Event, interval: float = HOUSEKEEPING_INTERVAL_SECONDS
) -> None:
    await every("housekeeping", interval, stop, lambda: housekeeping_pass(container))


# -- payment reconciliation --------------------------------------------------------------------

# A pending charge is asked about after 5 s, 10 s, 20 s, 40 s, then every minute: a lost webhook
# delays a sale by seconds. Paid orders are watched for refunds and chargebacks for 180 days,
# every 6 hours; orders that ended unpaid, for a day (a PIX can cross the cancellation).
PENDING_BACKOFF = (5.0, 10.0, 20.0, 40.0, 60.0)
PAID_WATCH = timedelta(days=180)
PAID_INTERVAL = 6 * 3600.0
ENDED_WATCH = timedelta(days=1)
FINAL_CHARGE = {"cancelled", "rejected", "refunded", "charged_back"}


class Reconciler:
    """Polls the gateway for charges whose news may have been lost. The schedule lives in
    memory: after a restart everything open is asked about once, which is what a restart
    after lost webhooks needs anyway."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._next: dict[str, tuple[float, int]] = {}

    def _due(self, key: str, now: float) -> bool:
        at, _ = self._next.get(key, (0.0, 0))
        return now >= at

    def _later(self, key: str, now: float, schedule: tuple[float, ...] | float) -> None:
        _, tries = self._next.get(key, (0.0, 0))
        fixed = not isinstance(schedule, tuple)
        delay = schedule if fixed else schedule[min(tries, len(schedule) - 1)]
        self._next[key] = (now + delay, tries + 1)

    def pass_once(self) -> dict[str, int]:
        store, payments = self.container.store(), self.container.payments()
        clock = self.container.clock()
        now, mono = clock.now(), time.monotonic()
        counts: dict[str, int] = {}
        live: set[str] = set()
        for instance_id in store.instance_ids():
            with store.instance(instance_id, write=False) as uow:
                orders = [o for o in uow.orders.all() if o.get("charge_id")]
            for doc in orders:
                order = Order.from_doc(doc)
                key = f"{instance_id}:{order.id}"
                charge_status = (order.charge or {}).get("status")
                if order.status is OrderStatus.PENDING:
                    schedule: tuple[float, ...] | float = PENDING_BACKOFF
                elif order.status in PAID_STATUSES:
                    paid_at = parse_iso(order.paid_at)
                    if paid_at is None or now - paid_at > PAID_WATCH:
                        continue
                    schedule = PAID_INTERVAL
                    if key not in self._next:  # the first look waits a while: it was just paid
                        self._next[key] = (mono + 3600.0, 0)
                else:
                    closed = parse_iso(order.closed_at)
                    if (
                        charge_status in FINAL_CHARGE
                        or closed is None
                        or now - closed > ENDED_WATCH
                    ):
                        continue
                    schedule = PENDING_BACKOFF
                live.add(key)
                if not self._due(key, mono):
                    continue
                try:
                    outcome = payments.check_order(instance_id, order, now)
                    counts[outcome.action] = counts.get(outcome.action, 0) + 1
                except GatewayError as exc:
                    counts["gateway_errors"] = counts.get("gateway_errors", 0) + 1
                    log.warning("reconcile.gateway_error", order=order.id, error=str(exc))
                except Exception:
                    # One order that cannot be settled must not keep the others waiting.
                    counts["errors"] = counts.get("errors", 0) + 1
                    log.exception("reconcile.order_failed", order=order.id)
                self._later(key, mono, schedule)
        for tx in self.container.plans().pending_transactions():
            key = f"plan:{tx['id']}"
            live.add(key)
            if not tx.get("charge_id") or not self._due(key, mono):
                continue
            try:
                outcome = payments.handle_notification(tx["charge_id"])
                counts[f"plan_{outcome.action}"] = counts.get(f"plan_{outcome.action}", 0) + 1
            except GatewayError as exc:
                log.warning("reconcile.gateway_error", plan_tx=tx["id"], error=str(exc))
            self._later(key, mono, PENDING_BACKOFF)
        for key in set(self._next) - live:
            del self._next[key]
        return counts


async def reconcile_loop(
    container: Container, stop: asyncio.Event, interval: float | None = None
) -> None:
    reconciler = Reconciler(container)
    interval = interval or float(container.settings().reconcile_interval_seconds)
    await every("reconcile", interval, stop, reconciler.pass_once, quiet=("noted",))


# -- instance runtimes -------------------------------------------------------------------------

MONITOR_INTERVAL_SECONDS = 5.0


async def monitor_loop(
    container: Container, stop: asyncio.Event, interval: float = MONITOR_INTERVAL_SECONDS
) -> None:
    """Start, stop, suspend and watch every instance's runtime; on shutdown, stop the runtimes
    this process owns (subprocesses; Docker containers live on their own)."""
    monitor = container.monitor()
    log.info("monitor.started", runtime=monitor.runtime.name)

    def monitor_pass() -> None:
        # Status changes are recorded (instance record, audit log) by the monitor itself.
        monitor.reconcile_once()

    try:
        await every("monitor", interval, stop, monitor_pass)
    finally:
        shutdown = getattr(monitor.runtime, "shutdown", None)
        if shutdown is not None:
            await asyncio.to_thread(shutdown)
