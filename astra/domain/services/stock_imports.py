"""Stock imports of any size, in chunks: none holds an instance's lock for long.

A file of up to MAX_KEYS_PER_IMPORT keys is parsed, fingerprinted and sealed outside any lock.
A small one (one chunk) is then added in one unit of work, at once. A bigger one becomes a job:
its sealed keys are written as parts (`stock_job_parts`) beside a job document (`stock_jobs`,
state and progress), and each part becomes stock in a unit of work of its own (`run_chunk`),
which deletes the part and advances the job in the same commit. So:

- a key is never lost or added twice: a part is either still waiting (its keys not in stock)
  or gone (its keys in stock, or counted as duplicates), never both, whatever crashes between
  chunks; the next `run_chunk` simply goes on (the `astra serve` importer loop, or the CLI);
- each chunk checks its keys against the stock with one indexed lookup (`find_any`) and a set,
  so an import costs time linear in its size, not in its size times the stock's;
- buyers waiting for stock are served by the chunk that adds their keys (`fill_waiting_orders`),
  before any new cart can reserve them, as with a single-unit import;
- a cart's reservation waits at most one chunk for the lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from astra.domain.catalog import DeliveryKind, Product
from astra.domain.errors import InvalidInput, NotFoundError
from astra.domain.ids import new_id
from astra.domain.services.audit_log import record
from astra.domain.services.publishing import EventPublisher
from astra.domain.services.settlement import fill_waiting_orders
from astra.domain.stock import ImportReport, KeyState, decode_stock_file, parse_keys
from astra.domain.timestamps import iso, parse_iso
from astra.ports.clock import Clock
from astra.ports.secrets import InstanceVault
from astra.ports.store import InstanceUnitOfWork, Store

VaultProvider = Callable[[str], InstanceVault]

# Keys per unit of work: measured at ~30-60 ms of lock on the JSON store with 100k keys in stock,
# far inside the ~1 s a unit may keep an instance from its buyers.
CHUNK_KEYS = 1000
# Parts written per unit of work while a job is being prepared (sealed keys only: no lookups).
PARTS_PER_WRITE = 10
# A job whose preparation stopped (its process died) this long ago is failed and its parts
# deleted: none of its keys reached the stock, so nothing else needs undoing.
STALE_PREPARING = timedelta(minutes=5)
# Between two chunks run back to back by one thread (`run`), the lock is left free this long:
# a lock is not handed over on release, so without a pause the same thread could take it again
# before a cart's waiting thread wakes up.
PAUSE_BETWEEN_CHUNKS_SECONDS = 0.002
# Skipped line numbers a job keeps (the counts are exact whatever the number).
SKIPPED_LINES_KEPT = 1000


class JobState(StrEnum):
    PREPARING = "preparing"  # parts being written; not run yet
    RUNNING = "running"  # parts waiting to become stock
    DONE = "done"
    FAILED = "failed"  # stopped; what was added stays, the rest was dropped (see `error`)


_COUNTS = ("added", "duplicate_in_file", "already_in_stock", "blank", "too_long", "invalid")


@dataclass
class StartedImport:
    """What `start` did: the report of an import done at once, or the job that goes on."""

    report: ImportReport | None = None
    job: dict[str, Any] | None = None


def _part_id(job_id: str, n: int) -> str:
    return f"{job_id}.{n:05d}"


def report_of(job: dict[str, Any]) -> ImportReport:
    counts = job.get("report") or {}
    report = ImportReport(**{k: int(counts.get(k, 0)) for k in _COUNTS})
    report.skipped_lines = sorted(counts.get("skipped_lines") or [])
    return report


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    """A job as its seller sees it: progress and report, never a key."""
    total = int(job.get("total_keys") or 0)
    processed = int(job.get("processed") or 0)
    report = report_of(job).to_doc()
    return {
        "id": job["id"],
        "kind": "import",
        "state": job["state"],
        "product_id": job.get("product_id"),
        "variant_id": job.get("variant_id"),
        "total": total,
        "processed": processed,
        "percent": 100 if job["state"] == JobState.DONE else
        (processed * 100 // total if total else 0),
        "report": report,
        "error": job.get("error"),
        "created_at": job.get("created_at"),
        "updated_at": job.get("updated_at"),
        "finished_at": job.get("finished_at"),
    }


class StockImports:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        vaults: VaultProvider,
        publisher: EventPublisher | None = None,
        *,
        chunk_keys: int = CHUNK_KEYS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.vaults = vaults
        self.publisher = publisher
        self.chunk_keys = chunk_keys
        # Called (from any thread) when a job is ready to run: the importer loop's wake-up.
        self.on_started: Callable[[], None] | None = None

    # -- starting ----------------------------------------------------------------------------

    def start(
        self, instance_id: str, product_id: str, variant_id: str, data: bytes | str, *, actor: str
    ) -> StartedImport:
        """Parse, fingerprint and seal the file; add it at once if it fits one chunk, else
        write it as a job and return it (to be run by `run_chunk`). Bad input raises before
        anything is written."""
        text = decode_stock_file(data)
        report = ImportReport()
        keys = parse_keys(text, report)
        with self.store.instance(instance_id, write=False) as uow:
            _stockable(uow, product_id, variant_id)
        vault = self.vaults(instance_id)
        seen: set[str] = set()
        unique: list[tuple[int, str, str]] = []
        for number, key in keys:
            fp = vault.fingerprint(key)
            if fp in seen:
                report.duplicate_in_file += 1
                report.skipped_lines.append(number)
                continue
            seen.add(fp)
            unique.append((number, fp, key))
        # Sealed here, outside the lock; a key found already in stock was sealed for nothing.
        sealed = [[n, fp, vault.encrypt(k, context=fp)] for n, fp, k in unique]
        del unique, keys, text
        if len(sealed) <= self.chunk_keys:
            return StartedImport(report=self._at_once(
                instance_id, product_id, variant_id, sealed, report, actor))
        return StartedImport(job=self._write_job(
            instance_id, product_id, variant_id, sealed, report, actor))

    def _at_once(self, instance_id: str, product_id: str, variant_id: str,
                 sealed: list[list[Any]], report: ImportReport, actor: str) -> ImportReport:
        with self.store.instance(instance_id) as uow:
            _stockable(uow, product_id, variant_id)
            _add_keys(uow, product_id, variant_id, sealed, report, iso(self.clock.now()) or "")
            events = []
            if report.added:
                _audit(uow, self.clock, actor, product_id, variant_id, report)
                events = fill_waiting_orders(uow, self.clock.now())
                uow.commit()
        self._publish(instance_id, events)
        report.skipped_lines.sort()
        return report

    def _write_job(self, instance_id: str, product_id: str, variant_id: str,
                   sealed: list[list[Any]], report: ImportReport, actor: str) -> dict[str, Any]:
        now = iso(self.clock.now())
        job_id = new_id("sjob")
        size = self.chunk_keys
        parts = [sealed[i:i + size] for i in range(0, len(sealed), size)]
        counts: dict[str, Any] = {k: getattr(report, k) for k in _COUNTS}
        counts["skipped_lines"] = report.skipped_lines[:SKIPPED_LINES_KEPT]
        job: dict[str, Any] = {
            "id": job_id,
            "state": str(JobState.PREPARING),
            "product_id": product_id,
            "variant_id": variant_id,
            "actor": actor,
            "total_keys": len(sealed),
            "parts": len(parts),
            "next_part": 0,
            "processed": 0,
            "report": counts,
            "error": None,
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        for first in range(0, len(parts), PARTS_PER_WRITE):
            with self.store.instance(instance_id) as uow:
                if first == 0:
                    uow.stock_jobs.add(job)
                for n in range(first, min(first + PARTS_PER_WRITE, len(parts))):
                    uow.stock_job_parts.put(
                        {"id": _part_id(job_id, n), "job_id": job_id, "n": n, "items": parts[n]}
                    )
                uow.commit()
        with self.store.instance(instance_id) as uow:
            job = uow.stock_jobs.require(job_id)
            job["state"] = str(JobState.RUNNING)
            job["updated_at"] = iso(self.clock.now())
            uow.stock_jobs.put(job)
            uow.commit()
        if self.on_started is not None:
            self.on_started()
        return job_view(job)

    # -- running -----------------------------------------------------------------------------

    def run_chunk(self, instance_id: str, job_id: str) -> dict[str, Any]:
        """Turn the job's next part into stock, in one unit of work; returns the job's view.
        A job that is not running is returned as it is: running it twice, from two processes,
        adds nothing twice (each part is read, used and deleted under the instance's lock)."""
        events: list[Any] = []
        with self.store.instance(instance_id) as uow:
            job = uow.stock_jobs.get(job_id)
            if job is None:
                raise NotFoundError("importação", job_id)
            if job["state"] != JobState.RUNNING:
                return job_view(job)
            now_dt = self.clock.now()
            now = iso(now_dt) or ""
            n = int(job["next_part"])
            part = uow.stock_job_parts.get(_part_id(job_id, n)) if n < job["parts"] else None
            try:
                _stockable(uow, job["product_id"], job["variant_id"])
            except (InvalidInput, NotFoundError) as exc:
                self._fail(uow, job, getattr(exc, "code", None) or type(exc).__name__, now)
                uow.commit()
                return job_view(job)
            if part is None and n < job["parts"]:
                self._fail(uow, job, "part_missing", now)
                uow.commit()
                return job_view(job)
            report = report_of(job)
            before = report.added
            if part is not None:
                _add_keys(uow, job["product_id"], job["variant_id"], part["items"], report, now)
                uow.stock_job_parts.delete(part["id"])
                job["processed"] = int(job["processed"]) + len(part["items"])
            job["next_part"] = n + 1
            job["report"] = {k: getattr(report, k) for k in _COUNTS}
            job["report"]["skipped_lines"] = report.skipped_lines[:SKIPPED_LINES_KEPT]
            job["updated_at"] = now
            if job["next_part"] >= job["parts"]:
                job["state"] = str(JobState.DONE)
                job["finished_at"] = now
                if report.added:
                    _audit(uow, self.clock, job.get("actor") or "", job["product_id"],
                           job["variant_id"], report)
            uow.stock_jobs.put(job)
            if report.added > before:
                events = fill_waiting_orders(uow, now_dt)
            uow.commit()
        self._publish(instance_id, events)
        return job_view(job)

    def run(self, instance_id: str, job_id: str,
            progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Every remaining chunk, one unit of work each; `progress(view)` after each."""
        while True:
            view = self.run_chunk(instance_id, job_id)
            if progress is not None:
                progress(view)
            if view["state"] != JobState.RUNNING:
                return view
            time.sleep(PAUSE_BETWEEN_CHUNKS_SECONDS)

    def import_all(self, instance_id: str, product_id: str, variant_id: str, data: bytes | str,
                   *, actor: str,
                   progress: Callable[[dict[str, Any]], None] | None = None) -> ImportReport:
        """Start and finish an import here (the CLI, the bot's API): the report at the end."""
        started = self.start(instance_id, product_id, variant_id, data, actor=actor)
        if started.report is not None:
            return started.report
        assert started.job is not None
        view = self.run(instance_id, started.job["id"], progress)
        if view["state"] == JobState.FAILED:
            raise InvalidInput("stock_import_failed", reason=str(view.get("error")))
        with self.store.instance(instance_id, write=False) as uow:
            return report_of(uow.stock_jobs.require(started.job["id"]))

    # -- watching and recovery ---------------------------------------------------------------

    def job(self, instance_id: str, job_id: str) -> dict[str, Any]:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.stock_jobs.get(job_id)
        if doc is None:
            raise NotFoundError("importação", job_id)
        return job_view(doc)

    def active_jobs(self, instance_id: str) -> list[dict[str, Any]]:
        """Jobs still going (preparing or running), oldest first."""
        with self.store.instance(instance_id, write=False) as uow:
            docs = [*uow.stock_jobs.find(state=str(JobState.PREPARING)),
                    *uow.stock_jobs.find(state=str(JobState.RUNNING))]
        docs.sort(key=lambda d: d.get("created_at") or "")
        return [job_view(d) for d in docs]

    def instances_with_jobs(self) -> list[str]:
        return sorted({*self.store.instances_with("stock_jobs", state=str(JobState.RUNNING)),
                       *self.store.instances_with("stock_jobs", state=str(JobState.PREPARING))})

    def runnable(self, instance_id: str) -> list[str]:
        """The instance's running jobs, oldest first; preparations left stale by a dead process
        are failed on the way (none of their keys reached the stock)."""
        stale_before = self.clock.now() - STALE_PREPARING
        with self.store.instance(instance_id, write=False) as uow:
            preparing = uow.stock_jobs.find(state=str(JobState.PREPARING))
            running = uow.stock_jobs.find(state=str(JobState.RUNNING))
        for doc in preparing:
            at = parse_iso(doc.get("updated_at"))
            if at is not None and at < stale_before:
                with self.store.instance(instance_id) as uow:
                    job = uow.stock_jobs.get(doc["id"])
                    if job is not None and job["state"] == JobState.PREPARING:
                        self._fail(uow, job, "interrupted", iso(self.clock.now()) or "")
                        uow.commit()
        running.sort(key=lambda d: d.get("created_at") or "")
        return [d["id"] for d in running]

    def _fail(self, uow: InstanceUnitOfWork, job: dict[str, Any], error: str, now: str) -> None:
        for part in uow.stock_job_parts.find(job_id=job["id"]):
            uow.stock_job_parts.delete(part["id"])
        job["state"] = str(JobState.FAILED)
        job["error"] = error
        job["updated_at"] = job["finished_at"] = now
        uow.stock_jobs.put(job)

    def _publish(self, instance_id: str, events: list[Any]) -> None:
        if events and self.publisher is not None:
            self.publisher.publish(instance_id, events)


def product_with_variant(uow: Any, product_id: str, variant_id: str) -> Product:
    """The product, when it has that variant; NotFoundError naming what is missing."""
    doc = uow.products.get(product_id)
    if doc is None:
        raise NotFoundError("produto", product_id)
    product = Product.from_doc(doc)
    if product.variant(variant_id) is None:
        raise NotFoundError("variante", variant_id)
    return product


def _stockable(uow: Any, product_id: str, variant_id: str) -> Product:
    product = product_with_variant(uow, product_id, variant_id)
    if product.delivery_kind is not DeliveryKind.KEY:
        raise InvalidInput("stock_not_applicable", kind=str(product.delivery_kind))
    if product.unlimited_stock:
        raise InvalidInput("stock_not_applicable", kind="estoque ilimitado")
    return product


def _add_keys(uow: Any, product_id: str, variant_id: str, items: list[list[Any]],
              report: ImportReport, now: str) -> None:
    """Add sealed keys ([line, fingerprint, secret]) not yet in stock (any state, any variant):
    one indexed lookup for all of them, then a set."""
    in_stock = {d["fingerprint"] for d in uow.stock.find_any("fingerprint",
                                                             [fp for _, fp, _ in items])}
    for number, fp, secret in items:
        if fp in in_stock:
            report.already_in_stock += 1
            report.skipped_lines.append(number)
            continue
        in_stock.add(fp)
        # `put`, not `add`: the id is new, and `add` would cost a read per key (a round trip
        # on PostgreSQL). The document is StockItem.to_doc()'s, built directly: asdict's deep
        # copies were half the cost of a chunk.
        uow.stock.put({
            "id": new_id("key"), "product_id": product_id, "variant_id": variant_id,
            "fingerprint": fp, "secret": secret, "state": str(KeyState.AVAILABLE),
            "cart_id": None, "reserved_until": None, "order_id": None, "added_at": now,
            "sold_at": None,
        })
        report.added += 1


def _audit(uow: Any, clock: Clock, actor: str, product_id: str, variant_id: str,
           report: ImportReport) -> None:
    record(
        uow,
        at=clock.now(),
        actor=actor,
        action="stock.imported",
        target=f"variant:{variant_id}",
        product_id=product_id,
        added=report.added,
        skipped=report.skipped,
    )
