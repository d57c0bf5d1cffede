"""The admin panel's JSON API (`/api/*` on :3000), with the original panel's route names.

Reads span every instance; writes go through the same services as everything else, with the
operator as the actor, so each one lands in the audit log. Domain errors become 4xx answers
(errors_as_json); blocking calls run in worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from astra.domain.errors import InvalidInput, NotFoundError
from astra.domain.services.diagnostics import Diagnostics
from astra.domain.services.reporting import Reporting
from astra.entrypoints.admin.auth import ADMIN_KEY, COOKIE, actor
from astra.entrypoints.middleware import json_response, loads_request_json
from astra.entrypoints.portal import openapi
from astra.ports.payments import GatewayError, GatewayUnavailable
from astra.ports.runtime import RuntimeUnavailable
from astra.ports.store import INSTANCE_ID_PATTERN

CONTAINER_KEY = web.AppKey("admin_container", object)
LIST_LIMIT = 500


def _c(request: web.Request) -> Any:
    return request.app[CONTAINER_KEY]


async def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    try:
        data = loads_request_json(raw)
    except ValueError:
        # Malformed, or nested deeper than any admin body needs: the client's mistake.
        raise web.HTTPBadRequest(reason="Malformed or too deeply nested JSON body") from None
    if not isinstance(data, dict):
        raise InvalidInput("invalid_field", field="JSON body")
    return data


def _instances(request: web.Request) -> list[str]:
    """All instances, or the one `?instance=` names."""
    store = _c(request).store()
    wanted = request.query.get("instance")
    ids = store.instance_ids()
    if wanted:
        if not INSTANCE_ID_PATTERN.fullmatch(wanted) or wanted not in ids:
            raise NotFoundError("instância", wanted)
        return [wanted]
    return ids


def _known_instance(request: web.Request, instance_id: str) -> None:
    """404 unless an instance of that id exists: a write unit of work on an unknown id would
    create its directory."""
    with _c(request).store().portal(write=False) as uow:
        if not INSTANCE_ID_PATTERN.fullmatch(instance_id) or uow.instances.get(instance_id) is None:
            raise NotFoundError("instância", instance_id)


def _collect(request: web.Request, collection: str,
             keep: Callable[[dict[str, Any]], bool] = lambda d: True) -> list[dict[str, Any]]:
    store = _c(request).store()
    search = (request.query.get("q") or "").strip().lower()
    status = request.query.get("status")
    out: list[dict[str, Any]] = []
    for instance_id in _instances(request):
        with store.instance(instance_id, write=False) as uow:
            docs = uow.repo(collection).all()
        for doc in docs:
            if status and doc.get("status", doc.get("state")) != status:
                continue
            if search and search not in str(doc).lower():
                continue
            if keep(doc):
                doc.pop("secret", None)  # stock keys stay sealed here
                if isinstance(doc.get("charge"), dict):
                    doc["charge"].pop("qr_code_png_base64", None)
                out.append({"instance_id": instance_id, **doc})
    out.sort(key=lambda d: d.get("created_at") or d.get("added_at") or "", reverse=True)
    return out[:LIST_LIMIT]


def _order_instance(request: web.Request, order_id: str) -> str:
    store = _c(request).store()
    for instance_id in _instances(request):
        with store.instance(instance_id, write=False) as uow:
            if uow.orders.get(order_id) is not None:
                return instance_id
    raise NotFoundError("pedido", order_id)


def _cart_instance(request: web.Request, cart_id: str) -> str:
    store = _c(request).store()
    for instance_id in _instances(request):
        with store.instance(instance_id, write=False) as uow:
            if uow.carts.get(cart_id) is not None:
                return instance_id
    raise NotFoundError("carrinho", cart_id)


# -- reads -------------------------------------------------------------------------------------


async def status(request: web.Request) -> web.Response:
    """Platform status: store, payments mode, runtime, counts."""
    c = _c(request)
    health = await _run(c.store().health)
    runtime = c.runtime()
    return json_response({
        "store": health, "payments": "sandbox" if c.gateway().simulated else "mercadopago",
        "runtime": runtime.name, "role": request[ADMIN_KEY]["role"],
        "runtime_mode": getattr(runtime, "mode", "isolated"),
        "pools": await _run(runtime.pools) if hasattr(runtime, "pools") else {},
        "instances": len(await _run(c.store().instance_ids)),
    })


async def overview(request: web.Request) -> web.Response:
    """Executive view: GMV, fees, plan revenue, balances owed, funnel, series."""
    period = request.query.get("period", "day")
    return json_response(await _run(Reporting(_c(request).store(), _c(request).clock())
                                    .overview, period))


async def orders(request: web.Request) -> web.Response:
    """Orders across instances (?instance, ?status, ?q)."""
    return json_response(await _run(_collect, request, "orders"))


async def carts(request: web.Request) -> web.Response:
    """Carts across instances."""
    return json_response(await _run(_collect, request, "carts"))


async def deliveries(request: web.Request) -> web.Response:
    """The delivery outbox across instances."""
    return json_response(await _run(_collect, request, "deliveries"))


async def customers(request: web.Request) -> web.Response:
    """Buyers across instances."""
    return json_response(await _run(_collect, request, "buyers"))


async def products(request: web.Request) -> web.Response:
    """Catalogs across instances."""
    return json_response(await _run(_collect, request, "products"))


async def coupons(request: web.Request) -> web.Response:
    """Coupons across instances."""
    return json_response(await _run(_collect, request, "coupons"))


async def stock(request: web.Request) -> web.Response:
    """Key counts per variant (keys themselves are never shown here)."""
    c = _c(request)

    def counts() -> dict[str, Any]:
        return {i: c.catalog().stock_counts(i) for i in _instances(request)}

    return json_response(await _run(counts))


async def withdrawals(request: web.Request) -> web.Response:
    """Withdrawal requests (?status=requested|paid|rejected|cancelled), each with its seller's
    balance now (`balance_cents`: negative when chargebacks came after the request)."""
    wallet = _c(request).wallet()

    def rows() -> list[dict[str, Any]]:
        docs = wallet.withdrawals(status=request.query.get("status"))
        balances = wallet.balances([d["user_id"] for d in docs])
        return [{**d, "balance_cents": balances[d["user_id"]]} for d in docs]

    return json_response(await _run(rows))


async def accounts(request: web.Request) -> web.Response:
    """Portal users with their plans (never a password hash)."""
    c = _c(request)

    def users() -> list[dict[str, Any]]:
        from astra.domain.services.plans import plan_state

        now = c.clock().now()
        with c.store().portal(write=False) as uow:
            docs = uow.users.all()
        return [{k: v for k, v in d.items() if k != "password_hash"}
                | {"plan_state": plan_state(d, now)} for d in docs]

    return json_response(await _run(users))


async def runtime_list(request: web.Request) -> web.Response:
    """Every instance's runtime status and reason."""
    c = _c(request)

    def rows() -> list[dict[str, Any]]:
        from astra.domain.services.instances import public_instance

        with c.store().portal(write=False) as uow:
            return [public_instance(d) for d in uow.instances.all()]

    return json_response(await _run(rows))


