"""The admin panel's support routes: an operator runs a seller's store (`/api/instances/{id}/*`
on :3000) — settings, products and variants, key stock, coupons, posts in Discord — through the
same services and body schemas as the seller's own API, with the operator as the actor, so each
write lands in the instance's audit log as `admin:<name>`. Also what the operator watches:
the platform's recent log lines (redacted), the work waiting on someone, and which product posts
are missing or stale in Discord.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp import web

from astra.adapters.chat.discord.rest import MissingAccess, RateLimited, UnknownResource
from astra.domain.errors import InvalidInput, NotFoundError
from astra.domain.order import OrderStatus
from astra.entrypoints import product_posts
from astra.entrypoints.admin.api import _body, _c, _instances, _known_instance, _run
from astra.entrypoints.admin.auth import actor
from astra.entrypoints.middleware import json_error, json_response
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.store_api import coupon_json, product_json
from astra.logs import recent_lines
from astra.ports.chat import ChatError, InvalidBotToken

SETTINGS = schemas.obj({"settings": schemas.ANY_OBJECT}, "settings")
POST = schemas.obj(
    {"channel_id": schemas.string(25, pattern=schemas.SNOWFLAKE), "purge": schemas.BOOLEAN},
    "channel_id",
)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
POSTS_CONCURRENCY = 8
MAX_LOG_LINES = 1000


def _checked(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    problem = schemas.first_problem(schema, data)
    if problem is not None:
        raise InvalidInput("invalid_field", field=problem)
    return data


async def _instance(request: web.Request) -> str:
    """The instance in the path; 404 (never a new directory) when it does not exist."""
    instance_id = request.match_info["id"]
    await _run(_known_instance, request, instance_id)
    return instance_id


def _discord_refusal(exc: Exception) -> web.Response:
    if isinstance(exc, product_posts.NoBotToken):
        return json_error(409, "bot_token_missing", "This instance has no bot token.")
    if isinstance(exc, InvalidBotToken):
        return json_error(422, "bot_token_rejected", "Discord no longer accepts this bot token.")
    if isinstance(exc, MissingAccess):
        return json_error(403, "discord_forbidden",
                          "The bot may not see or write in that channel.")
    if isinstance(exc, UnknownResource):
        return json_error(404, "discord_not_found", "Discord does not know that channel.")
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil(exc.retry_after))
        response = json_error(429, "discord_rate_limited", f"Discord asked to wait {wait} s.")
        response.headers["Retry-After"] = str(wait)
        return response
    return json_error(502, "discord_unavailable", "Discord could not be reached.")


# -- settings ------------------------------------------------------------------------------------


async def get_settings(request: web.Request) -> web.Response:
    """An instance's settings, as its seller sees them."""
    instance_id = await _instance(request)
    return json_response(await _run(_c(request).instances().settings, instance_id))


async def update_settings(request: web.Request) -> web.Response:
    """Change an instance's settings ({"settings": {...}}: the seller's fields, checked the
    same way)."""
    instance_id = await _instance(request)
    body = _checked(SETTINGS, await _body(request))
    settings = await _run(_c(request).instances().update_settings, instance_id,
                          body["settings"], actor=actor(request))
    return json_response(settings)


# -- products ------------------------------------------------------------------------------------


async def _product(request: web.Request, instance_id: str, product_id: str) -> dict[str, Any]:
    c = _c(request)
    product = await _run(c.catalog().get_product, instance_id, product_id)
    return product_json(product, await _run(c.catalog().stock_counts, instance_id))


async def create_product(request: web.Request) -> web.Response:
    """Create a product in the instance (the seller's body: name, variants, ...)."""
    instance_id = await _instance(request)
    body = _checked(schemas.PRODUCT_CREATE, await _body(request))
    product = await _run(_c(request).catalog().create_product, instance_id, body,
                         actor=actor(request))
    return json_response(product_json(product, {}), status=201)


async def update_product(request: web.Request) -> web.Response:
    """Change a product; `variants` replaces the list (keep a variant by sending its id)."""
    instance_id = await _instance(request)
    body = _checked(schemas.PRODUCT_UPDATE, await _body(request))
    product_id = request.match_info["pid"]
    await _run(_c(request).catalog().update_product, instance_id, product_id, body,
               actor=actor(request))
    return json_response(await _product(request, instance_id, product_id))


async def deactivate_product(request: web.Request) -> web.Response:
    """Take a product off sale (its keys and orders stay)."""
    instance_id = await _instance(request)
    product_id = request.match_info["pid"]
    await _run(_c(request).catalog().remove_product, instance_id, product_id,
               actor=actor(request))
    return json_response(await _product(request, instance_id, product_id))


async def activate_product(request: web.Request) -> web.Response:
    """Put a product back on sale."""
    instance_id = await _instance(request)
    product_id = request.match_info["pid"]
    await _run(_c(request).catalog().update_product, instance_id, product_id,
               {"active": True}, actor=actor(request))
    return json_response(await _product(request, instance_id, product_id))


# -- stock ---------------------------------------------------------------------------------------


