"""Discord messages of the buyer's journey, built from domain objects (no I/O here).

Custom ids are the bot's routing table: `astra:variant:<product>` (the select of a product
post), `astra:cart:<action>` (cart buttons), `astra:modal:<name>` (modal submits),
`astra:order:<action>:<order>` (PIX message buttons).
"""

from __future__ import annotations

import base64
from typing import Any

from astra.adapters.chat.discord.texts import t
from astra.domain.branding import branding_of, embed_color
from astra.domain.catalog import Product
from astra.domain.money import format_brl
from astra.domain.order import Order
from astra.domain.services.sales import CartView
from astra.domain.timestamps import parse_iso
from astra.ports.chat import Button, OutgoingMessage, Select, SelectOption
from astra.ports.payments import Charge

COLOR = 0x7C3AED
VARIANT_PREFIX = "astra:variant:"
STAFF_CONFIRM_PREFIX = "astra:staff:confirm:"
TERMS_ID = "astra:terms"
MAX_FIELD = 1024
_CART_TOPIC_PREFIX = "Astra "
DISCORD_EPOCH_MS = 1_420_070_400_000  # 2015-01-01, where Discord ids count from


def cart_topic(cart_id: str) -> str:
    """The topic of a cart's channel: how a channel is traced back to its cart."""
    return f"{_CART_TOPIC_PREFIX}{cart_id}"


def cart_of_topic(topic: str | None) -> str | None:
    """The cart id a channel's topic names (the inverse of cart_topic); None for any other
    channel."""
    if topic and topic.startswith(_CART_TOPIC_PREFIX + "cart_"):
        return topic.removeprefix(_CART_TOPIC_PREFIX)
    return None


def snowflake_age_seconds(snowflake: str, now: float) -> float:
    """How old a Discord id is (ids carry their creation time: ms since the epoch << 22)."""
    return now - ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000


def discord_time(iso_text: str | None, style: str = "t") -> str:
    """<t:unix:style>: Discord shows it in each reader's own time zone."""
    when = parse_iso(iso_text)
    return f"<t:{int(when.timestamp())}:{style}>" if when else "-"


def _variant_line(product: Product, variant: Any, counts: dict[str, dict[str, int]],
                  language: str) -> str:
    """Stock as a buyer reads it ("" when stock does not apply: text, roles, unlimited)."""
    if product.delivery_kind != "key" or product.unlimited_stock:
        return ""
    available = counts.get(variant.id, {}).get("available")
    return t(language, "stock_left", n=available) if available else t(language, "sold_out")


def banner_message(product: Product, settings: dict[str, Any]) -> OutgoingMessage | None:
    """The banner/GIF posted just before a product's post: the product's, else the
    instance's system banner; None when neither is set."""
    brand = branding_of(settings)
    url = product.banner_url or brand.get("banner_url")
    if not url:
        return None
    return OutgoingMessage(
        embeds=[{"color": embed_color(product.color, brand.get("color")), "image": {"url": url}}]
    )


def product_post(
    product: Product,
    counts: dict[str, dict[str, int]],
    language: str,
    settings: dict[str, Any] | None = None,
) -> OutgoingMessage:
    brand = branding_of(settings or {})
    embed: dict = {
        "title": product.name[:256],
        "color": embed_color(product.color, brand.get("color")),
        "description": (product.description or "")[:4000],
    }
    if product.image_url:
        embed["image"] = {"url": product.image_url}
    if product.show_thumbnail and brand.get("thumbnail_url"):
        embed["thumbnail"] = {"url": brand["thumbnail_url"]}
    footer = product.footer_text or brand.get("footer_text")
    if footer:
        embed["footer"] = {"text": footer[:2048]}
    fields = [{"name": sec["title"], "value": sec["text"], "inline": False}
              for sec in product.sections]
    options = []
    for variant in product.variants:
        if not variant.active:
            continue
        stock = _variant_line(product, variant, counts, language)
        label = f"{variant.name} — {format_brl(variant.price_cents)}"
        detail = " · ".join(x for x in (variant.duration, stock) if x)
        options.append(SelectOption(label=label[:100], value=variant.id,
                                    description=detail[:100], emoji=variant.emoji))
        if len(fields) < 25:
            name = f"{variant.emoji} {variant.name}".strip()
            fields.append({"name": name[:256], "value": " · ".join(
                x for x in (format_brl(variant.price_cents), variant.duration, stock) if x
            )[:1024], "inline": True})
    if fields:
        embed["fields"] = fields
    components: list[list[Any]] = []
    if options:
        components.append(
            [
                Select(
                    custom_id=f"{VARIANT_PREFIX}{product.id}",
                    options=options,
                    placeholder=t(language, "choose_variant"),
                )
            ]
        )
    if product.demo_url:
        components.append([Button(product.demo_label or t(language, "btn_demo"), style="link",
                                  url=product.demo_url)])
    return OutgoingMessage(embeds=[embed], components=components)


def is_post_of(message: dict[str, Any], product_id: str, bot_id: str) -> bool:
    """Whether a channel message (as Discord sends it) is the bot's post of this product:
    its select routes to the product. A banner posted with it is found by its place."""
    author = str((message.get("author") or {}).get("id") or "")
    if bot_id and author != bot_id:
        return False
    wanted = f"{VARIANT_PREFIX}{product_id}"
    return any(
        c.get("custom_id") == wanted
        for row in message.get("components") or []
        for c in row.get("components") or []
    )


