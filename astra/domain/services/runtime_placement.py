"""Where bots run: the platform's runtime image and each instance's placement (pooled or
isolated), recorded in the store for the runtime monitor of `astra serve` to carry out."""

from __future__ import annotations

from typing import Any

from astra.domain.errors import InvalidInput, NotFoundError
from astra.domain.services.audit_log import record
from astra.domain.timestamps import iso
from astra.ports.clock import Clock
from astra.ports.store import Store

RUNTIME_DOC = "runtime"
MODES = ("pooled", "isolated")


def runtime_image(store: Store) -> str | None:
    """The image `astra runtime upgrade` set, or None (the setting's image then)."""
    with store.portal(write=False) as uow:
        doc = uow.meta.get(RUNTIME_DOC) or {}
    image = doc.get("image")
    return image if isinstance(image, str) and image else None


def set_runtime_image(store: Store, clock: Clock, image: str, *, actor: str) -> dict[str, Any]:
    now = clock.now()
    with store.portal() as uow:
        doc = uow.meta.get(RUNTIME_DOC) or {"id": RUNTIME_DOC}
        previous = doc.get("image")
        doc.update(image=image, image_set_at=iso(now))
        uow.meta.put(doc)
        record(uow, at=now, actor=actor, action="runtime.upgrade", target="runtime",
               image=image, previous=previous)
        uow.commit()
    return doc


def set_instance_mode(
    store: Store, clock: Clock, instance_id: str, mode: str, *, actor: str
) -> dict[str, Any]:
    """`pooled`, `isolated`, or `default` (the platform's ASTRA_RUNTIME_MODE)."""
    if mode not in (*MODES, "default"):
        raise InvalidInput("invalid_field", field="runtime_mode")
    now = clock.now()
    with store.portal() as uow:
        doc = uow.instances.get(instance_id)
        if doc is None:
            raise NotFoundError("instância", instance_id)
        doc["runtime_mode"] = None if mode == "default" else mode
        uow.instances.put(doc)
        record(uow, at=now, actor=actor, action="instance.runtime_mode",
               target=f"instance:{instance_id}", mode=mode)
        uow.commit()
    return doc
