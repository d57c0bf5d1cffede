"""Coupons and the rules that decide whether one applies and how much it takes off."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from astra.domain.errors import CouponRejected, InvalidInput
from astra.domain.money import check_cents, format_brl, percent_of
from astra.domain.timestamps import parse_iso

CODE_RE = re.compile(r"^[A-Z0-9_-]{3,32}$")


class CouponKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


def normalize_code(code: object) -> str:
    """Codes are case-insensitive: stored and compared upper-case."""
    if not isinstance(code, str):
        raise InvalidInput("invalid_field", field="code")
    normalized = code.strip().upper()
    if not CODE_RE.fullmatch(normalized):
        raise InvalidInput("invalid_field", field="code")
    return normalized


@dataclass
class Coupon:
    id: str
    code: str
    kind: CouponKind
    value: int  # percent (1-100) or cents
    min_order_cents: int = 0
    max_uses: int | None = None
    per_buyer_limit: int | None = None
    expires_at: str | None = None
    product_ids: list[str] = field(default_factory=list)
    active: bool = True
    uses: int = 0
    # buyer id -> uses held by that buyer (pending or paid orders)
    redemptions: dict[str, int] = field(default_factory=dict)
    created_at: str | None = None

    def validate(self) -> Coupon:
        self.code = normalize_code(self.code)
        try:
            self.kind = CouponKind(self.kind)
        except ValueError:
            raise InvalidInput("invalid_field", field="kind") from None
        if self.kind is CouponKind.PERCENT:
            if (
                isinstance(self.value, bool)
                or not isinstance(self.value, int)
                or not 1 <= self.value <= 100
            ):
                raise InvalidInput("invalid_field", field="value")
        else:
            check_cents(self.value, "value")
        check_cents(self.min_order_cents, "min_order_cents", allow_zero=True)
        for name in ("max_uses", "per_buyer_limit"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise InvalidInput("invalid_field", field=name)
        if self.expires_at is not None:
            try:
                parse_iso(self.expires_at)
            except ValueError:
                raise InvalidInput("invalid_field", field="expires_at") from None
        if not isinstance(self.product_ids, list) or not all(
            isinstance(p, str) for p in self.product_ids
        ):
            raise InvalidInput("invalid_field", field="product_ids")
        return self

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["kind"] = str(self.kind)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Coupon:
        data = dict(doc)
        data["kind"] = CouponKind(data["kind"])
        return cls(**data)


def eligible_subtotal(coupon: Coupon, lines: list[tuple[str, int]]) -> int:
    """The part of the cart the coupon applies to. `lines` are (product_id, line total)."""
    if not coupon.product_ids:
        return sum(total for _, total in lines)
    return sum(total for pid, total in lines if pid in coupon.product_ids)


def check_coupon(
    coupon: Coupon,
    *,
    buyer_id: str,
    lines: list[tuple[str, int]],
    now: datetime,
) -> None:
    """Raise CouponRejected with the reason the buyer must read, or return if it applies."""
    code = coupon.code
    if not coupon.active:
        raise CouponRejected("coupon_inactive", code=code)
    expires = parse_iso(coupon.expires_at)
    if expires is not None and now >= expires:
        raise CouponRejected("coupon_expired", code=code)
    if coupon.max_uses is not None and coupon.uses >= coupon.max_uses:
        raise CouponRejected("coupon_exhausted", code=code)
    if (
        coupon.per_buyer_limit is not None
        and coupon.redemptions.get(buyer_id, 0) >= coupon.per_buyer_limit
    ):
        raise CouponRejected("coupon_buyer_limit", code=code)
    subtotal = sum(total for _, total in lines)
    if subtotal < coupon.min_order_cents:
        raise CouponRejected(
            "coupon_min_order", code=code, minimum=format_brl(coupon.min_order_cents)
        )
    if eligible_subtotal(coupon, lines) <= 0:
        raise CouponRejected("coupon_not_applicable", code=code)


def coupon_discount(coupon: Coupon, lines: list[tuple[str, int]]) -> int:
    """Cents taken off (positive), never more than what the coupon applies to."""
    base = eligible_subtotal(coupon, lines)
    if coupon.kind is CouponKind.PERCENT:
        return min(base, percent_of(base, coupon.value))
    return min(base, coupon.value)
