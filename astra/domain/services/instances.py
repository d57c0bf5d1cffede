"""Instances: a seller's bot and its store. The record lives in the portal domain; the instance's
own settings (what its runtime needs) live in its domain, so its container can read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from astra.domain.errors import InvalidInput, NotFoundError
from astra.domain.messages import LANGUAGES
from astra.domain.services.audit_log import record
from astra.domain.timestamps import iso
from astra.ports.clock import Clock
from astra.ports.store import INSTANCE_ID_PATTERN, Store

SETTINGS_ID = "instance"

DEFAULT_SETTINGS: dict[str, Any] = {
    "language": "pt-BR",
    "cart_ttl_seconds": 900,
    "min_order_cents": 0,
    "guild_id": None,
    "log_channel_id": None,
    "sales_channel_id": None,
    "feedback_channel_id": None,
    "staff_channel_id": None,
    "buyer_role_id": None,
    "cart_category_id": None,
}

# What a seller may change, and how it is checked.
_SNOWFLAKE_FIELDS = (
    "guild_id",
    "log_channel_id",
    "sales_channel_id",
    "feedback_channel_id",
    "staff_channel_id",
    "buyer_role_id",
    "cart_category_id",
)


def validate_settings_change(changes: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "language":
            if value not in LANGUAGES:
                raise InvalidInput("invalid_field", field="language")
        elif key == "cart_ttl_seconds":
            # Mercado Pago refuses a PIX that expires in less than 30 minutes... for its own
            # default; our carts may be shorter because the charge is cancelled with the cart.
            if isinstance(value, bool) or not isinstance(value, int) or not 60 <= value <= 86400:
                raise InvalidInput("invalid_field", field="cart_ttl_seconds")
        elif key == "min_order_cents":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
                raise InvalidInput("invalid_field", field="min_order_cents")
        elif key in _SNOWFLAKE_FIELDS:
            if value is not None and (
                not isinstance(value, str) or not value.isdigit() or not 5 <= len(value) <= 25
            ):
                raise InvalidInput("invalid_field", field=key)
        else:
            raise InvalidInput("invalid_field", field=key)
        clean[key] = value
    return clean


class InstanceService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create(self, instance_id: str, *, owner_id: str, name: str, actor: str) -> dict[str, Any]:
        if not isinstance(instance_id, str) or not INSTANCE_ID_PATTERN.fullmatch(instance_id):
            raise InvalidInput("invalid_field", field="instance id (a-z, 0-9, -; 3-40)")
        name = (name or "").strip()
        if not 1 <= len(name) <= 80:
            raise InvalidInput("invalid_field", field="name")
        now = self.clock.now()
        # The instance's own domain first: if the portal commit then fails, an orphan settings
        # file is harmless, while a portal record without settings would be a broken instance.
        with self.store.instance(instance_id) as uow:
            if uow.settings.get(SETTINGS_ID) is None:
                uow.settings.put(
                    {
                        "id": SETTINGS_ID,
                        "owner_id": owner_id,
                        "name": name,
                        "created_at": iso(now),
                        **DEFAULT_SETTINGS,
                    }
                )
                uow.commit()
        with self.store.portal() as uow:
            if uow.instances.get(instance_id) is not None:
                raise InvalidInput("invalid_field", field="instance id (already taken)")
            doc = {
                "id": instance_id,
                "owner_id": owner_id,
                "name": name,
                "created_at": iso(now),
                "status": "offline",
                "status_reason": None,
                "token_hash": None,
            }
            uow.instances.add(doc)
            record(
                uow,
                at=now,
                actor=actor,
                action="instance.created",
                target=f"instance:{instance_id}",
                owner_id=owner_id,
            )
            uow.commit()
        return doc

    def settings(self, instance_id: str) -> dict[str, Any]:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.settings.get(SETTINGS_ID)
        if doc is None:
            raise NotFoundError("instance", instance_id)
        return {**DEFAULT_SETTINGS, **doc}

    def update_settings(
        self, instance_id: str, changes: dict[str, Any], *, actor: str
    ) -> dict[str, Any]:
        clean = validate_settings_change(changes)
        with self.store.instance(instance_id) as uow:
            doc = uow.settings.get(SETTINGS_ID)
            if doc is None:
                raise NotFoundError("instance", instance_id)
            doc.update(clean)
            uow.settings.put(doc)
            record(
                uow,
                at=self.clock.now(),
                actor=actor,
                action="instance.settings_changed",
                target=f"instance:{instance_id}",
                fields=sorted(clean),
            )
            uow.commit()
        return {**DEFAULT_SETTINGS, **doc}


def settings_of(doc: dict[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULT_SETTINGS, **(doc or {})}


def now_iso(clock: Clock) -> tuple[datetime, str]:
    now = clock.now()
    return now, iso(now) or ""
