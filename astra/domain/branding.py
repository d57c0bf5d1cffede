"""How a seller's store looks and speaks in Discord: colours, images, texts, link buttons.

Two levels: the instance's branding (a default for every post, the cart, the PIX message, the
welcome message) and a product's own (its post). Everything here ends up in a Discord embed or
button, so it is checked against Discord's limits when saved, not when the bot speaks: a post
Discord refuses would leave buyers with nothing. Links are https only (Discord shows http images
too, but a seller's banner over plain http is an invitation to swap it in transit).
"""

from __future__ import annotations

import re
from typing import Any

from astra.domain.errors import InvalidInput

# Discord's embed limits (https://discord.com/developers/docs/resources/message#embed-limits).
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
EMBED_FIELD_NAME = 256
EMBED_FIELD_VALUE = 1024
EMBED_FOOTER = 2048
EMBED_TOTAL = 6000
BUTTON_LABEL = 80
MAX_URL = 1000
MAX_SECTIONS = 10  # fields of a product post left for the variants: 25 - 10 = 15 shown
DEFAULT_COLOR = 0x7C3AED

_HTTPS = re.compile(r"^https://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
_CUSTOM_EMOJI = re.compile(r"^<a?:[A-Za-z0-9_]{2,32}:\d{5,25}>$")


def color(value: Any, field: str) -> int | None:
    """A colour as Discord wants it (an int 0..0xFFFFFF) from "#7c3aed", "7c3aed" or an int;
    None (or "") means "the default"."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput("invalid_field", field=f"{field} (#RRGGBB)")
    if isinstance(value, int):
        if 0 <= value <= 0xFFFFFF:
            return value
        raise InvalidInput("invalid_field", field=f"{field} (#RRGGBB)")
    if isinstance(value, str):
        m = _HEX.fullmatch(value.strip())
        if m:
            return int(m.group(1), 16)
    raise InvalidInput("invalid_field", field=f"{field} (#RRGGBB)")


def color_hex(value: int | None) -> str:
    return f"#{value:06x}" if isinstance(value, int) else ""


def https_url(value: Any, field: str) -> str:
    """"" or an https:// link of at most MAX_URL characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("invalid_field", field=field)
    value = value.strip()
    if value and (len(value) > MAX_URL or not _HTTPS.fullmatch(value)):
        raise InvalidInput("invalid_field", field=f"{field} (https://...)")
    return value


def text(value: Any, field: str, limit: int, *, multiline: bool = True) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("invalid_field", field=field)
    value = value.strip()
    if len(value) > limit or (not multiline and "\n" in value):
        raise InvalidInput("invalid_field", field=f"{field} (max. {limit})")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise InvalidInput("invalid_field", field=field)
    return value


def emoji(value: Any, field: str) -> str:
    """A unicode emoji (a few code points, no letters or digits) or a custom one
    (`<:name:id>`), as a select option's emoji."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidInput("invalid_field", field=field)
    value = value.strip()
    if _CUSTOM_EMOJI.fullmatch(value):
        return value
    if 1 <= len(value) <= 8 and not any(c.isascii() and (c.isalnum() or c.isspace())
                                        for c in value) and all(ord(c) > 0x2000 for c in value):
        return value
    raise InvalidInput("invalid_field", field=f"{field} (emoji)")


def emoji_payload(value: str) -> dict[str, Any] | None:
    """The `emoji` object of a select option or button."""
    if not value:
        return None
    m = re.fullmatch(r"<(a?):([A-Za-z0-9_]+):(\d+)>", value)
    if m:
        return {"id": m.group(3), "name": m.group(2), "animated": bool(m.group(1))}
    return {"name": value}


def sections(value: Any, field: str = "sections") -> list[dict[str, str]]:
    """Extra description sections of a product post: [{title, text}], each an embed field."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_SECTIONS:
        raise InvalidInput("invalid_field", field=f"{field} (max. {MAX_SECTIONS})")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"title", "text"}:
            raise InvalidInput("invalid_field", field=f"{field}[{i}]")
        title = text(item.get("title"), f"{field}[{i}].title", EMBED_FIELD_NAME, multiline=False)
        body = text(item.get("text"), f"{field}[{i}].text", EMBED_FIELD_VALUE)
        if not title or not body:
            raise InvalidInput("invalid_field", field=f"{field}[{i}]")
        out.append({"title": title, "text": body})
    return out


# -- the instance's branding ---------------------------------------------------------------------

DEFAULT_BRANDING: dict[str, Any] = {
    "color": None,  # embeds of posts and the cart; None: Astra's purple
    "banner_url": "",  # the system banner: the welcome message, above each product post
    "thumbnail_url": "",  # the small image of product posts (when the product shows it)
    "footer_text": "",  # under every product post
    "cart_footer": "",  # under the cart
    "pix_instructions": "",  # in the PIX message, before the code
    "terms_text": "",  # behind the "Termos" button of the PIX message; "" hides the button
    "welcome_text": "",  # when the bot joins a server
}

_BRANDING_CHECKS = {
    "color": lambda v: color(v, "branding.color"),
    "banner_url": lambda v: https_url(v, "branding.banner_url"),
    "thumbnail_url": lambda v: https_url(v, "branding.thumbnail_url"),
    "footer_text": lambda v: text(v, "branding.footer_text", EMBED_FOOTER // 4),
    "cart_footer": lambda v: text(v, "branding.cart_footer", EMBED_FOOTER // 4),
    "pix_instructions": lambda v: text(v, "branding.pix_instructions", 1500),
    # An ephemeral message: Discord's 2,000 characters, less the heading.
    "terms_text": lambda v: text(v, "branding.terms_text", 1900),
    "welcome_text": lambda v: text(v, "branding.welcome_text", 1500),
}


def validate_branding(value: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The instance's branding after a change: `value` holds the fields to change (a partial
    object); unknown fields are refused."""
    if not isinstance(value, dict):
        raise InvalidInput("invalid_field", field="branding")
    unknown = set(value) - set(_BRANDING_CHECKS)
    if unknown:
        raise InvalidInput("invalid_field", field=f"branding.{sorted(unknown)[0]}")
    out = {**DEFAULT_BRANDING, **(current or {})}
    for key, raw in value.items():
        out[key] = _BRANDING_CHECKS[key](raw)
    return out


def branding_of(settings: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULT_BRANDING, **(settings.get("branding") or {})}


def embed_color(*choices: int | None) -> int:
    """The first colour set (product, instance), else Astra's."""
    return next((c for c in choices if isinstance(c, int)), DEFAULT_COLOR)


def embed_size(embed: dict[str, Any]) -> int:
    """Characters Discord counts against an embed's 6,000."""
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    for f in embed.get("fields") or []:
        total += len(f.get("name") or "") + len(f.get("value") or "")
    return total
