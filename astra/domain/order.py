"""Orders: a checkout frozen in time (prices, discounts, keys), then paid, delivered, refunded."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from astra.domain.sale_line import SaleLine


class OrderStatus(StrEnum):
    PENDING = "pending"  # waiting for the PIX payment
    PAID = "paid"  # payment confirmed, keys sold, delivery queued
    WAITING_STOCK = "waiting_stock"  # paid after its keys were released and stock ran out
    DELIVERED = "delivered"
    EXPIRED = "expired"  # the charge expired unpaid
    CANCELLED = "cancelled"
    REFUNDED = "refunded"  # refund or chargeback after payment


PAID_STATUSES = (OrderStatus.PAID, OrderStatus.WAITING_STOCK, OrderStatus.DELIVERED)
OPEN_STATUSES = (OrderStatus.PENDING,)


OrderLine = SaleLine  # frozen at checkout from the cart's lines


@dataclass
class Order:
    id: str
    cart_id: str
    buyer_id: str
    status: OrderStatus
    lines: list[OrderLine]
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    created_at: str
    expires_at: str
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    coupon_code: str | None = None
    fee_bps: int = 0
    fee_cents: int = 0
    net_cents: int = 0
    charge_id: str | None = None
    charge: dict[str, Any] | None = None
    paid_at: str | None = None
    paid_cents: int | None = None
    delivered_at: str | None = None
    closed_at: str | None = None
    refunded_at: str | None = None
    refund_reason: str | None = None
    refunded_cents: int = 0  # partial refunds so far (a full refund makes the order refunded)
    payment_events: list[str] = field(default_factory=list)
    # Whether this order holds one use of its coupon (taken at checkout, given back if the
    # order expires or is cancelled, taken again if it is paid anyway).
    coupon_held: bool = False

    def to_doc(self) -> dict[str, Any]:
        # A shallow conversion: the store copies documents on put, and dataclasses.asdict's
        # deep recursion was the costliest step of confirming a payment.
        doc = dict(self.__dict__)
        doc["status"] = str(self.status)
        doc["lines"] = [dict(ln.__dict__) for ln in self.lines]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Order:
        data = dict(doc)
        data["status"] = OrderStatus(data["status"])
        data["lines"] = [OrderLine(**ln) for ln in data.get("lines", [])]
        return cls(**data)
