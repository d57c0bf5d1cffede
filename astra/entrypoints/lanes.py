"""One lane per instance for the platform's loops that act for every seller.

The courier, the notifier, the subscription keeper and the outgoing-webhook sender each run an
instance's work as a task of its own, so one seller whose bot Discord rate-limits (or whose
endpoint hangs) holds up only itself; `slot` bounds how many run at once. A loop starts work for
an instance only when its lane is free: work that comes due meanwhile waits for the lane's
`done` callback, so nothing is done twice. An instance whose work failed (its store busy,
damaged, or anything else) rests in `backoff` (domain/instance_backoff.py) and is not started again
until its rest is over: `ready` says whether an instance may be started now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from astra.domain.instance_backoff import InstanceBackoff

# Instances served at once by each loop.
WIDTH = 8


class Lanes:
    def __init__(self, width: int = WIDTH) -> None:
        # Work enters it itself (`async with lanes.slot`), so a lane can wait outside it.
        self.slot = asyncio.Semaphore(width)
        self._active: dict[str, asyncio.Task[None]] = {}
        self.backoff = InstanceBackoff()

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._active

    def __bool__(self) -> bool:
        return bool(self._active)

    def ready(self, instance_id: str) -> bool:
        """Neither at work now nor resting after a failure."""
        return instance_id not in self._active and self.backoff.ready(instance_id)

    def busy(self) -> frozenset[str]:
        """The instances whose work is in progress."""
        return frozenset(self._active)

    def start(self, instance_id: str, work: Awaitable[None],
              done: Callable[[str], None] | None = None) -> asyncio.Task[None]:
        """Run `work` in the instance's lane; `done(instance_id)` once it ends, the lane free."""
        task = asyncio.ensure_future(work)
        self._active[instance_id] = task

        def ended(_task: asyncio.Task[None]) -> None:
            self._active.pop(instance_id, None)
            if done is not None:
                done(instance_id)

        task.add_done_callback(ended)
        return task

    def cancel(self) -> None:
        for task in self._active.values():
            task.cancel()

    async def drain(self, grace: float | None = None) -> None:
        """Wait for the work in progress; with `grace`, cancel what is still running after it."""
        tasks = list(self._active.values())
        if not tasks:
            return
        if grace is not None:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
