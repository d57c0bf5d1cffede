"""Audit entries: who changed what, for every change that touches money, keys or access."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: str
    actor: str  # "buyer:<id>", "seller:<user>", "admin:<name>", "system", "plugin:<name>"
    action: str  # e.g. order.paid, stock.imported, withdrawal.requested
    target: str  # e.g. order:<id>
    details: dict[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)
