"""The seller portal's web pages: server-rendered Jinja2 (autoescaped), pt-BR or English.

Pages read through the same services as the JSON API and render what the seller has now; every
change goes through the JSON API (`static/portal.js` sends the session's CSRF token, which the
page carries in `<meta name="csrf-token">`). Login and sign-up also work without JavaScript:
the forms post to `/auth/local/*`, and a refusal comes back as the same page with the message
(`auth_form_pages`) instead of the API's JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import orjson
from aiohttp import web

from astra.adapters.chat.discord.rest import invite_url
from astra.domain import branding, templates
from astra.domain.catalog import Product
from astra.domain.errors import NotFoundError
from astra.domain.money import format_brl
from astra.domain.order import OrderStatus
from astra.domain.services.accounts import public_user
from astra.domain.services.instances import public_instance
from astra.domain.timestamps import parse_iso
from astra.entrypoints.instance_turns import run_blocking
from astra.entrypoints.portal import sessions
from astra.entrypoints.portal.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGE_COOKIE,
    Translator,
    client_strings,
    language_of,
)
from astra.entrypoints.portal.store_api import order_totals
from astra.ports.runtime import RuntimeFailure, RuntimeUnavailable

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_ROUTE = "portal_static"

CONTAINER_KEY = web.AppKey("pages_container", object)
ENV_KEY = web.AppKey("pages_env", jinja2.Environment)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
LOG_LINES = 30
ORDERS_SHOWN = 50
RECENT_SALES = 6
LEDGER_SHOWN = 100
LANGUAGE_MAX_AGE = 365 * 24 * 3600

# Pages load nothing from elsewhere: no CDN, no font service, no inline script.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- helpers -----------------------------------------------------------------------------------


def _container(request: web.Request) -> Any:
    return request.app[CONTAINER_KEY]


async def _blocking(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # The services read files under locks: never on the event loop.
    return await run_blocking(func, *args, **kwargs)


def safe_next(value: object, default: str = "/dashboard") -> str:
    """A local path to go to; anything else (another site, a scheme) is ignored."""
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and len(value) <= 512
        and value.isprintable()
    ):
        return value
    return default


def _static_versions() -> dict[str, str]:
    """A short content hash per static file, so a new release is never served from cache."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10]
        for p in STATIC_DIR.iterdir()
        if p.is_file()
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    versions = _static_versions()
    env.globals["static"] = lambda name: f"/static/{name}?v={versions.get(name, '0')}"
    env.filters["brl"] = lambda cents: format_brl(int(cents or 0))
    # An amount as the seller types it in a form ("1049,90"): what the editor's inputs hold.
    env.filters["amount"] = lambda cents: f"{int(cents) // 100},{int(cents) % 100:02d}"
    env.filters["json"] = lambda value: orjson.dumps(value).decode()
    env.filters["pct"] = percent
    return env


def percent(bps: int, language: str = DEFAULT_LANGUAGE) -> str:
    """Basis points as a percentage: 600 -> "6%", 650 -> "6,5%" (or "6.5%" in English)."""
    text = f"{bps / 100:.2f}".rstrip("0").rstrip(".")
    return (text.replace(".", ",") if language == DEFAULT_LANGUAGE else text) + "%"


def _when(value: object, language: str) -> str:
    """An ISO instant as text (UTC); the page's script shows it in the reader's time zone."""
    at = parse_iso(value) if isinstance(value, str) else None
    if at is None:
        return "—"
    return at.strftime("%d/%m/%Y %H:%M" if language == DEFAULT_LANGUAGE else "%Y-%m-%d %H:%M")


def _date(value: object, language: str) -> str:
    at = parse_iso(value) if isinstance(value, str) else None
    if at is None:
        return "—"
    return at.strftime("%d/%m/%Y" if language == DEFAULT_LANGUAGE else "%Y-%m-%d")


def _secure_headers(response: web.Response) -> web.Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    language = language_of(request)
    t = Translator(language)
    settings = _container(request).settings()
    user = sessions.current_user(request)
    page = {
        "t": t,
        "lang": language,
        "user": public_user(user) if user else None,
        "csrf_token": sessions.csrf_token(request) if user else None,
        "discord_login": bool(settings.discord_client_id),
        "path": request.path,
        "path_qs": request.path_qs,
        "quoted_path": quote(request.path_qs, safe=""),
        "when": lambda value: _when(value, language),
        "date": lambda value: _date(value, language),
        "client_strings": client_strings(language),
        **context,
    }
    html = request.app[ENV_KEY].get_template(template).render(page)
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    return _secure_headers(response)


def _page_user(request: web.Request) -> dict[str, Any]:
    user = sessions.current_user(request)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
    return user


# -- what the pages show (read through the services) ------------------------------------------


