"""The loop that runs big stock imports to the end (jobs: astra/domain/services/stock_imports.py).

A seller's request starts the job and returns; this loop, on the replica that leads it, turns
the job's parts into stock one unit of work at a time, each in a thread, back on the event loop
between chunks so carts and payments of that instance get the lock in between. One lane per
instance (lanes.py): one seller's 50,000 keys never hold up another seller's import.

Everything is in the store: a process stopped mid-job leaves the job running with its remaining
parts, and the next leader goes on from there. It wakes when a job starts (`on_started`) or every
`SCAN_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from astra.domain.services.stock_imports import JobState, StockImports
from astra.entrypoints.lanes import WIDTH, Lanes
from astra.logs import get_logger

log = get_logger("astra.stock.importer")

SCAN_SECONDS = 5.0


class StockImporter:
    def __init__(self, imports: StockImports, *, scan_seconds: float = SCAN_SECONDS) -> None:
        self.imports = imports
        self.scan_seconds = scan_seconds
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.imports.on_started = self._poke
        lanes = Lanes(WIDTH)
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    instances = await asyncio.to_thread(self.imports.instances_with_jobs)
                    for instance_id in instances:
                        if instance_id not in lanes:
                            lanes.start(instance_id, self._run_instance(lanes, instance_id, stop),
                                        self._done)
                except Exception:
                    log.exception("stock_importer.pass_failed")
                waiters = [asyncio.ensure_future(stop.wait()),
                           asyncio.ensure_future(self._wake.wait())]
                await asyncio.wait(waiters, timeout=self.scan_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
        finally:
            self.imports.on_started = None
            await lanes.drain()  # each lane ends after its chunk in hand (they see `stop`)

    async def _run_instance(self, lanes: Lanes, instance_id: str, stop: asyncio.Event) -> None:
        try:
            async with lanes.slot:
                for job_id in await asyncio.to_thread(self.imports.runnable, instance_id):
                    view: dict[str, Any] = {"state": JobState.RUNNING}
                    while view["state"] == JobState.RUNNING and not stop.is_set():
                        view = await asyncio.to_thread(self.imports.run_chunk, instance_id,
                                                       job_id)
                    if view["state"] != JobState.RUNNING:
                        log.info("stock_importer.job_ended", instance=instance_id, job=job_id,
                                 state=view["state"], added=view["report"]["added"],
                                 error=view.get("error"))
        except Exception:
            # The instance's store failed under it: its jobs stay as they are (each chunk is
            # whole or not at all) and are tried again after a scan.
            log.exception("stock_importer.instance_failed", instance=instance_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.scan_seconds)

    def _done(self, _instance_id: str) -> None:
        # A job started while its instance's lane was busy was skipped by that pass: look again.
        if self._wake is not None:
            self._wake.set()


async def stock_importer_loop(container: Any, stop: asyncio.Event) -> None:
    await StockImporter(container.catalog().imports).run(stop)
