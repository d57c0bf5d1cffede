"""The platform's subscription keeper: roles taken off at the end, given back on rejoin, reminders.

It runs in `astra serve` beside the courier and works from the platform's records alone, over
Discord REST with each instance's own bot token, so an end is never missed because a tenant's
bot was down: the next pass finds every subscription past its end and takes its roles off
(unless another live subscription of the buyer grants the same role). The order of work favours
what matters most: roles off first (all of them), then roles owed, then the DMs (the last word
after an end, then the reminders with their "Renovar" button).

Each step is recorded after Discord answered, and each Discord call is safe to repeat (a role
removed twice is still removed; DMs carry nonces), so a crash between the two only repeats it.
Discord's rate limits are honoured: a 429 waits the `retry_after` Discord gave, then the same
call is made again. Instances are kept side by side (CONCURRENT_INSTANCES), each one's work in
order, so one seller's rate-limited backlog never delays another seller's ends. Time is the
Clock port's: tests move it across months and call `pass_once`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from astra.adapters.chat.discord.rest import DiscordRest, RateLimited, UnknownResource
from astra.adapters.chat.discord.texts import t
from astra.domain.events import DomainEvent
from astra.domain.subscription import Subscription
from astra.entrypoints.lanes import WIDTH, Lanes
from astra.logs import get_logger
from astra.plugins.delivery import message_nonce
from astra.ports.chat import Button, ChatError, OutgoingMessage
from astra.ports.store import StoreError

log = get_logger("astra.subscriptions")

SCAN_INTERVAL = 5.0
# Ends are recorded in batches: one commit per batch, not per subscription, so a burst of ends
# (a thousand at the same minute) costs a few fsyncs.
BATCH = 100
MAX_RATE_LIMIT_TRIES = 50
# Instances kept at once (one lane each, see lanes.py), each one's work in order. One seller
# whose bot Discord rate-limits (a thousand ends on one guild: role changes are 10 per 10 s
# there) must not hold every other seller's ends behind its own.
CONCURRENT_INSTANCES = WIDTH
# On stop, how long an instance's work in hand may go on before it is cancelled (safe: each
# step is recorded after Discord answered and is safe to repeat).
STOP_GRACE_SECONDS = 5.0
# Never look again sooner than this, whatever a past-due next end says.
MIN_WAIT_SECONDS = 0.05
_WAKE_EVENTS = {"subscription.ended", "subscription.member_joined"}

T = TypeVar("T")


async def patiently(call: Callable[[], Awaitable[T]]) -> T:
    """A Discord call, repeated after each 429 once Discord's `retry_after` has passed."""
    for _ in range(MAX_RATE_LIMIT_TRIES):
        try:
            return await call()
        except RateLimited as exc:
            await asyncio.sleep(min(max(exc.retry_after, 0.05), 60.0))
    return await call()