def cart_message(
    view: CartView, language: str, settings: dict[str, Any] | None = None
) -> OutgoingMessage:
    cart, quote = view.cart, view.quote
    brand = branding_of(settings or {})
    lines = [
        f"**{ln.quantity}×** {ln.product_name} — {ln.variant_name} · {format_brl(ln.total_cents)}"
        for ln in cart.lines
    ]
    fields = [
        {"name": t(language, "subtotal"), "value": format_brl(quote.subtotal_cents), "inline": True}
    ]
    for adj in quote.adjustments:
        fields.append(
            {"name": adj.label[:256], "value": format_brl(adj.amount_cents), "inline": True}
        )
    fields.append(
        {
            "name": t(language, "total"),
            "value": f"**{format_brl(quote.total_cents)}**",
            "inline": True,
        }
    )
    description = "\n".join(lines)[:3500] or "—"
    if view.coupon_problem:
        description += "\n\n" + t(language, "coupon_problem", problem=view.coupon_problem)
    ends = cart.ends_at()
    footer = t(language, "cart_expires", when=ends.strftime("%H:%M") + " UTC" if ends else "-")
    if brand.get("cart_footer"):
        footer = f"{brand['cart_footer']}\n{footer}"
    embed = {
        "title": t(language, "cart_title"),
        "color": embed_color(brand.get("color")),
        "description": description,
        "fields": fields,
        "footer": {"text": footer[:2048]},
    }
    open_cart = cart.state.value == "open"
    buttons = [
        Button(t(language, "btn_quantity"), "astra:cart:quantity", disabled=not open_cart),
        Button(t(language, "btn_coupon"), "astra:cart:coupon", disabled=not open_cart),
    ]
    if cart.coupon_code:
        buttons.append(
            Button(t(language, "btn_remove_coupon"), "astra:cart:uncoupon", disabled=not open_cart)
        )
    buttons += [
        Button(t(language, "btn_pay"), "astra:cart:pay", style="success"),
        Button(t(language, "btn_cancel"), "astra:cart:cancel", style="danger"),
    ]
    rows: list[list[Any]] = [buttons]
    if (settings or {}).get("manual_confirmation") and cart.state.value == "checkout":
        # For staff only: the platform checks the presser's roles with Discord.
        rows.append([Button(t(language, "btn_staff_confirm"), f"{STAFF_CONFIRM_PREFIX}{cart.id}",
                            style="primary")])
    return OutgoingMessage(content="", embeds=[embed], components=rows)


def pix_message(
    order: Order,
    charge: Charge,
    language: str,
    *,
    sandbox: bool,
    settings: dict[str, Any] | None = None,
) -> OutgoingMessage:
    brand = branding_of(settings or {})
    # The cart's end, not the charge's: the charge is cancelled when the cart closes.
    body = t(
        language,
        "pix_body",
        total=format_brl(order.total_cents),
        order=order.id,
        when=discord_time(order.expires_at, "R"),
    )
    if brand.get("pix_instructions"):
        body = f"{brand['pix_instructions']}\n\n{body}"
    embed: dict = {
        "title": t(language, "pix_title"),
        "color": 0x32BCAD,
        "description": body + f"\n```\n{charge.qr_code}\n```",
    }
    files = []
    if charge.qr_code_png_base64:
        files.append(("pix.png", base64.b64decode(charge.qr_code_png_base64)))
        embed["image"] = {"url": "attachment://pix.png"}
    if sandbox:
        embed["footer"] = {"text": t(language, "pix_sandbox")}
    buttons = [
        Button(t(language, "btn_copy"), f"astra:order:copy:{order.id}", style="primary"),
        Button(t(language, "btn_check"), f"astra:order:check:{order.id}", style="success"),
        Button(t(language, "btn_cancel"), "astra:cart:cancel", style="danger"),
    ]
    if brand.get("terms_text"):
        buttons.append(Button(t(language, "btn_terms"), TERMS_ID, style="secondary"))
    return OutgoingMessage(embeds=[embed], files=files, components=[buttons])


def terms_text(settings: dict[str, Any], language: str) -> str:
    terms = branding_of(settings).get("terms_text") or ""
    return f"**{t(language, 'terms_title')}**\n{terms}"[:2000] if terms else ""


def welcome_message(settings: dict[str, Any], language: str) -> OutgoingMessage:
    """What the bot says when it joins a server: the instance's banner and how to start."""
    brand = branding_of(settings)
    embed: dict[str, Any] = {
        "title": t(language, "welcome_title", shop=settings.get("name") or "Astra")[:256],
        "color": embed_color(brand.get("color")),
        "description": (brand.get("welcome_text") or t(language, "welcome_body"))[:4000],
    }
    if brand.get("banner_url"):
        embed["image"] = {"url": brand["banner_url"]}
    if brand.get("thumbnail_url"):
        embed["thumbnail"] = {"url": brand["thumbnail_url"]}
    return OutgoingMessage(embeds=[embed])


def sale_announcement(
    order: Order, language: str, feedback_channel_id: str | None
) -> OutgoingMessage:
    products = ", ".join(sorted({f"{ln.product_name} — {ln.variant_name}" for ln in order.lines}))
    feedback = (
        t(language, "feedback_link", channel=f"<#{feedback_channel_id}>")
        if feedback_channel_id
        else ""
    )
    return OutgoingMessage(
        content=t(
            language,
            "sale_announcement",
            buyer=f"<@{order.buyer_id}>",
            product=products,
            feedback=feedback,
        ).strip()
    )
