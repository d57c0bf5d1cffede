"""Product posts in Discord, made by the platform with the instance's own bot token: the portal's
"Postar" and the admin panel's post/repost, and the admin's check of which posts are missing or
stale. The bot's `/loja postar|repostar` do the same through the internal API.

What Discord refuses comes out as the ChatError subclasses of the REST adapter (InvalidBotToken,
MissingAccess, UnknownResource, RateLimited); each entrypoint turns them into its own answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from astra.adapters.chat.discord import posting, ui
from astra.adapters.chat.discord.platform import message_payload
from astra.adapters.chat.discord.rest import DiscordRest, MissingAccess, UnknownResource
from astra.domain.catalog import Product
from astra.ports.chat import ChatError, OutgoingMessage


class NoBotToken(ChatError):
    """The instance has no bot token: nothing can be posted."""

    def __init__(self) -> None:
        super().__init__("no bot token")


def _post_settings(container: Any, instance_id: str) -> dict[str, Any]:
    """The instance's settings as the post renders them (with its name, for the welcome)."""
    settings: dict[str, Any] = container.instances().settings(instance_id)
    with container.store().portal(write=False) as uow:
        doc = uow.instances.get(instance_id) or {}
    return {**settings, "name": doc.get("name")}


def render_post(container: Any, instance_id: str, product: Product) -> dict[str, Any]:
    """The messages the product's post is, as the bot would send them now (prices, stock, the
    instance's branding and language): `banner` (or None) then `post`. Blocking."""
    settings = _post_settings(container, instance_id)
    counts = container.catalog().stock_counts(instance_id)
    language = settings.get("language") or "pt-BR"
    return {
        "banner": ui.banner_message(product, settings),
        "post": ui.product_post(product, counts, language, settings),
        "language": language,
    }


def preview_payload(message: OutgoingMessage | None) -> dict[str, Any] | None:
    """The JSON body Discord would receive for `message` (embeds, components): what a page
    draws as the post's preview."""
    return message_payload(message) if message is not None else None


def discord_for(container: Any, instance_id: str) -> DiscordRest:
    token = container.instances().bot_token(instance_id)
    if not token:
        raise NoBotToken()
    return DiscordRest(token, container.settings().discord_api_base)


def _bot_id(container: Any, instance_id: str) -> str:
    with container.store().portal(write=False) as uow:
        doc = uow.instances.get(instance_id) or {}
    return str((doc.get("bot_profile") or {}).get("id") or "")


async def post_product(
    container: Any, instance_id: str, product_id: str, channel_id: str, *, purge: bool = False
) -> posting.Posted:
    """Post the product in the channel (its banner first, if it has one), the bot's older posts
    of it there deleted first with `purge`; the post is recorded."""
    catalog = container.catalog()
    product = await asyncio.to_thread(catalog.get_product, instance_id, product_id)
    settings = await asyncio.to_thread(_post_settings, container, instance_id)
    counts = await asyncio.to_thread(catalog.stock_counts, instance_id)
    bot_id = await asyncio.to_thread(_bot_id, container, instance_id)
    discord = await asyncio.to_thread(discord_for, container, instance_id)
    async with discord:
        posted = await posting.post_product(
            discord, product, counts, settings, channel_id, purge=purge, bot_id=bot_id
        )
    await asyncio.to_thread(
        catalog.record_posts, instance_id, product.id, posting.posts_after(product, posted)
    )
    return posted


async def repost_product(container: Any, instance_id: str, product_id: str) -> list[dict]:
    """Post the product again in every channel it is posted in (current prices, stock and
    branding): the old post and its banner are deleted, a new one sent. Returns the posts."""
    catalog = container.catalog()
    product = await asyncio.to_thread(catalog.get_product, instance_id, product_id)
    settings = await asyncio.to_thread(_post_settings, container, instance_id)
    counts = await asyncio.to_thread(catalog.stock_counts, instance_id)
    bot_id = await asyncio.to_thread(_bot_id, container, instance_id)
    discord = await asyncio.to_thread(discord_for, container, instance_id)
    fresh: list[dict[str, str]] = []
    async with discord:
        for channel_id in dict.fromkeys(p["channel_id"] for p in product.posts):
            posted = await posting.post_product(
                discord, product, counts, settings, channel_id, purge=True, bot_id=bot_id
            )
            fresh.append(posted.record())
    await asyncio.to_thread(catalog.record_posts, instance_id, product.id, fresh)
    return fresh


# A check asks Discord once per post: at most this many per instance and request (the rest
# say "unknown", reason "not_checked"), so one big catalog cannot hold the page past its timeout.
MAX_CHECKS = 100


async def post_states(
    container: Any, instance_id: str, *, max_checks: int = MAX_CHECKS
) -> list[dict[str, Any]]:
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
    for row in checked[max_checks:]:
        row["reason"] = "not_checked"
    checked = checked[:max_checks]
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
