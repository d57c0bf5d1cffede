"""The bot's background work: the delivery outbox, cart channels that must close, heartbeat.

Paid orders are found by polling the instance's outbox (a store refresh costs one `stat` when
nothing changed), so it does not matter which process confirmed the payment: the webhook in the
portal, the reconcile loop, or a sandbox button.

A delivery cut between "DM sent" and "result recorded" would be sent again and, until its lease
expired, not at all. So the outbox frees the leases a dead bot left when it starts, and a stop
lets the delivery in hand finish before cancelling it; the message nonces make a resend harmless
whenever a cut happens anyway (SIGKILL, a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import interactions
import orjson

from astra.adapters.chat.discord import ui
from astra.adapters.chat.discord.context import BotContext, log
from astra.adapters.chat.discord.texts import t
from astra.domain.cart import LIVE_STATES
from astra.domain.errors import NotFoundError
from astra.domain.order import Order
from astra.domain.timestamps import parse_iso
from astra.ports.chat import ChatError, OutgoingMessage

DELIVERY_INTERVAL = 0.2
JANITOR_INTERVAL = 5.0
HEARTBEAT_INTERVAL = 10.0
# How long a stop waits for the delivery in hand: it normally takes well under a second, and
# Docker's default stop timeout (10 s) must leave time for the gateway to close after it.
STOP_GRACE = 6.0
CLOSE_PAID_AFTER = timedelta(seconds=60)
# Cart channels that no cart points at are looked for this often (one REST call), and closed
# once this old (an interaction that is still opening one must not lose it).
ORPHAN_SWEEP_INTERVAL = 60.0
ORPHAN_MIN_AGE = 120.0
HEARTBEAT_FILE = "heartbeat.json"


def heartbeat_path(data_dir: Path, instance_id: str) -> Path:
    return data_dir / "instances" / instance_id / HEARTBEAT_FILE


class WorkerExtension(interactions.Extension):
    def __init__(
        self,
        bot: interactions.Client,
        bot_ctx: BotContext,
        delivery_interval: float = DELIVERY_INTERVAL,
        janitor_interval: float = JANITOR_INTERVAL,
        close_paid_after: timedelta = CLOSE_PAID_AFTER,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self.bot_ctx = bot_ctx
        self.delivery_interval = delivery_interval
        self.janitor_interval = janitor_interval
        self.close_paid_after = close_paid_after
        self.stop_grace = stop_grace
        self.ready_at: float | None = None
        # Names this process in the delivery leases it takes; the start time tells a restarted
        # container (pid 1 again) from the one before it.
        self.holder = f"bot:{os.getpid()}:{int(time.time() * 1000)}"
        self._stopping = False
        self._swept_at = float("-inf")
        self._delivering = False  # the outbox is inside a step (not pausing between two)
        self._outbox: asyncio.Task[None] | None = None
        self._chores: list[asyncio.Task[None]] = []

    @interactions.listen(interactions.events.Ready)
    async def on_ready(self) -> None:
        self.ready_at = time.time()
        self.start()
        log.info("bot.ready", instance=self.bot_ctx.instance_id, user=str(self.bot.user.username))
        await self.beat()  # after the log line: whoever sees the heartbeat can read it

    def start(self) -> None:
        """The background loops, once (READY comes again after a new gateway session)."""
        if self._outbox is not None:
            return
        self._outbox = asyncio.create_task(self._run_outbox(), name="outbox")
        self._chores = [
            asyncio.create_task(
                self._every(self.janitor_interval, self.tidy_carts), name="janitor"
            ),
            asyncio.create_task(self._every(HEARTBEAT_INTERVAL, self.beat), name="heartbeat"),
        ]

    async def stop(self) -> None:
        """Cancel the chores at once, but give the outbox up to `stop_grace` seconds to finish
        the delivery in hand: cancelled between the DM and its record, the order would wait for
        the next bot and be sent again (dropped then only thanks to its nonce)."""
        self._stopping = True
        tasks = [*self._chores, *([self._outbox] if self._outbox else [])]
        if self._outbox is not None and self._delivering:
            _, late = await asyncio.wait({self._outbox}, timeout=self.stop_grace)
            if late:
                log.warning(
                    "bot.outbox_cut", instance=self.bot_ctx.instance_id, grace_s=self.stop_grace
                )
        for task in tasks:
            task.cancel()  # a finished outbox ignores it
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._outbox, self._chores = None, []

    async def _every(self, seconds: float, step: Any) -> None:
        while not self._stopping:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "bot.worker_failed", step=step.__name__, instance=self.bot_ctx.instance_id
                )
            if self._stopping:
                return
            await asyncio.sleep(seconds)

    # -- deliveries ------------------------------------------------------------------------------

    async def _run_outbox(self) -> None:
        await self.release_leases()
        await self._every(self.delivery_interval, self.deliver_due)

    async def release_leases(self) -> None:
        """Free the delivery leases other processes hold. This runtime is the only bot of its
        instance, so they were left by a bot that died mid-delivery (a crash, SIGKILL, a host
        restart); waiting them out would hold the buyers' keys back for minutes, and resending
        is harmless because each message keeps its nonce."""
        bot = self.bot_ctx
        try:
            released = await bot.run(bot.delivery.release_leases, bot.instance_id, self.holder)
        except Exception:
            # Not fatal: the leases expire on their own.
            log.exception("bot.release_leases_failed", instance=bot.instance_id)
            return
        if released:
            log.info("bot.leases_released", instance=bot.instance_id, orders=released)

    async def deliver_due(self) -> None:
        bot = self.bot_ctx
        self._delivering = True
        try:
            for order_id in await bot.run(bot.delivery.due, bot.instance_id):
                if self._stopping:
                    return  # a stop waits for the delivery in hand, not for the whole queue
                delivery = await bot.delivery.deliver(
                    bot.instance_id, order_id, {"chat": bot.chat}, holder=self.holder
                )
                if delivery is not None and delivery.status.value == "delivered":
                    await self.after_delivery(order_id, delivery.channel or "")
        finally:
            self._delivering = False

    async def after_delivery(self, order_id: str, channel: str) -> None:
        """Buyer role, the sales announcement, and a word in the cart channel."""
        bot = self.bot_ctx
        settings = await bot.run(bot.settings)
        language = settings.get("language") or "pt-BR"
        order: Order = await bot.run(bot.sales.get_order, bot.instance_id, order_id)
        guild = settings.get("guild_id")
        if guild and settings.get("buyer_role_id"):
            try:
                await bot.chat.grant_role(guild, order.buyer_id, settings["buyer_role_id"])
            except ChatError as exc:
                log.warning("bot.buyer_role_failed", order=order_id, error=str(exc))
        if settings.get("sales_channel_id"):
            try:
                await bot.chat.send_message(
                    settings["sales_channel_id"],
                    ui.sale_announcement(order, language, settings.get("feedback_channel_id")),
                )
            except ChatError as exc:
                log.warning("bot.announcement_failed", order=order_id, error=str(exc))
        cart = await bot.run(bot.sales.get_cart_by_id, bot.instance_id, order.cart_id)
        if cart.channel_id and "dm" in channel.split(","):
            with contextlib.suppress(ChatError):
                await bot.chat.send_message(
                    cart.channel_id,
                    OutgoingMessage(
                        content=t(language, "paid", order=order.id) + "\n" + t(language, "closing")
                    ),
                )

    # -- cart channels ---------------------------------------------------------------------------

    async def tidy_carts(self) -> None:
        bot = self.bot_ctx
        # Expiry also runs in `astra serve`; running it here too keeps a lone bot honest.
        await bot.run(bot.sales.expire_due, bot.instance_id)
        if time.monotonic() - self._swept_at >= ORPHAN_SWEEP_INTERVAL:
            self._swept_at = time.monotonic()
            await self.close_orphan_channels()
        carts = await bot.run(bot.sales.carts_with_open_channels, bot.instance_id)
        if not carts:
            return
        settings = await bot.run(bot.settings)
        language = settings.get("language") or "pt-BR"
        now = bot.clock.now()
        for cart in carts:
            if cart["state"] == "paid":
                closed = parse_iso(cart.get("closed_at"))
                if closed and now - closed < self.close_paid_after:
                    continue
                if await self._delivery_pending(cart):
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
            await bot.run(bot.sales.mark_cart_channel_closed, bot.instance_id, cart["id"])

    async def close_orphan_channels(self) -> None:
        """Close cart channels no cart points at: opened by an attempt that stopped before
        recording the channel (a bot stopped mid-interaction), whose cart then ended or got
        another channel. A young channel is left alone: its interaction may still be running,
        and an open cart without a channel reuses it (ShopExtension._unrecorded_channel)."""
        bot = self.bot_ctx
        guild = (await bot.run(bot.settings)).get("guild_id")
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
                cart = await bot.run(bot.sales.get_cart_by_id, bot.instance_id, cart_id)
            except NotFoundError:
                continue  # not this instance's cart (two shops' bots in one server)
            recorded = cart.channel_id
            if recorded == channel["id"] or (recorded is None and cart.state in LIVE_STATES):
                continue
            with contextlib.suppress(ChatError):
                await bot.chat.close_channel(channel["id"], reason="cart channel not in use")
                log.info("bot.orphan_channel_closed", cart=cart_id, channel=channel["id"])

    async def _delivery_pending(self, cart: dict[str, Any]) -> bool:
        """A paid cart's channel stays while its order is undelivered (it is a fallback)."""
        if not cart.get("order_id"):
            return False
        bot = self.bot_ctx
        order = await bot.run(bot.sales.get_order, bot.instance_id, cart["order_id"])
        return order.status.value in ("paid", "waiting_stock")

    # -- heartbeat -------------------------------------------------------------------------------

    def report_error(self, reason: str) -> None:
        """Leave the reason the bot stopped where the runtime monitor looks (before it exits)."""
        bot = self.bot_ctx
        data = {
            "instance_id": bot.instance_id,
            "pid": os.getpid(),
            "ready_at": None,
            "at": time.time(),
            "error": reason,
        }
        path = heartbeat_path(Path(bot.container.settings().data_dir), bot.instance_id)
        _write_atomically(path, orjson.dumps(data))

    async def beat(self) -> None:
        """What the runtime monitor reads: alive, ready since, gateway latency."""
        bot = self.bot_ctx
        latency = self.bot.latency
        data = {
            "instance_id": bot.instance_id,
            "pid": os.getpid(),
            "ready_at": self.ready_at,
            "at": time.time(),
            "latency_ms": None if latency in (None, float("inf")) else round(latency * 1000, 1),
            "guilds": len(self.bot.guilds),
            "bot_user": str(self.bot.user.id),
        }
        path = heartbeat_path(Path(bot.container.settings().data_dir), bot.instance_id)
        await bot.run(_write_atomically, path, orjson.dumps(data))


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
