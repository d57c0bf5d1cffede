"""A buyer's cart: one open at a time per buyer per instance, holding reserved keys until it
expires, is cancelled, or becomes an order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from astra.domain.sale_line import SaleLine
from astra.domain.timestamps import iso, parse_iso


class CartState(StrEnum):
    OPEN = "open"
    CHECKOUT = "checkout"  # an order is pending payment; lines are frozen
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


LIVE_STATES = (CartState.OPEN, CartState.CHECKOUT)


# A cart line and an order line are the same thing at two moments of a sale.
CartLine = SaleLine


@dataclass
class Cart:
    id: str
    buyer_id: str
    state: CartState
    created_at: str
    expires_at: str
    lines: list[CartLine] = field(default_factory=list)
    coupon_code: str | None = None
    order_id: str | None = None
    channel_id: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    message_id: str | None = None  # the cart message the bot keeps up to date
    channel_closed_at: str | None = None
    # The buyer pressed "Recebi" under a delivery made in the cart channel: it may close.
    received_at: str | None = None
    # -- issue 15: inactivity ---------------------------------------------------------------
    # An open cart left alone until then expires before its hard limit (`expires_at`); any
    # action of the buyer moves it (instance setting cart_idle_seconds; None: no idle limit).
    idle_until: str | None = None
    warned_at: str | None = None  # the buyer was told the cart is about to expire

    def line(self, variant_id: str) -> CartLine | None:
        return next((ln for ln in self.lines if ln.variant_id == variant_id), None)

    @property
    def subtotal_cents(self) -> int:
        return sum(ln.total_cents for ln in self.lines)

    @property
    def key_ids(self) -> list[str]:
        return [k for ln in self.lines for k in ln.key_ids]

    def ends_at(self) -> datetime | None:
        """When the cart expires: the hard limit, or sooner when an open cart sits idle (a
        cart waiting for its PIX to clear is not idle: the buyer is paying)."""
        hard = parse_iso(self.expires_at)
        idle = parse_iso(self.idle_until) if self.state is CartState.OPEN else None
        if idle is not None and (hard is None or idle < hard):
            return idle
        return hard

    def expired(self, now: datetime) -> bool:
        ends = self.ends_at()
        return ends is not None and now >= ends

    def touch(self, now: datetime, idle_seconds: int) -> None:
        """A buyer's action: the idle limit starts again (and the warning may come again)."""
        if idle_seconds > 0:
            self.idle_until = iso(now + timedelta(seconds=idle_seconds))
            self.warned_at = None

    def to_doc(self) -> dict[str, Any]:
        doc = dict(self.__dict__)  # shallow: the store copies documents on put
        doc["state"] = str(self.state)
        doc["lines"] = [dict(ln.__dict__) for ln in self.lines]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Cart:
        data = dict(doc)
        data["state"] = CartState(data["state"])
        data["lines"] = [CartLine(**ln) for ln in data.get("lines", [])]
        return cls(**data)
