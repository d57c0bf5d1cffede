"""`POST /api/webhooks/mercadopago`: Mercado Pago tells us a payment changed.

The request proves nothing but "look at payment N". Its signature is checked (when a webhook
secret is set) and the id is put in the webhook inbox (the coordination port); the 200 goes
back at once, as Mercado Pago asks (it gives up after 22 s and retries), and workers fetch the
payment from the gateway and feed the one idempotent path that settles orders and plans. An id
already waiting is not kept twice.

With one process the inbox is in memory: if the process dies with ids in it, nothing is lost
for long, as the reconcile loop's first search after start-up covers the last day of payment
changes. With replicas on PostgreSQL the inbox is a table and the id is committed before the
200: any replica's workers process it, also when the replica that answered dies right after.

Answers: 200 when accepted or ignored; 400/401/413 for a malformed or forged call (nothing
changed); 503 when the inbox is full or cannot be written (Mercado Pago retries).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from astra.entrypoints.middleware import json_error, json_response
from astra.entrypoints.portal.webhook_stats import WebhookStats
from astra.logs import get_logger
from astra.ports.coordination import WebhookClaim, WebhookInbox
from astra.ports.payments import GatewayError, GatewayUnavailable, InvalidWebhook
from astra.ports.store import StoreBusy, StoreUnavailable

log = get_logger("astra.webhooks")

MAX_WEBHOOK_BYTES = 64 * 1024
WORKERS = 4
RETRY_DELAYS = (1.0, 3.0, 10.0)  # then the reconcile loop owns it
# With a shared inbox, how long a worker whose inbox cannot be read waits before trying again:
# doubling from the first pause up to the cap while it stays unreadable (the database down).
INBOX_ERROR_PAUSE = 1.0
INBOX_ERROR_PAUSE_CAP = 5.0


class WebhookQueue:
    """The portal's side of the webhook inbox: accepts into it, and runs this process's
    workers that drain it."""

    def __init__(self, payments: object, stats: WebhookStats | None = None,
                 inbox: WebhookInbox | None = None) -> None:
        self.payments = payments
        # Shared with the admin panel's /metrics when the container provides it.
        self.stats = stats if stats is not None else WebhookStats()
        if inbox is None:
            from astra.adapters.coordination.local import LocalInbox

            inbox = LocalInbox()
        self.inbox = inbox
        self._workers: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._busy = 0
        self._stopping = False

    @property
    def gateway(self) -> object:
        return self.payments.gateway  # type: ignore[attr-defined]

    async def submit(self, charge_id: str) -> bool:
        """Keep a charge id (durably, with a shared inbox); False when it cannot be kept
        (StoreUnavailable while a shared inbox's database is down)."""
        try:
            kept = await asyncio.to_thread(self.inbox.put, charge_id, time.time())
        except StoreUnavailable:
            raise  # the database is down: a 503 with Retry-After (Mercado Pago retries)
        except Exception:
            log.exception("webhook.inbox_unavailable", charge_id=charge_id)
            return False
        if kept:
            self._wake.set()
        return kept

    async def _next(self) -> WebhookClaim:
        pause = INBOX_ERROR_PAUSE
        while True:
            if self._stopping:
                # Cancellation alone is not enough: Python 3.11's wait_for can swallow a cancel
                # that lands as its wait ends, and the worker would poll on forever.
                raise asyncio.CancelledError
            # Cleared before looking, never after: a submit between an empty look and the
            # wait below leaves the event set, so its notification is not left waiting.
            self._wake.clear()
            try:
                claim = await asyncio.to_thread(self.inbox.claim)
            except StoreUnavailable as exc:
                log.warning("webhook.inbox_unavailable", error=str(exc)[:300],
                            retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(INBOX_ERROR_PAUSE_CAP, pause * 2)
                continue
            except Exception:
                log.exception("webhook.inbox_unavailable")
                await asyncio.sleep(pause)
                pause = min(INBOX_ERROR_PAUSE_CAP, pause * 2)
                continue
            pause = INBOX_ERROR_PAUSE
            if claim is not None:
                return claim
            # Woken by a submit here; otherwise look again when something is due (a retry) or,
            # with a shared inbox, when another replica may have accepted something.
            timeout = self.inbox.poll_interval or None
            due_in = getattr(self.inbox, "next_due_in", None)
            if due_in is not None and (due := due_in()) is not None:
                timeout = min(timeout, due) if timeout else due
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _work(self) -> None:
        while True:
            claim = await self._next()
            self._busy += 1
            try:
                await self._process(claim)
            finally:
                self._busy -= 1
            if self._busy == 0:
                self._wake.set()  # let `idle` look again

    async def _process(self, claim: WebhookClaim) -> None:
        charge_id = claim.charge_id
        try:
            outcome = await asyncio.to_thread(
                self.payments.handle_notification,  # type: ignore[attr-defined]
                charge_id,
            )
        except GatewayUnavailable as exc:
            await self._retry_later(claim, str(exc))
            return
        except GatewayError as exc:
            self.stats.failed += 1
            log.warning("webhook.gateway_error", charge_id=charge_id, error=str(exc))
            await self._finish(claim)
            return
        except (StoreUnavailable, StoreBusy) as exc:
            # The store failed (the database went away mid-way): nothing was settled, so the
            # notification is kept for later rather than dropped (with a shared inbox the
            # claim dies with its connection and the row waits anyway).
            await self._retry_later(claim, str(exc)[:300])
            return
        except Exception:
            # Left in a shared inbox only by a crash; here it is logged and dropped, and the
            # reconcile loop's search finds the payment again.
            self.stats.failed += 1
            log.exception("webhook.processing_failed", charge_id=charge_id)
            await self._finish(claim)
            return
        await self._finish(claim)
        self.stats.processed += 1
        self.stats.latencies.append(max(0.0, time.time() - claim.accepted_at))
        del self.stats.latencies[:-1000]
        if outcome.action in ("unknown_charge", "unknown_order", "unknown_transaction"):
            log.info("webhook.unknown_payment", charge_id=charge_id, action=outcome.action)
        else:
            log.info(
                "webhook.handled",
                charge_id=charge_id,
                kind=outcome.kind,
                action=outcome.action,
                ref=outcome.ref,
            )

    async def _finish(self, claim: WebhookClaim) -> None:
        try:
            await asyncio.to_thread(self.inbox.finish, claim)
        except Exception:
            # Still in the inbox: processed again later, which settlement makes harmless.
            log.exception("webhook.inbox_unavailable", charge_id=claim.charge_id)

    async def _retry_later(self, claim: WebhookClaim, error: str) -> None:
        charge_id = claim.charge_id
        if claim.tries >= len(RETRY_DELAYS):
            self.stats.failed += 1
            log.warning(
                "webhook.gateway_unavailable",
                charge_id=charge_id,
                error=error,
                detail="left to the reconcile loop",
            )
            await self._finish(claim)
            return
        delay = RETRY_DELAYS[claim.tries]
        log.info("webhook.retry_scheduled", charge_id=charge_id, error=error, seconds=delay)
        try:
            await asyncio.to_thread(self.inbox.retry, claim, delay)
        except Exception:
            log.exception("webhook.inbox_unavailable", charge_id=charge_id)
        self._wake.set()  # a worker recomputes when to look next

    async def start(self, app: web.Application | None = None) -> None:
        self._stopping = False
        self._wake = asyncio.Event()
        self._workers = [
            asyncio.create_task(self._work(), name=f"webhook-worker-{i}") for i in range(WORKERS)
        ]

    async def stop(self, app: web.Application | None = None, timeout: float = 5.0) -> None:
        """Let queued notifications finish (up to `timeout`), then stop the workers. With a
        shared inbox, what is left waits there for the other replicas (or the next start)."""
        await self.idle(timeout, here_only=bool(self.inbox.poll_interval))
        self._stopping = True
        self._wake.set()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def idle(self, timeout: float = 10.0, *, here_only: bool = False) -> bool:
        """Wait until nothing is waiting or being processed (tests, shutdown); `here_only`:
        until this process's workers are done with what they hold."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._busy == 0 and (
                here_only or await asyncio.to_thread(self.inbox.waiting) == 0
            ):
                return True
            await asyncio.sleep(0.01)
        return False


WEBHOOK_QUEUE_KEY = web.AppKey("webhook_queue", WebhookQueue)


async def mercadopago_webhook(request: web.Request) -> web.Response:
    """Mercado Pago's payment notifications (signed with x-signature; see the module)."""
    queue = request.app[WEBHOOK_QUEUE_KEY]
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        return json_error(413, "payload_too_large", "Webhook body too large.")
    body = await request.content.read(MAX_WEBHOOK_BYTES + 1)
    if len(body) > MAX_WEBHOOK_BYTES:
        return json_error(413, "payload_too_large", "Webhook body too large.")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        notification = queue.gateway.parse_webhook(  # type: ignore[attr-defined]
            query=dict(request.query), headers=headers, body=body
        )
    except InvalidWebhook as exc:
        queue.stats.rejected += 1
        log.warning(
            "webhook.rejected",
            reason=exc.reason,
            status=exc.status,
            request_id=headers.get("x-request-id"),
        )
        code = "invalid_signature" if exc.status == 401 else "bad_request"
        return json_error(exc.status, code, exc.reason)
    if notification is None:
        queue.stats.ignored += 1
        return json_response({"ok": True, "ignored": True})
    if not await queue.submit(notification.charge_id):
        return json_error(503, "busy", "Too many notifications queued; retry later.")
    queue.stats.accepted += 1
    return json_response({"ok": True, "queued": True})
