"""What a store's staff is told in its log channel, and the buyer's "your cart is about to
expire": domain events turned into short notices (no I/O here; the platform's notifier sends
them).

Each notice has a key naming the fact it reports (the order, the attempt, the variant and the
hour), so a fact is told once however many times its event is seen; keys also seed the Discord
nonce of the message, so a resend after a crash is dropped by Discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astra.domain.events import DomainEvent
from astra.domain.money import format_brl

TEXTS: dict[str, dict[str, str]] = {
    "cart.opened": {
        "pt-BR": "🛒 {buyer} abriu um carrinho ({cart}).",
        "en": "🛒 {buyer} opened a cart ({cart}).",
    },
    "order.charged": {
        "pt-BR": "💠 PIX gerado para {buyer}: pedido {order}, {total}.",
        "en": "💠 PIX created for {buyer}: order {order}, {total}.",
    },
    "order.paid": {
        "pt-BR": "✅ Pagamento aprovado: pedido {order} de {buyer}, {total}.",
        "en": "✅ Payment approved: order {order} from {buyer}, {total}.",
    },
    "order.paid.manual": {
        "pt-BR": "✅ Pagamento confirmado manualmente por {staff}: pedido {order} de {buyer}, "
        "{total} (sem crédito na carteira).",
        "en": "✅ Payment confirmed by hand by {staff}: order {order} from {buyer}, {total} "
        "(no wallet credit).",
    },
    "order.waiting_stock": {
        "pt-BR": "⏳ Pedido {order} de {buyer} pago e aguardando estoque: {items}. Adicione "
        "chaves e ele é entregue sozinho.",
        "en": "⏳ Order {order} from {buyer} is paid and waiting for stock: {items}. Add keys "
        "and it is delivered by itself.",
    },
    "order.delivered": {
        "pt-BR": "📦 Pedido {order} entregue a {buyer} por {channel}.",
        "en": "📦 Order {order} delivered to {buyer} by {channel}.",
    },
    "delivery.failed": {
        "pt-BR": "⚠️ Falha na entrega do pedido {order} de {buyer} (tentativa {attempt}): "
        "{error}. {next}",
        "en": "⚠️ Delivery of order {order} to {buyer} failed (attempt {attempt}): {error}. "
        "{next}",
    },
    "delivery.retry": {"pt-BR": "Nova tentativa automática.", "en": "It will be retried."},
    "delivery.final": {
        "pt-BR": "Tentativas esgotadas: reenvie pelo painel.",
        "en": "No retries left: redeliver from the panel.",
    },
    "stock.out": {
        "pt-BR": "{mention}🚫 Sem estoque: **{item}**.",
        "en": "{mention}🚫 Out of stock: **{item}**.",
    },
    "stock.out.refused": {
        "pt-BR": "{mention}🚫 Sem estoque: **{item}** — {buyer} quis {wanted}, havia "
        "{available}.",
        "en": "{mention}🚫 Out of stock: **{item}** — {buyer} wanted {wanted}, {available} "
        "left.",
    },
    "cart.expired": {
        "pt-BR": "⌛ Carrinho de {buyer} expirou ({cart}); reservas liberadas.",
        "en": "⌛ {buyer}'s cart expired ({cart}); reservations released.",
    },
    "order.refunded": {
        "pt-BR": "↩️ Pedido {order} de {buyer} reembolsado ({total}).",
        "en": "↩️ Order {order} from {buyer} refunded ({total}).",
    },
    "order.refunded.partial": {
        "pt-BR": "↩️ Reembolso parcial de {amount} no pedido {order} de {buyer} ({total}).",
        "en": "↩️ Partial refund of {amount} on order {order} from {buyer} ({total}).",
    },
    "order.chargeback": {
        "pt-BR": "🚨 Contestação (chargeback) do pedido {order} de {buyer} ({total}).",
        "en": "🚨 Chargeback on order {order} from {buyer} ({total}).",
    },
    "cart.expiring": {
        "pt-BR": "⏰ {buyer}, seu carrinho expira {when}. Qualquer ação nele (quantidade, "
        "cupom) o mantém aberto.",
        "en": "⏰ {buyer}, your cart expires {when}. Any action in it (quantity, coupon) "
        "keeps it open.",
    },
}

CHANNEL_NAMES = {
    "dm": {"pt-BR": "DM", "en": "DM"},
    "cart_channel": {"pt-BR": "canal do carrinho", "en": "cart channel"},
    "staff": {"pt-BR": "canal da equipe", "en": "staff channel"},
    "role": {"pt-BR": "cargo", "en": "role"},
}


@dataclass(frozen=True)
class Notice:
    """One message to send. `to` is "staff" (the log channel) or "cart" (the cart's channel,
    `channel_id`)."""

    key: str
    text: str
    to: str = "staff"
    channel_id: str | None = None
    mention_role: str | None = None


def _t(key: str, language: str, **params: Any) -> str:
    table = TEXTS[key]
    return (table.get(language) or table["pt-BR"]).format(**params)


def _discord_time(iso_text: str | None) -> str:
    from astra.domain.timestamps import parse_iso

    when = parse_iso(iso_text)
    return f"<t:{int(when.timestamp())}:R>" if when else "-"


def notice_for(event: DomainEvent, settings: dict[str, Any]) -> Notice | None:
    """The notice an event calls for in this instance, or None."""
    language = settings.get("language") or "pt-BR"
    data = event.data
    buyer = f"<@{data.get('buyer_id')}>" if data.get("buyer_id") else "-"
    order = data.get("order") or {}
    cart = data.get("cart") or {}
    total = format_brl(int(order.get("total_cents") or 0))
    name = event.name
    if name == "cart.expiring":
        if not cart.get("channel_id"):
            return None
        return Notice(
            key=f"cart.expiring:{cart['id']}:{cart.get('warned_at')}",
            text=_t(name, language, buyer=buyer, when=_discord_time(data.get("ends_at"))),
            to="cart",
            channel_id=str(cart["channel_id"]),
        )
    if not settings.get("staff_notifications", True):
        return None
    if name == "cart.opened":
        return Notice(f"cart.opened:{cart['id']}",
                      _t(name, language, buyer=buyer, cart=cart["id"]))
    if name == "order.charged":
        return Notice(f"order.charged:{order['id']}",
                      _t(name, language, buyer=buyer, order=order["id"], total=total))
    if name == "order.paid":
        if order.get("status") == "waiting_stock":
            items = ", ".join(sorted({f"{ln['product_name']} — {ln['variant_name']}"
                                      for ln in order.get("lines") or []}))
            return Notice(f"order.waiting_stock:{order['id']}",
                          _t("order.waiting_stock", language, buyer=buyer, order=order["id"],
                             items=items), mention_role=settings.get("stock_alert_role_id"))
        manual = next((p for p in order.get("payment_events") or []
                       if str(p).startswith("manual:")), None)
        if manual:
            staff = _manual_staff(data)
            return Notice(f"order.paid:{order['id']}",
                          _t("order.paid.manual", language, buyer=buyer, order=order["id"],
                             total=total, staff=staff))
        return Notice(f"order.paid:{order['id']}",
                      _t(name, language, buyer=buyer, order=order["id"], total=total))
    if name == "order.delivered":
        channels = [CHANNEL_NAMES.get(c, {}).get(language, c)
                    for c in str(data.get("channel") or "").split(",") if c]
        return Notice(f"order.delivered:{order['id']}:{order.get('delivered_at')}",
                      _t(name, language, buyer=buyer, order=order["id"],
                         channel=", ".join(channels) or "-"))
    if name == "delivery.failed":
        after = "delivery.final" if data.get("final") else "delivery.retry"
        return Notice(f"delivery.failed:{order['id']}:{data.get('attempt')}",
                      _t(name, language, buyer=buyer, order=order["id"],
                         attempt=data.get("attempt"), error=str(data.get("error") or "-")[:300],
                         next=_t(after, language)))
    if name == "stock.out":
        item = f"{data.get('product_name')} — {data.get('variant_name')}"
        role = settings.get("stock_alert_role_id")
        mention = f"<@&{role}> " if role else ""
        if data.get("wanted"):
            text = _t("stock.out.refused", language, mention=mention, item=item, buyer=buyer,
                      wanted=data.get("wanted"), available=data.get("available"))
        else:
            text = _t(name, language, mention=mention, item=item)
        # Once per variant per `bucket` (the notifier passes the hour): a busy variant that
        # keeps running dry does not flood the channel.
        return Notice(f"stock.out:{data.get('variant_id')}", text, mention_role=role)
    if name == "cart.expired":
        return Notice(f"cart.expired:{cart['id']}",
                      _t(name, language, buyer=buyer, cart=cart["id"]))
    if name == "order.refunded" and data.get("kind") == "partial":
        return Notice(f"order.refunded.partial:{order['id']}:{order.get('refunded_cents')}",
                      _t("order.refunded.partial", language, buyer=buyer, order=order["id"],
                         amount=format_brl(int(data.get("amount_cents") or 0)), total=total))
    if name == "order.refunded":
        key = "order.chargeback" if data.get("kind") == "chargeback" else "order.refunded"
        return Notice(f"{key}:{order['id']}",
                      _t(key, language, buyer=buyer, order=order["id"], total=total))
    return None


def _manual_staff(data: dict[str, Any]) -> str:
    staff = str(data.get("actor") or "")
    return f"<@{staff.rsplit(':', 1)[-1]}>" if staff.rsplit(":", 1)[-1].isdigit() else "staff"
