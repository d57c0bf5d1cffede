"""A Discord user as a customer of one instance."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Buyer:
    id: str  # the Discord user id
    discord_id: str
    username: str = ""
    orders_count: int = 0
    total_spent_cents: int = 0
    blocked: bool = False
    blocked_reason: str = ""
    first_seen_at: str | None = None
    last_order_at: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Buyer:
        return cls(**doc)
