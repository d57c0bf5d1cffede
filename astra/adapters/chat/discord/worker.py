"""The bot's background work: cart channels that must close, and its heartbeat.

Deliveries are not the bot's: the platform sends them itself (Discord REST with this
instance's token, see `entrypoints/courier.py`) the moment a payment clears, so stock keys
never pass through a tenant runtime. The heartbeat goes to the platform's instance API, which
is where the runtime monitor reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import interactions

from astra.adapters.chat.discord import ui
from astra.adapters.chat.discord.context import BotContext, log
from astra.adapters.chat.discord.texts import t
from astra.domain.cart import LIVE_STATES
from astra.domain.errors import NotFoundError
from astra.domain.timestamps import parse_iso
from astra.ports.chat import ChatError, OutgoingMessage
from astra.ports.instance_api import Heartbeat, InstanceAPIUnavailable

JANITOR_INTERVAL = 5.0
HEARTBEAT_INTERVAL = 10.0
CLOSE_PAID_AFTER = timedelta(seconds=60)
# Cart channels that no cart points at are looked for this often (one REST call), and closed
# once this old (an interaction that is still opening one must not lose it).
ORPHAN_SWEEP_INTERVAL = 60.0
ORPHAN_MIN_AGE = 120.0


class WorkerExtension(interactions.Extension):
    def __init__(
        self,
        bot: interactions.Client,
        bot_ctx: BotContext,
        janitor_interval: float = JANITOR_INTERVAL,
        close_paid_after: timedelta = CLOSE_PAID_AFTER,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self.bot_ctx = bot_ctx
        self.janitor_interval = janitor_interval
        self.close_paid_after = close_paid_after
        self.heartbeat_interval = heartbeat_interval
        self.ready_at: float | None = None
        self._stopping = False
        self._swept_at = float("-inf")
        self._chores: list[asyncio.Task[None]] = []

    @interactions.listen(interactions.events.Ready)
    async def on_ready(self) -> None:
        self.ready_at = time.time()
        self.start()
        log.info("bot.ready", instance=self.bot_ctx.instance_id, user=str(self.bot.user.username))
        with contextlib.suppress(InstanceAPIUnavailable):
            await self.beat()  # after the log line: whoever sees the heartbeat can read it

    def start(self) -> None:
        """The background loops, once (READY comes again after a new gateway session)."""
        if self._chores:
            return
        self._chores = [
            asyncio.create_task(
                self._every(self.janitor_interval, self.tidy_carts), name="janitor"
            ),
            asyncio.create_task(
                self._every(self.heartbeat_interval, self.beat), name="heartbeat"
            ),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._chores:
            task.cancel()
        for task in self._chores:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._chores = []

    async def _every(self, seconds: float, step: Any) -> None:
        while not self._stopping:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except InstanceAPIUnavailable as exc:
                # The platform is restarting: the next pass will do.
                log.info("bot.platform_unavailable", step=step.__name__, error=str(exc))
            except Exception:
                log.exception(
                    "bot.worker_failed", step=step.__name__, instance=self.bot_ctx.instance_id
                )
            if self._stopping:
                return
            await asyncio.sleep(seconds)

    # -- cart channels ---------------------------------------------------------------------------

    async def tidy_carts(self) -> None:
        """Close the channels of carts that ended (the platform expires carts; the bot only
        tidies Discord)."""
        bot = self.bot_ctx
        if time.monotonic() - self._swept_at >= ORPHAN_SWEEP_INTERVAL:
            self._swept_at = time.monotonic()
            await self.close_orphan_channels()
        carts = await bot.api.carts_with_open_channels()
        if not carts:
            return
        settings = await bot.settings()
        language = settings.get("language") or "pt-BR"
        now = bot.now()
        for cart in carts:
            if cart["state"] == "paid":
                closed = parse_iso(cart.get("closed_at"))
                if closed and now - closed < self.close_paid_after:
                    continue
                # A paid cart's channel stays while its order is undelivered (it is the
                # delivery's fallback), and while a delivery made in it must stay readable.
                if cart.get("order_status") in ("paid", "waiting_stock"):
                    continue
                keep = parse_iso(cart.get("keep_until"))
                if keep is not None and now < keep:
                    continue
            if cart["state"] == "expired":
                with contextlib.suppress(ChatError):
                    await bot.chat.send_dm(
                        cart["buyer_id"],
                        OutgoingMessage(
                            content=t(language, "expired_dm", shop=settings.get("name") or "")
                        ),
                    )
            try:
                await bot.chat.close_channel(cart["channel_id"], reason=f"cart {cart['state']}")
            except ChatError as exc:
                log.warning("bot.close_channel_failed", cart=cart["id"], error=str(exc))
                continue
            await bot.api.mark_cart_channel_closed(cart["id"])

    async def close_orphan_channels(self) -> None:
        """Close cart channels no cart points at: opened by an attempt that stopped before
        recording the channel (a bot stopped mid-interaction), whose cart then ended or got
        another channel. A young channel is left alone: its interaction may still be running,
        and an open cart without a channel reuses it (ShopExtension._unrecorded_channel)."""
        bot = self.bot_ctx
        guild = (await bot.settings()).get("guild_id")
        if not guild:
            return
        try:
            channels = await bot.chat.list_channels(str(guild))
        except ChatError as exc:
            log.warning("bot.orphan_sweep_failed", error=str(exc))
            return
        now = time.time()
        for channel in channels:
            cart_id = ui.cart_of_topic(channel.get("topic"))
            if cart_id is None or ui.snowflake_age_seconds(channel["id"], now) < ORPHAN_MIN_AGE:
                continue
            try:
                cart = await bot.api.get_cart_by_id(cart_id)
            except NotFoundError:
                continue  # not this instance's cart (two shops' bots in one server)
            recorded = cart.channel_id
            if recorded == channel["id"] or (recorded is None and cart.state in LIVE_STATES):
                continue
            with contextlib.suppress(ChatError):
                await bot.chat.close_channel(channel["id"], reason="cart channel not in use")
                log.info("bot.orphan_channel_closed", cart=cart_id, channel=channel["id"])

    # -- heartbeat -------------------------------------------------------------------------------

    async def report_error(self, reason: str) -> None:
        """Tell the runtime monitor why the bot is stopping (before it exits)."""
        with contextlib.suppress(Exception):
            await self.bot_ctx.api.heartbeat(Heartbeat(pid=os.getpid(), error=reason))

    async def beat(self) -> None:
        """What the runtime monitor reads: alive, ready since, gateway latency. A file in the
        runtime's own scratch space is touched first, for the container's HEALTHCHECK (the
        bot is alive even while its platform restarts); the platform never reads it."""
        with contextlib.suppress(OSError):
            Path(tempfile.gettempdir(), f"astra-heartbeat-{self.bot_ctx.instance_id}").touch()
        latency = self.bot.latency
        await self.bot_ctx.api.heartbeat(
            Heartbeat(
                ready_at=self.ready_at,
                latency_ms=None if latency in (None, float("inf")) else round(latency * 1000, 1),
                guilds=len(self.bot.guilds),
                bot_user=str(self.bot.user.id),
                pid=os.getpid(),
            )
        )