async def add_stock(request: web.Request) -> web.Response:
    """Add keys to a variant ({"variant_id", "keys": text or list}); says what was skipped."""
    instance_id = await _instance(request)
    body = _checked(schemas.STOCK_IMPORT, await _body(request))
    keys = body["keys"]
    report = await _run(_c(request).catalog().import_stock, instance_id,
                        request.match_info["pid"], body["variant_id"],
                        "\n".join(keys) if isinstance(keys, list) else keys,
                        actor=actor(request))
    return json_response(report.to_doc())


async def list_keys(request: web.Request) -> web.Response:
    """A variant's keys (`?variant_id=`; every variant's without it), masked, with their
    state."""
    instance_id = await _instance(request)
    variant_id = request.query.get("variant_id")
    if variant_id is not None and not 0 < len(variant_id) <= 64:
        raise InvalidInput("invalid_field", field="variant_id")
    listing = await _run(_c(request).catalog().list_keys, instance_id,
                         request.match_info["pid"], variant_id)
    return json_response(listing)


async def remove_stock(request: web.Request) -> web.Response:
    """Remove chosen keys ({"variant_id", "key_ids"}): only available ones go; reserved and
    sold ones are kept and listed."""
    instance_id = await _instance(request)
    body = _checked(schemas.STOCK_REMOVE, await _body(request))
    outcome = await _run(_c(request).catalog().remove_keys, instance_id,
                         request.match_info["pid"], body["variant_id"], body["key_ids"],
                         actor=actor(request))
    return json_response(outcome)


# -- coupons -------------------------------------------------------------------------------------


async def create_coupon(request: web.Request) -> web.Response:
    """Create a coupon (the seller's body: code, kind, value, limits, expiry)."""
    instance_id = await _instance(request)
    body = _checked(schemas.COUPON_CREATE, await _body(request))
    coupon = await _run(_c(request).coupons().create, instance_id, body, actor=actor(request))
    return json_response(coupon_json(coupon), status=201)


async def toggle_coupon(request: web.Request) -> web.Response:
    """Switch a coupon on or off (`.../enable`, `.../disable`)."""
    instance_id = await _instance(request)
    action = request.match_info["action"]
    if action not in ("enable", "disable"):
        raise NotFoundError("ação", action)
    coupon = await _run(_c(request).coupons().set_active, instance_id,
                        request.match_info["code"], action == "enable", actor=actor(request))
    return json_response(coupon_json(coupon))


async def delete_coupon(request: web.Request) -> web.Response:
    """Delete a coupon nobody used (a used one can only be disabled)."""
    instance_id = await _instance(request)
    coupon = await _run(_c(request).coupons().delete, instance_id, request.match_info["code"],
                        actor=actor(request))
    return json_response({**coupon_json(coupon), "deleted": True})


# -- posts in Discord ----------------------------------------------------------------------------


async def _audit_post(request: web.Request, instance_id: str, product_id: str, action: str,
                      **details: Any) -> None:
    from astra.domain.services.audit_log import record

    c = _c(request)

    def write() -> None:
        with c.store().instance(instance_id) as uow:
            record(uow, at=c.clock().now(), actor=actor(request), action=action,
                   target=f"product:{product_id}", **details)
            uow.commit()

    await _run(write)


async def post_product(request: web.Request) -> web.Response:
    """Post a product in a channel with the instance's bot ({"channel_id", "purge"?})."""
    instance_id = await _instance(request)
    body = _checked(POST, await _body(request))
    product_id = request.match_info["pid"]
    product = await _run(_c(request).catalog().get_product, instance_id, product_id)
    if not product.active:
        raise InvalidInput("product_inactive")
    try:
        posted = await product_posts.post_product(_c(request), instance_id, product_id,
                                                  body["channel_id"],
                                                  purge=bool(body.get("purge")))
    except ChatError as exc:
        return _discord_refusal(exc)
    await _audit_post(request, instance_id, product_id, "product.posted",
                      channel_id=body["channel_id"], message_id=posted.message_id,
                      purged=posted.purged)
    return json_response({"channel_id": posted.channel_id, "message_id": posted.message_id,
                          "purged": posted.purged})


async def repost_product(request: web.Request) -> web.Response:
    """Post a product again wherever it is posted (current prices, stock and branding)."""
    instance_id = await _instance(request)
    product_id = request.match_info["pid"]
    try:
        posts = await product_posts.repost_product(_c(request), instance_id, product_id)
    except ChatError as exc:
        return _discord_refusal(exc)
    await _audit_post(request, instance_id, product_id, "product.reposted",
                      channels=[p["channel_id"] for p in posts])
    return json_response({"posts": posts})


async def posts(request: web.Request) -> web.Response:
    """Every product post and how it stands in Discord (?instance): ok, stale (the product
    changed since), missing (deleted in Discord), no_access, unknown; and active products never
    posted (not_posted). Asks Discord with each instance's own bot token."""
    gate = asyncio.Semaphore(POSTS_CONCURRENCY)  # each instance has its own bot (and limits)

    async def one(instance_id: str) -> list[dict[str, Any]]:
        async with gate:
            return await product_posts.post_states(_c(request), instance_id)

    instance_ids = await _run(_instances, request)
    found = await asyncio.gather(*(one(i) for i in instance_ids))
    return json_response([row for rows in found for row in rows])


