"""Coupons of one instance: what a seller creates, lists and switches off."""

from __future__ import annotations

from typing import Any

from astra.domain.coupon import Coupon, CouponKind, normalize_code
from astra.domain.errors import InvalidInput, NotFoundError
from astra.domain.ids import new_id
from astra.domain.services.audit_log import record
from astra.domain.timestamps import iso
from astra.ports.clock import Clock
from astra.ports.store import Store

_FIELDS = {
    "code",
    "kind",
    "value",
    "min_order_cents",
    "max_uses",
    "per_buyer_limit",
    "expires_at",
    "product_ids",
    "active",
}


class CouponService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create(self, instance_id: str, data: dict[str, Any], *, actor: str) -> Coupon:
        if not isinstance(data, dict):
            raise InvalidInput("invalid_field", field="coupon")
        unknown = set(data) - _FIELDS
        if unknown:
            raise InvalidInput("invalid_field", field=sorted(unknown)[0])
        coupon = Coupon(
            id=new_id("cpn"),
            code=data.get("code"),
            kind=data.get("kind", CouponKind.PERCENT),
            value=data.get("value"),
            min_order_cents=data.get("min_order_cents", 0),
            max_uses=data.get("max_uses"),
            per_buyer_limit=data.get("per_buyer_limit"),
            expires_at=data.get("expires_at"),
            product_ids=data.get("product_ids", []),
            active=bool(data.get("active", True)),
            created_at=iso(self.clock.now()),
        ).validate()
        with self.store.instance(instance_id) as uow:
            if uow.coupons.first(code=coupon.code) is not None:
                raise InvalidInput("invalid_field", field="code (already exists)")
            for pid in coupon.product_ids:
                if uow.products.get(pid) is None:
                    raise NotFoundError("produto", pid)
            uow.coupons.add(coupon.to_doc())
            record(
                uow,
                at=self.clock.now(),
                actor=actor,
                action="coupon.created",
                target=f"coupon:{coupon.code}",
                kind=str(coupon.kind),
                value=coupon.value,
            )
            uow.commit()
        return coupon

    def list(self, instance_id: str) -> list[Coupon]:
        with self.store.instance(instance_id, write=False) as uow:
            return [Coupon.from_doc(d) for d in uow.coupons.all()]

    def set_active(self, instance_id: str, code: str, active: bool, *, actor: str) -> Coupon:
        code = normalize_code(code)
        with self.store.instance(instance_id) as uow:
            doc = uow.coupons.first(code=code)
            if doc is None:
                raise NotFoundError("cupom", code)
            coupon = Coupon.from_doc(doc)
            coupon.active = active
            uow.coupons.put(coupon.to_doc())
            record(
                uow,
                at=self.clock.now(),
                actor=actor,
                action="coupon.enabled" if active else "coupon.disabled",
                target=f"coupon:{code}",
            )
            uow.commit()
        return coupon

    def delete(self, instance_id: str, code: str, *, actor: str) -> Coupon:
        """Delete a coupon nobody has used; a used one stays (its orders name it) and can
        only be disabled."""
        code = normalize_code(code)
        with self.store.instance(instance_id) as uow:
            doc = uow.coupons.first(code=code)
            if doc is None:
                raise NotFoundError("cupom", code)
            coupon = Coupon.from_doc(doc)
            if coupon.uses or coupon.redemptions:
                raise InvalidInput("coupon_used", code=code)
            uow.coupons.delete(doc["id"])
            record(
                uow,
                at=self.clock.now(),
                actor=actor,
                action="coupon.deleted",
                target=f"coupon:{code}",
            )
            uow.commit()
        return coupon
