"""Paying a plan by card: Mercado Pago Checkout Pro, and its local stand-in in the sandbox.

`POST /api/checkout/plan/card` makes a pending plan transaction and a Checkout Pro preference,
and answers where to send the seller (`redirect_url`: the preference's init_point, or its
sandbox_init_point with Mercado Pago's TEST- credentials). Mercado Pago sends the seller back to
`/checkout/plan/return?checkout=success|pending|failure&payment_id=...`; that page only nudges
the webhook queue to look at the payment now (its state is read from the gateway, as always) and
lands on the dashboard. The payment itself is credited by the one idempotent path: webhook,
reconcile loop, or this nudge, whichever comes first, once.

In the sandbox (development without MERCADOPAGO_ACCESS_TOKEN) the preference's page is
`/sandbox/checkout/<id>`, where the seller presses "pay" to simulate an approved card. In
production those pages answer 404 even on `ASTRA_PAYMENTS=sandbox`: a seller would approve their
own plan; the operator settles sandbox charges with `astra payments approve`.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from astra.domain.money import format_brl
from astra.entrypoints.middleware import read_form
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal import sessions
from astra.entrypoints.portal.i18n import Translator
from astra.entrypoints.portal.seller_api import (
    blocking,
    container_of,
    language_of,
    read_body,
    respond,
    seller_route,
    user_id,
)
from astra.entrypoints.portal.webhooks import WEBHOOK_QUEUE_KEY
from astra.ports.payments import GatewayError

CARD_CHECKOUT = schemas.obj(
    {
        "transaction_id": {"type": "string"},
        "preference_id": {"type": "string"},
        "init_point": {"type": "string"},
        "sandbox_init_point": {"type": "string"},
        "redirect_url": {"type": "string"},
        "amount_cents": {"type": "integer"},
    },
    "transaction_id", "preference_id", "redirect_url",
    extra=True,
)
OUTCOMES = ("success", "pending", "failure")


def _base_url(request: web.Request) -> str:
    return container_of(request).settings().public_url or str(request.url.origin())


@seller_route(body=schemas.PLAN_CHECKOUT, body_required=False, response=CARD_CHECKOUT,
              errors=(503,))
async def checkout_plan_card(request: web.Request) -> web.Response:
    """Pay a plan by card on Mercado Pago (Checkout Pro): where to send the seller.

    Send the browser to `redirect_url`; Mercado Pago brings it back to
    /checkout/plan/return. The plan is credited when the payment is approved (webhook or
    reconcile), once.
    """
    body = await read_body(request)
    container = container_of(request)
    tx, link = await blocking(
        container.plans().checkout_card, user_id(request), body.get("plan_id", "monthly"),
        base_url=_base_url(request),
    )
    token = container.settings().mercadopago_access_token
    redirect = link.sandbox_init_point if token.startswith("TEST-") and \
        link.sandbox_init_point else link.init_point
    return respond({
        "transaction_id": tx["id"],
        "preference_id": link.id,
        "init_point": link.init_point,
        "sandbox_init_point": link.sandbox_init_point,
        "redirect_url": redirect,
        "amount_cents": tx["amount_cents"],
        "amount": format_brl(tx["amount_cents"]),
    })


async def checkout_return(request: web.Request) -> web.StreamResponse:
    """Where Mercado Pago's checkout sends the seller back (back_urls)."""
    outcome = request.query.get("checkout", "")
    outcome = outcome if outcome in OUTCOMES else "pending"
    payment_id = request.query.get("payment_id") or request.query.get("collection_id") or ""
    if sessions.current_user(request) is not None and payment_id.isdigit() and \
            len(payment_id) <= 32:
        # Only a hint, and only from a logged-in seller (an anonymous caller must not make the
        # platform query the gateway at will): the worker reads the payment from the gateway
        # with our credentials, and the webhook or the reconcile loop would find it anyway.
        await request.app[WEBHOOK_QUEUE_KEY].submit(payment_id)
    raise web.HTTPSeeOther(f"/dashboard?{urlencode({'checkout': outcome})}")


# -- the sandbox's checkout page ----------------------------------------------------------------


def _sandbox(request: web.Request) -> Any:
    container = container_of(request)
    # In production (even on ASTRA_PAYMENTS=sandbox) a seller must not approve their own
    # plan: only the operator settles sandbox charges there (`astra payments approve`).
    if container.settings().is_production:
        raise web.HTTPNotFound()
    gateway = container.gateway()
    if not getattr(gateway, "simulated", False) or not hasattr(gateway, "pay_preference"):
        raise web.HTTPNotFound()
    return gateway


async def _own_preference(request: web.Request) -> tuple[Any, dict[str, Any]]:
    gateway = _sandbox(request)  # first: where the pages are off, they are off for everyone
    user = sessions.current_user(request)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={request.path}")
    pref = await blocking(gateway.preference, request.match_info["pref_id"])
    if pref is None or (pref.get("metadata") or {}).get("user_id") != user["id"]:
        raise web.HTTPNotFound()
    return gateway, pref


_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/static/portal.css"></head>
<body><main class="auth-main"><section class="card">
<h1 class="h2">{title}</h1><p class="muted">{notice}</p>
<p><strong>{item}</strong> · {amount}</p>
<form method="post" action="/sandbox/checkout/{pref}/pay">
<input type="hidden" name="csrf_token" value="{csrf}">
<button class="btn primary" type="submit">{pay}</button></form>
<p><a href="{cancel}">{back}</a></p></section></main></body></html>"""


async def sandbox_checkout_page(request: web.Request) -> web.Response:
    """The sandbox's stand-in for Mercado Pago's hosted checkout page."""
    _, pref = await _own_preference(request)
    t = Translator(language_of(request))
    cancel = "/checkout/plan/return?checkout=failure"
    page = _PAGE.format(
        lang=html.escape(language_of(request)),
        title=html.escape(t("card.sandbox.title")),
        notice=html.escape(t("card.sandbox.notice")),
        item=html.escape(pref["title"]),
        amount=html.escape(format_brl(pref["amount_cents"])),
        pref=html.escape(pref["id"]),
        csrf=html.escape(sessions.csrf_token(request) or ""),
        pay=html.escape(t("card.sandbox.pay")),
        cancel=html.escape(cancel),
        back=html.escape(t("card.sandbox.back")),
    )
    response = web.Response(text=page, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    return response


async def sandbox_checkout_pay(request: web.Request) -> web.StreamResponse:
    """A simulated approved card payment for the preference, then back to the portal."""
    await read_form(request)  # the CSRF check already read it
    gateway, pref = await _own_preference(request)
    try:
        charge = await blocking(gateway.pay_preference, pref["id"])
    except GatewayError:
        raise web.HTTPSeeOther("/checkout/plan/return?checkout=failure") from None
    # The sandbox sends no webhook of its own: the same queue a webhook feeds settles it.
    await request.app[WEBHOOK_QUEUE_KEY].submit(charge.id)
    query = urlencode({"checkout": "success", "payment_id": charge.id,
                       "external_reference": pref["external_reference"]})
    raise web.HTTPSeeOther(f"/checkout/plan/return?{query}")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/checkout/plan/card", checkout_plan_card)
    r.add_get("/checkout/plan/return", checkout_return)
    r.add_get("/sandbox/checkout/{pref_id}", sandbox_checkout_page)
    r.add_post("/sandbox/checkout/{pref_id}/pay", sandbox_checkout_pay)
