"""Seller API and page for subscriptions: subscribers, renewals and churn of a month, MRR, and
the seller's extend / end / stop-card actions (each audited under the seller's name)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from astra.entrypoints.admin import charts
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.seller_api import (
    actor,
    blocking,
    container_of,
    owned_instance,
    read_body,
    respond,
    seller_route,
)

EXTEND = schemas.obj({"days": schemas.integer(1, 3650)}, "days")


def subscription_json(sub: Any, now: Any) -> dict[str, Any]:
    return {
        "id": sub.id,
        "buyer_id": sub.buyer_id,
        "product": sub.product_name,
        "variant": sub.variant_name,
        "status": "active" if sub.live(now) else "ended",
        "ends_at": sub.ends_at,
        "renewals": sub.renewals,
        "card": (sub.card or {}).get("status"),
    }


@seller_route()
async def report(request: web.Request) -> web.Response:
    """Active subscribers per product, the month's new subscriptions, renewals and churn (per
    day), MRR, and every subscriber with their end date. `?month=YYYY-MM` (default: now)."""
    doc = await owned_instance(request)
    data = await blocking(container_of(request).subscriptions().report, doc["id"],
                          request.query.get("month") or None)
    return respond(data)


async def _sub_action(request: web.Request, action: str, **kwargs: Any) -> web.Response:
    doc = await owned_instance(request)
    container = container_of(request)
    sub_id = request.match_info["subscriptionId"]
    # The id is looked up in this instance's data only: another seller's is "not found".
    if action == "extend":
        sub = await blocking(container.subscriptions().extend, doc["id"], sub_id,
                             kwargs["days"], actor=actor(request))
    elif action == "end":
        sub = await blocking(container.subscriptions().end_now, doc["id"], sub_id,
                             actor=actor(request))
    else:
        await blocking(container.card_renewals().cancel, doc["id"], sub_id,
                       actor=actor(request))
        sub = await blocking(container.subscriptions().get, doc["id"], sub_id)
    return respond(subscription_json(sub, container.clock().now()))


@seller_route(body=EXTEND)
async def extend(request: web.Request) -> web.Response:
    """Give a subscriber `days` more (from the current end, or from now after it ended)."""
    await owned_instance(request)  # someone else's instance is 404 whatever the body says
    body = await read_body(request)
    return await _sub_action(request, "extend", days=body["days"])


@seller_route()
async def end(request: web.Request) -> web.Response:
    """End a subscription now: its roles are taken off on the keeper's next pass."""
    return await _sub_action(request, "end")


@seller_route()
async def cancel_card(request: web.Request) -> web.Response:
    """Stop a subscriber's automatic card renewal (the paid period stays)."""
    return await _sub_action(request, "card")


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    router.add_get(f"{base}/subscriptions", report)
    router.add_post(f"{base}/subscriptions/{{subscriptionId}}/extend", extend)
    router.add_post(f"{base}/subscriptions/{{subscriptionId}}/end", end)
    router.add_post(f"{base}/subscriptions/{{subscriptionId}}/card/cancel", cancel_card)


# -- the page ----------------------------------------------------------------------------------


def page_data(container: Any, instances: list[dict[str, Any]], wanted: str | None,
              month: str | None) -> dict[str, Any]:
    current = next((i for i in instances if i["id"] == wanted), None)
    missing = bool(wanted) and current is None
    if current is None and instances and not wanted:
        current = instances[0]
    data: dict[str, Any] = {"instances": instances, "current": current, "missing": missing}
    if current is None:
        return data
    report_ = container.subscriptions().report(current["id"], month)
    series = report_["series"]
    data.update(
        report=report_,
        renewals_chart=charts.bar_chart(
            [(str(p["day"]), p["new"] + p["renewals"]) for p in series], str),
        churn_chart=charts.bar_chart([(str(p["day"]), p["churn"]) for p in series], str),
    )
    return data
