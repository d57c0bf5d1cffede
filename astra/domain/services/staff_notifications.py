"""The notices waiting to be sent to a shop's staff (and a buyer's cart warning): an outbox in
the instance's own store, like deliveries and outgoing webhook events, so a crash or a restart
loses none of them.

The process that committed an event writes its notice right after (the publisher's
subscriber, `on_event`): never in the sale's own unit of work, and a store that refuses the
write loses that one notice, not the sale. The notifier sends each instance's notices in the
order they were written, marks each sent, and retries a failed one with backoff until it gives
up. A notice's id is derived from the fact it reports (`Notice.key`), so a fact seen twice is
written once; Discord drops a resend after a crash between sending and marking (the notifier
sets a nonce derived from the same key). Sent and given-up notices are deleted after KEPT.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from astra.domain.events import DomainEvent
from astra.domain.notifications import Notice, notice_for
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.domain.timestamps import iso, parse_iso
from astra.ports.clock import Clock
from astra.ports.store import DuplicateId, Store

RETRY_DELAYS = (timedelta(seconds=2), timedelta(seconds=10), timedelta(seconds=60),
                timedelta(minutes=5))
# A Discord outage must not grow an instance's outbox without end.
MAX_WAITING = 2000
KEPT = timedelta(days=7)
# Out-of-stock notices for one variant: at most one per this window.
STOCK_WINDOW = timedelta(hours=1)
SETTINGS_TTL = 2.0
PENDING = "pending"
SENT = "sent"
GIVEN_UP = "failed"


def notice_id(key: str) -> str:
    return "ntc_" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def notice_of(doc: dict[str, Any]) -> Notice:
    return Notice(key=doc["key"], text=doc["text"], to=doc.get("to") or "staff",
                  channel_id=doc.get("channel_id"), mention_role=doc.get("mention_role"))


class StaffNotices:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        # The notifier's wake-up (it may run in another thread): called after a write.
        self.on_enqueued: Callable[[], None] | None = None
        self.dropped = 0
        self._settings: dict[str, tuple[float, dict[str, Any]]] = {}

    # -- in ----------------------------------------------------------------------------------

    def on_event(self, instance_id: str, event: DomainEvent) -> None:
        """The publisher's subscriber: the notice an event calls for, written down."""
        notice = notice_for(event, self._settings_of(instance_id))
        if notice is None:
            return
        if notice.key.startswith("stock.out:"):
            bucket = int(self.clock.now().timestamp() // STOCK_WINDOW.total_seconds())
            notice = Notice(**{**notice.__dict__, "key": f"{notice.key}:{bucket}"})
        if self.enqueue(instance_id, notice):
            self._wake()

    def enqueue(self, instance_id: str, notice: Notice) -> bool:
        """Write `notice` unless the same fact was written before; False when it was (or the
        instance's outbox is full)."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            if uow.staff_notices.count(status=PENDING) >= MAX_WAITING:
                self.dropped += 1
                return False
            try:
                uow.staff_notices.add({
                    "id": notice_id(notice.key), "key": notice.key, "text": notice.text,
                    "to": notice.to, "channel_id": notice.channel_id,
                    "mention_role": notice.mention_role, "status": PENDING, "attempts": 0,
                    "created_at": iso(now), "due_at": iso(now),
                })
            except DuplicateId:
                return False
            uow.commit()
        return True

    def _settings_of(self, instance_id: str) -> dict[str, Any]:
        # A burst of sales reads the settings once, not once per event.
        cached = self._settings.get(instance_id)
        if cached is not None and time.monotonic() - cached[0] < SETTINGS_TTL:
            return cached[1]
        with self.store.instance(instance_id, write=False) as uow:
            settings = settings_of(uow.settings.get(SETTINGS_ID))
        self._settings[instance_id] = (time.monotonic(), settings)
        return settings

    def _wake(self) -> None:
        if self.on_enqueued is not None:
            self.on_enqueued()

    # -- out ---------------------------------------------------------------------------------

    def waiting(self) -> list[str]:
        """The instances with a notice still to send."""
        return sorted(self.store.instances_with("staff_notices", status=PENDING))

    def due(self, instance_id: str, now: datetime | None = None) -> list[dict[str, Any]]:
        """The instance's pending notices, in the order they were written, up to the first
        one that is not due yet (a notice waiting out its backoff holds the later ones back, so
        the staff channel reads in order)."""
        now = now or self.clock.now()
        with self.store.instance(instance_id, write=False) as uow:
            pending = uow.staff_notices.find(status=PENDING)
        out = []
        for doc in pending:
            if (parse_iso(doc.get("due_at")) or now) > now:
                break
            out.append(doc)
        return out

    def next_due(self, instance_id: str) -> datetime | None:
        with self.store.instance(instance_id, write=False) as uow:
            pending = uow.staff_notices.find(status=PENDING)
        return parse_iso(pending[0].get("due_at")) if pending else None

    def sent(self, instance_id: str, notice: str) -> None:
        self._settle(instance_id, notice, status=SENT)

    def failed(self, instance_id: str, notice: str, *, retryable: bool) -> bool:
        """Schedule the next attempt; False when the notice is given up."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            doc = uow.staff_notices.get(notice)
            if doc is None or doc.get("status") != PENDING:
                return False
            doc["attempts"] = int(doc.get("attempts") or 0) + 1
            again = retryable and doc["attempts"] <= len(RETRY_DELAYS)
            if again:
                doc["due_at"] = iso(now + RETRY_DELAYS[doc["attempts"] - 1])
            else:
                doc.update(status=GIVEN_UP, settled_at=iso(now))
                self.dropped += 1
            uow.staff_notices.put(doc)
            uow.commit()
        return again

    def _settle(self, instance_id: str, notice: str, *, status: str) -> None:
        with self.store.instance(instance_id) as uow:
            doc = uow.staff_notices.get(notice)
            if doc is None:
                return
            doc.update(status=status, settled_at=iso(self.clock.now()))
            uow.staff_notices.put(doc)
            uow.commit()

    def prune(self) -> int:
        """Delete notices settled more than KEPT ago; pending ones are never touched."""
        cutoff = self.clock.now() - KEPT
        pruned = 0
        targets = sorted({i for status in (SENT, GIVEN_UP)
                          for i in self.store.instances_with("staff_notices", status=status)})
        for instance_id in targets:
            with self.store.instance(instance_id, write=False) as uow:
                old = [d["id"] for status in (SENT, GIVEN_UP)
                       for d in uow.staff_notices.find(status=status)
                       if (parse_iso(d.get("settled_at")) or cutoff) < cutoff]
            if not old:
                continue
            with self.store.instance(instance_id) as uow:
                for notice in old:
                    uow.staff_notices.delete(notice)
                    pruned += 1
                uow.commit()
        return pruned
