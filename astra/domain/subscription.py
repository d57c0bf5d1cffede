"""Subscriptions: roles in the instance's guild that last while they are paid for.

A subscription is one buyer's access to one product of delivery kind `subscription`. Each paid
order line adds a period (the variant's days × quantity) that starts at the current end when the
subscription is still live, or now when it is not: buying again early never loses a day. A
refund or chargeback takes back what is left of the period that payment bought (later periods
move back by as much), so the access it paid for ends at once.

Everything here is pure: times come in as arguments (the Clock port is the services' business).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from astra.domain.errors import InvalidInput
from astra.domain.timestamps import iso, parse_iso

MAX_PERIOD_DAYS = 3650
MAX_ROLES = 10
DEFAULT_REMINDER_DAYS = (3, 1)
MAX_REMINDERS = 5
_ROLE_ID = re.compile(r"\d{5,25}")


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class PeriodKind(StrEnum):
    PURCHASE = "purchase"  # the first order, or a purchase after the subscription had ended
    RENEWAL = "renewal"  # paid while still live (a PIX renewal, or buying the product again)
    CARD = "card"  # an automatic card renewal (Mercado Pago preapproval)
    STAFF = "staff"  # days given by the seller from the portal


def parse_role_ids(content: Any) -> list[str]:
    """The roles a subscription product grants, from its `content` ("123, 456" or a list)."""
    if isinstance(content, list):
        raw = [str(r) for r in content]
    elif isinstance(content, str):
        raw = [r for r in re.split(r"[\s,;]+", content.strip()) if r]
    else:
        raw = []
    if not 1 <= len(raw) <= MAX_ROLES or not all(_ROLE_ID.fullmatch(r) for r in raw):
        raise InvalidInput("invalid_field", field="content (role ids)")
    out: list[str] = []
    for role in raw:
        if role not in out:
            out.append(role)
    return out


def check_period_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PERIOD_DAYS:
        raise InvalidInput("invalid_field", field="variant.period_days")
    return value


def check_reminder_days(value: Any) -> list[int]:
    """An instance's reminder schedule: days before the end, e.g. [3, 1]; [] for none."""
    if not isinstance(value, list) or len(value) > MAX_REMINDERS:
        raise InvalidInput("invalid_field", field="subscription_reminder_days")
    days: set[int] = set()
    for d in value:
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 30:
            raise InvalidInput("invalid_field", field="subscription_reminder_days")
        days.add(d)
    return sorted(days, reverse=True)


def subscription_id(product_id: str, buyer_id: str) -> str:
    # One subscription per buyer and product: buying again extends it, never makes a twin.
    return f"sub_{product_id}_{buyer_id}"