class SubscriptionKeeper:
    def __init__(self, container: Any, *, interval: float = SCAN_INTERVAL) -> None:
        self.container = container
        self.interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._unavailable: set[str] = set()
        self._lanes = Lanes(CONCURRENT_INSTANCES)  # an instance's work in progress
        self._next_due: dict[str, Any] = {}  # what each instance said is due next
        self._known: set[str] = set()  # the instances with subscriptions, at the last look
        self._planned: Any = None  # when the loop means to look again
        self.removed = 0  # role removals made, for tests and the bench
        self.on_revoked: Callable[[Subscription, float], None] | None = None

    def on_event(self, instance_id: str, event: DomainEvent) -> None:
        if event.name in _WAKE_EVENTS and self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    def wake(self) -> None:
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.container.publisher().subscribe(self.on_event)
        try:
            while not stop.is_set():
                self._wake.clear()
                await self._launch(stop)
                clock = self.container.clock()
                wait = self.interval
                next_due = self._earliest()
                if next_due is not None:
                    # Wake at the next end (or reminder) itself rather than up to `interval`
                    # late.
                    wait = min(wait, max(MIN_WAIT_SECONDS,
                                         (next_due - clock.now()).total_seconds()))
                self._planned = clock.now() + timedelta(seconds=wait)
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=wait,
                                   return_when=asyncio.FIRST_COMPLETED)
                for task in (waiter, stopper):
                    task.cancel()
        finally:
            self.container.publisher().unsubscribe(self.on_event)
            await self._lanes.drain(STOP_GRACE_SECONDS)

    async def pass_once(self, stop: asyncio.Event | None = None) -> Any:
        """Every instance with subscriptions once, side by side, each to the end of what is due
        now; returns the earliest time something is due next."""
        launched = await self._launch(stop)
        if launched:
            await asyncio.gather(*launched, return_exceptions=True)
        return self._earliest()

    async def _launch(self, stop: asyncio.Event | None) -> list[asyncio.Task[None]]:
        """Start the work of each instance with subscriptions whose last work has ended."""
        try:
            ids = await asyncio.to_thread(self.container.store().instances_with, "subscriptions")
        except StoreError as exc:
            log.error("subscriptions.scan_failed", error=str(exc))
            return []
        self._known = set(ids)
        launched = []
        for instance_id in sorted(ids):
            if stop is not None and stop.is_set():
                break
            if not self._lanes.ready(instance_id):
                continue  # still at it (looked at again when it is done), or resting
            launched.append(self._lanes.start(
                instance_id, self._keep_in_slot(instance_id, stop), self._kept))
        return launched

    async def _keep_in_slot(self, instance_id: str, stop: asyncio.Event | None) -> None:
        async with self._lanes.slot:
            if stop is not None and stop.is_set():
                return
            due = None
            try:
                due = await self.keep_instance(instance_id)
                self._unavailable.discard(instance_id)
                self._lanes.backoff.succeeded(instance_id)
            except StoreError as exc:
                self._lanes.backoff.failed(instance_id)
                if instance_id not in self._unavailable:
                    self._unavailable.add(instance_id)
                    log.error("subscriptions.instance_unavailable", instance=instance_id,
                              error=str(exc))
            except Exception:
                self._lanes.backoff.failed(instance_id)
                log.exception("subscriptions.instance_failed", instance=instance_id)
            self._next_due[instance_id] = due

    def _kept(self, instance_id: str) -> None:
        due = self._next_due.get(instance_id)
        # Its next end may come before the loop means to look again.
        if due is not None and self._wake is not None and (
                self._planned is None or due < self._planned):
            self._wake.set()

    def _earliest(self) -> Any:
        """The earliest next due of the instances not at work now."""
        dues = [d for i, d in self._next_due.items()
                if d is not None and i in self._known and i not in self._lanes]
        return min(dues) if dues else None

    async def keep_instance(self, instance_id: str) -> Any:
        service = self.container.subscriptions()
        work = await asyncio.to_thread(service.work, instance_id)
        if not work:
            return work.next_due
        token = await asyncio.to_thread(self.container.instances().bot_token, instance_id)
        guild = work.settings.get("guild_id")
        if not token or not guild:
            # Nothing to reach Discord with: the ends are still recorded (the seller's figures,
            # the plugins' events, the buyer's command); the roles come off once there is.
            if work.ending:
                await asyncio.to_thread(service.close_expired_many, instance_id,
                                        [s.id for s in work.ending])
            return work.next_due
        guild = str(guild)
        language = work.settings.get("language") or "pt-BR"
        base = self.container.settings().discord_api_base
        async with DiscordRest(token, base) as chat:
            # 1. Roles off: ends due now (closed in batches), then ends decided elsewhere.
            for start in range(0, len(work.ending), BATCH):
                batch = [s.id for s in work.ending[start:start + BATCH]]
                closed = await asyncio.to_thread(service.close_expired_many, instance_id, batch)
                results = []
                for sub, roles in closed:
                    results.append((sub.id, await self._revoke(chat, guild, sub, roles)))
                await asyncio.to_thread(service.record_revoked_many, instance_id, results)
            if work.revoke:
                results = []
                for sub in work.revoke:
                    roles = await asyncio.to_thread(service.roles_to_revoke, instance_id, sub)
                    results.append((sub.id, await self._revoke(chat, guild, sub, roles)))
                await asyncio.to_thread(service.record_revoked_many, instance_id, results)
            # 2. Roles owed: new periods whose delivery did not grant them, rejoined members.
            for sub in work.grant:
                error = None
                try:
                    for role in sub.role_ids:
                        await patiently(
                            lambda r=role, b=sub.buyer_id: chat.grant_role(guild, b, r))
                except UnknownResource as exc:
                    error = str(exc)  # not in the guild now: a rejoin asks again
                except ChatError as exc:
                    log.warning("subscriptions.grant_failed", instance=instance_id,
                                subscription=sub.id, error=str(exc))
                    continue
                await asyncio.to_thread(service.record_granted, instance_id, sub.id, error)
            # 3. The last word after an end, then the reminders. DMs give way as soon as the
            # next end is due: a backlog of messages never holds a removal back.
            clock = self.container.clock()
            sent: list[str] = []
            try:
                for sub in work.notices:
                    if work.next_end is not None and clock.now() >= work.next_end:
                        return work.next_end
                    await self._dm(chat, sub, self._ended_message(sub, language, work.settings))
                    sent.append(sub.id)
            finally:
                if sent:
                    await asyncio.to_thread(service.record_notices, instance_id, sent)
            for sub, days in work.reminders:
                if work.next_end is not None and clock.now() >= work.next_end:
                    return work.next_end
                await self._dm(chat, sub,
                               self._reminder_message(sub, days, language, work.settings))
                await asyncio.to_thread(service.record_reminded, instance_id, sub.id, days,
                                        sub.ends_at)
        return work.next_due

    async def _revoke(self, chat: DiscordRest, guild: str, sub: Subscription,
                      roles: list[str]) -> str | None:
        """Take `roles` off the member; None when done (or nothing to take: the member left,
        the role is gone), else why it could not be done."""
        try:
            for role in roles:
                with contextlib.suppress(UnknownResource):
                    await patiently(lambda r=role: chat.revoke_role(guild, sub.buyer_id, r))
        except ChatError as exc:
            log.warning("subscriptions.revoke_failed", subscription=sub.id, error=str(exc))
            if exc.retryable:
                return "retry"
            return str(exc)
        self.removed += 1
        if self.on_revoked is not None:
            self.on_revoked(sub, time.time())
        return None

    async def _dm(self, chat: DiscordRest, sub: Subscription, message: OutgoingMessage) -> None:
        with contextlib.suppress(ChatError):  # closed DMs: the command still shows the dates
            await patiently(lambda: chat.send_dm(sub.buyer_id, message))

    @staticmethod
    def _brand(settings: dict[str, Any], embed: dict[str, Any]) -> dict[str, Any]:
        name = str(settings.get("name") or "")
        if name:
            embed["author"] = {"name": name[:256]}
        color = settings.get("brand_color")
        embed["color"] = color if isinstance(color, int) else 0x5865F2
        return embed

    def _reminder_message(self, sub: Subscription, days: int, language: str,
                          settings: dict[str, Any]) -> OutgoingMessage:
        ts = int(sub.end().timestamp())
        embed = self._brand(settings, {
            "title": t(language, "sub_reminder_title"),
            "description": t(language, "sub_reminder", product=sub.product_name,
                             variant=sub.variant_name, ts=ts),
        })
        return OutgoingMessage(
            embeds=[embed],
            components=[[Button(t(language, "btn_renew"), f"astra:sub:renew:{sub.id}",
                                style="success")]],
            nonce=message_nonce(f"{sub.id}:{sub.ends_at}", "reminder", days),
        )

    def _ended_message(self, sub: Subscription, language: str,
                       settings: dict[str, Any]) -> OutgoingMessage:
        embed = self._brand(settings, {
            "title": t(language, "sub_ended_title"),
            "description": t(language, "sub_ended", product=sub.product_name,
                             variant=sub.variant_name),
        })
        return OutgoingMessage(
            embeds=[embed],
            components=[[Button(t(language, "btn_renew"), f"astra:sub:renew:{sub.id}",
                                style="success")]],
            nonce=message_nonce(f"{sub.id}:{sub.ended_at}", "ended", 0),
        )
