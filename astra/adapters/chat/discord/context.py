"""What every extension of one instance's bot shares: the instance, its services, its chat."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import interactions

from astra.adapters.chat.discord.platform import DiscordChat
from astra.adapters.chat.discord.texts import t
from astra.domain.errors import DomainError
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.logs import get_logger

log = get_logger("astra.bot")

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class BotContext:
    instance_id: str
    container: Any  # astra.container.Container (kept loose: extensions only call services)
    chat: DiscordChat
    # Interaction handlers running now: a stop waits for them (see drain).
    inflight: int = 0

    def __getattr__(self, name: str) -> Any:
        # bot.sales, bot.payments, ... are the container's services
        return getattr(self.container, name)()

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """A blocking service call (store, gateway SDK), off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def settings(self) -> dict[str, Any]:
        with self.container.store().instance(self.instance_id, write=False) as uow:
            return settings_of(uow.settings.get(SETTINGS_ID))

    async def language(self) -> str:
        return (await self.run(self.settings)).get("language") or "pt-BR"

    async def drain(self, timeout: float) -> int:
        """Wait (up to `timeout`) for the interaction handlers in progress: a buyer who clicked
        just before a restart gets their answer instead of a dead interaction and a half-done
        step. Returns how many were still running when the wait ended."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.inflight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return self.inflight


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
