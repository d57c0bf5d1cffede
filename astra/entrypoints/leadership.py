"""Loops that must run on one replica at a time (housekeeping, reconcile, the runtime monitor,
the courier), each behind a leader lease of its own name.

Every `CHECK_SECONDS` each replica confirms the leases it holds and tries to take the ones it
lacks. A replica that dies loses its leases with its database connection; another replica takes
them at its next try, within a few seconds. A replica that finds its leases lost (its
connection broke) stops what they guarded at once: two replicas may overlap for at most the
time that takes, which the loops tolerate (each pass is idempotent, and the store serialises
what two passes could both change). With one process (the JSON store) every lease is always
its own and this is just a way to start the loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from astra.logs import get_logger
from astra.ports.coordination import LeaderLeases

log = get_logger("astra.leadership")

CHECK_SECONDS = 1.0
# After losing its leases, a replica sits out this many checks before trying again.
LOST_COOLDOWN_CHECKS = 3

LoopFactory = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class _Term:
    task: asyncio.Task[None]
    stop: asyncio.Event


@dataclass
class Leadership:
    """Runs each named loop while this replica holds its lease."""

    leases: LeaderLeases
    loops: dict[str, LoopFactory]
    check_seconds: float = CHECK_SECONDS
    _terms: dict[str, _Term] = field(default_factory=dict)
    _resting_until: float = 0.0

    def leading(self) -> list[str]:
        """The loops running here now (what /health reports)."""
        return sorted(name for name, term in self._terms.items() if not term.task.done())

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self._step(stop)
                try:
                    await asyncio.wait_for(stop.wait(), self.check_seconds)
                except TimeoutError:
                    pass
        finally:
            await self._end(list(self._terms), reason="stopping")

    async def _step(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        if self._terms and not await asyncio.to_thread(self.leases.still_leading):
            await self._end(list(self._terms), reason="lease_lost")
            # A replica whose session broke is the least healthy one: the others get the
            # first chance at what it held (they try every check).
            self._resting_until = loop.time() + LOST_COOLDOWN_CHECKS * self.check_seconds
        if loop.time() < self._resting_until:
            return
        for name, term in list(self._terms.items()):
            if term.task.done():  # a loop that ended on its own gives its lease back
                await self._end([name], reason="loop_ended")
        for name, factory in self.loops.items():
            if name in self._terms or stop.is_set():
                continue
            if await asyncio.to_thread(self.leases.try_lead, name):
                term_stop = asyncio.Event()
                task = asyncio.create_task(self._guarded(name, factory, term_stop), name=name)
                self._terms[name] = _Term(task, term_stop)
                log.info("leadership.leading", loop=name)

    @staticmethod
    async def _guarded(name: str, factory: LoopFactory, stop: asyncio.Event) -> None:
        try:
            await factory(stop)
        except Exception:
            log.exception("leadership.loop_failed", loop=name)

    async def _end(self, names: list[str], *, reason: str) -> None:
        terms = [(name, self._terms.pop(name)) for name in names if name in self._terms]
        for _, term in terms:
            term.stop.set()
        await asyncio.gather(*(term.task for _, term in terms), return_exceptions=True)
        for name, _ in terms:
            await asyncio.to_thread(self.leases.release, name)
            if reason != "stopping":
                log.warning("leadership.stepped_down", loop=name, reason=reason)
