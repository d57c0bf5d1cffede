"""A small Discord REST client for the platform, on one instance's bot token.

The platform runs no gateway: it lists a guild's channels or posts a product for a seller, and
it delivers paid orders (DMs, a fallback channel, role grants) itself, so stock keys never pass
through a tenant's runtime. An aiohttp session with that instance's token is enough for that
(the interactions.py client wants a gateway login first). Payloads come from
`platform.message_payload`, so a post made from the portal is the one the bot itself would make.
Discord's refusals become the chat port's errors, with the kind the portal must tell apart.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from astra.adapters.chat.discord.platform import BOT_ACCESS, message_payload
from astra.ports.chat import ChatError, DirectMessagesClosed, InvalidBotToken, OutgoingMessage

CANNOT_DM = 50007
MANAGE_ROLES = 1 << 28  # role delivery, and the overwrites of a cart's private channel
INVITE_PERMISSIONS = BOT_ACCESS | MANAGE_ROLES
INVITE_SCOPES = ("bot", "applications.commands")
# A short wait is cheaper than making the seller press the button again; a long one is not.
MAX_RATE_LIMIT_WAIT = 2.0
_SNOWFLAKE = re.compile(r"^\d{5,25}$")
_INTERACTION_TOKEN = re.compile(r"^[A-Za-z0-9._-]{20,500}$")
EPHEMERAL = 1 << 6


class MissingAccess(ChatError):
    """Discord answered 403: the bot cannot see or act there (missing access or permissions)."""

    def __init__(self, message: str = "missing access") -> None:
        super().__init__(message, retryable=False)


class UnknownResource(ChatError):
    """Discord answered 404: no such channel or guild (or not one the bot is in)."""

    def __init__(self, message: str = "unknown resource") -> None:
        super().__init__(message, retryable=False)


class RateLimited(ChatError):
    """Discord answered 429 for longer than is worth waiting; `retry_after` is in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after:.1f}s")
        self.retry_after = retry_after


def invite_url(
    application_id: str,
    *,
    oauth_base: str = "https://discord.com",
    permissions: int = INVITE_PERMISSIONS,
) -> str:
    """The link that adds the bot to a server with the permissions it needs to sell there."""
    query = urlencode(
        {
            "client_id": application_id,
            "scope": " ".join(INVITE_SCOPES),
            "permissions": str(permissions),
        }
    )
    return f"{oauth_base.rstrip('/')}/oauth2/authorize?{query}"


def _snowflake(value: str, what: str) -> str:
    # Ids become URL path segments: nothing but digits may get there.
    if not isinstance(value, str) or not _SNOWFLAKE.fullmatch(value):
        raise UnknownResource(f"malformed {what} id")
    return value


