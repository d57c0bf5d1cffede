"""Products and their variants. The DM a buyer gets is rendered by `templates.py`."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from astra.domain import branding, templates
from astra.domain.errors import InvalidInput
from astra.domain.money import MAX_CENTS, check_cents

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
    # -- issue 15: shown in the post's select and fields ----------------------------------------
    emoji: str = ""
    duration: str = ""  # "30 dias", "Vitalício": a label, not a rule

    def validate(self) -> Variant:
        self.name = _text(self.name, "variant.name", MAX_NAME)
        self.emoji = branding.emoji(self.emoji, "variant.emoji")
        self.duration = branding.text(self.duration, "variant.duration", 40, multiline=False)
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
    # -- issue 15: branding of the post and the DM ----------------------------------------------
    # banner_url: an image/GIF posted just before the product's embed; image_url: the embed's
    # image; show_thumbnail: the instance's thumbnail in the corner of the embed.
    color: int | None = None
    show_thumbnail: bool = True
    footer_text: str = ""
    sections: list[dict[str, str]] = field(default_factory=list)
    demo_url: str = ""
    demo_label: str = ""
    staff_dm_template: str = ""
    # A shared key (`content`) sold any number of times: no stock, never "sold out".
    unlimited_stock: bool = False

    def variant(self, variant_id: str) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    def validate(self) -> Product:
        self.name = _text(self.name, "name", MAX_NAME)
        self.description = _text(self.description, "description", MAX_DESCRIPTION, required=False)
        self.category = _text(self.category, "category", MAX_NAME, required=False)
        self.image_url = branding.https_url(self.image_url, "image_url")
        self.banner_url = branding.https_url(self.banner_url, "banner_url")
        self.dm_template = templates.template_text(self.dm_template, "dm_template", MAX_TEMPLATE)
        self.staff_dm_template = templates.template_text(
            self.staff_dm_template, "staff_dm_template", MAX_TEMPLATE
        )
        self.color = branding.color(self.color, "color")
        if not isinstance(self.show_thumbnail, bool):
            raise InvalidInput("invalid_field", field="show_thumbnail")
        if not isinstance(self.unlimited_stock, bool):
            raise InvalidInput("invalid_field", field="unlimited_stock")
        self.footer_text = branding.text(self.footer_text, "footer_text", 500)
        self.sections = branding.sections(self.sections)
        self.demo_url = branding.https_url(self.demo_url, "demo_url")
        self.demo_label = branding.text(
            self.demo_label, "demo_label", branding.BUTTON_LABEL, multiline=False
        )
        if self.demo_label and not self.demo_url:
            raise InvalidInput("invalid_field", field="demo_url")
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
        if self.unlimited_stock and (self.delivery_kind is not DeliveryKind.KEY
                                     or not self.content):
            # The shared key is `content`; other kinds need no stock to begin with.
            raise InvalidInput("invalid_field", field="unlimited_stock (key + content)")
        if len(self.description) + sum(len(x["title"]) + len(x["text"]) for x in self.sections) \
                + len(self.footer_text) + len(self.name) > branding.EMBED_TOTAL - 1500:
            # The variants' fields need room too: Discord refuses an embed over 6,000.
            raise InvalidInput("invalid_field", field="description + sections (too long)")
        if not isinstance(self.variants, list) or not 1 <= len(self.variants) <= MAX_VARIANTS:
            raise InvalidInput("invalid_field", field="variants")
        for v in self.variants:
            v.validate()
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
        emoji=data.get("emoji", ""),
        duration=data.get("duration", ""),
    ).validate()