# -- what the operator watches -------------------------------------------------------------------


async def platform_logs(request: web.Request) -> web.Response:
    """This process's recent log lines, newest first (?level=warning, ?q=text, ?limit=),
    secrets redacted as in the log itself."""
    level = request.query.get("level") or None
    if level is not None and level not in LOG_LEVELS:
        raise InvalidInput("invalid_field", field="level")
    raw_limit = request.query.get("limit", "200")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LOG_LINES:
        raise InvalidInput("invalid_field", field="limit")
    text = (request.query.get("q") or "")[:200] or None
    return json_response(recent_lines(level=level, text=text, limit=int(raw_limit)))


def _work(request: web.Request) -> dict[str, list[dict[str, Any]]]:
    c = _c(request)
    store = c.store()
    withdrawals = c.wallet().withdrawals(status="requested")
    paid: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    for instance_id in store.instance_ids():
        with store.instance(instance_id, write=False) as uow:
            orders = uow.orders.all()
        for order in orders:
            row = {
                "instance_id": instance_id,
                "id": order.get("id"),
                "buyer_id": order.get("buyer_id"),
                "total_cents": order.get("total_cents"),
                "status": order.get("status"),
                "paid_at": order.get("paid_at"),
                "created_at": order.get("created_at"),
            }
            if order.get("status") == OrderStatus.PAID:
                paid.append(row)
            elif order.get("status") == OrderStatus.WAITING_STOCK:
                waiting.append(row)
    with store.portal(write=False) as uow:
        instances = uow.instances.all()
    errors = [
        {"id": d["id"], "name": d.get("name"), "owner_id": d.get("owner_id"),
         "status": d.get("status"), "status_reason": d.get("status_reason"),
         "status_at": d.get("status_at")}
        for d in instances if d.get("status") == "error" and not d.get("deleted_at")
    ]
    oldest = lambda r: r.get("paid_at") or r.get("created_at") or ""  # noqa: E731
    return {
        "withdrawals": sorted(withdrawals, key=lambda w: w.get("requested_at") or ""),
        "paid_not_delivered": sorted(paid, key=oldest),
        "waiting_stock": sorted(waiting, key=oldest),
        "runtime_errors": sorted(errors, key=lambda r: r.get("status_at") or ""),
    }


async def work(request: web.Request) -> web.Response:
    """The work waiting on someone, oldest first: withdrawals to pay, paid orders not yet
    delivered, orders waiting for stock, runtimes in error."""
    data = await _run(_work, request)
    return json_response({**data, "total": sum(len(v) for v in data.values())})


INSTANCE = "/api/instances/{id}"


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{INSTANCE}/settings", get_settings)
    r.add_patch(f"{INSTANCE}/settings", update_settings)
    r.add_post(f"{INSTANCE}/products", create_product)
    r.add_patch(f"{INSTANCE}/products/{{pid}}", update_product)
    r.add_post(f"{INSTANCE}/products/{{pid}}/deactivate", deactivate_product)
    r.add_post(f"{INSTANCE}/products/{{pid}}/activate", activate_product)
    r.add_post(f"{INSTANCE}/products/{{pid}}/post", post_product)
    r.add_post(f"{INSTANCE}/products/{{pid}}/repost", repost_product)
    r.add_post(f"{INSTANCE}/stock/{{pid}}", add_stock)
    r.add_get(f"{INSTANCE}/stock/{{pid}}/keys", list_keys)
    r.add_post(f"{INSTANCE}/stock/{{pid}}/remove", remove_stock)
    r.add_post(f"{INSTANCE}/coupons", create_coupon)
    r.add_post(f"{INSTANCE}/coupons/{{code}}/{{action}}", toggle_coupon)
    r.add_delete(f"{INSTANCE}/coupons/{{code}}", delete_coupon)
    r.add_get("/api/posts", posts)
    r.add_get("/api/logs/platform", platform_logs)
    r.add_get("/api/work", work)


READS = (get_settings, list_keys, posts, platform_logs, work)
WRITES = (update_settings, create_product, update_product, deactivate_product,
          activate_product, post_product, repost_product, add_stock, remove_stock,
          create_coupon, toggle_coupon, delete_coupon)
BODIES = {
    update_settings: SETTINGS,
    create_product: schemas.PRODUCT_CREATE,
    update_product: schemas.PRODUCT_UPDATE,
    add_stock: schemas.STOCK_IMPORT,
    remove_stock: schemas.STOCK_REMOVE,
    create_coupon: schemas.COUPON_CREATE,
    post_product: POST,
}
QUERIES = {
    "/api/posts": ("instance",),
    "/api/logs/platform": ("level", "q", "limit"),
    f"{INSTANCE}/stock/{{pid}}/keys": ("variant_id",),
}


def describe(describe_handler: Any) -> None:
    """Declare the routes for the OpenAPI document (called by api._describe_handlers)."""
    for handler in READS:
        describe_handler(handler)
    for handler in WRITES:
        describe_handler(handler, body=BODIES.get(handler), errors=(404, 409, 422))