class DiscordRest:
    """`async with DiscordRest(token, api_base) as discord: await discord.guild_channels(...)`."""

    def __init__(self, token: str, api_base: str, *, timeout: float = 15.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        self._headers = {
            "Authorization": f"Bot {token}",
            "User-Agent": "DiscordBot (https://astra.local, 1)",
        }
        self._api_base = api_base.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # A session given by the caller (kept alive across calls) is the caller's to close.
        self._shared = session
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> DiscordRest:
        self._http = self._shared or aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None and self._http is not self._shared:
            await self._http.close()
        self._http = None

    async def _request(
        self, method: str, path: str, *, json: Any = None, form: list[Any] | None = None
    ) -> Any:
        assert self._http is not None, "use `async with DiscordRest(...)`"
        for attempt in range(2):
            data = _form(form) if form is not None else None
            try:
                async with self._http.request(
                    method, f"{self._api_base}{path}", json=json, data=data,
                    headers=self._headers, timeout=self._timeout,
                ) as resp:
                    body = await resp.read()
                    status = resp.status
                    retry_header = resp.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise ChatError(f"discord unreachable: {type(exc).__name__}") from None
            payload = _decode(body)
            if 200 <= status < 300:
                return payload
            if status == 429:
                retry_after = _retry_after(payload, retry_header)
                if attempt == 0 and retry_after <= MAX_RATE_LIMIT_WAIT:
                    await asyncio.sleep(retry_after)
                    continue
                raise RateLimited(retry_after)
            raise _error(status, payload)
        raise AssertionError("unreachable")

    async def bot_guilds(self) -> list[dict[str, Any]]:
        """[{id, name}] of the servers the bot is in."""
        data = await self._request("GET", "/users/@me/guilds")
        return [{"id": str(g["id"]), "name": g.get("name") or ""} for g in data or []]

    async def guild_channels(self, guild_id: str) -> list[dict[str, Any]]:
        """[{id, name, type, parent_id, position}] of a guild, in Discord's order."""
        data = await self._request("GET", f"/guilds/{_snowflake(guild_id, 'guild')}/channels")
        channels = [
            {
                "id": str(c["id"]),
                "name": c.get("name") or "",
                "type": int(c.get("type") or 0),
                "parent_id": str(c["parent_id"]) if c.get("parent_id") else None,
                "position": int(c.get("position") or 0),
            }
            for c in data or []
        ]
        return sorted(channels, key=lambda c: (c["position"], c["id"]))

    async def guild_roles(self, guild_id: str) -> list[dict[str, Any]]:
        """[{id, name, color, position, managed}] of a guild, highest first, without
        @everyone (its id is the guild's) and without roles managed by an integration (a bot's
        own role), which nobody can grant."""
        data = await self._request("GET", f"/guilds/{_snowflake(guild_id, 'guild')}/roles")
        roles = [
            {
                "id": str(r["id"]),
                "name": r.get("name") or "",
                "color": int(r.get("color") or 0),
                "position": int(r.get("position") or 0),
                "managed": bool(r.get("managed")),
            }
            for r in data or []
            if str(r.get("id")) != str(guild_id) and not r.get("managed")
        ]
        return sorted(roles, key=lambda r: (-r["position"], r["id"]))

    async def get_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        """One message as Discord has it now (UnknownResource when it was deleted)."""
        return await self._request(
            "GET",
            f"/channels/{_snowflake(channel_id, 'channel')}/messages/"
            f"{_snowflake(message_id, 'message')}",
        )

    async def send_message(self, channel_id: str, message: OutgoingMessage) -> str:
        """Post with embeds, components and files; returns the message id."""
        path = f"/channels/{_snowflake(channel_id, 'channel')}/messages"
        payload = message_payload(message)
        if not message.files:
            data = await self._request("POST", path, json=payload)
        else:
            payload["attachments"] = [
                {"id": i, "filename": name} for i, (name, _) in enumerate(message.files)
            ]
            fields = [("payload_json", orjson.dumps(payload), None, "application/json")]
            fields += [
                (f"files[{i}]", content, name, "application/octet-stream")
                for i, (name, content) in enumerate(message.files)
            ]
            data = await self._request("POST", path, form=fields)
        return str(data["id"])

    async def followup(
        self, application_id: str, interaction_token: str, content: str, *, ephemeral: bool
    ) -> str:
        """A follow-up message to an interaction the bot deferred, sent by the platform itself
        (what only the buyer should read never passes through the bot)."""
        if not _INTERACTION_TOKEN.fullmatch(interaction_token or ""):
            raise UnknownResource("malformed interaction token")
        path = f"/webhooks/{_snowflake(application_id, 'application')}/{interaction_token}"
        payload: dict[str, Any] = {"content": content}
        if ephemeral:
            payload["flags"] = EPHEMERAL
        data = await self._request("POST", path, json=payload)
        return str((data or {}).get("id") or "")

    async def original_response(
        self, application_id: str, interaction_token: str
    ) -> dict[str, Any]:
        """The first response to an interaction, as Discord keeps it (after a deferral, the
        "thinking" message): its `interaction_metadata` names who made the interaction."""
        if not _INTERACTION_TOKEN.fullmatch(interaction_token or ""):
            raise UnknownResource("malformed interaction token")
        path = (f"/webhooks/{_snowflake(application_id, 'application')}/{interaction_token}"
                "/messages/@original")
        return dict(await self._request("GET", path) or {})

    async def channel(self, channel_id: str) -> dict[str, Any]:
        return dict(
            await self._request("GET", f"/channels/{_snowflake(channel_id, 'channel')}") or {}
        )

    async def guild(self, guild_id: str) -> dict[str, Any]:
        """The guild as Discord has it: owner and every role with its permissions."""
        return dict(await self._request("GET", f"/guilds/{_snowflake(guild_id, 'guild')}") or {})

    async def send_dm(self, user_id: str, message: OutgoingMessage) -> str:
        """DM a user; raises DirectMessagesClosed when they do not take the bot's DMs."""
        # Opening a DM channel returns the existing one: safe to repeat.
        channel = await self._request(
            "POST", "/users/@me/channels", json={"recipient_id": _snowflake(user_id, "user")}
        )
        return await self.send_message(str(channel["id"]), message)

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        try:
            await self._request(
                "DELETE",
                f"/channels/{_snowflake(channel_id, 'channel')}/messages/"
                f"{_snowflake(message_id, 'message')}",
            )
        except UnknownResource:
            pass  # already gone is what we wanted

    async def recent_messages(self, channel_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The channel's latest messages (newest first), as Discord sends them."""
        path = f"/channels/{_snowflake(channel_id, 'channel')}/messages?limit={min(limit, 100)}"
        return list(await self._request("GET", path) or [])

    async def member(self, guild_id: str, user_id: str) -> dict[str, Any]:
        """A guild member as Discord knows it (their roles): what the platform trusts, not
        what a runtime says about them."""
        return dict(
            await self._request(
                "GET",
                f"/guilds/{_snowflake(guild_id, 'guild')}/members/{_snowflake(user_id, 'user')}",
            )
            or {}
        )

    async def grant_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        await self._request("PUT", self._member_role(guild_id, user_id, role_id))

    async def revoke_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        await self._request("DELETE", self._member_role(guild_id, user_id, role_id))

    @staticmethod
    def _member_role(guild_id: str, user_id: str, role_id: str) -> str:
        return (
            f"/guilds/{_snowflake(guild_id, 'guild')}/members/{_snowflake(user_id, 'user')}"
            f"/roles/{_snowflake(role_id, 'role')}"
        )


def _form(fields: list[Any]) -> aiohttp.FormData:
    # Built per attempt: a FormData can be sent only once.
    form = aiohttp.FormData()
    for name, value, filename, content_type in fields:
        form.add_field(name, value, filename=filename, content_type=content_type)
    return form


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _retry_after(payload: Any, header: str | None) -> float:
    value: Any = payload.get("retry_after") if isinstance(payload, dict) else None
    if value is None:
        value = header
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0


def _error(status: int, payload: Any) -> ChatError:
    detail = ""
    if isinstance(payload, dict):
        detail = f" ({payload.get('code')}: {payload.get('message')})"
    if status == 401:
        return InvalidBotToken()
    if status == 403 and isinstance(payload, dict) and payload.get("code") == CANNOT_DM:
        return DirectMessagesClosed()
    if status == 403:
        return MissingAccess(f"discord 403{detail}")
    if status == 404:
        return UnknownResource(f"discord 404{detail}")
    return ChatError(f"discord {status}{detail}", retryable=status >= 500)
