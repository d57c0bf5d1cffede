"""`POST /api/webhooks/mercadopago`: Mercado Pago tells us a payment changed.

The request proves nothing but "look at payment N". Its signature is checked (when a webhook
secret is set) and the id is queued; the 200 goes back at once, as Mercado Pago asks (it gives up
after 22 s and retries), and workers fetch the payment from the gateway and feed the one
idempotent path that settles orders and plans. A queued id that is notified again is not queued
twice. If the process dies with ids in the queue, nothing is lost for long: the reconcile loop's
first search after start-up covers the last day of payment changes.

Answers: 200 when accepted or ignored; 400/401/413 for a malformed or forged call (nothing
changed); 503 only when the queue is full (Mercado Pago retries).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from astra.entrypoints.middleware import json_error, json_response
from astra.entrypoints.portal.webhook_stats import WebhookStats
from astra.logs import get_logger
from astra.ports.payments import GatewayError, GatewayUnavailable, InvalidWebhook

log = get_logger("astra.webhooks")

MAX_WEBHOOK_BYTES = 64 * 1024
MAX_QUEUED = 10_000
WORKERS = 4
RETRY_DELAYS = (1.0, 3.0, 10.0)  # then the reconcile loop owns it


class WebhookQueue:
    """Accepted notifications waiting for a worker. Lives in the portal app."""

    def __init__(self, payments: object, stats: WebhookStats | None = None) -> None:
        self.payments = payments
        # Shared with the admin panel's /metrics when the container provides it.
        self.stats = stats if stats is not None else WebhookStats()
        self._queue: asyncio.Queue[tuple[str, float, int]] = asyncio.Queue(MAX_QUEUED)
        self._queued: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0

    @property
    def gateway(self) -> object:
        return self.payments.gateway  # type: ignore[attr-defined]

    def submit(self, charge_id: str) -> bool:
        """Queue a charge id; False when the queue is full."""
        if charge_id in self._queued:
            return True
        try:
            self._queue.put_nowait((charge_id, time.monotonic(), 0))
        except asyncio.QueueFull:
            return False
        self._queued.add(charge_id)
        return True

    async def _work(self) -> None:
        while True:
            charge_id, accepted_at, tries = await self._queue.get()
            self._queued.discard(charge_id)
            self._busy += 1
            try:
                outcome = await asyncio.to_thread(
                    self.payments.handle_notification,
                    charge_id,  # type: ignore[attr-defined]
                )
            except GatewayUnavailable as exc:
                self._retry_later(charge_id, accepted_at, tries, str(exc))
                continue
            except GatewayError as exc:
                self.stats.failed += 1
                log.warning("webhook.gateway_error", charge_id=charge_id, error=str(exc))
                continue
            except Exception:
                self.stats.failed += 1
                log.exception("webhook.processing_failed", charge_id=charge_id)
                continue
            finally:
                self._busy -= 1
            self.stats.processed += 1
            self.stats.latencies.append(time.monotonic() - accepted_at)
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

    def _retry_later(self, charge_id: str, accepted_at: float, tries: int, error: str) -> None:
        if tries >= len(RETRY_DELAYS):
            self.stats.failed += 1
            log.warning(
                "webhook.gateway_unavailable",
                charge_id=charge_id,
                error=error,
                detail="left to the reconcile loop",
            )
            return
        log.info(
            "webhook.retry_scheduled", charge_id=charge_id, error=error, seconds=RETRY_DELAYS[tries]
        )

        def again() -> None:
            if charge_id not in self._queued:
                try:
                    self._queue.put_nowait((charge_id, accepted_at, tries + 1))
                    self._queued.add(charge_id)
                except asyncio.QueueFull:
                    pass

        asyncio.get_running_loop().call_later(RETRY_DELAYS[tries], again)

    async def start(self, app: web.Application | None = None) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"webhook-worker-{i}") for i in range(WORKERS)
        ]

    async def stop(self, app: web.Application | None = None, timeout: float = 5.0) -> None:
        """Let queued notifications finish (up to `timeout`), then stop the workers."""
        await self.idle(timeout)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or being processed (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self._busy == 0:
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
    if not queue.submit(notification.charge_id):
        return json_error(503, "busy", "Too many notifications queued; retry later.")
    queue.stats.accepted += 1
    return json_response({"ok": True, "queued": True})
