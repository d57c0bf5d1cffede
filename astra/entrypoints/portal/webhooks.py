"""`POST /api/webhooks/mercadopago`: Mercado Pago tells us a payment changed.

The request proves nothing but "look at payment N": its signature is checked (when a webhook
secret is set), then the payment is fetched from the gateway and fed to the one idempotent path
that settles orders and plans. Answers: 200 when handled or ignored (Mercado Pago stops
retrying), 400/401 for a malformed or forged call (nothing changed), 503 when the gateway could
not be asked (Mercado Pago retries, and so does the reconcile loop).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from astra.entrypoints.middleware import json_error, json_response
from astra.logs import get_logger
from astra.ports.payments import GatewayError, GatewayUnavailable, InvalidWebhook

log = get_logger("astra.webhooks")

MAX_WEBHOOK_BYTES = 64 * 1024
PAYMENTS_KEY = web.AppKey("payments", object)
WEBHOOK_STATS_KEY = web.AppKey("webhook_stats", dict)


async def mercadopago_webhook(request: web.Request) -> web.Response:
    started = time.perf_counter()
    payments = request.app[PAYMENTS_KEY]
    stats = request.app[WEBHOOK_STATS_KEY]
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        return json_error(413, "payload_too_large", "Webhook body too large.")
    body = await request.content.read(MAX_WEBHOOK_BYTES + 1)
    if len(body) > MAX_WEBHOOK_BYTES:
        return json_error(413, "payload_too_large", "Webhook body too large.")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        notification = payments.gateway.parse_webhook(
            query=dict(request.query), headers=headers, body=body
        )
    except InvalidWebhook as exc:
        stats["rejected"] = stats.get("rejected", 0) + 1
        log.warning(
            "webhook.rejected",
            reason=exc.reason,
            status=exc.status,
            request_id=headers.get("x-request-id"),
        )
        code = "invalid_signature" if exc.status == 401 else "bad_request"
        return json_error(exc.status, code, exc.reason)
    if notification is None:
        return json_response({"ok": True, "ignored": True})
    try:
        outcome = await asyncio.to_thread(payments.handle_notification, notification.charge_id)
    except GatewayUnavailable as exc:
        log.warning("webhook.gateway_unavailable", charge_id=notification.charge_id, error=str(exc))
        return json_error(503, "gateway_unavailable", "Payment gateway unavailable; retry.")
    except GatewayError as exc:
        log.warning("webhook.gateway_error", charge_id=notification.charge_id, error=str(exc))
        return json_response({"ok": True, "ignored": True})
    elapsed_ms = (time.perf_counter() - started) * 1000
    stats["handled"] = stats.get("handled", 0) + 1
    stats.setdefault("latency_ms", []).append(elapsed_ms)
    del stats["latency_ms"][:-1000]
    if outcome.action in ("unknown_charge", "unknown_order", "unknown_transaction"):
        log.info("webhook.unknown_payment", charge_id=notification.charge_id, action=outcome.action)
    else:
        log.info(
            "webhook.handled",
            charge_id=notification.charge_id,
            kind=outcome.kind,
            action=outcome.action,
            ref=outcome.ref,
            ms=round(elapsed_ms, 1),
        )
    return json_response({"ok": True, "kind": outcome.kind, "action": outcome.action})
