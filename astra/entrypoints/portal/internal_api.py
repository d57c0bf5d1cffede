"""`/internal/instances/{id}/...`: what an instance runtime may ask of its platform.

Authenticated by the instance key (`Authorization: Bearer <key>`); a key opens only its own
instance's routes. Every request is checked against that instance's data before the real
gateway is called, so a compromised runtime can charge only its own pending orders, at their
own price, and read only its own charges.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from astra.adapters.payments.platform import request_from_doc
from astra.domain.order import Order, OrderStatus
from astra.entrypoints.middleware import json_error, json_response
from astra.logs import get_logger
from astra.ports.payments import GatewayError, GatewayUnavailable
from astra.ports.store import INSTANCE_ID_PATTERN

log = get_logger("astra.internal_api")

CONTAINER_KEY = web.AppKey("container", object)
MAX_BODY = 16 * 1024


async def _authorised(request: web.Request) -> str | None:
    instance_id = request.match_info["instance_id"]
    header = request.headers.get("Authorization", "")
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id) or not header.startswith("Bearer "):
        return None
    container: Any = request.app[CONTAINER_KEY]
    instances = container.instances()
    presented = header[7:].strip()

    def check() -> bool:
        # The runtime's derived credential, or the seller's instance key itself.
        return instances.verify_runtime_credential(
            instance_id, presented
        ) or instances.verify_instance_key(instance_id, presented)

    return instance_id if await asyncio.to_thread(check) else None


def _refused() -> web.Response:
    return json_error(401, "unauthorized", "Invalid instance key for this instance.")


async def create_charge(request: web.Request) -> web.Response:
    instance_id = await _authorised(request)
    if instance_id is None:
        return _refused()
    container: Any = request.app[CONTAINER_KEY]
    try:
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return json_error(413, "payload_too_large", "Request body too large.")
        import orjson

        charge_request = request_from_doc(orjson.loads(raw))
    except (ValueError, KeyError, TypeError):
        return json_error(400, "bad_request", "Malformed charge request.")
    meta = charge_request.metadata
    if (
        meta.get("kind") != "order"
        or meta.get("instance_id") != instance_id
        or charge_request.external_reference != meta.get("order_id")
    ):
        return json_error(403, "forbidden", "A runtime may charge only its own orders.")

    def order_of() -> Order | None:
        with container.store().instance(instance_id, write=False) as uow:
            doc = uow.orders.get(charge_request.external_reference)
        return Order.from_doc(doc) if doc else None

    order = await asyncio.to_thread(order_of)
    if order is None:
        return json_error(404, "not_found", "Unknown order.")
    if order.status is not OrderStatus.PENDING or order.total_cents != charge_request.amount_cents:
        return json_error(409, "conflict", "The order is not pending at this amount.")
    try:
        charge = await asyncio.to_thread(container.gateway().create_charge, charge_request)
    except GatewayUnavailable:
        return json_error(503, "gateway_unavailable", "Payment gateway unavailable; retry.")
    except GatewayError as exc:
        log.warning("internal.charge_refused", instance=instance_id, error=str(exc))
        return json_error(502, "gateway_error", "The payment gateway refused the charge.")
    return json_response(charge.to_doc())


async def _own_charge(request: web.Request, action: str) -> web.Response:
    instance_id = await _authorised(request)
    if instance_id is None:
        return _refused()
    container: Any = request.app[CONTAINER_KEY]
    gateway = container.gateway()
    charge_id = request.match_info["charge_id"]
    if not charge_id.isalnum() or len(charge_id) > 64:
        return json_error(400, "bad_request", "Malformed charge id.")
    try:
        charge = await asyncio.to_thread(gateway.get_charge, charge_id)
        if charge is None or charge.metadata.get("instance_id") != instance_id:
            return json_error(404, "not_found", "Unknown charge.")
        if action == "cancel":
            charge = await asyncio.to_thread(gateway.cancel_charge, charge_id)
    except GatewayUnavailable:
        return json_error(503, "gateway_unavailable", "Payment gateway unavailable; retry.")
    except GatewayError:
        return json_error(502, "gateway_error", "The payment gateway refused the request.")
    return json_response(charge.to_doc() if charge else {})


async def get_charge(request: web.Request) -> web.Response:
    return await _own_charge(request, "get")


async def cancel_charge(request: web.Request) -> web.Response:
    return await _own_charge(request, "cancel")


def add_routes(app: web.Application, container: Any) -> None:
    app[CONTAINER_KEY] = container
    base = "/internal/instances/{instance_id}"
    app.router.add_post(f"{base}/charges", create_charge)
    app.router.add_get(f"{base}/charges/{{charge_id}}", get_charge)
    app.router.add_post(f"{base}/charges/{{charge_id}}/cancel", cancel_charge)
