"""The default delivery: keys, text and files by DM (with a channel fallback), roles by grant.

When a buyer's DMs are closed the message goes to the order's cart channel, mentioning the buyer,
and failing that to the staff channel, so a paid order is never left undelivered in silence.

Every message carries a nonce derived from the line's idempotency key, where it goes and its
place in the split: a retry after a crash sends the same nonces, and Discord returns the message
it already has instead of DMing the keys twice.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from astra.domain.branding import EMBED_DESCRIPTION, EMBED_TOTAL, embed_size
from astra.domain.catalog import DeliveryKind
from astra.domain.hooks import DeliveryItem, DeliveryOutcome, SaleContext
from astra.logs import get_logger
from astra.plugins import hookimpl
from astra.ports.chat import ChatError, ChatPlatform, DirectMessagesClosed, OutgoingMessage

NAME = "delivery"
DESCRIPTION = "Delivery by Discord DM (keys, text, files) and role grants, with channel fallback."
DEFAULT_ENABLED = True

MAX_MESSAGE = 2000  # Discord's limit on a message's content

_MESSAGE_KINDS = (DeliveryKind.KEY, DeliveryKind.TEXT, DeliveryKind.FILE)


def message_nonce(idempotency_key: str, target: str, chunk: int) -> str | None:
    """The nonce of one message of a delivery: the same on every attempt, 24 characters (Discord
    takes at most 25). `target` tells a DM from a fallback channel, so a DM that failed does not
    stop the channel post that replaces it. None without a key: one constant nonce would make
    Discord drop every delivery after the first."""
    if not idempotency_key:
        return None
    seed = f"{idempotency_key}|{target}|{chunk}".encode()
    return base64.b32encode(hashlib.blake2b(seed, digest_size=15).digest()).decode().lower()


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Cut text into messages of at most `limit` characters, between lines when possible, so a
    key (one per line) is never split across two messages."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines():
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        if not current:
            current = line
        elif len(current) + 1 + len(line) <= limit:
            current = f"{current}\n{line}"
        else:
            chunks.append(current)
            current = line
    if current.strip():
        chunks.append(current)
    return chunks


def _missing(item: DeliveryItem, text: str) -> list[str]:
    """What was bought that the seller's template left out: a template without {keys} must
    not swallow the keys the buyer paid for."""
    if item.line.delivery_kind == DeliveryKind.KEY:
        return [key for key in item.keys if key not in text]
    if item.product.content and item.product.content not in text:
        return [item.product.content]
    return []


def _content(item: DeliveryItem) -> str:
    """The DM as plain text, with what the template left out appended."""
    missing = _missing(item, item.message)
    return "\n".join([item.message, *missing]) if missing else item.message


def _embed(item: DeliveryItem) -> dict[str, Any] | None:
    """The DM as the seller's embed, when there is one and it still fits Discord's limits
    with what the template left out appended; else None (plain text is sent)."""
    if item.embed is None:
        return None
    embed = dict(item.embed)
    description = str(embed.get("description") or "")
    missing = _missing(item, description)
    if missing:
        embed["description"] = "\n".join([description, *missing])
    if len(embed["description"]) > EMBED_DESCRIPTION or embed_size(embed) > EMBED_TOTAL:
        return None
    return embed


async def _send_all(
    send: Callable[[str, OutgoingMessage], Awaitable[str]],
    target: str,
    chunks: list[str],
    *,
    key: str,
    kind: str,
) -> None:
    for index, chunk in enumerate(chunks):
        nonce = message_nonce(key, f"{kind}:{target}", index)
        await send(target, OutgoingMessage(content=chunk, nonce=nonce))


async def _send_one(
    send: Callable[[str, OutgoingMessage], Awaitable[str]],
    target: str,
    embed: dict[str, Any] | None,
    chunks: list[str],
    *,
    key: str,
    kind: str,
    mention: str = "",
) -> None:
    """The embed (one message), or the plain chunks when there is none or the platform
    refuses it for good (a link it will not embed...): the buyer gets their keys either way."""
    if embed is not None:
        try:
            nonce = message_nonce(key, f"{kind}:embed:{target}", 0)
            await send(target, OutgoingMessage(content=mention, embeds=[embed], nonce=nonce))
            return
        except DirectMessagesClosed:
            raise
        except ChatError as err:
            if err.retryable:
                raise
            get_logger(__name__).info("delivery.embed_refused", error=str(err))
    await _send_all(send, target, chunks, key=key, kind=kind)


async def _deliver_message(
    ctx: SaleContext,
    item: DeliveryItem,
    buyer_id: str,
    text: str,
    chat: ChatPlatform,
    services: dict[str, Any],
) -> DeliveryOutcome:
    chunks = split_message(text)
    if not chunks:
        return DeliveryOutcome(ok=False, error="nothing to deliver", retryable=False)
    key = item.idempotency_key
    embed = _embed(item)
    try:
        await _send_one(chat.send_dm, buyer_id, embed, chunks, key=key, kind="dm")
        return DeliveryOutcome(ok=True, channel="dm")
    except DirectMessagesClosed as closed:
        last_error: ChatError = closed
    except ChatError as err:
        return DeliveryOutcome(ok=False, channel="dm", error=str(err), retryable=err.retryable)

    # The order's own cart channel first: it is where this buyer is already looking.
    fallbacks = (
        ("cart_channel", services.get("cart_channel_id") or ctx.settings.get("cart_channel_id")),
        ("staff", ctx.settings.get("staff_channel_id")),
    )
    public = split_message(f"<@{buyer_id}>\n{text}")
    for channel, channel_id in fallbacks:
        if not channel_id:
            continue
        try:
            await _send_one(chat.send_message, str(channel_id), embed, public, key=key,
                            kind=channel, mention=f"<@{buyer_id}>")
            return DeliveryOutcome(ok=True, channel=channel)
        except ChatError as err:
            last_error = err
    return DeliveryOutcome(
        ok=False, channel="dm", error=str(last_error), retryable=last_error.retryable
    )


async def _deliver_role(
    ctx: SaleContext, item: DeliveryItem, buyer_id: str, chat: ChatPlatform
) -> DeliveryOutcome:
    guild_id = ctx.settings.get("guild_id")
    if not guild_id:
        return DeliveryOutcome(
            ok=False, channel="role", error="guild_id is not configured", retryable=False
        )
    try:
        await chat.grant_role(str(guild_id), buyer_id, item.product.content)
    except ChatError as err:
        return DeliveryOutcome(ok=False, channel="role", error=str(err), retryable=err.retryable)
    try:
        await _send_all(
            chat.send_dm,
            buyer_id,
            split_message(item.message),
            key=item.idempotency_key,
            kind="dm",
        )
    except ChatError as err:
        # The role is what was bought and it is granted; the DM is only a courtesy.
        get_logger(__name__).info("delivery.role_dm_failed", order=item.order.id, error=str(err))
    return DeliveryOutcome(ok=True, channel="role")


@hookimpl
async def astra_deliver_line(
    ctx: SaleContext, item: DeliveryItem, services: dict[str, Any]
) -> DeliveryOutcome | None:
    kind = item.line.delivery_kind
    if kind not in (*_MESSAGE_KINDS, DeliveryKind.ROLE):
        return None  # another plugin's kind
    chat = services.get("chat")
    if chat is None:
        return DeliveryOutcome(ok=False, error="no chat platform available", retryable=True)
    buyer_id = ctx.buyer_id or item.order.buyer_id
    if kind == DeliveryKind.ROLE:
        return await _deliver_role(ctx, item, buyer_id, chat)
    return await _deliver_message(ctx, item, buyer_id, _content(item), chat, services)