async def runtime_logs(request: web.Request) -> web.Response:
    """The last lines an instance's runtime wrote."""
    instance_id = request.match_info["id"]
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
        raise NotFoundError("instância", instance_id)
    try:
        lines = await _run(_c(request).runtime().logs, instance_id, 200)
    except RuntimeUnavailable as exc:
        return json_response({"error": "docker_unavailable", "message": str(exc)}, status=503)
    return json_response({"instance_id": instance_id, "lines": lines})


async def logs_recent(request: web.Request) -> web.Response:
    """The audit log, newest first (?instance, ?action, ?actor)."""
    c = _c(request)
    action, who = request.query.get("action"), request.query.get("actor")

    def entries() -> list[dict[str, Any]]:
        out = []
        with c.store().portal(write=False) as uow:
            out += [{"instance_id": None, **a} for a in uow.audit.all()]
        for instance_id in _instances(request):
            with c.store().instance(instance_id, write=False) as uow:
                out += [{"instance_id": instance_id, **a} for a in uow.audit.all()]
        out = [a for a in out if (not action or a["action"].startswith(action))
               and (not who or a["actor"] == who)]
        out.sort(key=lambda a: a["at"], reverse=True)
        return out[:LIST_LIMIT]

    return json_response(await _run(entries))


async def diagnostics(request: web.Request) -> web.Response:
    """Consistency and reachability checks, each with a severity and a hint."""
    c = _c(request)
    findings = [f.to_doc() for f in await _run(Diagnostics(c.store(), c.clock()).run)]
    settings = c.settings()
    try:
        docker_ok = c.runtime().name != "docker" or c.runtime().available()
    except Exception:
        docker_ok = False
    if not docker_ok:
        findings.append({"check": "docker", "severity": "error",
                         "message": "the Docker engine does not answer",
                         "hint": "start dockerd or set ASTRA_RUNTIME=process"})
    if c.gateway().simulated:
        findings.append({"check": "payments", "severity": "warning",
                         "message": "payments are simulated (sandbox)",
                         "hint": "set MERCADOPAGO_ACCESS_TOKEN to take real PIX"})
    else:
        # A read of a payment that does not exist: 404 means the credentials work.
        try:
            await _run(c.gateway().get_charge, "1")
        except GatewayUnavailable as exc:
            findings.append({"check": "payments", "severity": "warning",
                             "message": f"Mercado Pago unreachable: {exc}",
                             "hint": "check the network; the reconcile loop retries"})
        except GatewayError as exc:
            findings.append({"check": "payments", "severity": "error",
                             "message": f"Mercado Pago refused the credentials: {exc}",
                             "hint": "set a valid MERCADOPAGO_ACCESS_TOKEN"})
    if not c.gateway().simulated and not settings.mercadopago_webhook_secret:
        findings.append({"check": "webhook", "severity": "error",
                         "message": "MERCADOPAGO_WEBHOOK_SECRET is not set: webhooks are "
                                    "accepted unsigned", "hint": "copy it from Mercado Pago"})
    return json_response({"findings": findings,
                          "errors": sum(1 for f in findings if f["severity"] == "error")})


