"""Background loops of `astra serve` that keep sales moving when nobody clicks anything.

Housekeeping, every few seconds for every instance: carts past their expiry are closed (their
keys go back to stock, their pending orders expire), and wallet postings a tenant runtime wrote
are moved to the portal ledger. Each pass is idempotent, so running it late or twice is harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from astra.container import Container
from astra.domain.cart import LIVE_STATES
from astra.domain.instance_backoff import InstanceBackoff
from astra.domain.order import PAID_STATUSES, Order, OrderStatus
from astra.domain.services.payments import is_news
from astra.domain.timestamps import parse_iso
from astra.entrypoints.internal.api import IDEMPOTENCY_TTL
from astra.logs import get_logger
from astra.ports.payments import Charge, ChargeStatus, GatewayError
from astra.ports.store import StoreUnavailable

log = get_logger("astra.workers")

HOUSEKEEPING_INTERVAL_SECONDS = 5.0
# Longer than any throttle's window (the longest is an hour).
THROTTLE_KEEP_SECONDS = 2 * 3600.0


def housekeeping_pass(container: Container,
                      backoff: InstanceBackoff | None = None) -> dict[str, int]:
    store, sales, wallet = container.store(), container.sales(), container.wallet()
    backoff = backoff or InstanceBackoff()
    expired = posted = warned = 0
    # Only the instances with a live cart (to warn or expire) or a posting to settle: asked of
    # the store (a few indexed queries on PostgreSQL), not found by opening every instance.
    targets = {i for state in LIVE_STATES for i in store.instances_with("carts", state=state.value)}
    targets.update(store.instances_with("postings", status="pending"))
    for instance_id in backoff.select(sorted(targets)):
        try:
            warned += len(sales.warn_expiring(instance_id))
            expired += len(sales.expire_due(instance_id))
            posted += wallet.settle_postings(instance_id)
            backoff.succeeded(instance_id)
        except Exception as exc:
            # One damaged or busy instance must not stop the others' carts from expiring; it
            # rests a while rather than costing every pass its lock's wait.
            if backoff.failed(instance_id) == 1:
                log.error("housekeeping.instance_failed", instance=instance_id, error=str(exc))
    # Throttle counters shared by replicas are forgotten here (by the one leading this loop).
    prune = getattr(container.coordination().throttles, "prune", None)
    if prune is not None:
        try:
            prune(time.time(), THROTTLE_KEEP_SECONDS)
        except Exception:
            log.exception("housekeeping.throttles_failed")
    # So are the internal API's kept answers past the time a retry may come.
    forget = getattr(container.coordination().replays, "prune", None)
    if forget is not None:
        try:
            forget(time.time() - IDEMPOTENCY_TTL)
        except Exception:
            log.exception("housekeeping.replays_failed")
    return {"expired_carts": expired, "postings": posted, "warned_carts": warned}


async def every(name: str, interval: float, stop: asyncio.Event,
                step: Callable[[], dict[str, Any] | None], quiet: tuple[str, ...] = (),
                next_interval: Callable[[], float] | None = None) -> None:
    """Run a blocking `step` in a thread every `interval` seconds (or what `next_interval`
    says after each step) until `stop`; log what it did (unless only `quiet` counters moved)
    and survive its failures."""
    while not stop.is_set():
        try:
            result = await asyncio.to_thread(step)
            if any(v for k, v in (result or {}).items() if k not in quiet):
                log.info(f"{name}.pass", **result)
        except StoreUnavailable as exc:
            # The database is down: said once per pass, without a traceback; the next pass
            # comes at the usual interval.
            log.warning(f"{name}.database_unavailable", error=str(exc)[:300])
        except Exception:
            log.exception(f"{name}.failed")
        try:
            wait = next_interval() if next_interval is not None else interval
            await asyncio.wait_for(stop.wait(), timeout=wait)
        except TimeoutError:
            pass


async def housekeeping_loop(
    container: Container, stop: asyncio.Event, interval: float = HOUSEKEEPING_INTERVAL_SECONDS
) -> None:
    backoff = InstanceBackoff()
    await every("housekeeping", interval, stop, lambda: housekeeping_pass(container, backoff))


# -- payment reconciliation --------------------------------------------------------------------

# Each pass asks the gateway once for the payments updated since the last pass (Mercado Pago's
# search, ranged and sorted by date_last_updated), so its cost follows what changed, not how many
# charges are open. While any PIX is open a pass runs every
# ASTRA_RECONCILE_OPEN_INTERVAL_SECONDS (3): a lost webhook then delays a sale by about that.
# For this long after a newer change shows up, the search window starts this much before it, so a
# change the gateway indexed late is still found (what was already applied is recognised and
# skipped); then it starts at that change, and a quiet pass lists next to nothing.
SEARCH_OVERLAP = timedelta(seconds=10)
# After a start, the first search looks this far back: what changed while Astra was down.
STARTUP_LOOKBACK = timedelta(days=1)
SEARCH_MAX_CALLS = 10  # pages per pass; a backlog past that continues on the next pass
# Charges the search may have missed are also read one by one, at most a few per pass (the
# most overdue first), on slow schedules: pending after 30 s, 60 s, 2 min, then every 5 min;
# paid orders every 6 h for 180 days (refunds, chargebacks); orders that ended unpaid, for a
# day (a PIX can cross the cancellation).
FALLBACK_READS_PER_PASS = 2
PENDING_BACKOFF = (30.0, 60.0, 120.0, 300.0)
PAID_WATCH = timedelta(days=180)
PAID_INTERVAL = 6 * 3600.0
ENDED_WATCH = timedelta(days=1)
ENDED_BACKOFF = (60.0, 300.0, 900.0)
FINAL_CHARGE = {"cancelled", "rejected", "refunded", "charged_back"}


@dataclass
class _Watched:
    """A charge the platform still cares about, and what it belongs to."""

    key: str
    schedule: tuple[float, ...] | float
    instance_id: str = ""
    order: Order | None = None
    plan_tx: str = ""
    open: bool = False  # a buyer or seller may still pay it


class Reconciler:
    """Finds the payments whose news was lost. The search watermark and the per-charge
    schedule live in memory: after a restart the first search looks back STARTUP_LOOKBACK,
    which is what a restart after lost webhooks needs."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._next: dict[str, tuple[float, int]] = {}
        self._newest: datetime | None = None  # the newest change the search has shown
        self._newest_seen = 0.0  # when it showed it (monotonic)
        self.open_pix = False  # any PIX open after the last pass: the loop polls fast
        self.last_pass_calls = 0  # gateway requests the last pass made
        # An instance whose orders cannot be read (its store busy, damaged) is left out of a
        # pass, and of the next ones for a while, not the end of the pass for everyone.
        self.backoff = InstanceBackoff()
        self._skipped: set[str] = set()  # left out of the last pass: their schedules kept

    def _later(self, key: str, now: float, schedule: tuple[float, ...] | float) -> None:
        _, tries = self._next.get(key, (0.0, 0))
        fixed = not isinstance(schedule, tuple)
        delay = schedule if fixed else schedule[min(tries, len(schedule) - 1)]
        self._next[key] = (now + delay, tries + 1)

    def _since(self, now: datetime, mono: float) -> datetime:
        if self._newest is None:
            return now - STARTUP_LOOKBACK
        if mono - self._newest_seen < SEARCH_OVERLAP.total_seconds():
            return self._newest - SEARCH_OVERLAP
        return self._newest

    def _first_look(self, key: str, mono: float, schedule: tuple[float, ...] | float) -> None:
        # The search sees every new charge; the one-by-one read is only the safety net.
        if key not in self._next:
            first = schedule if not isinstance(schedule, tuple) else schedule[0]
            self._next[key] = (mono + first, 0)

    def _watched(self, now: datetime, mono: float) -> dict[str, _Watched]:
        store = self.container.store()
        watched: dict[str, _Watched] = {}
        ids = store.instance_ids()
        self._skipped = set(ids) - set(self.backoff.select(ids))
        for instance_id in ids:
            if instance_id in self._skipped:
                continue
            try:
                with store.instance(instance_id, write=False) as uow:
                    orders = [o for o in uow.orders.all() if o.get("charge_id")]
                self.backoff.succeeded(instance_id)
            except Exception as exc:
                self._skipped.add(instance_id)
                if self.backoff.failed(instance_id) == 1:
                    log.warning("reconcile.instance_failed", instance=instance_id,
                                error=str(exc))
                continue
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
                else:
                    closed = parse_iso(order.closed_at)
                    if (
                        charge_status in FINAL_CHARGE
                        or closed is None
                        or now - closed > ENDED_WATCH
                    ):
                        continue
                    schedule = ENDED_BACKOFF
                self._first_look(key, mono, schedule)
                watched[str(order.charge_id)] = _Watched(
                    key, schedule, instance_id=instance_id, order=order,
                    open=order.status is OrderStatus.PENDING,
                )
        for tx in self.container.plans().pending_transactions():
            if not tx.get("charge_id"):
                if tx.get("method") == "card":
                    # A card plan (Checkout Pro) has no payment id until it is paid: the search
                    # finds its payment by reference (`_watch_of`).
                    watched[f"ref:{tx['id']}"] = _Watched(
                        f"plan:{tx['id']}", PENDING_BACKOFF, plan_tx=tx["id"]
                    )
                continue
            key = f"plan:{tx['id']}"
            self._first_look(key, mono, PENDING_BACKOFF)
            watched[str(tx["charge_id"])] = _Watched(
                key, PENDING_BACKOFF, plan_tx=tx["id"], open=True
            )
        return watched

    def _apply(self, watch: _Watched, charge: Charge, now: datetime) -> str | None:
        """Apply a charge's news (None when it has none)."""
        payments = self.container.payments()
        if watch.order is not None:
            if not is_news(watch.order, charge):
                return None
            outcome = payments.check_order(watch.instance_id, watch.order, now, charge)
            return outcome.action
        if charge.status is ChargeStatus.PENDING:
            return None
        return f"plan_{payments.apply_charge(charge).action}"

    def pass_once(self) -> dict[str, int]:
        gateway = self.container.gateway()
        now, mono = self.container.clock().now(), time.monotonic()
        counts: dict[str, int] = {}
        calls = 0
        settled: set[str] = set()  # charges this pass moved on (paid, cancelled...)

        def count(action: str | None, watch: _Watched | None = None) -> None:
            if action:
                counts[action] = counts.get(action, 0) + 1
                if watch is not None and action != "noted":
                    settled.add(watch.key)

        watched = self._watched(now, mono)
        keys = {w.key for w in watched.values()}
        for key in set(self._next) - keys:
            if key.split(":", 1)[0] not in self._skipped:  # left out now, not settled
                del self._next[key]

        # One look at everything that changed since the last pass.
        try:
            changes = gateway.changed_charges(self._since(now, mono), max_calls=SEARCH_MAX_CALLS)
        except GatewayError as exc:
            changes = None
            counts["gateway_errors"] = 1
            log.warning("reconcile.search_failed", error=str(exc))
        if changes is not None:
            calls += changes.calls
            for charge in changes.charges:
                watch = watched.get(charge.id) or watched.get(f"ref:{charge.external_reference}")
                if watch is None:  # not ours, or no longer watched
                    continue
                try:
                    count(self._apply(watch, charge, now), watch)
                except GatewayError as exc:
                    count("gateway_errors")
                    log.warning("reconcile.gateway_error", charge=charge.id, error=str(exc))
                except Exception:
                    # One charge that cannot be settled must not keep the others waiting.
                    count("errors")
                    log.exception("reconcile.charge_failed", charge=charge.id)
                # Just seen fresh: its one-by-one read can wait.
                self._next[watch.key] = (0.0, 0)
                self._later(watch.key, mono, watch.schedule)
            if changes.newest is not None and (
                self._newest is None or changes.newest > self._newest
            ):
                self._newest, self._newest_seen = changes.newest, mono

        # The safety net: the most overdue charges, read one by one, a few per pass.
        due = sorted(
            (self._next[w.key][0], charge_id)
            for charge_id, w in watched.items()
            if not charge_id.startswith("ref:") and self._next[w.key][0] <= mono
        )
        for _, charge_id in due[:FALLBACK_READS_PER_PASS]:
            watch = watched[charge_id]
            try:
                calls += 1
                charge = gateway.get_charge(charge_id)
                if charge is None:
                    count("unknown_charge")
                else:
                    count(self._apply(watch, charge, now), watch)
            except GatewayError as exc:
                count("gateway_errors")
                log.warning("reconcile.gateway_error", charge=charge_id, error=str(exc))
            except Exception:
                count("errors")
                log.exception("reconcile.charge_failed", charge=charge_id)
            self._later(watch.key, mono, watch.schedule)
        self.last_pass_calls = calls
        self.open_pix = any(w.open and w.key not in settled for w in watched.values())
        return counts


async def reconcile_loop(
    container: Container, stop: asyncio.Event, interval: float | None = None
) -> None:
    reconciler = Reconciler(container)
    settings = container.settings()
    idle = interval or float(settings.reconcile_interval_seconds)
    busy = min(idle, float(settings.reconcile_open_interval_seconds))
    await every("reconcile", idle, stop, reconciler.pass_once, quiet=("noted",),
                next_interval=lambda: busy if reconciler.open_pix else idle)


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
