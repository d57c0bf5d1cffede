"""Seller API: what the portal does on Discord with the instance's own bot — list the server's
channels, post a product.

The guild is the one the instance was bound to (`/loja vincular`), `?guild_id=` otherwise, or
the bot's only server. Discord's refusals become clear answers: a token Discord no longer
accepts, a channel the bot cannot see or write in, an unknown channel, a rate limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from astra.adapters.chat.discord.rest import (
    DiscordRest,
    MissingAccess,
    RateLimited,
    UnknownResource,
)
from astra.entrypoints import product_posts
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.seller_api import (
    ApiError,
    blocking,
    container_of,
    owned_instance,
    read_body,
    respond,
    seller_route,
)
from astra.ports.chat import ChatError, InvalidBotToken

_SNOWFLAKE = re.compile(schemas.SNOWFLAKE)
_DISCORD_ERRORS = (403, 404, 409, 422, 429, 502)


def _discord_error(exc: Exception) -> ApiError:
    if isinstance(exc, InvalidBotToken):
        return ApiError(
            422,
            "bot_token_rejected",
            "O Discord não aceita mais o token deste bot. Cadastre um token novo.",
        )
    if isinstance(exc, MissingAccess):
        return ApiError(
            403,
            "discord_forbidden",
            "O bot não tem permissão para isso no Discord: confira se ele vê o canal e pode "
            "enviar mensagens e links.",
        )
    if isinstance(exc, UnknownResource):
        return ApiError(
            404,
            "discord_not_found",
            "Canal ou servidor não encontrado no Discord (o bot está nele?).",
        )
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil(exc.retry_after))
        return ApiError(
            429,
            "discord_rate_limited",
            f"O Discord pediu para esperar {wait} s. Tente de novo em seguida.",
            headers={"Retry-After": str(wait)},
        )
    return ApiError(
        502,
        "discord_unavailable",
        "Não foi possível falar com o Discord agora. Tente novamente em instantes.",
    )


@asynccontextmanager
async def instance_discord(request: web.Request, instance_id: str) -> AsyncIterator[DiscordRest]:
    """A Discord client on the instance's decrypted bot token; Discord's errors as ApiError."""
    container = container_of(request)
    token = await blocking(container.instances().bot_token, instance_id)
    if not token:
        raise ApiError(409, "bot_token_missing", "Cadastre o token do bot antes.")
    try:
        async with DiscordRest(token, container.settings().discord_api_base) as discord:
            yield discord
    except ChatError as exc:
        raise _discord_error(exc) from None


@seller_route(response=schemas.CHANNEL_LIST, errors=_DISCORD_ERRORS)
async def list_channels(request: web.Request) -> web.Response:
    """The channels and roles of the instance's Discord server (where products can be posted;
    what the settings' pickers offer), and the servers the bot is in."""
    doc = await owned_instance(request)
    chosen = request.query.get("guild_id")
    if chosen is not None and not _SNOWFLAKE.fullmatch(chosen):
        raise ApiError(422, "invalid_field", "Campo inválido: guild_id.")
    settings = await blocking(container_of(request).instances().settings, doc["id"])
    async with instance_discord(request, doc["id"]) as discord:
        guilds = await discord.bot_guilds()
        guild_id = chosen or settings.get("guild_id")
        if guild_id is None and len(guilds) == 1:
            guild_id = guilds[0]["id"]
        channels = await discord.guild_channels(guild_id) if guild_id else []
        roles = await discord.guild_roles(guild_id) if guild_id else []
    return respond(
        {"guild_id": guild_id, "guilds": guilds, "channels": channels, "roles": roles}
    )


@seller_route(body=schemas.POST_PRODUCT, response=schemas.PRODUCT_POSTED, errors=_DISCORD_ERRORS)
async def post_product(request: web.Request) -> web.Response:
    """Post a product (with prices and current stock) in a channel, through the bot; with
    `purge`, the bot's older posts of the product in that channel are deleted first."""
    doc = await owned_instance(request)
    body = await read_body(request)
    container = container_of(request)
    product = await blocking(container.catalog().get_product, doc["id"], body["product_id"])
    if not product.active:
        raise ApiError(409, "product_inactive", "Este produto está desativado: ative-o antes.")
    channel_id = body["channel_id"]
    try:
        posted = await product_posts.post_product(
            container, doc["id"], product.id, channel_id, purge=bool(body.get("purge"))
        )
    except product_posts.NoBotToken:
        raise ApiError(409, "bot_token_missing", "Cadastre o token do bot antes.") from None
    except ChatError as exc:
        raise _discord_error(exc) from None
    return respond({"channel_id": channel_id, "message_id": posted.message_id,
                    "purged": posted.purged})