async def plugins(request: web.Request) -> web.Response:
    """Installed plugins with their hooks, toggles and errors (?instance for its overrides)."""
    manager = _c(request).plugins()
    instance = request.query.get("instance")
    if instance:
        await _run(_instances, request)  # an unknown or malformed id is a 404, not a 500
    rows = await _run(manager.plugins)
    effective = await _run(manager.effective, instance)
    return json_response([{**r, "enabled": effective.get(r["name"])} for r in rows])


# -- writes ------------------------------------------------------------------------------------


async def toggle_plugin(request: web.Request) -> web.Response:
    """Enable or disable a plugin globally, or for one instance ({"enabled", "instance"?})."""
    data = await _body(request)
    name = request.match_info["name"]
    enabled = data.get("enabled")
    if not isinstance(enabled, bool) and not (data.get("instance") and enabled is None):
        raise InvalidInput("invalid_field", field="enabled")
    manager = _c(request).plugins()
    if data.get("instance"):
        instance_id = str(data["instance"])
        if (not INSTANCE_ID_PATTERN.fullmatch(instance_id)
                or instance_id not in await _run(_c(request).store().instance_ids)):
            raise NotFoundError("instância", instance_id)  # never a 500, never a new directory
        await _run(manager.set_instance, instance_id, name, enabled, actor(request))
    else:
        await _run(manager.set_global, name, enabled, actor(request))
    return json_response({"ok": True, "name": name, "enabled": enabled})


async def complete_withdrawal(request: web.Request) -> web.Response:
    """Mark a withdrawal paid (the PIX was sent)."""
    w = await _run(_c(request).wallet().complete_withdrawal, request.match_info["id"],
                   actor=actor(request))
    return json_response(w.to_doc())


async def reject_withdrawal(request: web.Request) -> web.Response:
    """Reject a withdrawal with a reason; the amount returns to the wallet."""
    data = await _body(request)
    w = await _run(_c(request).wallet().reject_withdrawal, request.match_info["id"],
                   actor=actor(request), reason=str(data.get("reason") or ""))
    return json_response(w.to_doc())


async def manual_deliver(request: web.Request) -> web.Response:
    """Deliver a paid order again now (the instance's bot sends it)."""
    order_id = request.match_info["id"]
    instance_id = await _run(_order_instance, request, order_id)
    d = await _run(_c(request).delivery().redeliver, instance_id, order_id,
                   actor=actor(request))
    return json_response({"instance_id": instance_id, **d.to_doc()})


