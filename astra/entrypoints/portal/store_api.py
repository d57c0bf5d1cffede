"""Seller API: one instance's store — products and variants, key stock, coupons, sales."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from astra.domain import branding, templates
from astra.domain.catalog import Product
from astra.domain.coupon import Coupon
from astra.domain.money import format_brl
from astra.domain.order import PAID_STATUSES, Order, OrderStatus
from astra.entrypoints import product_posts
from astra.entrypoints.middleware import read_form
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.seller_api import (
    ApiError,
    actor,
    blocking,
    check,
    container_of,
    owned_instance,
    parse_json,
    read_body,
    respond,
    seller_route,
)

MAX_ORDERS_PAGE = 500


def product_json(product: Product, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    doc = product.to_doc()
    doc["stock"] = {v.id: counts.get(v.id, {}) for v in product.variants}
    return doc


async def _counts(request: web.Request, instance_id: str) -> dict[str, dict[str, int]]:
    return await blocking(container_of(request).catalog().stock_counts, instance_id)


# -- products ----------------------------------------------------------------------------------


@seller_route(response=schemas.PRODUCT_LIST)
async def list_products(request: web.Request) -> web.Response:
    """The instance's products, with stock per variant."""
    doc = await owned_instance(request)
    products = await blocking(container_of(request).catalog().list_products, doc["id"])
    counts = await _counts(request, doc["id"])
    return respond({"products": [product_json(p, counts) for p in products]})


@seller_route(body=schemas.PRODUCT_CREATE, response=schemas.PRODUCT, status=201)
async def create_product(request: web.Request) -> web.Response:
    """Create a product with one or more variants (name, price in cents, limit per order)."""
    doc = await owned_instance(request)
    body = await read_body(request)
    product = await blocking(
        container_of(request).catalog().create_product, doc["id"], body, actor=actor(request)
    )
    return respond(product_json(product, {}), status=201)


@seller_route(response=schemas.PRODUCT)
async def get_product(request: web.Request) -> web.Response:
    """One product, with stock per variant."""
    doc = await owned_instance(request)
    product = await blocking(
        container_of(request).catalog().get_product, doc["id"], request.match_info["productId"]
    )
    return respond(product_json(product, await _counts(request, doc["id"])))


@seller_route(body=schemas.PRODUCT_UPDATE, response=schemas.PRODUCT)
async def update_product(request: web.Request) -> web.Response:
    """Change a product; `variants` replaces the list (keep a variant by sending its id)."""
    doc = await owned_instance(request)
    body = await read_body(request)
    product = await blocking(
        container_of(request).catalog().update_product,
        doc["id"],
        request.match_info["productId"],
        body,
        actor=actor(request),
    )
    return respond(product_json(product, await _counts(request, doc["id"])))


@seller_route(response=schemas.PRODUCT)
async def delete_product(request: web.Request) -> web.Response:
    """Take a product off sale (its keys and orders are kept; it can be reactivated)."""
    doc = await owned_instance(request)
    product = await blocking(
        container_of(request).catalog().remove_product,
        doc["id"],
        request.match_info["productId"],
        actor=actor(request),
    )
    return respond(product_json(product, await _counts(request, doc["id"])))


@seller_route(body=schemas.PRODUCT_PREVIEW, response=schemas.POST_PREVIEW)
async def preview_product(request: web.Request) -> web.Response:
    """The post a product would be in Discord (the JSON Discord would receive), for the product
    editor: a new product, or `product_id` with the unsaved changes. Nothing is saved."""
    doc = await owned_instance(request)
    body = dict(await read_body(request))
    product_id = body.pop("product_id", None)
    container = container_of(request)
    product = await blocking(container.catalog().draft_product, doc["id"], body, product_id)
    rendered = await blocking(product_posts.render_post, container, doc["id"], product)
    return respond(
        {
            "banner": product_posts.preview_payload(rendered["banner"]),
            "message": product_posts.preview_payload(rendered["post"]),
            "language": rendered["language"],
            "bot": (doc.get("bot_profile") or {}).get("username"),
        }
    )


# -- stock -------------------------------------------------------------------------------------


async def _stock_upload(request: web.Request) -> tuple[str, bytes | str]:
    """(variant id, keys) from a JSON body or a multipart form with a file."""
    if request.content_type != "multipart/form-data":
        body = check(schemas.STOCK_IMPORT, parse_json(await request.read()))
        keys = body["keys"]
        return body["variant_id"], "\n".join(keys) if isinstance(keys, list) else keys
    try:
        form = await read_form(request)
    except web.HTTPException:
        raise
    except Exception:
        raise ApiError(400, "invalid_form", "Formulário inválido.") from None
    variant_id = form.get("variant_id")
    check(
        schemas.obj({"variant_id": schemas.string(64, min_length=1)}, "variant_id"),
        {"variant_id": variant_id},
    )
    upload, pasted = form.get("file"), form.get("keys")
    data: bytes | str | None = None
    if isinstance(upload, web.FileField):
        data = upload.file.read()
    elif isinstance(upload, str):
        data = upload
    elif isinstance(pasted, str):
        data = pasted
    if data is None:
        raise ApiError(422, "invalid_field", "Envie o arquivo de chaves (campo file).")
    return str(variant_id), data


