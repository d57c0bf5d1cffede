"""One line of a cart or an order: a variant, how many, at what price, and its keys."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SaleLine:
    product_id: str
    variant_id: str
    product_name: str
    variant_name: str
    delivery_kind: str
    quantity: int
    unit_price_cents: int
    # the stock keys reserved by the cart, then sold to the order
    key_ids: list[str] = field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents
