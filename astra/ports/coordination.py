"""What several `astra serve` replicas on one database share, besides the store.

One process (the JSON store) has nothing to share: the local adapter keeps everything in memory,
as Astra always did. Replicas on PostgreSQL share it through the database:

- leader leases: each background loop (housekeeping, reconcile, runtime monitor, courier) runs
  on the one replica holding its lease; when that replica dies another takes the lease over;
- the webhook inbox: a notification is written durably before the 200 goes back, and any
  replica's workers may process it, so one accepted by a replica that dies right after answering
  is still processed;
- throttles: the sliding-window counters and locks behind login lockouts and sign-up limits, so
  an attacker gains nothing by spreading guesses over replicas;
- replays: the internal API's answers to writes sent with an Idempotency-Key, so a bot's retry
  that a load balancer sends to another replica gets the first answer instead of a second sale.

Sessions need nothing here: a session is a signed cookie, and what ends one (a logout, a password
change) is written to the store, which every replica reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class LeaderLeases(Protocol):
    """Named leases, each held by at most one process at a time."""

    def try_lead(self, name: str) -> bool:
        """Take the lease `name` if nobody holds it; True when this process holds it now."""
        ...

    def still_leading(self) -> bool:
        """Whether the leases this process took are still its own. False means every one of
        them is lost (the database connection that held them broke): stop what they guard."""
        ...

    def release(self, name: str) -> None:
        """Give up `name` (no-op when not held)."""
        ...

    def held(self) -> list[str]:
        """The names this process holds, sorted."""
        ...

    def close(self) -> None:
        """Release everything."""
        ...


@dataclass
class WebhookClaim:
    """One notification taken for processing. Until it is finished or put back, no other worker
    (in any replica) sees it; if its process dies, it becomes visible again."""

    charge_id: str
    accepted_at: float  # epoch seconds: when a replica accepted it
    tries: int
    handle: Any = None  # the adapter's own (a locked row's transaction, say)


class WebhookInbox(Protocol):
    """Accepted payment notifications waiting to be processed."""

    # How often idle workers look again for notifications other replicas accepted (seconds;
    # 0: only this process puts notifications in, and it wakes its own workers).
    poll_interval: float

    def put(self, charge_id: str, accepted_at: float) -> bool:
        """Keep `charge_id` durably before the webhook is answered; True when kept (or already
        waiting), False when the inbox is full."""
        ...

    def claim(self) -> WebhookClaim | None:
        """The oldest notification that is due and nobody is processing, or None."""
        ...

    def finish(self, claim: WebhookClaim) -> None:
        """It was processed (or given up on): gone for good."""
        ...

    def retry(self, claim: WebhookClaim, delay: float) -> None:
        """Put it back, due again in `delay` seconds, one try more."""
        ...

    def waiting(self) -> int:
        """How many notifications wait (claimed ones included)."""
        ...

    def close(self) -> None: ...


class Throttles(Protocol):
    """Sliding-window event counters and timed locks, by key. Times are epoch seconds."""

    def recent(self, key: str, since: float) -> list[float]:
        """The events of `key` after `since`, oldest first."""
        ...

    def add(self, key: str, at: float, keep: float) -> None:
        """Count one event of `key` at `at`; events older than `at - keep` may be forgotten."""
        ...

    def clear(self, key: str) -> None:
        """Forget `key`'s events (not its lock)."""
        ...

    def lock(self, key: str, until: float) -> None:
        """Lock `key` until `until`."""
        ...

    def locked_until(self, key: str) -> float:
        """When `key`'s lock ends (0 or a past time: not locked)."""
        ...


class Replays(Protocol):
    """Answers to an instance's writes, by the Idempotency-Key they came with. Times are epoch
    seconds."""

    def get(self, instance_id: str, key: str, since: float) -> tuple[int, bytes] | None:
        """The answer kept for this instance and key at or after `since`, or None."""
        ...

    def put(self, instance_id: str, key: str, status: int, body: bytes, at: float) -> None:
        """Keep an answer; the first one kept for a key stays (a retry never replaces it)."""
        ...


@dataclass
class Coordination:
    """All of it together, as the container hands it out."""

    name: str  # "local" | "postgresql"
    leases: LeaderLeases
    inbox: WebhookInbox
    throttles: Throttles
    replays: Replays

    def close(self) -> None:
        self.leases.close()
        self.inbox.close()
        close = getattr(self.throttles, "close", None)
        if close is not None:
            close()