@seller_route(
    body=schemas.STOCK_IMPORT, form=schemas.STOCK_UPLOAD_FORM, response=schemas.IMPORT_REPORT
)
async def import_stock(request: web.Request) -> web.Response:
    """Add keys (one per line) to a variant, pasted or as a file; says what was skipped and why.

    A file of up to 1,000 keys is added at once: 200 with the report. A bigger one goes on as a
    job, chunk by chunk, while the request returns: 202 with the job (`id`, `state`,
    `processed` of `total`, `percent`), whose progress and final report
    `GET .../stock-jobs/{jobId}` serves."""
    doc = await owned_instance(request)
    variant_id, data = await _stock_upload(request)
    started = await blocking(
        container_of(request).catalog().imports.start,
        doc["id"],
        request.match_info["productId"],
        variant_id,
        data,
        actor=actor(request),
    )
    if started.report is not None:
        return respond(started.report.to_doc())
    return respond(started.job, status=202)


@seller_route(response=schemas.STOCK_JOB)
async def stock_job(request: web.Request) -> web.Response:
    """A stock import job: its state (`running`, `done`, `failed`), progress and report."""
    doc = await owned_instance(request)
    job_id = request.match_info["jobId"]
    check(schemas.obj({"job_id": schemas.string(64, min_length=1)}, "job_id"),
          {"job_id": job_id})
    view = await blocking(container_of(request).catalog().imports.job, doc["id"], job_id)
    return respond(view)


@seller_route(response=schemas.STOCK_JOB_LIST)
async def stock_jobs(request: web.Request) -> web.Response:
    """The instance's stock imports still going, oldest first (a page opened mid-import
    shows their progress)."""
    doc = await owned_instance(request)
    jobs = await blocking(container_of(request).catalog().imports.active_jobs, doc["id"])
    return respond({"jobs": jobs})


@seller_route(response=schemas.STOCK_COUNTS)
async def stock_counts(request: web.Request) -> web.Response:
    """How many keys each variant of a product has available, reserved and sold."""
    doc = await owned_instance(request)
    product = await blocking(
        container_of(request).catalog().get_product, doc["id"], request.match_info["productId"]
    )
    counts = await _counts(request, doc["id"])
    empty = {"available": 0, "reserved": 0, "sold": 0}
    return respond(
        {
            "product_id": product.id,
            "variants": [
                {"id": v.id, "name": v.name, **{**empty, **counts.get(v.id, {})}}
                for v in product.variants
            ],
        }
    )


@seller_route(response=schemas.STOCK_KEYS)
async def list_stock_keys(request: web.Request) -> web.Response:
    """A variant's keys (`?variant_id=`; every variant's without it), masked, with their
    state: available ones can be removed; reserved and sold ones are listed only."""
    doc = await owned_instance(request)
    variant_id = request.query.get("variant_id")
    if variant_id is not None:
        check(schemas.obj({"variant_id": schemas.string(64, min_length=1)}, "variant_id"),
              {"variant_id": variant_id})
    listing = await blocking(
        container_of(request).catalog().list_keys,
        doc["id"],
        request.match_info["productId"],
        variant_id,
    )
    return respond(listing)


@seller_route(body=schemas.STOCK_REMOVE, response=schemas.KEYS_REMOVED)
async def remove_stock_keys(request: web.Request) -> web.Response:
    """Remove chosen keys of a variant. Only available keys go; a key reserved by a cart or
    sold is kept and listed in `kept` (checked under the lock carts reserve with)."""
    doc = await owned_instance(request)
    body = await read_body(request)
    outcome = await blocking(
        container_of(request).catalog().remove_keys,
        doc["id"],
        request.match_info["productId"],
        body["variant_id"],
        body["key_ids"],
        actor=actor(request),
    )
    return respond(outcome)


# -- coupons -----------------------------------------------------------------------------------


def coupon_json(coupon: Coupon) -> dict[str, Any]:
    doc = coupon.to_doc()
    doc.pop("redemptions", None)  # buyers' ids: not needed to manage a coupon
    return doc