async def resync(request: web.Request) -> web.Response:
    """Ask the gateway about an order's charge now and apply what it says."""
    order_id = request.match_info["id"]
    c = _c(request)
    instance_id = await _run(_order_instance, request, order_id)
    order = await _run(c.sales().get_order, instance_id, order_id)
    outcome = await _run(c.payments().check_order, instance_id, order, c.clock().now())
    return json_response({"instance_id": instance_id, "action": outcome.action})


async def sandbox_approve(request: web.Request) -> web.Response:
    """Sandbox only: approve an order's simulated PIX charge and settle it now."""
    order_id = request.match_info["id"]
    c = _c(request)
    gateway = c.gateway()
    if not getattr(gateway, "simulated", False):
        raise NotFoundError("ação", "sandbox-approve")  # real payments are never faked
    instance_id = await _run(_order_instance, request, order_id)
    order = await _run(c.sales().get_order, instance_id, order_id)
    if not order.charge_id:
        raise InvalidInput("invalid_field", field="charge")
    try:
        charge = await _run(gateway.approve, order.charge_id)
    except GatewayError as exc:
        raise InvalidInput("invalid_transition", what="a cobrança", state=str(exc)) from None
    outcome = await _run(c.payments().apply_charge, charge)
    return json_response({"instance_id": instance_id, "action": outcome.action})


async def refund(request: web.Request) -> web.Response:
    """Refund a paid order at the gateway (full) and reverse the seller's credit."""
    order_id = request.match_info["id"]
    data = await _body(request)
    c = _c(request)
    instance_id = await _run(_order_instance, request, order_id)
    order = await _run(c.sales().get_order, instance_id, order_id)
    if order.charge_id:
        await _run(c.gateway().refund_charge, order.charge_id)
    refunded = await _run(c.settlement().refund, instance_id, order_id, kind="refund",
                          reason=str(data.get("reason") or "admin"), actor=actor(request))
    return json_response({"instance_id": instance_id, "status": refunded.status.value})


async def retry_waiting_stock(request: web.Request) -> web.Response:
    """Serve orders waiting for stock from the stock there is now."""
    c = _c(request)

    def retry() -> dict[str, list[str]]:
        return {i: c.settlement().retry_waiting_stock(i) for i in _instances(request)}

    return json_response(await _run(retry))


async def cancel_cart(request: web.Request) -> web.Response:
    """Cancel a live cart: its keys go back to stock, its charge is cancelled."""
    cart_id = request.match_info["id"]
    instance_id = await _run(_cart_instance, request, cart_id)
    cart = await _run(_c(request).sales().cancel_cart_by_id, instance_id, cart_id,
                      actor=actor(request))
    return json_response({"instance_id": instance_id, **cart.to_doc()})


async def confirm_cart(request: web.Request) -> web.Response:
    """Confirm a cart's payment by hand (money received outside the gateway)."""
    cart_id = request.match_info["id"]
    c = _c(request)
    instance_id = await _run(_cart_instance, request, cart_id)
    cart = await _run(c.sales().get_cart_by_id, instance_id, cart_id)
    if not cart.order_id:
        raise InvalidInput("cart_empty")
    order = await _run(c.sales().get_order, instance_id, cart.order_id)
    paid = await _run(c.settlement().confirm_payment, instance_id, order.id,
                      amount_cents=order.total_cents, payment_id=f"manual:{cart_id}",
                      actor=actor(request))
    return json_response({"instance_id": instance_id, "status": paid.status.value})


async def block_customer(request: web.Request) -> web.Response:
    """Block or unblock a buyer in an instance ({"instance", "blocked", "reason"})."""
    data = await _body(request)
    instance_id = str(data.get("instance") or "")
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
        raise InvalidInput("invalid_field", field="instance")
    await _run(_known_instance, request, instance_id)
    blocked = data.get("blocked", True)
    if not isinstance(blocked, bool):
        raise InvalidInput("invalid_field", field="blocked")
    c = _c(request)
    buyer_id = request.match_info["id"]

    def apply() -> dict[str, Any]:
        from astra.domain.services.audit_log import record

        with c.store().instance(instance_id) as uow:
            doc = uow.buyers.get(buyer_id)
            if doc is None:
                raise NotFoundError("cliente", buyer_id)
            doc["blocked"] = blocked
            doc["blocked_reason"] = str(data.get("reason") or "")[:200]
            uow.buyers.put(doc)
            record(uow, at=c.clock().now(), actor=actor(request),
                   action="buyer.blocked" if blocked else "buyer.unblocked",
                   target=f"buyer:{buyer_id}", reason=doc["blocked_reason"])
            uow.commit()
        return doc

    return json_response(await _run(apply))


