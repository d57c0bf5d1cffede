"""Seller API: one instance's outgoing webhook — its URL and events, the signing secret (shown
when made or rotated, never again), and the delivery log (status, attempts, response code, next
retry). How receivers verify the signature: docs/webhooks.md."""

from __future__ import annotations

from aiohttp import web

from astra.domain.errors import NotFoundError
from astra.domain.services.outgoing_webhooks import EVENT_TYPES
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal import openapi
from astra.entrypoints.portal.reauth import sensitive_route
from astra.entrypoints.portal.seller_api import (
    actor,
    blocking,
    container_of,
    owned_instance,
    read_body,
    respond,
    seller_route,
)

EVENTS = {"type": "string", "enum": list(EVENT_TYPES)}
ENDPOINT = schemas.obj(
    {
        "url": {"type": "string"},
        "events": schemas.array(EVENTS),
        "stock_low_threshold": {"type": "integer"},
        "active": schemas.BOOLEAN,
        "created_at": {"type": "string"},
        "secret_rotated_at": {"type": "string"},
    },
    "url", "events",
    extra=True,
)
ENDPOINT_STATE = schemas.obj(
    {"webhook": {"oneOf": [ENDPOINT, {"type": "null"}]}, "secret": {"type": "string"}},
    "webhook",
    extra=True,
)
ENDPOINT_SET = schemas.obj(
    {
        "url": schemas.string(500, min_length=1),
        "events": schemas.array(EVENTS, max_items=len(EVENT_TYPES)),
        "stock_low_threshold": schemas.integer(0, 100_000),
        "active": schemas.BOOLEAN,
    },
    "url",
)
ATTEMPT = schemas.obj(
    {
        "at": {"type": "string"},
        "status_code": {"type": ["integer", "null"]},
        "error": {"type": ["string", "null"]},
        "duration_ms": {"type": "integer"},
    },
    extra=True,
)
DELIVERY = schemas.obj(
    {
        "id": {"type": "string"},
        "type": EVENTS,
        "status": {"type": "string", "enum": ["pending", "delivered", "failed", "cancelled"]},
        "attempts": {"type": "integer"},
        "created_at": {"type": "string"},
        "next_attempt_at": {"type": ["string", "null"]},
        "last_status_code": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "delivered_at": {"type": ["string", "null"]},
        "history": schemas.array(ATTEMPT),
    },
    "id", "type", "status", "attempts",
    extra=True,
)
DELIVERY_LIST = schemas.obj({"deliveries": schemas.array(DELIVERY)}, "deliveries", extra=True)
SECRET = schemas.obj({"secret": {"type": "string"}, "message": {"type": "string"}}, "secret",
                     extra=True)

SECRET_ONCE = "Guarde este segredo agora: ele não será mostrado de novo."


@seller_route(response=ENDPOINT_STATE)
async def get_webhook(request: web.Request) -> web.Response:
    """The instance's outgoing webhook (null when none is set)."""
    doc = await owned_instance(request)
    endpoint = await blocking(container_of(request).outgoing_webhooks().endpoint, doc["id"])
    return respond({"webhook": endpoint})


@sensitive_route(body=ENDPOINT_SET, response=ENDPOINT_STATE)
async def set_webhook(request: web.Request) -> web.Response:
    """Set the outgoing webhook: an https URL (a public host), the events wanted (order.paid,
    order.delivered, order.refunded, stock.low; all by default) and the stock-low threshold.

    The first time, the answer carries `secret` (whsec_...): the key of the X-Astra-Signature
    HMAC, shown only then (rotate it to get a new one). The URL decides where the orders go,
    so this needs the session and your current password (`password`); API tokens are refused.
    """
    doc = await owned_instance(request)
    body = await read_body(request)
    endpoint, secret = await blocking(
        container_of(request).outgoing_webhooks().configure,
        doc["id"],
        body["url"],
        events=body.get("events"),
        stock_low_threshold=body.get("stock_low_threshold"),
        active=body.get("active", True),
        actor=actor(request),
    )
    answer: dict[str, object] = {"webhook": endpoint}
    if secret:
        answer.update(secret=secret, key=secret, message=SECRET_ONCE)
    return respond(answer)


