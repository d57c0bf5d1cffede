"""The delivery outbox: one record per paid order, drained by a worker with retries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

# After the first failure, try again after 1 min, 5 min, 30 min, 2 h and 12 h; then stop and let
# staff redeliver by hand.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # retries exhausted; staff must act
    CANCELLED = "cancelled"  # the order was refunded before delivery


@dataclass
class Delivery:
    id: str  # = order id: one delivery record per order
    order_id: str
    buyer_id: str
    status: DeliveryStatus
    created_at: str
    next_attempt_at: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered_at: str | None = None
    channel: str | None = None
    last_error: str | None = None
    # Lines already delivered (by index), so a retry after a partial failure resends only the rest.
    delivered_lines: list[int] = field(default_factory=list)
    # A worker that claimed this delivery holds it until then; another worker skips it.
    lease_until: str | None = None
    # Who holds the lease ("bot:<pid>:<start ms>", "portal"): a bot that starts up frees the
    # leases a dead process of its instance left behind instead of waiting them out.
    lease_holder: str | None = None

    # Attempts before this index were before the last staff redelivery: the backoff restarts.
    retry_from: int = 0
    # Bumped by each staff redelivery. It is part of every message's idempotency key, so a
    # redelivery sends again while a retry of the same generation is dropped as a duplicate.
    # (retry_from cannot serve: it does not move between two redeliveries with no attempt.)
    generation: int = 0

    def next_retry(self, now: datetime) -> datetime | None:
        failures = sum(1 for a in self.attempts[self.retry_from :] if not a.get("ok"))
        if failures > len(RETRY_DELAYS):
            return None
        return now + RETRY_DELAYS[failures - 1] if failures else now

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["status"] = str(self.status)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Delivery:
        data = dict(doc)
        data["status"] = DeliveryStatus(data["status"])
        return cls(**data)