def _owned_instances(container: Any, owner_id: str) -> list[dict[str, Any]]:
    with container.store().portal(write=False) as uow:
        docs = [d for d in uow.instances.all() if d.get("owner_id") == owner_id]
    live = [public_instance(d) for d in docs if not d.get("deleted_at")]
    return sorted(live, key=lambda d: d.get("created_at") or "")


def _invite(container: Any, instance: dict[str, Any]) -> str | None:
    profile = instance.get("bot_profile") or {}
    application_id = profile.get("application_id") or profile.get("id")
    if not application_id:
        return None
    return invite_url(str(application_id), oauth_base=container.settings().discord_oauth_base)


def _logs(container: Any, instance_id: str) -> list[str] | None:
    try:
        return container.runtime().logs(instance_id, LOG_LINES)
    except (RuntimeUnavailable, RuntimeFailure):
        return None


def _plan_context(container: Any, user_id: str) -> dict[str, Any]:
    plans = container.plans()
    catalog = plans.catalog()
    monthly = next((p for p in catalog if p["id"] == "monthly"), None)
    trial = next((p for p in catalog if p["id"] == "trial"), None)
    plan = plans.status(user_id)  # days_left rounded as everywhere else (plan_state)
    return {
        "plan": plan,
        "monthly": monthly,
        "trial": trial,
        "sandbox": container.settings().payments_sandbox,
    }


def _dashboard_data(container: Any, user_id: str) -> dict[str, Any]:
    instances = _owned_instances(container, user_id)
    gross = net = paid = pending = products = 0
    posted = False
    recent: list[dict[str, Any]] = []
    for inst in instances:
        orders = container.sales().list_orders(inst["id"])
        recent.extend({**o.to_doc(), "instance_name": inst["name"]} for o in orders)
        totals = order_totals(orders)
        gross += totals["gross_cents"]
        net += totals["net_cents"]
        paid += totals["paid_orders"]
        pending += totals["by_status"].get(str(OrderStatus.PENDING), 0)
        catalog = container.catalog().list_products(inst["id"])
        products += len(catalog)
        posted = posted or any(p.posts for p in catalog)
    wallet = container.wallet()
    withdrawals = wallet.withdrawals(user_id=user_id)
    return {
        "instances": instances,
        "online": sum(1 for i in instances if i.get("status") == "online"),
        "sales": {"gross_cents": gross, "net_cents": net, "paid": paid, "pending": pending},
        "balance_cents": wallet.balance(user_id),
        "withdrawing_cents": sum(
            w["amount_cents"] for w in withdrawals if w["status"] == "requested"
        ),
        "products": products,
        "posted": posted,
        "has_token": any(i.get("has_token") for i in instances),
        "recent": sorted(recent, key=lambda o: o["created_at"], reverse=True)[:RECENT_SALES],
    }


def _instances_data(container: Any, user_id: str) -> dict[str, Any]:
    instances = _owned_instances(container, user_id)
    for inst in instances:
        inst["invite_url"] = _invite(container, inst)
        inst["logs"] = _logs(container, inst["id"])
        try:
            inst["settings"] = container.instances().settings(inst["id"])
        except NotFoundError:  # an instance without settings still lists
            inst["settings"] = {}
        webhooks = container.outgoing_webhooks()
        inst["webhook"] = webhooks.endpoint(inst["id"])
        inst["webhook_deliveries"] = webhooks.deliveries(inst["id"], 20) if inst["webhook"] else []
    return {"instances": instances, **editor_fields()}


def _field_kind(name: str) -> str:
    """How a branding field is edited, from its name: a colour, a link, a long text or a line."""
    if name == "color" or name.endswith("_color"):
        return "color"
    if name.endswith("_url"):
        return "url"
    if name.endswith(("_text", "_instructions")):
        return "long"
    return "line"


def editor_fields() -> dict[str, Any]:
    """The instance's branding and DM template fields as the domain defines them: the editor
    draws one input per field, so a field added to the domain appears without a page change."""
    return {
        "branding_fields": [(k, _field_kind(k)) for k in branding.DEFAULT_BRANDING],
        "template_kinds": list(templates.KINDS),
        "template_fields": list(templates.DEFAULT_TEMPLATE),
        "placeholders": list(templates.PLACEHOLDERS),
    }