@dataclass
class Subscription:
    id: str
    buyer_id: str
    product_id: str
    variant_id: str
    product_name: str
    variant_name: str
    role_ids: list[str]
    period_days: int
    price_cents: int
    status: SubscriptionStatus
    started_at: str
    ends_at: str
    created_at: str
    updated_at: str | None = None
    # [{order_id, line, kind, start, end, days, cents, taken_back_at}]: what paid for which days.
    periods: list[dict[str, Any]] = field(default_factory=list)
    ended_at: str | None = None
    end_reason: str | None = None  # expired | refund | chargeback | staff | card_cancelled
    ended_history: list[str] = field(default_factory=list)  # every end, for churn figures
    renewals: int = 0
    # The roles are on the member for the current live span (set by the platform once Discord
    # said so); False while a grant is owed (a new period, a rejoin, a failed call).
    roles_granted: bool = False
    # The roles were taken off after the end (or the platform gave up: see last_error).
    roles_revoked: bool = False
    last_error: str | None = None
    reminders_sent: list[str] = field(default_factory=list)  # "<ends_at>|<days>"
    ended_notice_sent: bool = False
    # Automatic renewal by card: {"preapproval_id", "status", "init_point", "created_at"}.
    card: dict[str, Any] | None = None

    # -- reading -----------------------------------------------------------------------------

    def end(self) -> datetime:
        end = parse_iso(self.ends_at)
        assert end is not None
        return end

    def live(self, now: datetime) -> bool:
        return self.status is SubscriptionStatus.ACTIVE and self.end() > now

    def has_period(self, order_id: str, line: int) -> bool:
        return any(p["order_id"] == order_id and p.get("line", 0) == line for p in self.periods)

    def card_active(self) -> bool:
        return bool(self.card and self.card.get("status") in ("pending", "authorized"))

    def due_reminder(self, now: datetime, days: list[int]) -> int | None:
        """The reminder to send now (days before the end), the nearest to the end first; None
        when none is due. A reminder is sent once per end date: a renewal moves the end and the
        schedule starts over."""
        if not self.live(now):
            return None
        left = self.end() - now
        for d in sorted(days):
            if left <= timedelta(days=d) and f"{self.ends_at}|{d}" not in self.reminders_sent:
                # The nearer reminders supersede the farther ones that were missed.
                return d
        return None

    def mark_reminded(self, days: int, all_days: list[int]) -> None:
        for d in all_days:
            if d >= days:
                tag = f"{self.ends_at}|{d}"
                if tag not in self.reminders_sent:
                    self.reminders_sent.append(tag)
        # Only the tags of the current end matter; older ones would pile up forever.
        self.reminders_sent = [t for t in self.reminders_sent if t.startswith(self.ends_at)]

    # -- changing ----------------------------------------------------------------------------

    def add_period(
        self,
        *,
        order_id: str,
        line: int,
        kind: PeriodKind,
        days: int,
        cents: int,
        now: datetime,
    ) -> tuple[datetime, datetime]:
        """Add `days` from the current end (or from now after an end). Returns (start, end)."""
        start = self.end() if self.live(now) else now
        if not self.live(now):
            self.status = SubscriptionStatus.ACTIVE
            self.started_at = iso(now) or ""
            self.roles_granted = False
            self.roles_revoked = False
            self.ended_at = None
            self.end_reason = None
            self.ended_notice_sent = False
            self.last_error = None
        elif kind is not PeriodKind.STAFF:
            self.renewals += 1
        end = start + timedelta(days=days)
        self.periods.append(
            {
                "order_id": order_id,
                "line": line,
                "kind": str(kind),
                "start": iso(start),
                "end": iso(end),
                "days": days,
                "cents": cents,
                "paid_at": iso(now),
                "taken_back_at": None,
            }
        )
        self.ends_at = iso(end) or ""
        self.updated_at = iso(now)
        return start, end

    def take_back(self, order_id: str, now: datetime) -> timedelta:
        """A refund or chargeback of `order_id`: what is left of the days it bought is removed,
        and the periods after it move back by as much. Returns how much time was taken."""
        taken = timedelta(0)
        for p in self.periods:
            if p["order_id"] != order_id or p.get("taken_back_at"):
                continue
            p["taken_back_at"] = iso(now)
            taken += self._shorten(p, self._unused(p, now))
        return self._moved_back(taken, now)

    def take_back_share(self, order_id: str, refunded_cents: int, total_cents: int,
                        now: datetime) -> timedelta:
        """A partial refund of `order_id`, `refunded_cents` of its `total_cents` in all so far:
        each period it bought loses the same share of its days (the part not yet counted by an
        earlier partial refund), never more than it has left. Returns how much was taken."""
        taken = timedelta(0)
        if total_cents <= 0:
            return taken
        for p in self.periods:
            if p["order_id"] != order_id or p.get("taken_back_at"):
                continue
            counted = int(p.get("refunded_cents") or 0)
            refunded = min(refunded_cents, total_cents)
            if refunded <= counted:
                continue
            share = timedelta(days=int(p["days"])) * (refunded - counted) / total_cents
            p["refunded_cents"] = refunded
            taken += self._shorten(p, min(share, self._unused(p, now)))
        return self._moved_back(taken, now)

    @staticmethod
    def _unused(period: dict[str, Any], now: datetime) -> timedelta:
        start, end = parse_iso(period["start"]), parse_iso(period["end"])
        assert start is not None and end is not None
        return end - max(start, now) if end > now else timedelta(0)

    def _shorten(self, period: dict[str, Any], by: timedelta) -> timedelta:
        """End `period` `by` earlier and move every later period back as much."""
        if by <= timedelta(0):
            return timedelta(0)
        end = parse_iso(period["end"])
        assert end is not None
        period["end"] = iso(end - by)
        for later in self.periods:
            later_start = parse_iso(later["start"])
            if later is not period and later_start is not None and later_start >= end:
                later["start"] = iso(later_start - by)
                later["end"] = iso(parse_iso(later["end"]) - by)  # type: ignore[operator]
        return by

    def _moved_back(self, taken: timedelta, now: datetime) -> timedelta:
        if taken:
            self.ends_at = iso(max(self.end() - taken, now)) or ""
            self.updated_at = iso(now)
        return taken

    def close(self, now: datetime, reason: str) -> None:
        """The end: it is over as of now (an expiry closes at its own end time)."""
        stamp = iso(min(now, self.end())) if reason == "expired" else iso(now)
        self.status = SubscriptionStatus.ENDED
        self.ended_at = stamp
        self.end_reason = reason
        if reason != "expired":
            self.ends_at = stamp or self.ends_at
        self.ended_history.append(stamp or "")
        self.updated_at = iso(now)

    # -- documents ---------------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        doc = dict(self.__dict__)
        doc["status"] = str(self.status)
        doc["periods"] = [dict(p) for p in self.periods]
        doc["role_ids"] = list(self.role_ids)
        doc["reminders_sent"] = list(self.reminders_sent)
        doc["ended_history"] = list(self.ended_history)
        doc["card"] = dict(self.card) if self.card else None
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Subscription:
        data = dict(doc)
        data["status"] = SubscriptionStatus(data["status"])
        return cls(**data)


def roles_still_granted(
    subscriptions: list[Subscription], buyer_id: str, now: datetime, *, excluding: str
) -> set[str]:
    """The roles another live subscription of the same buyer grants: those stay on the member
    when `excluding` ends."""
    out: set[str] = set()
    for sub in subscriptions:
        if sub.id != excluding and sub.buyer_id == buyer_id and sub.live(now):
            out.update(sub.role_ids)
    return out


def monthly_cents(price_cents: int, period_days: int) -> int:
    """A period's price as recurring revenue per 30 days (MRR), in whole cents."""
    if period_days <= 0:
        return 0
    return (price_cents * 30) // period_days
