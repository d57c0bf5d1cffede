"""The loop that delivers sellers' outgoing webhooks from the store's outbox.

It wakes when an event is queued (or every `SCAN_SECONDS`, or when the next retry is due), posts
each due event to its instance's URL, signed (`X-Astra-Signature`), and records the attempt.
Everything it needs is in the store: stopped mid-retry, the next process picks the same events up
at their scheduled time. An attempt cut off by a crash is simply made again: receivers dedupe by
the event id (`X-Astra-Event-Id`, also the body's `id`).

SSRF: redirects are not followed, and every name is resolved through `GuardedResolver`, which
refuses private, loopback and link-local answers in production (IPv6 forms that carry an IPv4
address are judged by it, see domain/address_policy.py), so the address that is checked
is the address connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from astra import __version__
from astra.domain.address_policy import address_allowed
from astra.domain.errors import InvalidInput
from astra.domain.services.outgoing_webhooks import (
    SIGNATURE_HEADER,
    DueDelivery,
    OutgoingWebhookService,
    check_url,
    sign,
)
from astra.entrypoints.lanes import WIDTH, Lanes
from astra.logs import get_logger

log = get_logger("astra.webhooks.outgoing")

SCAN_SECONDS = 5.0
PRUNE_SECONDS = 3600.0  # settled events older than SETTLED_KEPT_DAYS go, at most this often
TIMEOUT_SECONDS = 10.0
# Instances sent to at once (one lane each, see lanes.py), each one's events in order: a seller
# whose endpoint hangs until the timeout holds up only its own events, never another seller's.
CONCURRENCY = WIDTH
MIN_WAIT_SECONDS = 0.05  # never look again sooner, whatever is due


class RefusedAddress(OSError):
    """A webhook host resolved to an address the policy forbids."""


class GuardedResolver(AbstractResolver):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not address_allowed(ipaddress.ip_address(result["host"]), self.allow_private):
                raise RefusedAddress(f"{host} resolves to a forbidden address")
        return results

    async def close(self) -> None:
        await self._inner.close()


class WebhookSender:
    def __init__(self, service: OutgoingWebhookService, *, allow_private: bool,
                 scan_seconds: float = SCAN_SECONDS,
                 timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self.service = service
        self.allow_private = allow_private
        self.scan_seconds = scan_seconds
        self.timeout_seconds = timeout_seconds
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # When each instance is to be read again, as its lane last saw it; an instance not in
        # it is read on the next pass.
        self._next: dict[str, datetime] = {}

    def _poke(self) -> None:
        loop = self._loop
        if loop is not None and self._wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._look_again)

    def _look_again(self) -> None:
        # An event was queued (for an instance it does not say): every instance is read again.
        self._next.clear()
        if self._wake is not None:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.service.on_enqueued = self._poke
        try:
            found = await asyncio.to_thread(self.service.catch_up)
            if found:
                log.warning("webhooks.caught_up", events=found)
        except Exception:
            log.exception("webhooks.catch_up_failed")
        pruned_at: float | None = None
        pruning: asyncio.Task[None] | None = None
        connector = TCPConnector(resolver=GuardedResolver(self.allow_private), limit=CONCURRENCY)
        async with ClientSession(connector=connector,
                                 timeout=ClientTimeout(total=self.timeout_seconds)) as session:
            lanes = Lanes(CONCURRENCY)
            try:
                while not stop.is_set():
                    if pruned_at is None or time.monotonic() - pruned_at >= PRUNE_SECONDS:
                        pruned_at = time.monotonic()
                        # Beside the sends, not before them: an instance whose store is busy
                        # would hold every send up for its lock's deadline.
                        pruning = asyncio.create_task(self._prune())
                    self._wake.clear()
                    try:
                        # Only which instances have events waiting (no lock waited for):
                        # each one's events are read in its own lane, so one whose store is
                        # busy costs its own lane the wait, never the others' sends.
                        pending = await asyncio.to_thread(self.service.pending_instances)
                        self._start(session, lanes, pending, stop)
                        wait = self._until_next(lanes)
                    except Exception:
                        log.exception("webhooks.pass_failed")
                        wait = self.scan_seconds
                    waiters = [asyncio.ensure_future(stop.wait()),
                               asyncio.ensure_future(self._wake.wait())]
                    await asyncio.wait(waiters, timeout=max(MIN_WAIT_SECONDS, wait),
                                       return_when=asyncio.FIRST_COMPLETED)
                    for waiter in waiters:
                        waiter.cancel()
            finally:
                # Each instance's sends end after the attempt in hand (they see `stop`).
                await lanes.drain()
                if pruning is not None:
                    await asyncio.gather(pruning, return_exceptions=True)
        self.service.on_enqueued = None

    def _start(self, session: ClientSession, lanes: Lanes, pending: list[str],
               stop: asyncio.Event) -> None:
        """One lane per instance with events waiting, each sending its own in order (a
        seller's system sees order.paid before order.delivered); an instance still sending
        keeps its newly due events until it is done, then the loop looks again. One that
        failed rests (lanes.backoff) first."""
        self._next = {i: when for i, when in self._next.items() if i in pending}
        now = self.service.clock.now()
        for instance_id in pending:
            if lanes.ready(instance_id) and self._next.get(instance_id, now) <= now:
                lanes.start(instance_id, self._send_all(session, lanes, instance_id, stop),
                            self._done)

    async def _send_all(self, session: ClientSession, lanes: Lanes, instance_id: str,
                        stop: asyncio.Event) -> None:
        try:
            async with lanes.slot:
                items = await asyncio.to_thread(self.service.due_in, instance_id)
                for item in items:
                    if stop.is_set():
                        return
                    await self._send(session, item)
                # Read again at its next attempt, and at the next scan at the latest: events
                # another process queued (a replica, the CLI) poke no one here.
                when = await asyncio.to_thread(self.service.next_due_in, instance_id)
                scan = self.service.clock.now() + timedelta(seconds=self.scan_seconds)
                self._next[instance_id] = scan if when is None else min(when, scan)
            lanes.backoff.succeeded(instance_id)
        except Exception:
            # Its store failed under it (busy, damaged): this instance rests (its events stay
            # due) rather than its store or endpoint being tried again at once, and again.
            if lanes.backoff.failed(instance_id) == 1:
                log.exception("webhooks.instance_failed", instance=instance_id)
            self._next.pop(instance_id, None)

    def _done(self, instance_id: str) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _prune(self) -> None:
        try:
            pruned = await asyncio.to_thread(self.service.prune_settled)
            if pruned:
                log.info("webhooks.pruned", events=pruned)
        except Exception:
            log.exception("webhooks.prune_failed")

    def _until_next(self, lanes: Lanes) -> float:
        """Until the earliest known next attempt of an instance not at work, or a resting
        one's retry; at most `scan_seconds` (events queued by another process are found by
        the next look)."""
        wait = self.scan_seconds
        now = self.service.clock.now()
        for instance_id, when in self._next.items():
            if instance_id not in lanes:
                wait = min(wait, max(0.05, (when - now).total_seconds()))
        retry = lanes.backoff.next_retry()
        if retry is not None:
            wait = min(wait, max(0.05, retry))
        return wait

    async def _send(self, session: ClientSession, due: DueDelivery) -> None:
        body = orjson.dumps(due.body)
        request_id = str(uuid.uuid4())
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"Astra-Webhooks/{__version__}",
            "X-Astra-Event": str(due.body["type"]),
            "X-Astra-Event-Id": due.event_id,
            "X-Request-Id": request_id,
            "X-Astra-Delivery-Attempt": str(due.attempt),
            SIGNATURE_HEADER: sign(due.secret, due.event_id, request_id, ts, body),
        }
        status: int | None = None
        error: str | None = None
        started = time.monotonic()
        try:
            # A literal address skips the resolver: check the URL again under today's policy.
            check_url(due.url, self.allow_private)
            async with session.post(due.url, data=body, headers=headers,
                                    allow_redirects=False) as response:
                status = response.status
                await response.content.read(4096)  # drain a little; never stored
        except (RefusedAddress, InvalidInput):
            error = "address not allowed"
        except (ClientError, OSError, TimeoutError) as exc:
            error = type(exc).__name__
        duration = int((time.monotonic() - started) * 1000)
        result: Any = await asyncio.to_thread(
            self.service.record_attempt, due.instance_id, due.event_id,
            status_code=status, error=error, duration_ms=duration,
        )
        log.info("webhooks.attempt", instance=due.instance_id, event_id=due.event_id,
                 attempt=due.attempt, status_code=status, error=error,
                 outcome=(result or {}).get("status"))


async def webhook_sender_loop(container: Any, stop: asyncio.Event) -> None:
    settings = container.settings()
    sender = WebhookSender(container.outgoing_webhooks(),
                           allow_private=not settings.is_production)
    await sender.run(stop)
