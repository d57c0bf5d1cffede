"""Writing audit entries inside the unit of work that makes the change (both or neither land)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from astra.domain.audit import AuditEntry
from astra.domain.ids import new_id
from astra.domain.timestamps import iso
from astra.ports.store import UnitOfWork


def record(
    uow: UnitOfWork, *, at: datetime, actor: str, action: str, target: str, **details: Any
) -> None:
    entry = AuditEntry(
        id=new_id("aud"),
        at=iso(at) or "",
        actor=actor,
        action=action,
        target=target,
        details=details,
    )
    uow.repo("audit").add(entry.to_doc())
