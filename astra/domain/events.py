"""Domain events: facts the services publish after a commit, for plugins, logs and panels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DomainEvent:
    name: str  # order.created, order.paid, order.delivered, order.cancelled, order.refunded,
    #            cart.expired, stock.imported, withdrawal.requested, ...
    instance_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