@sensitive_route()
async def delete_webhook(request: web.Request) -> web.Response:
    """Remove the outgoing webhook; events still waiting are cancelled.

    Needs the session and your current password (`password`); API tokens are refused.
    """
    doc = await owned_instance(request)
    await blocking(container_of(request).outgoing_webhooks().remove, doc["id"],
                   actor=actor(request))
    return respond({"webhook": None, "deleted": True})


@sensitive_route(response=SECRET, errors=(404,))
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    """A new signing secret, shown only in this answer (the old one stops signing at once).

    Needs the session and your current password (`password`); API tokens are refused.
    """
    doc = await owned_instance(request)
    secret = await blocking(container_of(request).outgoing_webhooks().rotate_secret, doc["id"],
                            actor=actor(request))
    return respond({"secret": secret, "key": secret, "message": SECRET_ONCE})


@seller_route(response=DELIVERY_LIST)
async def list_deliveries(request: web.Request) -> web.Response:
    """The delivery log: the latest events, their status, attempts, response codes, next retry."""
    doc = await owned_instance(request)
    rows = await blocking(container_of(request).outgoing_webhooks().deliveries, doc["id"])
    return respond({"deliveries": rows})


@seller_route(response=DELIVERY)
async def redeliver(request: web.Request) -> web.Response:
    """Send one event again (same id: receivers that saw it already ignore it)."""
    doc = await owned_instance(request)
    event_id = request.match_info["event_id"]
    if not event_id.startswith("evt_") or len(event_id) > 64:
        raise NotFoundError("evento", event_id[:64])
    row = await blocking(container_of(request).outgoing_webhooks().redeliver, doc["id"],
                         event_id, actor=actor(request))
    return respond(row)


_SIGNATURE_DOC = (
    "`ts=<unix seconds>,v1=<hex>`: HMAC-SHA256, keyed with the instance's webhook secret "
    "(whsec_...), of the manifest `id:<X-Astra-Event-Id>;request-id:<X-Request-Id>;ts:<ts>;"
    "sha256:<hex SHA-256 of the raw body>;`. Compare in constant time; refuse a ts more than "
    "5 minutes away; dedupe by the event id (a retry sends the same id). See docs/webhooks.md."
)
_EVENT_BODY = schemas.obj(
    {
        "id": {"type": "string", "description": "The event id (same on every retry)"},
        "type": EVENTS,
        "created_at": {"type": "string"},
        "instance_id": {"type": "string"},
        "data": {"type": "object", "description": "order.*: {order: {...}}; stock.low: "
                 "{product_id, variant_id, available, threshold, ...}"},
    },
    "id", "type", "created_at", "instance_id", "data",
    extra=True,
)


def _webhook_operation(event: str) -> dict[str, object]:
    return {
        "post": {
            "operationId": f"webhook_{event.replace('.', '_')}",
            "summary": f"{event}: sent by Astra to the instance's webhook URL",
            "description": "Retried with exponential backoff until a 2xx answer (up to "
            "ASTRA_WEBHOOK_MAX_ATTEMPTS attempts); redirects are not followed.",
            "parameters": [
                {"name": "X-Astra-Signature", "in": "header", "required": True,
                 "schema": {"type": "string"}, "description": _SIGNATURE_DOC},
                {"name": "X-Astra-Event-Id", "in": "header", "required": True,
                 "schema": {"type": "string"}},
                {"name": "X-Astra-Event", "in": "header", "required": True,
                 "schema": {"type": "string"}},
                {"name": "X-Request-Id", "in": "header", "required": True,
                 "schema": {"type": "string"}},
            ],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _EVENT_BODY}}},
            "responses": {"200": {"description": "Any 2xx: delivered"}},
        }
    }


def add_routes(app: web.Application, instance: str) -> None:
    app[openapi.WEBHOOKS_KEY] = {event: _webhook_operation(event) for event in EVENT_TYPES}
    r = app.router
    r.add_get(f"{instance}/webhook", get_webhook)
    r.add_put(f"{instance}/webhook", set_webhook)
    r.add_delete(f"{instance}/webhook", delete_webhook)
    r.add_post(f"{instance}/webhook/rotate-secret", rotate_webhook_secret)
    r.add_get(f"{instance}/webhook/deliveries", list_deliveries)
    r.add_post(f"{instance}/webhook/deliveries/{{event_id}}/redeliver", redeliver)