@seller_route(response=schemas.COUPON_LIST)
async def list_coupons(request: web.Request) -> web.Response:
    """The instance's coupons."""
    doc = await owned_instance(request)
    coupons = await blocking(container_of(request).coupons().list, doc["id"])
    return respond({"coupons": [coupon_json(c) for c in coupons]})


@seller_route(body=schemas.COUPON_CREATE, response=schemas.COUPON, status=201)
async def create_coupon(request: web.Request) -> web.Response:
    """Create a coupon: percent (1-100) or fixed cents, with optional limits and expiry."""
    doc = await owned_instance(request)
    body = await read_body(request)
    coupon = await blocking(
        container_of(request).coupons().create, doc["id"], body, actor=actor(request)
    )
    return respond(coupon_json(coupon), status=201)


async def _set_coupon(request: web.Request, active: bool) -> web.Response:
    doc = await owned_instance(request)
    coupon = await blocking(
        container_of(request).coupons().set_active,
        doc["id"],
        request.match_info["code"],
        active,
        actor=actor(request),
    )
    return respond(coupon_json(coupon))


@seller_route(response=schemas.COUPON)
async def disable_coupon(request: web.Request) -> web.Response:
    """Switch a coupon off (carts that hold it keep their price until checkout)."""
    return await _set_coupon(request, False)


@seller_route(response=schemas.COUPON)
async def enable_coupon(request: web.Request) -> web.Response:
    """Switch a coupon back on."""
    return await _set_coupon(request, True)


# -- sales -------------------------------------------------------------------------------------


def order_json(order: Order) -> dict[str, Any]:
    doc = order.to_doc()
    if doc.get("charge"):
        # The QR image is for the buyer's screen, and heavy: the copy-paste code is enough here.
        doc["charge"] = {k: v for k, v in doc["charge"].items() if k != "qr_code_png_base64"}
    doc.pop("payment_events", None)
    return doc


def order_totals(orders: list[Order]) -> dict[str, Any]:
    paid = [o for o in orders if o.status in PAID_STATUSES]
    gross = sum(o.total_cents for o in paid)
    refunded = sum(
        o.total_cents if o.status is OrderStatus.REFUNDED else o.refunded_cents for o in orders
    )
    by_status: dict[str, int] = {}
    for o in orders:
        by_status[str(o.status)] = by_status.get(str(o.status), 0) + 1
    return {
        "orders": len(orders),
        "paid_orders": len(paid),
        "gross_cents": gross,
        "gross": format_brl(gross),
        "fee_cents": sum(o.fee_cents for o in paid),
        "net_cents": sum(o.net_cents for o in paid),
        "net": format_brl(sum(o.net_cents for o in paid)),
        "refunded_cents": refunded,
        "by_status": by_status,
    }


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(422, "invalid_field", f"Campo inválido: {name}.")
    return int(raw)


@seller_route(response=schemas.ORDER_LIST)
async def list_orders(request: web.Request) -> web.Response:
    """Sales of the instance, newest first (`?status=`, `?limit=`, `?offset=`), with totals."""
    doc = await owned_instance(request)
    status = request.query.get("status")
    if status is not None and status not in {s.value for s in OrderStatus}:
        raise ApiError(422, "invalid_field", "Campo inválido: status.")
    limit = _int_query(request, "limit", 100, 1, MAX_ORDERS_PAGE)
    offset = _int_query(request, "offset", 0, 0, 10**9)
    orders = await blocking(container_of(request).sales().list_orders, doc["id"])
    orders.sort(key=lambda o: o.created_at, reverse=True)
    shown = [o for o in orders if status is None or o.status == status]
    return respond(
        {
            "orders": [order_json(o) for o in shown[offset : offset + limit]],
            "total": len(shown),
            "totals": order_totals(orders),
        }
    )


@seller_route(response=schemas.TEMPLATE_HELP)
async def template_help(request: web.Request) -> web.Response:
    """What a DM template and the store's branding accept: the placeholders (English names,
    and the Portuguese ones they replace), the built-in texts, and the limits."""
    return respond({
        "placeholders": list(templates.PLACEHOLDERS),
        "aliases": dict(templates.PLACEHOLDERS),
        "defaults": {
            kind: {lang: {"title": templates.DEFAULT_TITLES[kind][lang],
                          "body": templates.DEFAULT_BODIES[kind][lang]}
                   for lang in ("pt-BR", "en")}
            for kind in templates.KINDS
        },
        "limits": {
            "template_title": templates.MAX_TITLE,
            "template_body": templates.MAX_BODY,
            "template_footer": templates.MAX_FOOTER,
            "sections": branding.MAX_SECTIONS,
            "section_title": branding.EMBED_FIELD_NAME,
            "section_text": branding.EMBED_FIELD_VALUE,
            "url": branding.MAX_URL,
            "button_label": branding.BUTTON_LABEL,
        },
    })
