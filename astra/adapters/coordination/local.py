"""Coordination for one process (the JSON store's platform): nothing is shared, so every lease is
this process's, the webhook inbox is a queue in memory, throttles are counters in memory and
replays a bounded map per instance.

A notification in memory dies with the process; the reconcile loop's first search after a
restart covers the last day of payment changes, so nothing is lost for long."""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict

from astra.ports.coordination import Coordination, WebhookClaim

MAX_WAITING = 10_000
MAX_THROTTLE_KEYS = 50_000  # a flood of made-up keys cannot exhaust memory
REPLAYS_PER_INSTANCE = 512  # answers kept per instance: one bot's keys cannot push out another's


class LocalLeases:
    def __init__(self) -> None:
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def try_lead(self, name: str) -> bool:
        with self._lock:
            self._held.add(name)
        return True

    def still_leading(self) -> bool:
        return True

    def release(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def close(self) -> None:
        with self._lock:
            self._held.clear()


class LocalInbox:
    """Waiting notifications by due time; one charge id waits at most once (a notification for
    a charge already waiting only makes it due now: its processing reads the charge afresh)."""

    poll_interval = 0.0

    def __init__(self, max_waiting: int = MAX_WAITING) -> None:
        self.max_waiting = max_waiting
        self._due: list[tuple[float, int, str]] = []  # (due monotonic, seq, charge id), sorted
        self._items: dict[str, tuple[float, int]] = {}  # charge id -> (accepted_at, tries)
        self._claimed = 0
        self._seq = 0
        self._lock = threading.Lock()

    def put(self, charge_id: str, accepted_at: float) -> bool:
        with self._lock:
            if charge_id in self._items:
                # New news about a charge waiting for a retry: due now.
                self._due = [(0.0, q, c) if c == charge_id else (t, q, c)
                             for t, q, c in self._due]
                self._due.sort()
                return True
            if len(self._items) + self._claimed >= self.max_waiting:
                return False
            self._push(charge_id, accepted_at, 0, 0.0)
            return True

    def _push(self, charge_id: str, accepted_at: float, tries: int, delay: float) -> None:
        self._seq += 1
        bisect.insort(self._due, (time.monotonic() + delay, self._seq, charge_id))
        self._items[charge_id] = (accepted_at, tries)

    def claim(self) -> WebhookClaim | None:
        with self._lock:
            if not self._due or self._due[0][0] > time.monotonic():
                return None
            _, _, charge_id = self._due.pop(0)
            accepted_at, tries = self._items.pop(charge_id)
            self._claimed += 1
            return WebhookClaim(charge_id, accepted_at, tries)

    def finish(self, claim: WebhookClaim) -> None:
        with self._lock:
            self._claimed -= 1

    def retry(self, claim: WebhookClaim, delay: float) -> None:
        with self._lock:
            self._claimed -= 1
            if claim.charge_id not in self._items:
                self._push(claim.charge_id, claim.accepted_at, claim.tries + 1, delay)

    def next_due_in(self) -> float | None:
        """Seconds until the next waiting notification is due (None: nothing waits)."""
        with self._lock:
            return max(0.0, self._due[0][0] - time.monotonic()) if self._due else None

    def waiting(self) -> int:
        with self._lock:
            return len(self._items) + self._claimed

    def close(self) -> None:
        pass


class LocalThrottles:
    def __init__(self, max_keys: int = MAX_THROTTLE_KEYS) -> None:
        self.max_keys = max_keys
        self._events: OrderedDict[str, list[float]] = OrderedDict()
        self._locks: dict[str, float] = {}
        self._lock = threading.Lock()

    def recent(self, key: str, since: float) -> list[float]:
        with self._lock:
            return [t for t in self._events.get(key, ()) if t > since]

    def add(self, key: str, at: float, keep: float) -> None:
        with self._lock:
            events = [t for t in self._events.pop(key, ()) if t > at - keep]
            events.append(at)
            self._events[key] = events
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)  # the least recently counted

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)

    def lock(self, key: str, until: float) -> None:
        with self._lock:
            self._locks.pop(key, None)
            if len(self._locks) >= self.max_keys:
                now = time.time()
                self._locks = {k: u for k, u in self._locks.items() if u > now}
                while len(self._locks) >= self.max_keys:  # the oldest locks go first
                    del self._locks[next(iter(self._locks))]
            self._locks[key] = until

    def locked_until(self, key: str) -> float:
        with self._lock:
            return self._locks.get(key, 0.0)


class LocalReplays:
    """The last `per_instance` answers of each instance, in memory."""

    def __init__(self, per_instance: int = REPLAYS_PER_INSTANCE) -> None:
        self.per_instance = per_instance
        self._answers: dict[str, OrderedDict[str, tuple[float, int, bytes]]] = {}
        self._lock = threading.Lock()

    def get(self, instance_id: str, key: str, since: float) -> tuple[int, bytes] | None:
        with self._lock:
            entry = self._answers.get(instance_id, OrderedDict()).get(key)
        if entry is None or entry[0] < since:
            return None
        return entry[1], entry[2]

    def put(self, instance_id: str, key: str, status: int, body: bytes, at: float) -> None:
        with self._lock:
            answers = self._answers.setdefault(instance_id, OrderedDict())
            if key in answers:
                return
            answers[key] = (at, status, body)
            while len(answers) > self.per_instance:
                answers.popitem(last=False)


def local_coordination() -> Coordination:
    return Coordination("local", LocalLeases(), LocalInbox(), LocalThrottles(), LocalReplays())
