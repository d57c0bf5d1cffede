"""A buyer's cart: one open at a time per buyer per instance, holding reserved keys until it
expires, is cancelled, or becomes an order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from astra.domain.sale_line import SaleLine
from astra.domain.timestamps import parse_iso


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

    def line(self, variant_id: str) -> CartLine | None:
        return next((ln for ln in self.lines if ln.variant_id == variant_id), None)

    @property
    def subtotal_cents(self) -> int:
        return sum(ln.total_cents for ln in self.lines)

    @property
    def key_ids(self) -> list[str]:
        return [k for ln in self.lines for k in ln.key_ids]

    def expired(self, now: datetime) -> bool:
        expires = parse_iso(self.expires_at)
        return expires is not None and now >= expires

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
