"""Seller API: the plans — catalog, the one-time trial, paying a plan by PIX."""

from __future__ import annotations

from aiohttp import web

from astra.domain.money import format_brl
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.seller_api import (
    blocking,
    container_of,
    read_body,
    respond,
    seller_route,
    user_id,
)


@seller_route(response=schemas.PLAN_CATALOG)
async def plan_catalog(request: web.Request) -> web.Response:
    """The plans on offer, and yours."""
    plans = container_of(request).plans()
    catalog = await blocking(plans.catalog)
    state = await blocking(plans.status, user_id(request))
    return respond({"plans": catalog, "plan": state})


@seller_route(body=schemas.NO_FIELDS, body_required=False, response=schemas.PLAN_STATE,
              errors=(409,))
async def start_trial(request: web.Request) -> web.Response:
    """Start the free trial (once per account)."""
    state = await blocking(container_of(request).plans().start_trial, user_id(request))
    return respond(state)


@seller_route(body=schemas.PLAN_CHECKOUT, response=schemas.PLAN_CHARGE, errors=(503,))
async def checkout_plan(request: web.Request) -> web.Response:
    """A PIX charge for a plan: the copy-paste code, the QR image and when it expires."""
    body = await read_body(request)
    container = container_of(request)
    tx, charge = await blocking(
        container.plans().checkout, user_id(request), body.get("plan_id", "monthly")
    )
    return respond(
        {
            "transaction_id": tx["id"],
            "plan_id": tx["plan_id"],
            "days": tx["days"],
            "amount_cents": tx["amount_cents"],
            "amount": format_brl(tx["amount_cents"]),
            "status": str(charge.status),
            "charge_id": charge.id,
            "pix_code": charge.qr_code,
            "qr_code_base64": charge.qr_code_png_base64,
            "ticket_url": charge.ticket_url,
            "expires_at": charge.expires_at or tx["expires_at"],
            "sandbox": container.settings().payments_sandbox,
        }
    )
