"""The notices waiting to be sent: deduplicated by key, retried with backoff, never blocking a
sale (events are only queued here; the platform's notifier sends them on its own time).

In memory: a platform restart loses notices not yet sent (they are informational; orders,
payments and deliveries have their own durable records and panels). A notice whose key was sent
within REMEMBER is dropped as a repeat, and Discord drops a resend of a message it already has
(the notifier sets a nonce derived from the key).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from astra.domain.notifications import Notice

RETRY_DELAYS = (timedelta(seconds=2), timedelta(seconds=10), timedelta(seconds=60),
                timedelta(minutes=5))
REMEMBER = 5000  # keys sent lately, per process
MAX_WAITING = 2000  # a Discord outage must not grow the queue without end


@dataclass
class Pending:
    instance_id: str
    notice: Notice
    due: datetime
    attempts: int = 0


class NoticeQueue:
    def __init__(self) -> None:
        self._waiting: dict[str, Pending] = {}
        self._sent: OrderedDict[str, None] = OrderedDict()
        self.dropped = 0

    @staticmethod
    def _id(instance_id: str, key: str) -> str:
        return f"{instance_id}|{key}"

    def offer(self, instance_id: str, notice: Notice, now: datetime) -> bool:
        """Queue a notice unless the same fact is queued or was sent lately."""
        ident = self._id(instance_id, notice.key)
        if ident in self._waiting or ident in self._sent:
            return False
        if len(self._waiting) >= MAX_WAITING:
            self.dropped += 1
            return False
        self._waiting[ident] = Pending(instance_id, notice, now)
        return True

    def due(self, now: datetime) -> list[Pending]:
        return sorted((p for p in self._waiting.values() if p.due <= now), key=lambda p: p.due)

    def sent(self, pending: Pending) -> None:
        ident = self._id(pending.instance_id, pending.notice.key)
        self._waiting.pop(ident, None)
        self._sent[ident] = None
        while len(self._sent) > REMEMBER:
            self._sent.popitem(last=False)

    def failed(self, pending: Pending, now: datetime, *, retryable: bool) -> bool:
        """Schedule the next attempt; False when the notice is given up."""
        pending.attempts += 1
        if not retryable or pending.attempts > len(RETRY_DELAYS):
            self._waiting.pop(self._id(pending.instance_id, pending.notice.key), None)
            self.dropped += 1
            return False
        pending.due = now + RETRY_DELAYS[pending.attempts - 1]
        return True

    def __len__(self) -> int:
        return len(self._waiting)
