"""The platform's courier: paid orders delivered from the platform itself.

Delivery used to be the bot's job, which meant a tenant runtime held its instance's vault key
and read stock keys from the store. Now the platform delivers: it claims the delivery (a lease),
decrypts the keys, runs the delivery plugins with a Discord REST client on the instance's own
bot token (DM, else the cart channel, else the staff channel; role grants), and records the
outcome. Keys reach Discord and the seller, never a tenant runtime, and no runtime can claim a
delivery it did not make.

It wakes the moment a payment is confirmed in this process (the webhook queue, reconcile, the
internal API's "Já paguei", an admin's sandbox approval) and otherwise looks every `interval`
seconds at the instances that have a delivery pending (retries, a payment confirmed by the CLI
in another process, a staff redelivery). Instances are served side by side, each one's
deliveries in order (CONCURRENT_INSTANCES). Each message carries a nonce derived from the order,
so a resend after a crash is dropped by Discord; a courier that starts frees the leases an
earlier platform process left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from astra.adapters.chat.discord import ui
from astra.adapters.chat.discord.rest import DiscordRest
from astra.adapters.chat.discord.texts import t
from astra.domain.delivery import DeliveryStatus
from astra.domain.events import DomainEvent
from astra.domain.services.delivery import DeliveryService
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.entrypoints.lanes import WIDTH, Lanes
from astra.logs import get_logger
from astra.ports.chat import Button, ChatError, OutgoingMessage
from astra.ports.store import StoreError

log = get_logger("astra.courier")

SCAN_INTERVAL = 2.0
BATCH_PAUSE = 0.05
# Instances served at once (one lane each, see lanes.py). Each instance's deliveries go one
# after another on its own token, but instances do not wait on each other: a seller whose bot
# Discord rate-limits (a drop of hundreds of sales, each DM waiting out a 429) or whose calls
# time out must not hold up every other seller's keys behind it.
CONCURRENT_INSTANCES = WIDTH
# The event after which an instance has something to deliver (a payment confirmed, or stock
# that arrived for an order waiting for it). A staff redelivery is found by the next scan.
_WAKE_EVENTS = {"order.paid"}


class Courier:
    def __init__(self, container: Any, *, interval: float = SCAN_INTERVAL) -> None:
        self.container = container
        self.interval = interval
        # Names this process in the delivery leases it takes; the start time tells a restarted
        # platform (same pid in a container) from the one before it.
        self.holder = f"platform:{os.getpid()}:{int(time.time() * 1000)}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._dirty: set[str] = set()
        self._released: set[str] = set()
        self._unavailable: set[str] = set()
        self._again: set[str] = set()  # marked while its pass ran: looked at once more after
        self.delivered = 0

    # -- waking up ---------------------------------------------------------------------------------

    def on_event(self, instance_id: str, event: DomainEvent) -> None:
        """A publisher subscriber: called from whatever thread committed the event."""
        if event.name in _WAKE_EVENTS and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._mark, instance_id)

    def _mark(self, instance_id: str) -> None:
        self._dirty.add(instance_id)
        if self._wake is not None:
            self._wake.set()

    # -- the loop ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.container.publisher().subscribe(self.on_event)
        try:
            await self._run(stop)
        finally:
            self.container.publisher().unsubscribe(self.on_event)

    async def _run(self, stop: asyncio.Event) -> None:
        lanes = Lanes(CONCURRENT_INSTANCES)  # an instance's pass in progress
        try:
            await self._serve(stop, lanes)
        except asyncio.CancelledError:
            lanes.cancel()
            raise
        finally:
            # With `stop` set, each pass finishes the delivery in hand and ends there.
            await lanes.drain()

    async def _serve(self, stop: asyncio.Event, lanes: Lanes) -> None:
        assert self._wake is not None
        next_scan = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + self.interval
                try:
                    # Only the instances with a delivery pending (one indexed query on
                    # PostgreSQL), not every instance every few seconds.
                    targets = set(await asyncio.to_thread(
                        self.container.store().instances_with, "deliveries",
                        status=DeliveryStatus.PENDING.value))
                except StoreError as exc:
                    log.error("courier.scan_failed", error=str(exc))
                    targets = set()
            else:
                targets = set()
            targets |= self._dirty
            self._dirty = set()
            self._wake.clear()
            for instance_id in sorted(targets):
                if stop.is_set():
                    break
                if instance_id in lanes:
                    # A payment that arrived during its pass may not have been in `due` yet.
                    self._again.add(instance_id)
                    continue
                if not lanes.backoff.ready(instance_id):
                    continue  # resting after a failure: a scan after its rest finds it
                lanes.start(instance_id, self._pass(instance_id, stop, lanes), self._pass_done)
            if stop.is_set():
                continue
            if self._dirty:
                # Payments arriving in a burst are served in batches, not one pass each.
                await asyncio.sleep(BATCH_PAUSE)
                continue
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper},
                timeout=max(0.0, next_scan - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in (waiter, stopper):
                task.cancel()

    async def _pass(self, instance_id: str, stop: asyncio.Event, lanes: Lanes) -> None:
        """One instance's due deliveries, in a slot of its own."""
        async with lanes.slot:
            if stop.is_set():
                return
            try:
                await self.deliver_instance(instance_id, stop)
                self._unavailable.discard(instance_id)
                lanes.backoff.succeeded(instance_id)
            except StoreError as exc:
                # A quarantined (damaged) or stuck instance: said once, not every scan, and
                # left to rest (its lane free for the others) before it is tried again.
                lanes.backoff.failed(instance_id)
                if instance_id not in self._unavailable:
                    self._unavailable.add(instance_id)
                    log.error("courier.instance_unavailable", instance=instance_id,
                              error=str(exc))
            except Exception:
                # One instance's trouble (a damaged file, Discord down) is logged here and
                # stays its own.
                lanes.backoff.failed(instance_id)
                log.exception("courier.instance_failed", instance=instance_id)

    def _pass_done(self, instance_id: str) -> None:
        if instance_id in self._again:
            self._again.discard(instance_id)
            self._mark(instance_id)

    async def deliver_instance(
        self, instance_id: str, stop: asyncio.Event | None = None
    ) -> int:
        """Every delivery of one instance that is due now; returns how many were delivered.
        A stop lets the delivery in hand finish (cut between the DM and its record, it would
        be sent again by the next courier, dropped only thanks to its nonce) and ends there."""
        delivery: DeliveryService = self.container.delivery()
        if instance_id not in self._released:
            # Leases held by another holder were left by a process that died mid-delivery (an
            # earlier platform, or a bot of the time when bots delivered).
            released = await asyncio.to_thread(
                delivery.release_leases, instance_id, self.holder
            )
            self._released.add(instance_id)
            if released:
                log.info("courier.leases_released", instance=instance_id, orders=released)
        # The token first: an instance without a bot has nothing to deliver with, and its
        # outbox is not scanned on every payment (it grows until a token is set).
        token = await asyncio.to_thread(self.container.instances().bot_token, instance_id)
        if not token:
            return 0
        due = await asyncio.to_thread(delivery.due, instance_id)
        if not due:
            return 0
        base = self.container.settings().discord_api_base
        done = 0
        async with DiscordRest(token, base) as chat:
            for order_id in due:
                if stop is not None and stop.is_set():
                    break
                services = {"chat": chat, "subscriptions": self.container.subscriptions()}
                record = await delivery.deliver(
                    instance_id, order_id, services, holder=self.holder
                )
                if record is not None and record.status.value == "delivered":
                    done += 1
                    await self.after_delivery(chat, instance_id, order_id, record.channel or "")
        self.delivered += done
        return done

    async def after_delivery(
        self, chat: DiscordRest, instance_id: str, order_id: str, channel: str
    ) -> None:
        """Buyer role, the sales announcement, and a word in the cart channel."""
        sales = self.container.sales()
        settings = await asyncio.to_thread(_settings_of, self.container, instance_id)
        language = settings.get("language") or "pt-BR"
        order = await asyncio.to_thread(sales.get_order, instance_id, order_id)
        guild = settings.get("guild_id")
        if guild and settings.get("buyer_role_id"):
            try:
                await chat.grant_role(str(guild), order.buyer_id, str(settings["buyer_role_id"]))
            except ChatError as exc:
                log.warning("courier.buyer_role_failed", order=order_id, error=str(exc))
        if settings.get("sales_channel_id"):
            try:
                await chat.send_message(
                    str(settings["sales_channel_id"]),
                    ui.sale_announcement(order, language, settings.get("feedback_channel_id")),
                )
            except ChatError as exc:
                log.warning("courier.announcement_failed", order=order_id, error=str(exc))
        cart = await asyncio.to_thread(sales.get_cart_by_id, instance_id, order.cart_id)
        if cart.channel_id and "cart_channel" in channel.split(","):
            # The keys are in this channel (closed DMs): it stays open for them, and says so.
            days = int(settings.get("delivery_channel_keep_days") or 7)
            with contextlib.suppress(ChatError):
                await chat.send_message(
                    cart.channel_id,
                    OutgoingMessage(
                        content=t(language, "kept_channel", buyer=f"<@{order.buyer_id}>",
                                  order=order.id, days=days),
                        components=[[Button(t(language, "btn_received"),
                                            f"astra:order:received:{order.id}",
                                            style="success")]],
                    ),
                )
        elif cart.channel_id and "dm" in channel.split(","):
            with contextlib.suppress(ChatError):
                await chat.send_message(
                    cart.channel_id,
                    OutgoingMessage(
                        content=t(language, "paid", order=order.id) + "\n" + t(language, "closing")
                    ),
                )


def _settings_of(container: Any, instance_id: str) -> dict[str, Any]:
    with container.store().instance(instance_id, write=False) as uow:
        return settings_of(uow.settings.get(SETTINGS_ID))