async def extend_plan(request: web.Request) -> web.Response:
    """Add days to a seller's plan ({"days": 1..3650}), from its end or from now."""
    data = await _body(request)
    days = data.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise InvalidInput("invalid_field", field="days")
    c = _c(request)
    user_id = request.match_info["id"]

    def apply() -> dict[str, Any]:
        from datetime import timedelta

        from astra.domain.services.audit_log import record
        from astra.domain.services.plans import plan_state
        from astra.domain.timestamps import iso, parse_iso

        now = c.clock().now()
        with c.store().portal() as uow:
            user = uow.users.get(user_id)
            if user is None:
                raise NotFoundError("conta", user_id)
            state = plan_state(user, now)
            base = parse_iso(state["until"]) if state["active"] else now
            user["plan"] = {"kind": "paid" if state["kind"] in ("paid", "none") else
                            state["kind"], "until": iso(base + timedelta(days=days))}
            uow.users.put(user)
            record(uow, at=now, actor=actor(request), action="plan.extended",
                   target=f"user:{user_id}", days=days, until=user["plan"]["until"])
            uow.commit()
        return {"id": user_id, "plan": user["plan"]}

    return json_response(await _run(apply))


async def block_account(request: web.Request) -> web.Response:
    """Block or unblock a seller's account ({"blocked", "reason"}): a blocked account cannot log
    in, and its instances are suspended by the runtime monitor."""
    data = await _body(request)
    blocked = data.get("blocked", True)
    if not isinstance(blocked, bool):
        raise InvalidInput("invalid_field", field="blocked")
    c = _c(request)
    user_id = request.match_info["id"]

    def apply() -> dict[str, Any]:
        from astra.domain.services.audit_log import record

        with c.store().portal() as uow:
            user = uow.users.get(user_id)
            if user is None:
                raise NotFoundError("conta", user_id)
            user["blocked"] = blocked
            # Blocking also ends the account's sessions.
            user["session_version"] = int(user.get("session_version") or 0) + int(blocked)
            uow.users.put(user)
            record(uow, at=c.clock().now(), actor=actor(request),
                   action="account.blocked" if blocked else "account.unblocked",
                   target=f"user:{user_id}", reason=str(data.get("reason") or "")[:200])
            uow.commit()
        return {"id": user_id, "blocked": blocked}

    return json_response(await _run(apply))


async def runtime_action(request: web.Request) -> web.Response:
    """Start, stop or restart an instance's bot."""
    action = request.match_info["action"]
    states = {"start": "running", "stop": "stopped", "restart": "restart"}
    if action not in states:
        raise NotFoundError("ação", action)
    doc = await _run(_c(request).instances().set_desired_state, request.match_info["id"],
                     states[action], actor=actor(request))
    return json_response(doc)


# -- OpenAPI -----------------------------------------------------------------------------------

_STRING = {"type": "string", "maxLength": 200}
_INSTANCE = {"type": "string", "pattern": INSTANCE_ID_PATTERN.pattern}
_BODIES: dict[Callable[..., Any], dict[str, Any]] = {
    toggle_plugin: {"type": "object", "required": ["enabled"],
                    "properties": {"enabled": {"type": ["boolean", "null"]},
                                   "instance": _INSTANCE}},
    reject_withdrawal: {"type": "object", "required": ["reason"],
                        "properties": {"reason": {**_STRING, "minLength": 1}}},
    refund: {"type": "object", "properties": {"reason": _STRING}},
    block_customer: {"type": "object", "required": ["instance"],
                     "properties": {"instance": _INSTANCE, "blocked": {"type": "boolean"},
                                    "reason": _STRING}},
}
_FILTERS = ("instance", "status", "q")
_QUERY: dict[str, tuple[str, ...]] = {
    "/api/business/overview": ("period",),
    "/api/orders": _FILTERS, "/api/carts": _FILTERS, "/api/deliveries": _FILTERS,
    "/api/customers": ("instance", "q"), "/api/products": ("instance", "q"),
    "/api/coupons": ("instance", "q"), "/api/stock": ("instance",),
    "/api/logs/recent": ("instance", "action", "actor"), "/api/plugins": ("instance",),
    "/api/admin/withdrawals": ("status",), "/api/orders/retry-waiting-stock": ("instance",),
}


