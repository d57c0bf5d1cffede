"""Products and their variants, and the DM a buyer gets when an order is delivered."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from astra.domain.errors import InvalidInput
from astra.domain.money import MAX_CENTS, check_cents
from astra.domain.subscription import check_period_days, parse_role_ids

MAX_NAME = 100
MAX_DESCRIPTION = 4000
MAX_TEMPLATE = 2000
MAX_VARIANTS = 25  # a Discord select menu holds 25 options
MAX_PER_ORDER_CEILING = 100


class DeliveryKind(StrEnum):
    KEY = "key"  # one stock key per unit
    TEXT = "text"  # the same text for every buyer (a link, instructions)
    FILE = "file"  # a file URL or attachment
    ROLE = "role"  # a Discord role granted in the guild
    SUBSCRIPTION = "subscription"  # roles granted for each variant's period (domain/subscription)


DEFAULT_TEMPLATE = {
    "pt-BR": (
        "Obrigado pela compra! 🎉\n"
        "**Pedido:** {pedido}\n**Produto:** {produto} — {variante} × {quantidade}\n"
        "**Valor:** {valor}\n\n{chaves}"
    ),
    "en": (
        "Thank you for your purchase! 🎉\n"
        "**Order:** {pedido}\n**Product:** {produto} — {variante} × {quantidade}\n"
        "**Amount:** {valor}\n\n{chaves}"
    ),
}

# Placeholders a seller may use; anything else in braces is left as written.
PLACEHOLDERS = (
    "produto",
    "variante",
    "quantidade",
    "chaves",
    "pedido",
    "valor",
    "comprador",
    "loja",
    "data",
)
_PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def render_template(template: str, values: dict[str, str]) -> str:
    """Fill the known placeholders; a seller's stray braces never raise."""
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _text(value: Any, field_name: str, max_len: int, *, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput("invalid_field", field=field_name)
    value = value.strip()
    if (required and not value) or len(value) > max_len:
        raise InvalidInput("invalid_field", field=field_name)
    return value


def _url(value: Any, field_name: str) -> str:
    value = _text(value, field_name, 1000, required=False)
    if value and not re.match(r"^https?://\S+$", value):
        raise InvalidInput("invalid_field", field=field_name)
    return value


@dataclass
class Variant:
    id: str
    name: str
    price_cents: int
    max_per_order: int = 10
    active: bool = True
    # Subscription products: how many days one unit buys (0 for every other kind).
    period_days: int = 0

    def validate(self) -> Variant:
        self.name = _text(self.name, "variant.name", MAX_NAME)
        self.price_cents = check_cents(self.price_cents, "variant.price_cents")
        if (
            isinstance(self.max_per_order, bool)
            or not isinstance(self.max_per_order, int)
            or not 1 <= self.max_per_order <= MAX_PER_ORDER_CEILING
        ):
            raise InvalidInput("invalid_field", field="variant.max_per_order")
        return self


@dataclass
class Product:
    id: str
    name: str
    variants: list[Variant]
    description: str = ""
    category: str = ""
    image_url: str = ""
    banner_url: str = ""
    active: bool = True
    delivery_kind: DeliveryKind = DeliveryKind.KEY
    dm_template: str = ""
    # For text/file/role delivery: the text, the file URL, or the role id.
    content: str = ""
    created_at: str | None = None
    updated_at: str | None = None
    posts: list[dict[str, str]] = field(default_factory=list)

    def variant(self, variant_id: str) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    def validate(self) -> Product:
        self.name = _text(self.name, "name", MAX_NAME)
        self.description = _text(self.description, "description", MAX_DESCRIPTION, required=False)
        self.category = _text(self.category, "category", MAX_NAME, required=False)
        self.image_url = _url(self.image_url, "image_url")
        self.banner_url = _url(self.banner_url, "banner_url")
        self.dm_template = _text(self.dm_template, "dm_template", MAX_TEMPLATE, required=False)
        try:
            self.delivery_kind = DeliveryKind(self.delivery_kind)
        except ValueError:
            raise InvalidInput("invalid_field", field="delivery_kind") from None
        self.content = _text(self.content, "content", MAX_TEMPLATE, required=False)
        if self.delivery_kind is DeliveryKind.ROLE and not re.fullmatch(r"\d{5,25}", self.content):
            raise InvalidInput("invalid_field", field="content (role id)")
        if self.delivery_kind is DeliveryKind.FILE:
            self.content = _url(self.content, "content (file URL)")
        if self.delivery_kind in (DeliveryKind.TEXT, DeliveryKind.FILE) and not self.content:
            raise InvalidInput("invalid_field", field="content")
        if not isinstance(self.variants, list) or not 1 <= len(self.variants) <= MAX_VARIANTS:
            raise InvalidInput("invalid_field", field="variants")
        for v in self.variants:
            v.validate()
        if self.delivery_kind is DeliveryKind.SUBSCRIPTION:
            self.content = " ".join(parse_role_ids(self.content))
            for v in self.variants:
                v.period_days = check_period_days(v.period_days)
        names = [v.name.casefold() for v in self.variants]
        if len(set(names)) != len(names):
            raise InvalidInput("invalid_field", field="variants (duplicate name)")
        return self

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["delivery_kind"] = str(self.delivery_kind)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Product:
        data = dict(doc)
        data["variants"] = [Variant(**v) for v in data.get("variants", [])]
        data["delivery_kind"] = DeliveryKind(data.get("delivery_kind", "key"))
        return cls(**data)


def variant_from_input(data: Any, variant_id: str) -> Variant:
    """A Variant from untrusted input (API JSON, a slash command), validated."""
    if not isinstance(data, dict):
        raise InvalidInput("invalid_field", field="variant")
    price = data.get("price_cents")
    max_per_order = data.get("max_per_order", 10)
    if isinstance(price, int) and not isinstance(price, bool) and price > MAX_CENTS:
        raise InvalidInput("invalid_field", field="variant.price_cents")
    return Variant(
        id=variant_id,
        name=data.get("name", ""),
        price_cents=price,  # type: ignore[arg-type]
        max_per_order=max_per_order,
        active=bool(data.get("active", True)),
        period_days=data.get("period_days", 0),
    ).validate()