def _store_data(container: Any, user_id: str, wanted: str | None) -> dict[str, Any]:
    instances = _owned_instances(container, user_id)
    current = next((i for i in instances if i["id"] == wanted), None)
    missing = bool(wanted) and current is None
    if current is None and instances and not wanted:
        current = instances[0]
    data: dict[str, Any] = {"instances": instances, "current": current, "missing": missing}
    if current is None:
        return data
    iid = current["id"]
    counts = container.catalog().stock_counts(iid)
    products = []
    for product in container.catalog().list_products(iid):
        doc = product.to_doc()
        empty = {"available": 0, "reserved": 0, "sold": 0}
        for variant in doc["variants"]:
            variant["stock"] = {**empty, **counts.get(variant["id"], {})}
        doc["available"] = sum(v["stock"]["available"] for v in doc["variants"])
        products.append(doc)
    orders = container.sales().list_orders(iid)
    orders.sort(key=lambda o: o.created_at, reverse=True)
    names = {p["id"]: p["name"] for p in products}
    coupons = []
    for coupon in container.coupons().list(iid):
        doc = coupon.to_doc()
        doc.pop("redemptions", None)
        doc["product_names"] = [names.get(pid, pid) for pid in doc.get("product_ids") or []]
        coupons.append(doc)
    data.update(
        products=products,
        coupons=coupons,
        orders=[o.to_doc() for o in orders[:ORDERS_SHOWN]],
        orders_total=len(orders),
        totals=order_totals(orders),
        invite_url=_invite(container, current),
        # The "Novo produto" editor starts from a product's defaults, as the domain sets them.
        blank_product={**Product(id="new", name="", variants=[]).to_doc()},
        **editor_fields(),
    )
    return data


def _wallet_data(container: Any, user_id: str) -> dict[str, Any]:
    wallet = container.wallet()
    withdrawals = wallet.withdrawals(user_id=user_id)
    return {
        "balance_cents": wallet.balance(user_id),
        "entries": wallet.ledger(user_id)[:LEDGER_SHOWN],
        "withdrawals": withdrawals,
        "withdrawing_cents": sum(
            w["amount_cents"] for w in withdrawals if w["status"] == "requested"
        ),
        "min_withdrawal_cents": container.settings().min_withdrawal_cents,
        "fee_bps": container.settings().platform_fee_bps,
    }


async def _dashboard_page(
    request: web.Request, tab: str, template: str, extra: dict[str, Any]
) -> web.Response:
    user = _page_user(request)
    plan = await _blocking(_plan_context, _container(request), str(user["id"]))
    return render(request, template, {"tab": tab, **plan, **extra})


# -- routes ------------------------------------------------------------------------------------


async def landing(request: web.Request) -> web.Response:
    """The portal's front page: what Astra does, log in or sign up."""
    settings = _container(request).settings()
    return render(
        request,
        "landing.html",
        {
            "mode": "login" if request.query.get("mode") == "login" else "register",
            "next": "/dashboard",
            "trial_days": settings.trial_days,
            "plan_price_cents": settings.plan_price_cents,
            "fee_bps": settings.platform_fee_bps,
        },
    )


PUBLIC_PAGES = (
    ("plans", "/plans"),
    ("tutorials", "/tutorials"),
    ("terms", "/terms"),
    ("privacy", "/privacy"),
)


