"""What every extension of one instance's bot shares: the instance, its platform API, its chat.

The bot holds no store and no service: everything it reads or changes goes through the
instance API (in process, or the platform's internal API over HTTP), bound to its instance."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import interactions

from astra.adapters.chat.discord.platform import DiscordChat
from astra.adapters.chat.discord.texts import t
from astra.domain.errors import DomainError
from astra.logs import get_logger
from astra.ports.chat import InteractionRef
from astra.ports.instance_api import InstanceAPI, InstanceAPIUnavailable

log = get_logger("astra.bot")

# Settings change seldom (a seller's /loja config) and are read on every click: a short cache
# saves one platform round trip per interaction.
SETTINGS_TTL = 2.0


@dataclass
class BotContext:
    instance_id: str
    api: InstanceAPI
    chat: DiscordChat
    # Interaction handlers running now: a stop waits for them (see drain).
    inflight: int = 0
    _settings: tuple[float, dict[str, Any]] | None = field(default=None, repr=False)

    async def settings(self, *, fresh: bool = False) -> dict[str, Any]:
        cached = self._settings
        if not fresh and cached is not None and time.monotonic() - cached[0] < SETTINGS_TTL:
            return cached[1]
        settings = await self.api.settings()
        self._settings = (time.monotonic(), settings)
        return settings

    def forget_settings(self) -> None:
        self._settings = None

    async def language(self) -> str:
        try:
            return (await self.settings()).get("language") or "pt-BR"
        except InstanceAPIUnavailable:
            return "pt-BR"

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def drain(self, timeout: float) -> int:
        """Wait (up to `timeout`) for the interaction handlers in progress: a buyer who clicked
        just before a restart gets their answer instead of a dead interaction and a half-done
        step. Returns how many were still running when the wait ended."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.inflight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return self.inflight


def interaction_of(ctx: interactions.BaseContext) -> InteractionRef:
    """What the platform is handed for the person who clicked: their interaction, never their
    id (the platform asks Discord who it was). Call after deferring: Discord's answer about the
    interaction is its original response, which a deferral makes."""
    return InteractionRef(id=str(ctx.id), token=str(ctx.token))


def friendly(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Every failure a buyer or seller can cause becomes an ephemeral message saying what to do;
    anything else is logged and answered with a generic apology — never silence."""

    @functools.wraps(handler)
    async def wrapper(self: Any, ctx: interactions.BaseContext, *args: Any, **kwargs: Any) -> Any:
        bot: BotContext = self.bot_ctx
        bot.inflight += 1
        try:
            return await handler(self, ctx, *args, **kwargs)
        except DomainError as exc:
            language = await bot.language()
            await _reply(ctx, exc.message(language))
        except InstanceAPIUnavailable as exc:
            # The platform is restarting or overloaded: nothing was done, pressing again works.
            log.warning("bot.platform_unavailable", handler=handler.__name__,
                        instance=bot.instance_id, error=str(exc))
            await _reply(ctx, t(await bot.language(), "error_generic"))
        except Exception:
            log.exception("bot.handler_failed", handler=handler.__name__, instance=bot.instance_id)
            await _reply(ctx, t(await bot.language(), "error_generic"))
        finally:
            bot.inflight -= 1
        return None

    return wrapper


async def _reply(ctx: Any, text: str) -> None:
    try:
        await ctx.send(text, ephemeral=True)
    except Exception:  # the interaction may have expired: nothing more to tell anyone
        log.warning("bot.reply_failed")
