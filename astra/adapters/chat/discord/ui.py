"""Discord messages of the buyer's journey, built from domain objects (no I/O here).

Custom ids are the bot's routing table: `astra:variant:<product>` (the select of a product
post), `astra:cart:<action>` (cart buttons), `astra:modal:<name>` (modal submits),
`astra:order:<action>:<order>` (PIX message buttons).
"""

from __future__ import annotations

import base64

from astra.adapters.chat.discord.texts import t
from astra.domain.catalog import Product
from astra.domain.money import format_brl
from astra.domain.order import Order
from astra.domain.services.sales import CartView
from astra.domain.timestamps import parse_iso
from astra.ports.chat import Button, OutgoingMessage, Select, SelectOption
from astra.ports.payments import Charge

COLOR = 0x7C3AED
VARIANT_PREFIX = "astra:variant:"
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


def product_post(
    product: Product, counts: dict[str, dict[str, int]], language: str
) -> OutgoingMessage:
    embed: dict = {
        "title": product.name[:256],
        "color": COLOR,
        "description": (product.description or "")[:4000],
    }
    if product.banner_url:
        embed["image"] = {"url": product.banner_url}
    if product.image_url:
        embed["thumbnail"] = {"url": product.image_url}
    options = []
    for variant in product.variants:
        if not variant.active:
            continue
        available = counts.get(variant.id, {}).get("available")
        if product.delivery_kind != "key":
            stock = ""
        elif available:
            stock = t(language, "stock_left", n=available)
        else:
            stock = t(language, "sold_out")
        label = f"{variant.name} — {format_brl(variant.price_cents)}"
        options.append(SelectOption(label=label[:100], value=variant.id, description=stock[:100]))
        embed.setdefault("fields", []).append(
            {
                "name": variant.name[:256],
                "value": f"{format_brl(variant.price_cents)}" + (f" · {stock}" if stock else ""),
                "inline": True,
            }
        )
    components = []
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
    return OutgoingMessage(embeds=[embed], components=components)


def cart_message(view: CartView, language: str) -> OutgoingMessage:
    cart, quote = view.cart, view.quote
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
    embed = {
        "title": t(language, "cart_title"),
        "color": COLOR,
        "description": description,
        "fields": fields,
        "footer": {"text": t(language, "cart_expires", when=cart.expires_at[11:16] + " UTC")},
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
    return OutgoingMessage(content="", embeds=[embed], components=[buttons])


def pix_message(order: Order, charge: Charge, language: str, *, sandbox: bool) -> OutgoingMessage:
    # The cart's end, not the charge's: the charge is cancelled when the cart closes.
    body = t(
        language,
        "pix_body",
        total=format_brl(order.total_cents),
        order=order.id,
        when=discord_time(order.expires_at, "R"),
    )
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
    return OutgoingMessage(embeds=[embed], files=files, components=[buttons])


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