def _public_page(page: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        settings = _container(request).settings()
        return render(
            request,
            "public.html",
            {
                "page": page,
                "public_pages": PUBLIC_PAGES,
                "trial_days": settings.trial_days,
                "plan_price_cents": settings.plan_price_cents,
                "plan_days": settings.plan_days,
                "fee_bps": settings.platform_fee_bps,
                "max_instances": settings.max_instances_per_seller,
                "min_withdrawal_cents": settings.min_withdrawal_cents,
            },
        )

    handler.__doc__ = f"The public {page} page (pt-BR or English), for anyone."
    return handler


def _auth_page(mode: str) -> Handler:
    async def page(request: web.Request) -> web.StreamResponse:
        target = safe_next(request.query.get("next"))
        if target.startswith(("/login", "/register")):
            target = "/dashboard"
        if sessions.current_user(request) is not None:
            raise web.HTTPSeeOther(target)
        return render(request, "auth.html", {"mode": mode, "next": target})

    page.__doc__ = f"The {mode} page (its form posts to /auth/local/{mode})."
    return page


async def switch_language(request: web.Request) -> web.Response:
    """Set the `lang` cookie (pt-BR or en) and go back to the page."""
    wanted = request.query.get("to", "")
    target = safe_next(request.query.get("next"), default="/")
    response = web.Response(status=303, headers={"Location": target, "Cache-Control": "no-store"})
    if wanted in ("pt-BR", "en"):
        response.set_cookie(
            LANGUAGE_COOKIE, wanted, max_age=LANGUAGE_MAX_AGE, samesite="Lax", path="/"
        )
    return response


async def dashboard(request: web.Request) -> web.Response:
    """Painel: the plan, the instances, sales and the wallet at a glance."""
    user = _page_user(request)
    data = await _blocking(_dashboard_data, _container(request), str(user["id"]))
    return await _dashboard_page(request, "dashboard", "dashboard.html", data)


async def instances_page(request: web.Request) -> web.Response:
    """Instâncias: the seller's bots, their status, token, key and invite link."""
    user = _page_user(request)
    data = await _blocking(_instances_data, _container(request), str(user["id"]))
    return await _dashboard_page(request, "instances", "instances.html", data)


async def store_page(request: web.Request) -> web.Response:
    """Loja: one instance's products, stock, coupons, posts and sales (`?instance=`)."""
    user = _page_user(request)
    wanted = request.query.get("instance") or None
    data = await _blocking(_store_data, _container(request), str(user["id"]), wanted)
    response = await _dashboard_page(request, "store", "store.html", data)
    if data["missing"]:
        response.set_status(404)
    return response


async def subscriptions_page(request: web.Request) -> web.Response:
    """Assinaturas: subscribers, renewals and churn of a month, MRR (`?instance=&month=`)."""
    from astra.domain.errors import InvalidInput
    from astra.entrypoints.portal import subscriptions_api

    user = _page_user(request)
    container = _container(request)
    wanted = request.query.get("instance") or None
    month = request.query.get("month") or None

    def gather() -> dict[str, Any]:
        owned = _owned_instances(container, str(user["id"]))
        try:
            return subscriptions_api.page_data(container, owned, wanted, month)
        except InvalidInput:  # a malformed ?month= shows the current month
            return subscriptions_api.page_data(container, owned, wanted, None)

    data = await _blocking(gather)
    response = await _dashboard_page(request, "store", "subscriptions.html", data)
    if data["missing"]:
        response.set_status(404)
    return response


async def wallet_page(request: web.Request) -> web.Response:
    """Carteira: balance, ledger and withdrawals."""
    user = _page_user(request)
    data = await _blocking(_wallet_data, _container(request), str(user["id"]))
    return await _dashboard_page(request, "wallet", "wallet.html", data)


async def account_page(request: web.Request, *, error: str | None = None,
                       status: int = 200) -> web.Response:
    """Conta: profile, password, Discord link, logout."""
    user = _page_user(request)
    tokens = await _blocking(_container(request).api_tokens().list, str(user["id"]))
    response = await _dashboard_page(
        request, "account", "account.html",
        {"profile": public_user(user), "error": error, "api_tokens": tokens},
    )
    response.set_status(status)
    return response


async def _account(request: web.Request) -> web.Response:
    """Conta: profile, password, Discord link, logout."""
    return await account_page(request)


# -- forms without JavaScript: a refusal comes back as the page, with its message --------------

_AUTH_FORMS = {
    "/auth/local/login": "login",
    "/auth/local/register": "register",
    "/auth/local/change-password": "account",
}


def _refusal_message(response: web.StreamResponse) -> str | None:
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return None
    try:
        body = orjson.loads(response.body or b"")  # type: ignore[arg-type]
    except (orjson.JSONDecodeError, TypeError):
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else None


@web.middleware
async def auth_form_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    page = _AUTH_FORMS.get(request.path)
    if (
        page is None
        or request.method != "POST"
        or response.status < 400
        or request.content_type not in FORM_TYPES
        or "text/html" not in request.headers.get("Accept", "")
    ):
        return response
    message = _refusal_message(response)
    if message is None:
        return response
    if page == "account":
        if sessions.current_user(request) is None:
            return response
        return await account_page(request, error=message, status=response.status)
    form = await request.post()  # already read by the handler: aiohttp keeps it
    fields = {
        name: value
        for name in ("email", "name")
        if isinstance(value := form.get(name), str)
    }
    page_response = render(
        request,
        "auth.html",
        {
            "mode": page,
            "next": safe_next(form.get("next")),
            "error": message,
            "fields": fields,
        },
        status=response.status,
    )
    if "Retry-After" in response.headers:
        page_response.headers["Retry-After"] = response.headers["Retry-After"]
    return page_response


def add_routes(app: web.Application, container: Any) -> None:
    app[CONTAINER_KEY] = container
    app[ENV_KEY] = _environment()
    app.middlewares.append(auth_form_pages)
    r = app.router
    r.add_get("/", landing)
    r.add_get("/login", _auth_page("login"))
    r.add_get("/register", _auth_page("register"))
    r.add_get("/lang", switch_language)
    for page, path in PUBLIC_PAGES:
        r.add_get(path, _public_page(page))
    r.add_get("/dashboard", dashboard)
    r.add_get("/dashboard/instances", instances_page)
    r.add_get("/dashboard/store", store_page)
    r.add_get("/dashboard/wallet", wallet_page)
    r.add_get("/dashboard/subscriptions", subscriptions_page)
    r.add_get("/dashboard/account", _account)
    r.add_static("/static", STATIC_DIR, name=STATIC_ROUTE)

