"""Posting a product in a channel: its banner (if any), then its post; optionally the bot's
older posts of the same product in that channel deleted first (`purge`).

Shared by the bot's `/loja postar|repostar` (interactions.py's HTTP client) and the portal's
post action (the platform's REST client on the instance's token): both clients have
send_message, delete_message and recent_messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from astra.adapters.chat.discord import ui
from astra.domain.catalog import Product
from astra.ports.chat import ChatError, OutgoingMessage

# How far back a purge looks for older posts (one REST page).
PURGE_WINDOW = 100


class PostingChat(Protocol):
    async def send_message(self, channel_id: str, message: OutgoingMessage) -> str: ...

    async def delete_message(self, channel_id: str, message_id: str) -> None: ...

    async def recent_messages(self, channel_id: str, limit: int = 100) -> list[dict[str, Any]]:
        ...


@dataclass(frozen=True)
class Posted:
    channel_id: str
    message_id: str
    banner_message_id: str | None
    purged: int

    def record(self) -> dict[str, str]:
        doc = {"channel_id": self.channel_id, "message_id": self.message_id}
        if self.banner_message_id:
            doc["banner_message_id"] = self.banner_message_id
        return doc


def _is_banner(message: dict[str, Any], bot_id: str) -> bool:
    """A banner the bot posted: its author, one embed with an image and nothing else."""
    if str((message.get("author") or {}).get("id") or "") != bot_id:
        return False
    embeds = message.get("embeds") or []
    return (
        not message.get("content")
        and not message.get("components")
        and len(embeds) == 1
        and bool((embeds[0].get("image") or {}).get("url"))
        and not embeds[0].get("title")
    )


async def purge_posts(
    chat: PostingChat, product: Product, channel_id: str, bot_id: str
) -> int:
    """Delete the bot's posts of `product` in the channel (those recorded, and those found in
    its latest messages, with the banner just above each). Returns how many posts went."""
    post_ids: set[str] = set()
    banner_ids: set[str] = set()
    for post in product.posts:
        if post.get("channel_id") == channel_id:
            post_ids.add(post["message_id"])
            if post.get("banner_message_id"):
                banner_ids.add(post["banner_message_id"])
    try:
        recent = await chat.recent_messages(channel_id, PURGE_WINDOW)
    except ChatError:
        recent = []  # no history permission: the recorded posts still go
    for index, message in enumerate(recent):  # newest first: the banner comes next
        if ui.is_post_of(message, product.id, bot_id):
            post_ids.add(str(message["id"]))
            older = recent[index + 1] if index + 1 < len(recent) else None
            if older is not None and _is_banner(older, bot_id):
                banner_ids.add(str(older["id"]))
    for message_id in sorted(post_ids | banner_ids):
        await chat.delete_message(channel_id, message_id)
    return len(post_ids)


async def post_product(
    chat: PostingChat,
    product: Product,
    counts: dict[str, dict[str, int]],
    settings: dict[str, Any],
    channel_id: str,
    *,
    purge: bool = False,
    bot_id: str = "",
) -> Posted:
    purged = await purge_posts(chat, product, channel_id, bot_id) if purge else 0
    language = settings.get("language") or "pt-BR"
    banner_id = None
    banner = ui.banner_message(product, settings)
    if banner is not None:
        banner_id = await chat.send_message(channel_id, banner)
    message_id = await chat.send_message(
        channel_id, ui.product_post(product, counts, language, settings)
    )
    return Posted(channel_id, message_id, banner_id, purged)


def posts_after(product: Product, posted: Posted) -> list[dict[str, str]]:
    """The product's post records with this channel's replaced by the new post."""
    kept = [p for p in product.posts if p.get("channel_id") != posted.channel_id]
    return [*kept, posted.record()]