def _describe_handlers() -> None:
    """Declare every API handler authenticated (and the writes' bodies) for the document."""
    reads = (status, overview, orders, carts, deliveries, customers, products, coupons, stock,
             accounts, runtime_list, runtime_logs, logs_recent, diagnostics, plugins)
    writes = (runtime_action, complete_withdrawal, retry_waiting_stock, manual_deliver, resync,
              cancel_cart, confirm_cart, *_BODIES)
    for handler in reads:
        openapi.describe(handler)
    for handler in writes:
        openapi.describe(handler, body=_BODIES.get(handler), errors=(404, 409, 422))


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of the admin panel's HTTP API (pages left out)."""
    doc = openapi.document(request.app, "Astra admin")
    paths: dict[str, Any] = {}
    for path, ops in doc["paths"].items():
        if path.startswith("/static"):
            continue
        if path == "/admin" or path.startswith("/admin/"):
            ops = {m: op for m, op in ops.items() if m != "get"}  # HTML pages
        for method, op in ops.items():
            if op.get("security"):
                op["security"] = [{"bearer": []}, {"session": []}]
            for param in op.get("parameters", []):
                if param["name"] == "X-CSRF-Token":
                    param["description"] = ("The csrf_token POST /admin/login answered; "
                                            "required with the session cookie.")
            if method == "get" or path == "/api/orders/retry-waiting-stock":
                op.setdefault("parameters", []).extend(
                    {"name": name, "in": "query", "required": False,
                     "schema": {"enum": ["day", "week", "month"]} if name == "period"
                     else {"type": "string"}}
                    for name in _QUERY.get(path, ()))
        if ops:
            paths[path] = ops
    doc["paths"] = paths
    doc["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "ADMIN_PANEL_TOKEN (or ADMIN_MONITOR_TOKEN: read-only)"},
        "session": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                    "description": "From POST /admin/login"},
    }
    return json_response(doc)


def add_routes(app: web.Application, container: Any) -> None:
    # The support routes (running a seller's store, logs, work, posts) live in their module.
    from astra.entrypoints.admin import store_api

    app[CONTAINER_KEY] = container
    _describe_handlers()
    store_api.describe(openapi.describe)
    _QUERY.update(store_api.QUERIES)
    store_api.add_routes(app)
    r = app.router
    r.add_get("/api/openapi.json", openapi_json)
    r.add_get("/api/status", status)
    r.add_get("/api/business/overview", overview)
    r.add_get("/api/orders", orders)
    r.add_get("/api/carts", carts)
    r.add_get("/api/deliveries", deliveries)
    r.add_get("/api/customers", customers)
    r.add_get("/api/products", products)
    r.add_get("/api/coupons", coupons)
    r.add_get("/api/stock", stock)
    r.add_get("/api/accounts", accounts)
    r.add_get("/api/runtime", runtime_list)
    r.add_get("/api/runtime/{id}/logs", runtime_logs)
    r.add_post("/api/runtime/{id}/{action}", runtime_action)
    r.add_get("/api/logs/recent", logs_recent)
    r.add_get("/api/diagnostics", diagnostics)
    r.add_get("/api/plugins", plugins)
    r.add_post("/api/plugins/{name}", toggle_plugin)
    r.add_get("/api/admin/withdrawals", withdrawals)
    r.add_post("/api/admin/withdrawals/{id}/complete", complete_withdrawal)
    r.add_post("/api/admin/withdrawals/{id}/reject", reject_withdrawal)
    r.add_post("/api/orders/retry-waiting-stock", retry_waiting_stock)
    r.add_post("/api/orders/{id}/manual-deliver", manual_deliver)
    r.add_post("/api/orders/{id}/resync", resync)
    r.add_post("/api/orders/{id}/refund", refund)
    r.add_post("/api/orders/{id}/sandbox-approve", sandbox_approve)
    r.add_post("/api/carts/{id}/cancel", cancel_cart)
    r.add_post("/api/carts/{id}/confirm-manual", confirm_cart)
    r.add_post("/api/customers/{id}/block", block_customer)
    r.add_post("/api/accounts/{id}/extend", extend_plan)
    r.add_post("/api/accounts/{id}/block", block_account)
