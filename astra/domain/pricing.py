"""What a cart costs: the subtotal, then adjustments (plugins' discounts, a coupon), never below
zero."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Adjustment:
    """A change to the price, from a plugin or a coupon. `amount_cents` < 0 is a discount."""

    source: str
    label: str
    amount_cents: int


@dataclass
class Quote:
    subtotal_cents: int
    adjustments: list[Adjustment] = field(default_factory=list)

    @property
    def discount_cents(self) -> int:
        # Discounts never take the total below zero, and surcharges are not discounts.
        total_adjust = sum(a.amount_cents for a in self.adjustments)
        return min(self.subtotal_cents, max(0, -total_adjust))

    @property
    def total_cents(self) -> int:
        total_adjust = sum(a.amount_cents for a in self.adjustments)
        return max(0, self.subtotal_cents + total_adjust)

    def to_doc(self) -> dict[str, Any]:
        return {
            "subtotal_cents": self.subtotal_cents,
            "adjustments": [asdict(a) for a in self.adjustments],
            "discount_cents": self.discount_cents,
            "total_cents": self.total_cents,
        }
