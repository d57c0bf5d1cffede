"""Delivery of subscription products: the period is recorded, the roles granted, the buyer told
until when.

The platform's courier calls this with a Discord REST client on the instance's token and the
subscription service (`services["subscriptions"]`). Recording the period first and granting
after is safe to repeat: a period is keyed by its order line, and granting a role the member
has is a no-op for Discord.
"""

from __future__ import annotations

import asyncio
from typing import Any

from astra.domain.catalog import DeliveryKind
from astra.domain.hooks import DeliveryItem, DeliveryOutcome, SaleContext
from astra.logs import get_logger
from astra.plugins import hookimpl
from astra.plugins.delivery import message_nonce, split_message
from astra.ports.chat import ChatError, OutgoingMessage

NAME = "subscriptions"
DESCRIPTION = "Subscription products: roles for a period, extended by each renewal."
DEFAULT_ENABLED = True

_UNTIL = {
    "pt-BR": "Sua assinatura vale até <t:{ts}:f> (<t:{ts}:R>).",
    "en": "Your subscription is valid until <t:{ts}:f> (<t:{ts}:R>).",
}


@hookimpl
async def astra_deliver_line(
    ctx: SaleContext, item: DeliveryItem, services: dict[str, Any]
) -> DeliveryOutcome | None:
    if item.line.delivery_kind != DeliveryKind.SUBSCRIPTION.value:
        return None
    chat, subscriptions = services.get("chat"), services.get("subscriptions")
    if chat is None or subscriptions is None:
        return DeliveryOutcome(ok=False, error="subscriptions need the platform's courier",
                               retryable=True)
    guild_id = ctx.settings.get("guild_id")
    if not guild_id:
        return DeliveryOutcome(ok=False, channel="role", error="guild_id is not configured",
                               retryable=False)
    subs = await asyncio.to_thread(subscriptions.activate, ctx.instance_id, item.order.id)
    sub = next((s for s in subs if s.product_id == item.product.id), None)
    if sub is None or not sub.live(ctx.now):
        # Refunded before it was delivered: nothing to grant.
        return DeliveryOutcome(ok=True, channel="role")
    buyer_id = item.order.buyer_id
    try:
        for role_id in sub.role_ids:
            await chat.grant_role(str(guild_id), buyer_id, role_id)
    except ChatError as err:
        return DeliveryOutcome(ok=False, channel="role", error=str(err), retryable=err.retryable)
    await asyncio.to_thread(subscriptions.record_granted, ctx.instance_id, sub.id)
    language = ctx.language if ctx.language in _UNTIL else "pt-BR"
    until = _UNTIL[language].format(ts=int(sub.end().timestamp()))
    try:
        for index, chunk in enumerate(split_message(f"{item.message}\n\n{until}")):
            nonce = message_nonce(item.idempotency_key, f"dm:{buyer_id}", index)
            await chat.send_dm(buyer_id, OutgoingMessage(content=chunk, nonce=nonce))
    except ChatError as err:
        # The roles are what was bought and they are on; the DM is a courtesy.
        get_logger(__name__).info("subscription.dm_failed", order=item.order.id, error=str(err))
    return DeliveryOutcome(ok=True, channel="role")
