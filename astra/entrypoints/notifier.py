"""The platform's notifier: staff notices in an instance's log channel (cart opened, PIX,
payment, delivery and its failures, stock running out, expiries, refunds, chargebacks) and the
buyer's "your cart expires in a minute" in the cart channel.

Like the courier, it talks to Discord itself over REST with the instance's bot token: a tenant
runtime is told nothing new. It listens to the domain events of this process (the publisher
calls `on_event` from whatever thread committed them) and only queues there, so a sale never
waits on Discord; a loop sends, retries with backoff, and deduplicates (NoticeQueue, and a
nonce per notice that Discord enforces). Instances are sent to side by side, each one's notices
in order (CONCURRENT_INSTANCES).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import time
from datetime import datetime, timedelta
from typing import Any

from astra.adapters.chat.discord.rest import DiscordRest
from astra.domain.events import DomainEvent
from astra.domain.notifications import notice_for
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.domain.services.staff_notifications import NoticeQueue, Pending
from astra.entrypoints.lanes import WIDTH, Lanes
from astra.logs import get_logger
from astra.ports.chat import ChatError, OutgoingMessage
from astra.ports.store import StoreError

log = get_logger("astra.notifier")

TICK = 0.5
SETTINGS_TTL = 2.0
# Out-of-stock notices for one variant: at most one per this window.
STOCK_WINDOW = timedelta(hours=1)
# Instances sent to at once (one lane each, see lanes.py); each one's notices go in order. One
# seller's bot that Discord rate-limits (or that times out) must not hold up every other
# seller's staff channel.
CONCURRENT_INSTANCES = WIDTH


def notice_nonce(instance_id: str, key: str) -> str:
    seed = f"notice|{instance_id}|{key}".encode()
    return base64.b32encode(hashlib.blake2b(seed, digest_size=15).digest()).decode().lower()


class Notifier:
    def __init__(self, container: Any, *, tick: float = TICK) -> None:
        self.container = container
        self.tick = tick
        self.queue = NoticeQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._settings: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lanes: Lanes | None = None  # an instance's sends in progress
        self._stopping = False
        self.sent = 0

    def _now(self) -> datetime:
        now: datetime = self.container.clock().now()
        return now

    # -- events (any thread) -----------------------------------------------------------------

    def on_event(self, instance_id: str, event: DomainEvent) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._schedule, instance_id, event)

    def _schedule(self, instance_id: str, event: DomainEvent) -> None:
        task = asyncio.ensure_future(self._accept(instance_id, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, instance_id: str, event: DomainEvent) -> None:
        cached = self._settings.get(instance_id)
        if cached is not None and time.monotonic() - cached[0] < SETTINGS_TTL:
            settings = cached[1]
        else:
            # A burst of sales reads the settings once, not once per event.
            try:
                settings = await asyncio.to_thread(_settings_of, self.container, instance_id)
            except StoreError:
                return
            self._settings[instance_id] = (time.monotonic(), settings)
        notice = notice_for(event, settings)
        if notice is None:
            return
        if notice.key.startswith("stock.out:"):
            bucket = int(self._now().timestamp() // STOCK_WINDOW.total_seconds())
            notice = type(notice)(**{**notice.__dict__, "key": f"{notice.key}:{bucket}"})
        if self.queue.offer(instance_id, notice, self._now()) and self._wake is not None:
            self._wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        lanes = self._lanes = Lanes(CONCURRENT_INSTANCES)
        self.container.publisher().subscribe(self.on_event)
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    self.start_due()
                except Exception:
                    log.exception("notifier.pass_failed")
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.tick,
                                   return_when=asyncio.FIRST_COMPLETED)
                for task in (waiter, stopper):
                    task.cancel()
        finally:
            # Each instance's sends end after the notice in hand: a stop does not wait on a
            # rate-limited seller's whole backlog.
            self._stopping = True
            await lanes.drain()

    def start_due(self) -> int:
        """Start sending what is due, one task per instance; returns how many were started.
        An instance whose sends are in progress keeps its newly due notices until they end
        (they are still queued: started twice, they would be sent twice)."""
        lanes = self._lanes
        assert lanes is not None, "run() starts the lanes"
        by_instance: dict[str, list[Pending]] = {}
        for pending in self.queue.due(self._now()):
            if pending.instance_id not in lanes:
                by_instance.setdefault(pending.instance_id, []).append(pending)
        for instance_id, items in by_instance.items():
            lanes.start(instance_id, self._send_in_slot(lanes, instance_id, items),
                        self._send_done)
        return len(by_instance)

    async def _send_in_slot(self, lanes: Lanes, instance_id: str,
                            items: list[Pending]) -> None:
        async with lanes.slot:
            try:
                self.sent += await self._send_instance(instance_id, items)
            except Exception:
                log.exception("notifier.instance_failed", instance=instance_id)
                # Later, with the usual backoff; not at once on the wake that follows.
                for pending in items:
                    self.queue.failed(pending, self._now(), retryable=True)

    def _send_done(self, instance_id: str) -> None:
        if self._wake is not None:
            self._wake.set()  # what came due for it meanwhile

    async def _send_instance(self, instance_id: str, items: list[Pending]) -> int:
        try:
            token = await asyncio.to_thread(self.container.instances().bot_token, instance_id)
            settings = await asyncio.to_thread(_settings_of, self.container, instance_id)
        except Exception:
            token, settings = None, {}
        staff_channel = settings.get("log_channel_id") or settings.get("staff_channel_id")
        if not token:
            for pending in items:
                self.queue.failed(pending, self._now(), retryable=False)
            return 0
        done = 0
        async with DiscordRest(token, self.container.settings().discord_api_base) as chat:
            for pending in items:
                if self._stopping:
                    break
                notice = pending.notice
                channel = notice.channel_id if notice.to == "cart" else staff_channel
                if not channel:
                    self.queue.failed(pending, self._now(), retryable=False)
                    continue
                roles = (notice.mention_role,) if notice.mention_role else ()
                try:
                    await chat.send_message(str(channel), OutgoingMessage(
                        content=notice.text[:2000],
                        nonce=notice_nonce(instance_id, notice.key),
                        mention_roles=roles,
                    ))
                except ChatError as exc:
                    again = self.queue.failed(pending, self._now(), retryable=exc.retryable)
                    log.warning("notifier.send_failed", instance=instance_id,
                                notice=notice.key.split(":")[0], error=str(exc), retry=again)
                    continue
                self.queue.sent(pending)
                done += 1
        return done


def _settings_of(container: Any, instance_id: str) -> dict[str, Any]:
    with container.store().instance(instance_id, write=False) as uow:
        return settings_of(uow.settings.get(SETTINGS_ID))
