"""Checking a bot token against Discord before it is stored (portal, CLI)."""

from __future__ import annotations

from typing import Any

import aiohttp

from astra.ports.chat import ChatError, InvalidBotToken


async def fetch_bot_profile(token: str, api_base: str) -> dict[str, Any]:
    """The bot user behind a token (id, username, avatar, application_id), or InvalidBotToken."""
    headers = {"Authorization": f"Bot {token}", "User-Agent": "Astra (https://astra.local, 1)"}
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
            async with http.get(f"{api_base}/users/@me") as resp:
                if resp.status == 401:
                    raise InvalidBotToken()
                if resp.status != 200:
                    raise ChatError(f"discord answered {resp.status}")
                user = await resp.json(content_type=None)
            async with http.get(f"{api_base}/oauth2/applications/@me") as resp:
                app = await resp.json(content_type=None) if resp.status == 200 else {}
    except aiohttp.ClientError as exc:
        raise ChatError(f"discord unreachable: {type(exc).__name__}") from None
    if not user.get("bot"):
        raise InvalidBotToken("the token does not belong to a bot")
    return {
        "id": str(user["id"]),
        "username": user.get("username"),
        "avatar": user.get("avatar"),
        "application_id": str(app.get("id") or user["id"]),
    }
