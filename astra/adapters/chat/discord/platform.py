"""ChatPlatform on Discord's REST API, through interactions.py's HTTP client.

interactions.py's client already handles Discord's rate limits (it waits `retry_after` on 429 and
tries again) and the connection pool; this adapter only shapes payloads and turns Discord's
errors into the port's.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import interactions
from interactions.client.errors import HTTPException

from astra.domain.branding import emoji_payload
from astra.logs import expecting_http_status, get_logger
from astra.ports.chat import (
    Button,
    ChatError,
    Component,
    DirectMessagesClosed,
    InvalidBotToken,
    OutgoingMessage,
    Select,
)

log = get_logger("astra.discord")

CANNOT_DM = 50007
UNKNOWN_CHANNEL = 10003

# What a lost connection looks like from aiohttp (ClientOSError is an OSError too).
_CONNECTION_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)
CONNECTION_RETRY_PAUSE = 0.5

VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_HISTORY = 1 << 16
MANAGE_CHANNELS = 1 << 4
MANAGE_MESSAGES = 1 << 13
MEMBER_ACCESS = VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY | ATTACH_FILES
BOT_ACCESS = MEMBER_ACCESS | EMBED_LINKS | MANAGE_CHANNELS | MANAGE_MESSAGES

_STYLES = {"primary": 1, "secondary": 2, "success": 3, "danger": 4, "link": 5}


def component_payload(component: Component) -> dict[str, Any]:
    if isinstance(component, Select):
        return {
            "type": 3,
            "custom_id": component.custom_id,
            "placeholder": component.placeholder,
            "min_values": 1,
            "max_values": 1,
            "disabled": component.disabled,
            "options": [
                {
                    k: v
                    for k, v in (
                        ("label", o.label),
                        ("value", o.value),
                        ("description", o.description or None),
                        ("emoji", emoji_payload(o.emoji)),
                    )
                    if v
                }
                for o in component.options
            ],
        }
    assert isinstance(component, Button)
    payload: dict[str, Any] = {
        "type": 2,
        "style": _STYLES[component.style],
        "label": component.label,
        "disabled": component.disabled,
    }
    if component.style == "link":
        payload["url"] = component.url
    else:
        payload["custom_id"] = component.custom_id
    if component.emoji:
        payload["emoji"] = emoji_payload(component.emoji)
    return payload


def message_payload(message: OutgoingMessage, *, editing: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "content": message.content[:2000],
        "embeds": [dict(e) for e in message.embeds][:10],
        "components": [
            {"type": 1, "components": [component_payload(c) for c in row]}
            for row in message.components
        ][:5],
        # Mentions in our messages notify only the users we mean (never @everyone).
        "allowed_mentions": {"parse": ["users"]},
    }
    if message.mention_roles:
        payload["allowed_mentions"]["roles"] = list(message.mention_roles)
    if editing and message.files:
        payload["attachments"] = []  # replace the old attachments with the new files
    if message.nonce and not editing:
        # Without enforce_nonce Discord only echoes the nonce back; with it, a message with the
        # nonce of one we sent in the past few minutes is not created again (the first one is
        # returned), which is what makes a retried delivery safe.
        payload["nonce"] = message.nonce
        payload["enforce_nonce"] = True
    return payload


def _files(message: OutgoingMessage) -> list[interactions.File] | None:
    return [
        interactions.File(io.BytesIO(data), file_name=name) for name, data in message.files
    ] or None


def translate(exc: HTTPException) -> ChatError:
    if exc.code == CANNOT_DM:
        return DirectMessagesClosed()
    if exc.status == 401:
        return InvalidBotToken()
    retryable = exc.status >= 500 or exc.status == 429
    return ChatError(f"discord {exc.status} ({exc.code}): {exc.text}", retryable=retryable)


class DiscordChat:
    """ChatPlatform over a started interactions.Client's HTTP client."""

    def __init__(self, client: interactions.Client) -> None:
        self.client = client

    @property
    def http(self) -> Any:
        return self.client.http

    @property
    def bot_id(self) -> str:
        return str(self.client.user.id)

    async def _call(self, request: Callable[[], Awaitable[Any]], *, idempotent: bool) -> Any:
        """One REST call, Discord's errors as the port's. A connection lost mid-call (a
        keep-alive the server closed, a reset, a timeout) leaves unknown whether Discord acted:
        a call that is safe to repeat (a read, a PUT, a message with an enforced nonce) is
        tried once more; anything else is a retryable ChatError for the caller to schedule."""
        for attempt in range(2):
            try:
                return await request()
            except HTTPException as exc:
                raise translate(exc) from None
            except _CONNECTION_ERRORS as exc:
                if idempotent and attempt == 0:
                    await asyncio.sleep(CONNECTION_RETRY_PAUSE)
                    continue
                raise ChatError(f"discord unreachable: {type(exc).__name__}") from None
        raise AssertionError("unreachable")

    async def send_message(self, channel_id: str, message: OutgoingMessage) -> str:
        data = await self._call(
            lambda: self.http.create_message(
                message_payload(message), channel_id, files=_files(message)
            ),
            idempotent=message.nonce is not None,
        )
        return str(data["id"])

    async def edit_message(
        self, channel_id: str, message_id: str, message: OutgoingMessage
    ) -> None:
        await self._call(
            lambda: self.http.edit_message(
                message_payload(message, editing=True),
                channel_id,
                message_id,
                files=_files(message),
            ),
            idempotent=True,
        )

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        async def delete() -> None:
            try:
                await self.http.delete_message(channel_id, message_id)
            except HTTPException as exc:
                if exc.status != 404:  # already gone is what we wanted
                    raise

        await self._call(delete, idempotent=True)

    async def send_dm(self, user_id: str, message: OutgoingMessage) -> str:
        # Opening a DM channel returns the existing one: safe to repeat.
        channel = await self._call(lambda: self.http.create_dm(user_id), idempotent=True)
        # A 403 here is usually a buyer who does not take DMs: normal operation, not an error.
        with expecting_http_status(403):
            try:
                return await self.send_message(str(channel["id"]), message)
            except DirectMessagesClosed:
                log.info("discord.dm_closed", user=user_id,
                         outcome="not sent by DM; the caller falls back to another channel")
                raise

    async def open_private_channel(
        self,
        guild_id: str,
        name: str,
        *,
        member_ids: list[str],
        staff_role_id: str | None = None,
        category_id: str | None = None,
        topic: str = "",
    ) -> str:
        overwrites: list[dict[str, Any]] = [
            # the @everyone role has the guild's id
            {"id": str(guild_id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
            {"id": self.bot_id, "type": 1, "allow": str(BOT_ACCESS), "deny": "0"},
        ]
        overwrites += [
            {"id": str(m), "type": 1, "allow": str(MEMBER_ACCESS), "deny": "0"} for m in member_ids
        ]
        if staff_role_id:
            overwrites.append(
                {"id": str(staff_role_id), "type": 0, "allow": str(MEMBER_ACCESS), "deny": "0"}
            )
        # Not repeated on a lost connection: a second channel could be born. The caller finds
        # an unrecorded one by its topic (ShopExtension._unrecorded_channel).
        data = await self._call(
            lambda: self.http.create_guild_channel(
                guild_id,
                name[:100],
                0,
                topic=topic[:1024] or None,
                permission_overwrites=overwrites,
                parent_id=category_id or None,
                reason="Astra: carrinho",
            ),
            idempotent=False,
        )
        return str(data["id"])

    async def close_channel(self, channel_id: str, reason: str = "") -> None:
        async def close() -> None:
            try:
                await self.http.delete_channel(channel_id, reason=reason or None)
            except HTTPException as exc:
                if exc.code != UNKNOWN_CHANNEL and exc.status != 404:
                    raise

        await self._call(close, idempotent=True)

    async def grant_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        await self._call(
            lambda: self.http.add_guild_member_role(guild_id, user_id, role_id), idempotent=True
        )

    async def revoke_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        await self._call(
            lambda: self.http.remove_guild_member_role(guild_id, user_id, role_id),
            idempotent=True,
        )

    async def list_channels(self, guild_id: str) -> list[dict[str, Any]]:
        data = await self._call(lambda: self.http.get_guild_channels(guild_id), idempotent=True)
        return [
            {
                "id": str(c["id"]),
                "name": c.get("name"),
                "type": c.get("type"),
                "parent_id": str(c["parent_id"]) if c.get("parent_id") else None,
                "topic": c.get("topic") or "",
            }
            for c in data
        ]

    async def recent_messages(self, channel_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The channel's latest messages as Discord sends them (newest first)."""
        data = await self._call(
            lambda: self.http.get_channel_messages(channel_id, limit=min(limit, 100)),
            idempotent=True,
        )
        return list(data or [])

    async def guild_roles_raw(self, guild_id: str) -> list[dict[str, Any]]:
        """Roles with their permissions (permcheck)."""
        return list(await self._call(lambda: self.http.get_roles(guild_id), idempotent=True))

    async def channel_raw(self, channel_id: str) -> dict[str, Any]:
        """A channel with its permission overwrites (permcheck)."""
        return dict(await self._call(lambda: self.http.get_channel(channel_id), idempotent=True))

    async def member_raw(self, guild_id: str, user_id: str) -> dict[str, Any]:
        return dict(
            await self._call(lambda: self.http.get_member(guild_id, user_id), idempotent=True)
        )

    async def list_roles(self, guild_id: str) -> list[dict[str, Any]]:
        data = await self._call(lambda: self.http.get_roles(guild_id), idempotent=True)
        return [
            {
                "id": str(r["id"]),
                "name": r.get("name"),
                "position": r.get("position", 0),
                "managed": bool(r.get("managed")),
            }
            for r in data
        ]
