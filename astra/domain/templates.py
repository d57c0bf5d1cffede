"""The DM a buyer gets with what they bought: a seller's template with placeholders, rendered as
an embed, with a plain-text version for when an embed cannot carry it (too many keys).

Two templates per instance: `sale` (the bot delivers a paid order) and `staff` (a delivery made
by staff: a payment confirmed by hand, a redelivery an operator asked for). A product may set its
own body for either. A placeholder the renderer does not know is refused when the template is
saved, with the list of the known ones, instead of reaching a buyer as "{pedidoo}".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from astra.domain import branding
from astra.domain.errors import InvalidInput

MAX_BODY = 2000
MAX_TITLE = 200
MAX_FOOTER = 300
KINDS = ("sale", "staff")

# English names (the documented ones) and the Portuguese names of the first templates.
PLACEHOLDERS: dict[str, str] = {
    "buyer": "comprador",
    "product": "produto",
    "variant": "variante",
    "keys": "chaves",
    "order": "pedido",
    "instance": "loja",
    "quantity": "quantidade",
    "amount": "valor",
    "date": "data",
}
KNOWN = (*PLACEHOLDERS, *PLACEHOLDERS.values())
_ANY_PLACEHOLDER = re.compile(r"\{([^{}\s]{0,40})\}")
_KNOWN_RE = re.compile(r"\{(" + "|".join(KNOWN) + r")\}")

DEFAULT_TITLES = {
    "sale": {"pt-BR": "✅ Compra entregue", "en": "✅ Purchase delivered"},
    "staff": {"pt-BR": "📦 Entrega da equipe", "en": "📦 Delivery from the staff"},
}
DEFAULT_BODIES = {
    "sale": {
        "pt-BR": (
            "Obrigado pela compra, {buyer}! 🎉\n"
            "**Pedido:** {order}\n**Produto:** {product} — {variant} × {quantity}\n"
            "**Valor:** {amount}\n\n{keys}"
        ),
        "en": (
            "Thank you for your purchase, {buyer}! 🎉\n"
            "**Order:** {order}\n**Product:** {product} — {variant} × {quantity}\n"
            "**Amount:** {amount}\n\n{keys}"
        ),
    },
    "staff": {
        "pt-BR": (
            "Olá, {buyer}! A equipe da {instance} entregou o seu pedido {order}.\n"
            "**Produto:** {product} — {variant} × {quantity}\n\n{keys}"
        ),
        "en": (
            "Hello, {buyer}! The {instance} staff delivered your order {order}.\n"
            "**Product:** {product} — {variant} × {quantity}\n\n{keys}"
        ),
    },
}


def check_placeholders(value: str, field: str) -> str:
    """`value` when every {name} in it is a known placeholder; else a 422 listing them."""
    unknown = sorted({m.group(1) for m in _ANY_PLACEHOLDER.finditer(value)} - set(KNOWN))
    if unknown:
        raise InvalidInput(
            "unknown_placeholder",
            field=field,
            unknown=", ".join("{" + u + "}" for u in unknown),
            known=", ".join("{" + k + "}" for k in PLACEHOLDERS),
        )
    return value


def template_text(value: Any, field: str, limit: int = MAX_BODY) -> str:
    return check_placeholders(branding.text(value, field, limit), field)


DEFAULT_TEMPLATE = {"title": "", "body": "", "footer": "", "color": None}


def validate_templates(value: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The instance's templates after a change: {sale: {title, body, footer, color}, staff:
    {...}}, each a partial object; "" keeps the built-in text for that part."""
    if not isinstance(value, dict) or set(value) - set(KINDS):
        raise InvalidInput("invalid_field", field="templates (sale, staff)")
    out = {k: {**DEFAULT_TEMPLATE, **((current or {}).get(k) or {})} for k in KINDS}
    for kind, changes in value.items():
        if not isinstance(changes, dict) or set(changes) - set(DEFAULT_TEMPLATE):
            raise InvalidInput("invalid_field", field=f"templates.{kind}")
        for key, raw in changes.items():
            name = f"templates.{kind}.{key}"
            if key == "color":
                out[kind][key] = branding.color(raw, name)
            elif key == "title":
                out[kind][key] = template_text(raw, name, MAX_TITLE)
            elif key == "footer":
                out[kind][key] = template_text(raw, name, MAX_FOOTER)
            else:
                out[kind][key] = template_text(raw, name, MAX_BODY)
    return out


def fill(template: str, values: dict[str, str]) -> str:
    """Known placeholders filled (English or Portuguese names); anything else left as written,
    so a template saved before the check existed never raises."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        english = next((en for en, pt in PLACEHOLDERS.items() if pt == name), name)
        return values.get(english, m.group(0))

    return _KNOWN_RE.sub(one, template)


@dataclass(frozen=True)
class RenderedDM:
    """An embed when it fits Discord's limits (else None), and the same as plain text."""

    embed: dict[str, Any] | None
    text: str


def render_dm(
    kind: str,
    values: dict[str, str],
    *,
    language: str,
    settings: dict[str, Any],
    product_body: str = "",
    product_color: int | None = None,
) -> RenderedDM:
    """The DM of one order line. `values` by English placeholder name."""
    tpl = {**DEFAULT_TEMPLATE, **((settings.get("templates") or {}).get(kind) or {})}
    lang = language if language in ("pt-BR", "en") else "pt-BR"
    body = fill(product_body or tpl["body"] or DEFAULT_BODIES[kind][lang], values).strip()
    title = fill(tpl["title"] or DEFAULT_TITLES[kind][lang], values).strip()
    footer = fill(tpl["footer"], values).strip()
    text = "\n".join(p for p in (f"**{title}**" if title else "", body, footer and f"-# {footer}")
                     if p)
    brand = branding.branding_of(settings)
    embed: dict[str, Any] | None = {
        "title": title[: branding.EMBED_TITLE],
        "description": body,
        "color": branding.embed_color(tpl["color"], product_color, brand.get("color")),
    }
    assert embed is not None
    if footer:
        embed["footer"] = {"text": footer[: branding.EMBED_FOOTER]}
    if (
        not body
        or len(body) > branding.EMBED_DESCRIPTION
        or branding.embed_size(embed) > branding.EMBED_TOTAL
    ):
        embed = None
    return RenderedDM(embed=embed, text=text)
