"""The platform's notifier: staff notices in an instance's log channel (cart opened, PIX,
payment, delivery and its failures, stock running out, expiries, refunds, chargebacks) and the
buyer's "your cart expires in a minute" in the cart channel.

Like the courier, it talks to Discord itself over REST with the instance's bot token: a tenant
runtime is told nothing new. The notices wait in each instance's store (StaffNotices: written
by whichever process committed the event), so a crash loses none, and one replica sends them
(a led loop): each instance's notices in the order they were written, instances side by side
(CONCURRENT_INSTANCES), each notice marked sent once Discord took it, retried with backoff when
it did not. A resend after a crash between sending and marking is dropped by Discord (a nonce
per notice).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from datetime import datetime
from typing import Any

from astra.adapters.chat.discord.rest import DiscordRest
from astra.domain.notifications import Notice
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.domain.services.staff_notifications import StaffNotices, notice_of
from astra.entrypoints.lanes import WIDTH, Lanes
from astra.logs import get_logger
from astra.ports.chat import ChatError, OutgoingMessage

log = get_logger("astra.notifier")

TICK = 0.5
# How often settled notices older than their keeping time are deleted.
PRUNE_EVERY_S = 3600.0
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
        self.notices: StaffNotices = container.staff_notices()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._lanes: Lanes | None = None  # an instance's sends in progress
        self._stopping = False
        self._pruned_at = 0.0
        self.sent = 0

    def _now(self) -> datetime:
        now: datetime = self.container.clock().now()
        return now

    def wake(self) -> None:
        """A notice was written (from any thread): look now instead of at the next tick."""
        if self._loop is None or self._wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        lanes = self._lanes = Lanes(CONCURRENT_INSTANCES)
        self.notices.on_enqueued = self.wake
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self.start_due()
                    await self._prune_now_and_then()
                except Exception:
                    log.exception("notifier.pass_failed")
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.tick,
                                   return_when=asyncio.FIRST_COMPLETED)
                for task in (waiter, stopper):
                    task.cancel()
        finally:
            if self.notices.on_enqueued == self.wake:
                self.notices.on_enqueued = None
            # Each instance's sends end after the notice in hand: a stop does not wait on a
            # rate-limited seller's whole backlog (the rest stays in the store for the next).
            self._stopping = True
            await lanes.drain()

    async def start_due(self) -> int:
        """Start sending for every instance with notices waiting and no send in progress;
        returns how many were started. An instance at work keeps what comes due for it until
        its lane ends (then the loop looks again)."""
        lanes = self._lanes
        assert lanes is not None, "run() starts the lanes"
        waiting = await asyncio.to_thread(self.notices.waiting)
        started = 0
        for instance_id in waiting:
            if not lanes.ready(instance_id):
                continue  # at work, or resting after a failure
            lanes.start(instance_id, self._send_in_slot(lanes, instance_id), self._send_done)
            started += 1
        return started

    async def _prune_now_and_then(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = loop.time()
        await asyncio.to_thread(self.notices.prune)

    async def _send_in_slot(self, lanes: Lanes, instance_id: str) -> None:
        async with lanes.slot:
            try:
                self.sent += await self._send_instance(instance_id)
                lanes.backoff.succeeded(instance_id)
            except Exception:
                # The store or Discord failed for this instance alone: its notices stay
                # pending, and a pass after its rest tries again.
                lanes.backoff.failed(instance_id)
                log.exception("notifier.instance_failed", instance=instance_id)

    def _send_done(self, instance_id: str) -> None:
        if self._wake is not None:
            self._wake.set()  # what came due for it meanwhile

    async def _send_instance(self, instance_id: str) -> int:
        items = await asyncio.to_thread(self.notices.due, instance_id)
        if not items:
            return 0
        try:
            token = await asyncio.to_thread(self.container.instances().bot_token, instance_id)
            settings = await asyncio.to_thread(_settings_of, self.container, instance_id)
        except Exception:
            token, settings = None, {}
        staff_channel = settings.get("log_channel_id") or settings.get("staff_channel_id")
        if not token:
            for doc in items:
                await asyncio.to_thread(self.notices.failed, instance_id, doc["id"],
                                        retryable=False)
            return 0
        done = 0
        async with DiscordRest(token, self.container.settings().discord_api_base) as chat:
            for doc in items:
                if self._stopping:
                    break
                notice = notice_of(doc)
                channel = notice.channel_id if notice.to == "cart" else staff_channel
                if not channel:
                    await asyncio.to_thread(self.notices.failed, instance_id, doc["id"],
                                            retryable=False)
                    continue
                try:
                    await chat.send_message(str(channel), _message(instance_id, notice))
                except ChatError as exc:
                    again = await asyncio.to_thread(self.notices.failed, instance_id,
                                                    doc["id"], retryable=exc.retryable)
                    log.warning("notifier.send_failed", instance=instance_id,
                                notice=notice.key.split(":")[0], error=str(exc), retry=again)
                    if again:
                        break  # in order: the later ones wait for this one's next attempt
                    continue
                await asyncio.to_thread(self.notices.sent, instance_id, doc["id"])
                done += 1
        return done


def _message(instance_id: str, notice: Notice) -> OutgoingMessage:
    roles = (notice.mention_role,) if notice.mention_role else ()
    return OutgoingMessage(content=notice.text[:2000],
                           nonce=notice_nonce(instance_id, notice.key), mention_roles=roles)


def _settings_of(container: Any, instance_id: str) -> dict[str, Any]:
    with container.store().instance(instance_id, write=False) as uow:
        return settings_of(uow.settings.get(SETTINGS_ID))
