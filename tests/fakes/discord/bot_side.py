"""What a bot does with an interaction it received, over REST, for tests that play the bot
(an honest runtime's shortcut, or a compromised one): defer it, as the bot does before asking
the platform for anything done for the person who clicked."""

from __future__ import annotations

from typing import Any

import aiohttp

from astra.ports.chat import InteractionRef

DEFERRED_MESSAGE = 5
EPHEMERAL = 1 << 6


async def deferred(http: aiohttp.ClientSession, api_url: str, handle: Any) -> InteractionRef:
    """Defer `handle` (ephemeral, "thinking…") through Discord's callback route at `api_url`;
    returns the interaction as the bot hands it to the platform."""
    url = f"{api_url}/interactions/{handle.id}/{handle.token}/callback"
    async with http.post(url, json={"type": DEFERRED_MESSAGE,
                                    "data": {"flags": EPHEMERAL}}) as resp:
        if resp.status != 204:
            raise RuntimeError(f"defer refused: {resp.status} {await resp.text()}")
    return InteractionRef(handle.id, handle.token)
