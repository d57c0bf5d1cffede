"""Per-instance backoff for the platform's loops that work for every seller.

An instance whose store is busy (a stock import holding its lock), damaged or failing in any
other way is skipped by the next passes for a while, longer after each failure in a row, and
tried again on its own. Its trouble then costs each loop one failed attempt now and then,
never every pass, and never the other instances' turn. Thread-safe: the blocking passes
(reconcile, monitor, housekeeping) run in threads, the async loops on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

# Seconds an instance rests after 1, 2, 3... failures in a row (the last one repeats). The
# first is the JSON store's rest for a stuck lock (locks.STUCK_RETRY_SECONDS): sooner, a busy
# instance would only fail fast again.
DELAYS = (5.0, 10.0, 20.0, 30.0)


class InstanceBackoff:
    def __init__(self, delays: tuple[float, ...] = DELAYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.delays = delays
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # id -> (failures in a row, until)

    def ready(self, instance_id: str) -> bool:
        """False while the instance rests after a failure."""
        with self._lock:
            entry = self._failures.get(instance_id)
        return entry is None or self._clock() >= entry[1]

    def resting(self) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            return frozenset(i for i, (_, until) in self._failures.items() if now < until)

    def select(self, instance_ids: Iterable[str]) -> list[str]:
        """The given instances that are not resting, in their order."""
        resting = self.resting()
        return [i for i in instance_ids if i not in resting]

    def failed(self, instance_id: str) -> int:
        """Record a failure; returns how many in a row (1 the first time: worth a log line)."""
        with self._lock:
            count = self._failures.get(instance_id, (0, 0.0))[0] + 1
            delay = self.delays[min(count, len(self.delays)) - 1]
            self._failures[instance_id] = (count, self._clock() + delay)
        return count

    def succeeded(self, instance_id: str) -> bool:
        """Forget its failures; True when it had some (it has recovered)."""
        with self._lock:
            return self._failures.pop(instance_id, None) is not None

    def next_retry(self) -> float | None:
        """Seconds until the earliest resting instance may be tried again (None: none rests)."""
        now = self._clock()
        with self._lock:
            waits = [until - now for _, until in self._failures.values() if until > now]
        return min(waits) if waits else None
