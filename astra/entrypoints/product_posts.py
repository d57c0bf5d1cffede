"""Product posts in Discord, made by the platform with the instance's own bot token: the portal's
"Postar" and the admin panel's post/repost, and the admin's check of which posts are missing or
stale. The bot's `/loja postar|repostar` do the same through the internal API.

What Discord refuses comes out as the ChatError subclasses of the REST adapter (InvalidBotToken,
MissingAccess, UnknownResource, RateLimited); each entrypoint turns them into its own answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from astra.adapters.chat.discord import ui
from astra.adapters.chat.discord.platform import message_payload
from astra.adapters.chat.discord.rest import DiscordRest, MissingAccess, UnknownResource
from astra.domain.catalog import Product
from astra.ports.chat import ChatError, OutgoingMessage


class NoBotToken(ChatError):
    """The instance has no bot token: nothing can be posted."""

    def __init__(self) -> None:
        super().__init__("no bot token")


def render_post(container: Any, instance_id: str, product: Product) -> OutgoingMessage:
    """The message the product's post is, as the bot would send it now (prices, stock, the
    instance's language). Blocking: reads the store."""
    settings: dict[str, Any] = container.instances().settings(instance_id)
    counts = container.catalog().stock_counts(instance_id)
    return ui.product_post(product, counts, settings.get("language") or "pt-BR")


def preview_payload(message: OutgoingMessage) -> dict[str, Any]:
    """The JSON body Discord would receive for `message` (embeds, components): what a page
    draws as the post's preview."""
    return message_payload(message)


def discord_for(container: Any, instance_id: str) -> DiscordRest:
    token = container.instances().bot_token(instance_id)
    if not token:
        raise NoBotToken()
    return DiscordRest(token, container.settings().discord_api_base)


async def post_product(
    container: Any, instance_id: str, product_id: str, channel_id: str
) -> str:
    """Post the product in the channel (replacing the record of an earlier post there, not the
    message); returns the new message id."""
    catalog = container.catalog()
    product = await asyncio.to_thread(catalog.get_product, instance_id, product_id)
    message = await asyncio.to_thread(render_post, container, instance_id, product)
    discord = await asyncio.to_thread(discord_for, container, instance_id)
    async with discord:
        message_id = await discord.send_message(channel_id, message)
    posts = [p for p in product.posts if p.get("channel_id") != channel_id]
    posts.append({"channel_id": channel_id, "message_id": message_id})
    await asyncio.to_thread(catalog.record_posts, instance_id, product.id, posts)
    return message_id


async def repost_product(container: Any, instance_id: str, product_id: str) -> list[dict]:
    """Post the product again where it is posted (current prices and stock): the old message is
    deleted, a new one sent. Returns the new posts."""
    catalog = container.catalog()
    product = await asyncio.to_thread(catalog.get_product, instance_id, product_id)
    message = await asyncio.to_thread(render_post, container, instance_id, product)
    discord = await asyncio.to_thread(discord_for, container, instance_id)
    fresh: list[dict[str, str]] = []
    async with discord:
        for post in product.posts:
            await discord.delete_message(post["channel_id"], post["message_id"])
            message_id = await discord.send_message(post["channel_id"], message)
            fresh.append({"channel_id": post["channel_id"], "message_id": message_id})
    await asyncio.to_thread(catalog.record_posts, instance_id, product.id, fresh)
    return fresh


async def post_states(container: Any, instance_id: str) -> list[dict[str, Any]]:
    """Every recorded post of the instance's products and how it stands in Discord:
    `ok`, `stale` (the product changed after it was posted), `missing` (Discord no longer has
    the message), `no_access` (the bot cannot read the channel) or `unknown` (Discord did not
    answer, or the instance has no token). Products that are active and never posted are
    listed as `not_posted`."""
    products = await asyncio.to_thread(container.catalog().list_products, instance_id)
    rows: list[dict[str, Any]] = []
    for product in products:
        if not product.posts and product.active:
            rows.append(_row(instance_id, product, None, "not_posted"))
        for post in product.posts:
            rows.append(_row(instance_id, product, post, "unknown"))
    checked = [r for r in rows if r["message_id"]]
    if not checked:
        return rows
    try:
        discord = await asyncio.to_thread(discord_for, container, instance_id)
    except NoBotToken:
        for row in checked:
            row["reason"] = "no_token"
        return rows
    async with discord:
        for row in checked:
            try:
                await discord.get_message(row["channel_id"], row["message_id"])
            except UnknownResource:
                row["state"] = "missing"
                continue
            except MissingAccess:
                row["state"] = "no_access"
                continue
            except ChatError as exc:
                row["reason"] = str(exc)[:200]
                continue
            stale = row["version"] is None or row["version"] != row["product_updated_at"]
            row["state"] = "stale" if stale else "ok"
    return rows


def _row(instance_id: str, product: Product, post: dict | None, state: str) -> dict[str, Any]:
    post = post or {}
    return {
        "instance_id": instance_id,
        "product_id": product.id,
        "product_name": product.name,
        "active": product.active,
        "channel_id": post.get("channel_id"),
        "message_id": post.get("message_id"),
        "posted_at": post.get("posted_at"),
        "version": post.get("version"),
        "product_updated_at": product.updated_at,
        "state": state,
        "reason": None,
    }
