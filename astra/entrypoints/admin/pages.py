"""The admin panel's pages (`/admin*`): server-rendered Jinja2 over the admin JSON API.

Each page calls the API's own handlers in-process (a clone of its request with the API's query),
so a page shows exactly what `/api/*` answers, under the same access rules. Actions are buttons
that a small script turns into a confirmation dialog and a `POST /api/...` with the session's
X-CSRF-Token; the API refuses writes in monitor mode, and the pages leave the buttons out.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import orjson
from aiohttp import web
from yarl import URL

from astra import __version__
from astra.domain.cart import CartState
from astra.domain.delivery import DeliveryStatus
from astra.domain.errors import DomainError, NotFoundError
from astra.domain.order import OrderStatus
from astra.domain.timestamps import parse_iso
from astra.domain.wallet import WithdrawalStatus
from astra.entrypoints.admin import api, auth, charts, store_api
from astra.entrypoints.admin.api import CONTAINER_KEY
from astra.entrypoints.admin.auth import ADMIN_KEY
from astra.entrypoints.admin.texts import DEFAULT, LANGUAGES, status_label, translator
from astra.entrypoints.portal.api_schemas import PRODUCT_UPDATE
from astra.ports.runtime import RuntimeUnavailable
from astra.ports.store import INSTANCE_ID_PATTERN

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
ENV_KEY = web.AppKey("admin_pages_env", jinja2.Environment)
LANG_COOKIE = "lang"
LOGIN = "/admin/login"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NAV = [
    ("resumo", "/admin"),
    ("operacao", "/admin/operacao"),
    ("catalogo", "/admin/catalogo"),
    ("suporte", "/admin/suporte"),
    ("solicitacoes", "/admin/solicitacoes"),
    ("contas", "/admin/contas"),
    ("runtime", "/admin/runtime"),
    ("plugins", "/admin/plugins"),
    ("auditoria", "/admin/auditoria"),
    ("diagnostico", "/admin/diagnostico"),
]
TABS = ("pedidos", "carrinhos", "entregas", "clientes")
AUDIT_TABS = ("registro", "logs", "pendencias", "publicacoes")
LOG_LEVELS = ("debug", "info", "warning", "error")
SUPPORT_KEYS_SHOWN = 200  # per variant in Suporte (masked)
PERIODS = ("day", "week", "month")
FUNNEL = ("carts", "orders", "paid", "delivered")
INSTANCE_STATES = ("online", "offline", "error", "suspended")

# Pages may load only what this app serves; the charts are inline SVG markup, not scripts.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# -- formatting ----------------------------------------------------------------------------------


def money(cents: Any, lang: str) -> str:
    if not isinstance(cents, int):
        return "—"
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    digits = f"{whole:,}"
    if lang == "en":
        return f"{sign}R$ {digits}.{part:02d}"
    return f"{sign}R$ {digits.replace(',', '.')},{part:02d}"


def when(value: Any, lang: str) -> str:
    at = parse_iso(value) if isinstance(value, str) else value
    if not isinstance(at, datetime):
        return "—"
    # A no-break space keeps the time on the date's line in narrow table cells.
    return at.strftime("%Y-%m-%d\u00a0%H:%M" if lang == "en" else "%d/%m/%Y\u00a0%H:%M")


def _lang(request: web.Request) -> str:
    wanted = request.query.get("lang") or request.cookies.get(LANG_COOKIE) or DEFAULT
    return wanted if wanted in LANGUAGES else DEFAULT


def _safe_next(value: str | None) -> str:
    # Only a path of this panel: never another host (//evil, /\evil) after the login.
    if value and re.fullmatch(r"/admin(/[A-Za-z0-9_\-/]*)?(\?[^\\]*)?", value) \
            and not value.startswith("//"):
        return value
    return "/admin"


# -- rendering -----------------------------------------------------------------------------------


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    return env


# What an id that goes into an action's URL may look like: the platform's own ids (ord_…, usr_…,
# wd_…), Discord snowflakes, instance ids and plugin names all fit. Ids come from tenant data
# (a bot writes buyers, carts and orders): one like "../accounts/usr_x" would otherwise aim a
# button at another route. It must start with a letter or digit, so "." and ".." never match.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


def api_path(*parts: Any, **query: Any) -> str | None:
    """`/api/<part>/<part>...?<query>`, each part quoted as exactly one path segment; None (no
    button) when a part or a query value is not a well-formed id."""
    values = [*parts, *(v for v in query.values() if v not in (None, ""))]
    if not all(isinstance(v, str) and SAFE_ID.fullmatch(v) for v in values):
        return None
    path = "/api/" + "/".join(quote(part, safe="") for part in parts)
    wanted = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{path}?{urlencode(wanted)}" if wanted else path


def _url(request: web.Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    query = dict(request.query)
    for key, value in changes.items():
        if value is None or value == "":
            query.pop(key, None)
        else:
            query[key] = str(value)
    return str(URL(request.path).with_query(query))


def render(request: web.Request, template: str, **context: Any) -> web.Response:
    lang = _lang(request)
    t = translator(lang)
    admin = request.get(ADMIN_KEY) or {}
    base = {
        "t": t,
        "lang": lang,
        "other_lang": "en" if lang != "en" else "pt-BR",
        "st": lambda s: status_label(t, s),
        "money": lambda c: money(c, lang),
        "when": lambda v: when(v, lang),
        "url": lambda **kw: _url(request, **kw),
        "api_path": api_path,
        "nav": NAV,
        "path": request.path,
        "q": request.query,
        "who": admin.get("name", ""),
        "role": admin.get("role", ""),
        "monitor": admin.get("role") != "admin",
        # Sandbox payments get an "approve" button in Pedidos (never with real Mercado Pago).
        "sandbox": bool(getattr(request.app[CONTAINER_KEY].gateway(), "simulated", False)),
        "csrf": admin.get("csrf", ""),
        "version": __version__,
        "errors": [],
        "active": "",
    }
    html = request.app[ENV_KEY].get_template(template).render(base | context)
    response = web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers=HEADERS)
    if request.query.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, path="/", max_age=365 * 86400, samesite="Lax")
    return response


class Fetch:
    """Calls API handlers for a page; a refusal becomes a message on the page, not a crash."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.errors: list[str] = []
        self.lang = _lang(request)

    async def __call__(self, handler: Handler, default: Any, **query: Any) -> Any:
        """The handler's JSON answer to this page's request with `query` as its query."""
        wanted = {k: str(v) for k, v in query.items() if v not in (None, "")}
        sub = self.request.clone(rel_url=URL("/api").with_query(wanted))
        try:
            response = await handler(sub)
        except DomainError as exc:
            self.errors.append(exc.message(self.lang))
            return default
        body = getattr(response, "body", None)
        data = orjson.loads(body) if isinstance(body, bytes) and body else default
        if response.status >= 400:
            self.errors.append(str(data.get("message") if isinstance(data, dict) else data))
            return default
        return data

    async def run(self, fn: Callable[..., Any], default: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except DomainError as exc:
            self.errors.append(exc.message(self.lang))
        except RuntimeUnavailable as exc:
            self.errors.append(str(exc))
        except Exception as exc:  # a runtime engine's own error: shown, not a 500
            self.errors.append(f"{type(exc).__name__}: {exc}")
        return default


async def _instance_ids(request: web.Request) -> list[str]:
    return await asyncio.to_thread(api._c(request).store().instance_ids)


def _filter_value(request: web.Request, name: str, allowed: tuple[str, ...] = ()) -> str:
    value = (request.query.get(name) or "").strip()[:100]
    if allowed and value not in allowed:
        return ""
    return value


# -- access --------------------------------------------------------------------------------------


def _is_page(path: str) -> bool:
    return (path == "/admin" or path.startswith("/admin/")) and path not in (
        LOGIN, "/admin/logout")


@web.middleware
async def login_redirect(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A page visit without a valid session goes to the login page (the API keeps its 401)."""
    response = await handler(request)
    if response.status == 401 and request.method == "GET" and _is_page(request.path):
        raise web.HTTPFound(str(URL(LOGIN).with_query(next=request.path_qs)))
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    target = _safe_next(request.query.get("next"))
    if request.get(ADMIN_KEY):
        raise web.HTTPFound(target)
    return render(request, "login.html", next=target)


async def logout_page(request: web.Request) -> web.StreamResponse:
    # A GET as well as the API's POST: a monitor session may not POST, yet must be able to leave.
    # The session cookie is SameSite=Strict, so another site cannot log an operator out.
    response = web.HTTPFound(LOGIN)
    await auth.end_session(request, response)
    raise response


# -- pages ---------------------------------------------------------------------------------------


async def resumo(request: web.Request) -> web.Response:
    fetch = Fetch(request)
    period = _filter_value(request, "period", PERIODS) or "day"
    lang = fetch.lang
    overview = await fetch(api.overview, {}, period=period)
    status = await fetch(api.status, {})
    pending = await fetch(api.withdrawals, [], status="requested")
    series = overview.get("series") or []
    gmv = charts.bar_chart([(p["bucket"], p["gmv_cents"]) for p in series],
                           lambda c: money(c, lang).replace(",00", "").replace(".00", ""))
    orders = charts.bar_chart([(p["bucket"], p["orders"]) for p in series], str, min_top=4)
    funnel = charts.funnel(overview.get("funnel") or {}, FUNNEL)
    instances = overview.get("instances") or {}
    return render(request, "resumo.html", active="resumo", errors=fetch.errors,
                  overview=overview, platform=status, period=period, periods=PERIODS,
                  gmv_chart=gmv, orders_chart=orders, funnel=funnel,
                  instance_states=[(s, instances.get(s, 0)) for s in INSTANCE_STATES]
                  + [(s, n) for s, n in sorted(instances.items()) if s not in INSTANCE_STATES],
                  pending_count=len(pending))


async def operacao_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(str(URL("/admin/operacao/pedidos").with_query(request.query)))


async def operacao(request: web.Request) -> web.Response:
    tab = request.match_info["tab"]
    if tab not in TABS:
        raise web.HTTPFound("/admin/operacao/pedidos")
    fetch = Fetch(request)
    instance = _filter_value(request, "instance")
    search = _filter_value(request, "q")
    statuses: tuple[str, ...]
    rows: list[dict[str, Any]]
    orders_by_id: dict[str, dict[str, Any]] = {}
    if tab == "pedidos":
        statuses = tuple(s.value for s in OrderStatus)
        status = _filter_value(request, "status", statuses)
        rows = await fetch(api.orders, [], instance=instance, status=status, q=search)
    elif tab == "carrinhos":
        statuses = tuple(s.value for s in CartState)
        status = _filter_value(request, "status", statuses)
        rows = await fetch(api.carts, [], instance=instance, status=status, q=search)
    elif tab == "entregas":
        statuses = tuple(s.value for s in DeliveryStatus)
        status = _filter_value(request, "status", statuses)
        rows = await fetch(api.deliveries, [], instance=instance, status=status, q=search)
        if rows:
            orders = await fetch(api.orders, [], instance=instance)
            orders_by_id = {(o["instance_id"], o["id"]): o for o in orders}
    else:
        statuses = ("blocked", "active")
        status = _filter_value(request, "status", statuses)
        rows = await fetch(api.customers, [], instance=instance, q=search)
        if status:
            rows = [r for r in rows if bool(r.get("blocked")) == (status == "blocked")]
    return render(request, "operacao.html", active="operacao", tab=tab, tabs=TABS,
                  errors=fetch.errors, rows=rows, statuses=statuses, status=status,
                  instance=instance, search=search, instances=await _instance_ids(request),
                  orders_by_id=orders_by_id)


async def catalogo(request: web.Request) -> web.Response:
    fetch = Fetch(request)
    instance = _filter_value(request, "instance")
    search = _filter_value(request, "q")
    products = await fetch(api.products, [], instance=instance, q=search)
    coupons = await fetch(api.coupons, [], instance=instance, q=search)
    stock = await fetch(api.stock, {}, instance=instance)
    products.sort(key=lambda p: (p["instance_id"], p.get("name", "").lower()))
    coupons.sort(key=lambda c: (c["instance_id"], c.get("code", "")))
    return render(request, "catalogo.html", active="catalogo", errors=fetch.errors,
                  products=products, coupons=coupons, stock=stock, instance=instance,
                  search=search, instances=await _instance_ids(request))


async def solicitacoes(request: web.Request) -> web.Response:
    fetch = Fetch(request)
    statuses = tuple(s.value for s in WithdrawalStatus)
    status = _filter_value(request, "status", statuses)
    rows = await fetch(api.withdrawals, [], status=status)
    users = {u["id"]: u for u in await fetch(api.accounts, [])}
    rows.sort(key=lambda w: w.get("requested_at") or "", reverse=True)
    rows.sort(key=lambda w: w.get("status") != "requested")
    pending = [w for w in rows if w.get("status") == "requested"]
    return render(request, "solicitacoes.html", active="solicitacoes", errors=fetch.errors,
                  rows=rows, users=users, statuses=statuses, status=status,
                  pending_count=len(pending),
                  pending_cents=sum(w["amount_cents"] for w in pending))


async def contas(request: web.Request) -> web.Response:
    fetch = Fetch(request)
    search = _filter_value(request, "q").lower()
    users = await fetch(api.accounts, [])
    if search:
        users = [u for u in users if search in str(u).lower()]
    owned: dict[str, int] = {}
    for row in await fetch(api.runtime_list, []):
        owned[row.get("owner_id")] = owned.get(row.get("owner_id"), 0) + 1
    wallet = api._c(request).wallet()

    def balances() -> dict[str, int]:
        return {u["id"]: wallet.balance(u["id"]) for u in users}

    users.sort(key=lambda u: u.get("created_at") or "", reverse=True)
    return render(request, "contas.html", active="contas", errors=fetch.errors, users=users,
                  owned=owned, balances=await fetch.run(balances, {}), search=search)


async def runtime(request: web.Request) -> web.Response:
    fetch = Fetch(request)
    rows = await fetch(api.runtime_list, [])
    platform = await fetch(api.status, {})
    logs_of = _filter_value(request, "logs")
    lines: list[str] | None = None
    if logs_of and INSTANCE_ID_PATTERN.fullmatch(logs_of):
        lines = await fetch.run(api._c(request).runtime().logs, None, logs_of, 200)
    elif logs_of:
        logs_of = ""
    rows.sort(key=lambda r: (r.get("status") == "online", r.get("id")))
    return render(request, "runtime.html", active="runtime", errors=fetch.errors, rows=rows,
                  platform=platform, logs_of=logs_of, lines=lines)


async def plugins(request: web.Request) -> web.Response:
    fetch = Fetch(request)
    instances = await _instance_ids(request)
    instance = _filter_value(request, "instance")
    if instance and instance not in instances:
        fetch.errors.append(NotFoundError("instância", instance).message(fetch.lang))
        instance = ""
    rows = await fetch(api.plugins, [])
    here: dict[str, bool] = {}
    overrides: dict[str, bool] = {}
    if instance:
        here = {r["name"]: r["enabled"] for r in await fetch(api.plugins, [], instance=instance)}
        overrides = await fetch.run(api._c(request).plugins().instance_toggles, {}, instance)
    return render(request, "plugins.html", active="plugins", errors=fetch.errors, rows=rows,
                  instance=instance, instances=instances, here=here, overrides=overrides)


async def auditoria(request: web.Request) -> web.Response:
    tab = request.match_info.get("tab", "registro")
    if tab not in AUDIT_TABS:
        raise web.HTTPFound("/admin/auditoria")
    if tab == "logs":
        return await _auditoria_logs(request)
    if tab == "pendencias":
        return await _auditoria_work(request)
    if tab == "publicacoes":
        return await _auditoria_posts(request)
    fetch = Fetch(request)
    instance = _filter_value(request, "instance")
    action = _filter_value(request, "action")
    actor = _filter_value(request, "actor")
    search = _filter_value(request, "q").lower()
    rows = await fetch(api.logs_recent, [], instance=instance, action=action, actor=actor)
    if search:
        rows = [r for r in rows if search in orjson.dumps(r).decode().lower()]
    return render(request, "auditoria.html", active="auditoria", errors=fetch.errors, rows=rows,
                  instance=instance, action=action, actor=actor, search=search,
                  instances=await _instance_ids(request), tab="registro", tabs=AUDIT_TABS)


async def _auditoria_logs(request: web.Request) -> web.Response:
    """The platform's recent log lines (this process), redacted, by level and text."""
    fetch = Fetch(request)
    level = _filter_value(request, "level", LOG_LEVELS)
    search = _filter_value(request, "q")
    lines = await fetch(store_api.platform_logs, [], level=level, q=search, limit=500)
    return render(request, "auditoria_logs.html", active="auditoria", errors=fetch.errors,
                  lines=lines, level=level, levels=LOG_LEVELS, search=search, tab="logs",
                  tabs=AUDIT_TABS)


async def _auditoria_work(request: web.Request) -> web.Response:
    """What waits on someone: withdrawals, undelivered paid orders, waiting stock, errors."""
    fetch = Fetch(request)
    feed = await fetch(store_api.work, {"withdrawals": [], "paid_not_delivered": [],
                                        "waiting_stock": [], "runtime_errors": [], "total": 0})
    return render(request, "auditoria_work.html", active="auditoria", errors=fetch.errors,
                  feed=feed, tab="pendencias", tabs=AUDIT_TABS)


async def _auditoria_posts(request: web.Request) -> web.Response:
    """Which product posts are missing or stale in Discord (asked with each bot's token)."""
    fetch = Fetch(request)
    instance = _filter_value(request, "instance")
    rows = await fetch(store_api.posts, [], instance=instance)
    order = {"missing": 0, "stale": 1, "no_access": 2, "unknown": 3, "not_posted": 4, "ok": 5}
    rows.sort(key=lambda r: (order.get(r.get("state"), 9), r.get("instance_id") or "",
                             r.get("product_name") or ""))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return render(request, "auditoria_posts.html", active="auditoria", errors=fetch.errors,
                  rows=rows, counts=counts, instance=instance,
                  instances=await _instance_ids(request), tab="publicacoes", tabs=AUDIT_TABS)


async def suporte(request: web.Request) -> web.Response:
    """Suporte: run one seller's store — settings, products, stock, coupons, posts."""
    fetch = Fetch(request)
    instances = await _instance_ids(request)
    instance = _filter_value(request, "instance")
    if instance and instance not in instances:
        fetch.errors.append(NotFoundError("instância", instance).message(fetch.lang))
        instance = ""
    context: dict[str, Any] = {"products": [], "coupons": [], "settings": {}, "stock": {},
                               "keys": {}}
    if instance:
        c = api._c(request)
        context["settings"] = await fetch.run(c.instances().settings, {}, instance)
        context["products"] = await fetch(api.products, [], instance=instance)
        context["products"].sort(key=lambda p: (not p.get("active"), p.get("name", "").lower()))
        context["coupons"] = await fetch(api.coupons, [], instance=instance)
        context["stock"] = (await fetch(api.stock, {}, instance=instance)).get(instance, {})
        for product in context["products"]:
            # What the JSON editor shows: the fields the seller's API takes, variants with ids.
            product["editable"] = {k: product[k] for k in EDITABLE_PRODUCT_FIELDS
                                   if k in product}
            if product.get("delivery_kind") != "key" or product.get("unlimited_stock"):
                continue
            for variant in product.get("variants", []):
                listing = await fetch.run(
                    functools.partial(c.catalog().list_keys, limit=SUPPORT_KEYS_SHOWN),
                    {"keys": []}, instance, product["id"], variant["id"])
                context["keys"][variant["id"]] = listing["keys"]
    return render(request, "suporte.html", active="suporte", errors=fetch.errors,
                  instance=instance, instances=instances, editable=EDITABLE_PRODUCT_FIELDS,
                  **context)


# What the support editor's JSON shows of a product: every field the seller's API takes.
EDITABLE_PRODUCT_FIELDS = tuple(PRODUCT_UPDATE["properties"])


SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


async def diagnostico(request: web.Request) -> web.Response:
    fetch = Fetch(request)
    report = await fetch(api.diagnostics, {"findings": [], "errors": 0})
    findings = sorted(report["findings"],
                      key=lambda f: (SEVERITY_ORDER.get(f.get("severity"), 3), f.get("check")))
    counts = {s: sum(1 for f in findings if f.get("severity") == s) for s in SEVERITY_ORDER}
    return render(request, "diagnostico.html", active="diagnostico", errors=fetch.errors,
                  findings=findings, counts=counts)


def add_routes(app: web.Application) -> None:
    app[ENV_KEY] = _env()
    r = app.router
    r.add_get(LOGIN, login_page)
    r.add_get("/admin/logout", logout_page)
    r.add_get("/admin", resumo)
    r.add_get("/admin/", resumo)
    r.add_get("/admin/operacao", operacao_index)
    r.add_get("/admin/operacao/{tab}", operacao)
    r.add_get("/admin/catalogo", catalogo)
    r.add_get("/admin/solicitacoes", solicitacoes)
    r.add_get("/admin/contas", contas)
    r.add_get("/admin/runtime", runtime)
    r.add_get("/admin/plugins", plugins)
    r.add_get("/admin/auditoria", auditoria)
    r.add_get("/admin/auditoria/{tab}", auditoria)
    r.add_get("/admin/suporte", suporte)
    r.add_get("/admin/diagnostico", diagnostico)
    r.add_static("/static/", STATIC, append_version=False)
