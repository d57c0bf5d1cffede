"""A local stand-in for Discord (REST API v10 + gateway) for one application and its bot.

Written from Discord's public API documentation so that the real interactions.py client, and an
adapter built on its HTTPClient, work against it unchanged: Discord's routes, JSON shapes
(snowflake ids, ISO timestamps, string permission bitfields), error bodies
({"message", "code"[, "errors"]}), permission checks (50001/50013), 429s with X-RateLimit-*
headers, message nonces with `enforce_nonce` (within `nonce_window` seconds), and a gateway
that speaks HELLO / IDENTIFY / READY / GUILD_CREATE / heartbeats / RESUME / RECONNECT /
INVALID_SESSION.

    fake = FakeDiscord(bot_token=TOKEN, application_id=APP_ID)
    await fake.start()                              # http://127.0.0.1:PORT
    guild = fake.add_guild("Loja")                  # @everyone, bot role + member, #general
    buyer = fake.add_user("buyer")
    fake.add_member(guild, buyer)
    with fake.routed():                             # interactions' Route.BASE -> fake.api_url
        task = asyncio.create_task(client.astart(TOKEN))
        await client.wait_until_ready()             # interactions drops earlier interactions
        handle = await fake.slash(guild, buyer, "shop buy", {"qty": 2})
        reply = await handle.response()             # {"type": 4, "data": {...}}
        ...
        await client._connection_state.stop()       # then `await task`; then fake.stop()

Set up: add_guild, add_user, add_member, add_role, add_channel, add_category, remove_member,
set_dms_closed, user_message. Act as users: slash, click, select, submit_modal (each returns an
Interaction handle). Read: messages, dm_messages, last_message, message, channel_by_name,
channels_of, role_by_name, roles_of, permissions_in, can_view, attachment_bytes,
registered_commands, calls, calls_to, interactions, wait_for, wait_for_message.
Break things: rate_limit_next, fail_next, drop_gateway, request_reconnect, invalidate_session.
"""

from . import permissions
from .entities import (
    CATEGORY,
    DIRECT_MESSAGES,
    DM,
    EPHEMERAL,
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILDS,
    LOADING,
    MESSAGE_CONTENT,
    TEXT,
    VOICE,
    Channel,
    Guild,
    Member,
    Role,
    User,
)
from .errors import ApiError
from .fake import FakeDiscord
from .handles import Interaction, SentFile
from .ratelimit import RateLimitHit
from .rest import RestCall
from .thread import FakeDiscordThread

__all__ = [
    "CATEGORY",
    "DIRECT_MESSAGES",
    "DM",
    "EPHEMERAL",
    "GUILDS",
    "GUILD_MEMBERS",
    "GUILD_MESSAGES",
    "LOADING",
    "MESSAGE_CONTENT",
    "TEXT",
    "VOICE",
    "ApiError",
    "Channel",
    "FakeDiscord",
    "FakeDiscordThread",
    "Guild",
    "Interaction",
    "Member",
    "RateLimitHit",
    "RestCall",
    "Role",
    "SentFile",
    "User",
    "permissions",
]
