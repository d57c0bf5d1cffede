"""The admin panel's API over a real server and a real store: access, monitor mode, lockout,
operations, withdrawals, plugins, diagnostics, metrics."""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from astra.container import build_container
from astra.entrypoints.admin.app import create_admin_app
from astra.entrypoints.admin.auth import COOKIE as ADMIN_COOKIE
from astra.entrypoints.portal.sessions import sign, unsign
from tests.integration.sales_world import INSTANCE, OWNER, make_shop

BUYER = "111111111111111111"
TOKEN = "admin-token-for-tests-0123456789"
MONITOR = "monitor-token-for-tests-0123456789"


def _shop(data_dir: Path):
    return make_shop(data_dir, keys=3, admin_token=TOKEN, admin_monitor_token=MONITOR,
                     admin_user="ops", admin_password="correct horse battery")


def _sell(shop, buyer: str = BUYER):
    shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, buyer)
    return shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=order.total_cents,
                                           payment_id=f"p-{buyer}")


async def test_access_monitor_mode_and_lockout(data_dir: Path) -> None:
    shop = _shop(data_dir)
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        assert (await client.get("/api/orders")).status == 401
        bad = await client.get("/api/orders", headers={"Authorization": "Bearer wrong"})
        assert bad.status == 401
        ok = await client.get("/api/orders", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status == 200
        monitor = {"Authorization": f"Bearer {MONITOR}"}
        assert (await client.get("/api/diagnostics", headers=monitor)).status == 200
        for path in ("/api/orders/retry-waiting-stock", "/api/plugins/coupons",
                     "/api/admin/withdrawals/x/complete", f"/api/runtime/{INSTANCE}/stop"):
            resp = await client.post(path, json={"enabled": False}, headers=monitor)
            assert resp.status == 403, path
        for _ in range(5):
            resp = await client.post("/admin/login", json={"user": "ops", "password": "nope"})
            assert resp.status == 401
        locked = await client.post("/admin/login",
                                   json={"user": "ops", "password": "correct horse battery"})
        assert locked.status == 429 and int(locked.headers["Retry-After"]) > 800


async def test_login_session_needs_csrf_for_writes(data_dir: Path) -> None:
    shop = _shop(data_dir)
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        resp = await client.post("/admin/login",
                                 json={"user": "ops", "password": "correct horse battery"})
        csrf = (await resp.json())["csrf_token"]
        assert (await client.get("/api/status")).status == 200
        no_csrf = await client.post("/api/plugins/coupons", json={"enabled": False})
        assert no_csrf.status == 403
        done = await client.post("/api/plugins/coupons", json={"enabled": False},
                                 headers={"X-CSRF-Token": csrf})
        assert done.status == 200
        with shop.store.portal(write=False) as uow:
            entry = next(a for a in uow.audit.all() if a["action"] == "plugin.disabled")
        assert entry["actor"] == "admin:ops"


async def test_operations_withdrawals_and_diagnostics(data_dir: Path) -> None:
    shop = _shop(data_dir)
    order = _sell(shop)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        orders = await (await client.get("/api/orders?status=paid", headers=auth)).json()
        assert [o["id"] for o in orders] == [order.id] and orders[0]["instance_id"] == INSTANCE
        keys_view = await (await client.get("/api/stock", headers=auth)).json()
        assert keys_view[INSTANCE][shop.variant_id]["sold"] == 1
        overview = await (await client.get("/api/business/overview?period=month",
                                           headers=auth)).json()
        assert overview["gmv_cents"] == 1990 and overview["platform_fees_cents"] == 119
        assert overview["funnel"] == {"carts": 1, "orders": 1, "paid": 1, "delivered": 0}

        w = shop.wallet.request_withdrawal(OWNER, 1000, "test@example.com")
        pending = await (await client.get("/api/admin/withdrawals?status=requested",
                                          headers=auth)).json()
        assert [x["id"] for x in pending] == [w.id]
        no_reason = await client.post(f"/api/admin/withdrawals/{w.id}/reject", json={},
                                      headers=auth)
        assert no_reason.status == 422
        rejected = await client.post(f"/api/admin/withdrawals/{w.id}/reject",
                                     json={"reason": "chave PIX errada"}, headers=auth)
        assert (await rejected.json())["status"] == "rejected"
        assert shop.wallet.balance(OWNER) == 1871
        again = await client.post(f"/api/admin/withdrawals/{w.id}/complete", headers=auth)
        assert again.status == 409

        redeliver = await client.post(f"/api/orders/{order.id}/manual-deliver", headers=auth)
        assert (await redeliver.json())["status"] == "pending"
        unknown = await client.post("/api/orders/ord_nope/manual-deliver", headers=auth)
        assert unknown.status == 404
        blocked = await client.post(f"/api/customers/{BUYER}/block",
                                    json={"instance": INSTANCE, "blocked": True,
                                          "reason": "chargeback"}, headers=auth)
        assert (await blocked.json())["blocked"] is True

        # plant an inconsistency: a key reserved by a cart that no longer exists
        with shop.store.instance(INSTANCE) as uow:
            key = uow.stock.first(variant_id=shop.variant_id, state="available")
            key.update(state="reserved", cart_id="cart_gone")
            uow.stock.put(key)
            uow.commit()
        report = await (await client.get("/api/diagnostics", headers=auth)).json()
        checks = {(f["check"], f["severity"]) for f in report["findings"]}
        assert ("reservations", "warning") in checks
        assert ("payments", "warning") in checks  # the sandbox is said loudly

        metrics = await client.get("/metrics", headers=auth)
        text = await metrics.text()
        assert metrics.status == 200 and 'astra_orders{status="paid"} 1' in text
        assert "astra_delivery_queue_depth 1" in text and "astra_webhooks_total" in text
        assert (await client.get("/metrics")).status == 401
        bad_json = await client.post("/api/plugins/coupons", data=b"{nope", headers=auth)
        assert bad_json.status == 400  # malformed JSON, as on the portal


async def test_diagnostics_find_every_planted_inconsistency(data_dir: Path) -> None:
    shop = _shop(data_dir)
    first = _sell(shop, "111111111111111111")
    second = _sell(shop, "222222222222222222")
    shop.clock.advance(timedelta(minutes=30))  # both paid long ago, never delivered
    with shop.store.instance(INSTANCE) as uow:
        # a key sold to two orders
        doc = uow.orders.require(second.id)
        doc["lines"][0]["key_ids"] = list(first.lines[0].key_ids)
        uow.orders.put(doc)
        # a reservation held by a cart that is gone
        key = uow.stock.first(variant_id=shop.variant_id, state="available")
        key.update(state="reserved", cart_id="cart_gone")
        uow.stock.put(key)
        # a paid order whose sale credit vanished
        uow.postings.delete(f"sale:{INSTANCE}:{second.id}")
        # a product without variants
        product = uow.products.require(shop.product_id)
        uow.products.put({**product, "id": "prod_empty", "variants": []})
        uow.commit()
    with shop.store.portal() as uow:  # a negative wallet
        uow.ledger.add({"id": "manual:neg", "user_id": "usr_neg", "kind": "withdrawal_debit",
                        "amount_cents": -500, "at": "2026-11-29T12:00:00+00:00"})
        uow.commit()
    shop.store.close()
    broken = data_dir / "instances" / "other-shop"
    broken.mkdir(parents=True)
    (broken / "orders.json").write_text("{damaged")  # a corrupt file
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        report = await (await client.get("/api/diagnostics", headers=auth)).json()
    found = {(f["check"], f["severity"]) for f in report["findings"]}
    messages = " | ".join(f["message"] for f in report["findings"])
    for expected in [("keys", "error"), ("reservations", "warning"), ("deliveries", "warning"),
                     ("ledger", "error"), ("wallets", "error"), ("catalog", "warning"),
                     ("files", "error")]:
        assert expected in found, (expected, messages)
    assert "belongs to 2 orders" in messages and "orders.json" in messages
    assert all(f["hint"] for f in report["findings"])


async def test_accounts_extend_and_block(data_dir: Path) -> None:
    shop = _shop(data_dir)
    with shop.store.portal() as uow:
        uow.users.put({"id": "usr_s", "email": "s@example.com", "session_version": 0})
        uow.commit()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        for days in (0, "30", 99999):
            bad = await client.post("/api/accounts/usr_s/extend", json={"days": days},
                                    headers=auth)
            assert bad.status == 422
        ok = await client.post("/api/accounts/usr_s/extend", json={"days": 30}, headers=auth)
        assert (await ok.json())["plan"]["kind"] == "paid"
        assert shop.plans.status("usr_s")["days_left"] == 30  # the test clock stands still
        block = await client.post("/api/accounts/usr_s/block", json={"blocked": True},
                                  headers=auth)
        assert (await block.json())["blocked"] is True
        missing = await client.post("/api/accounts/usr_x/block", json={}, headers=auth)
        assert missing.status == 404
    with shop.store.portal(write=False) as uow:
        user = uow.users.require("usr_s")
        actions = [a["action"] for a in uow.audit.all()]
    assert user["blocked"] and user["session_version"] == 1
    assert "plan.extended" in actions and "account.blocked" in actions


async def test_sandbox_orders_can_be_approved_from_the_panel(data_dir: Path) -> None:
    shop = _shop(data_dir)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order, _ = shop.payments.pay_cart(INSTANCE, BUYER)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        monitor = await client.post(f"/api/orders/{order.id}/sandbox-approve",
                                    headers={"Authorization": f"Bearer {MONITOR}"})
        assert monitor.status == 403
        done = await client.post(f"/api/orders/{order.id}/sandbox-approve", headers=auth)
        assert (await done.json())["action"] == "paid"
        again = await client.post(f"/api/orders/{order.id}/sandbox-approve", headers=auth)
        assert again.status == 200  # approving twice changes nothing
    assert shop.sales.get_order(INSTANCE, order.id).status == "paid"
    assert shop.wallet.balance(OWNER) == 1871


# -- review findings (issue 13) ----------------------------------------------------------------

PASSWORD = "correct horse battery"


async def _admin_login(client: TestClient, *, password: str = PASSWORD,
                       source: str | None = None):
    headers = {"X-Forwarded-For": source} if source else {}
    return await client.post("/admin/login", json={"user": "ops", "password": password},
                             headers=headers)


def _cookie(client: TestClient) -> str:
    return next(c for c in client.session.cookie_jar if c.key == ADMIN_COOKIE).value


async def _replay(server: TestServer, cookie: str, path: str = "/api/status") -> int:
    """A request with nothing but a copy of an admin cookie (an attacker who saved it), from a
    plain HTTP client of its own."""
    started_here = server.runner is None
    if started_here:
        await server.start_server()
    try:
        async with aiohttp.ClientSession() as thief, thief.get(
                server.make_url(path), headers={"Cookie": f"{ADMIN_COOKIE}={cookie}"}) as resp:
            return resp.status
    finally:
        if started_here:
            await server.close()


async def test_admin_logout_ends_the_session_on_the_server(data_dir: Path) -> None:
    shop = _shop(data_dir)
    server = TestServer(create_admin_app(shop.container))
    async with TestClient(server) as client, TestClient(server) as page_user:
        csrf = (await (await _admin_login(client)).json())["csrf_token"]
        saved = _cookie(client)
        assert await _replay(server, saved) == 200
        assert (await client.post("/admin/logout", headers={"X-CSRF-Token": csrf})).status == 200
        assert await _replay(server, saved) == 401
        # The panel's own "Sair" link (a GET) ends its session the same way.
        assert (await _admin_login(page_user)).status == 200
        saved = _cookie(page_user)
        resp = await page_user.get("/admin/logout", allow_redirects=False)
        assert resp.status == 302
        assert await _replay(server, saved) == 401
        # A restarted panel (a new app on the same store) still refuses it.
        assert await _replay(TestServer(create_admin_app(shop.container)), saved) == 401


async def test_admin_cookies_live_twelve_hours_on_the_server(data_dir: Path) -> None:
    shop = _shop(data_dir)
    server = TestServer(create_admin_app(shop.container))
    async with TestClient(server) as client:
        assert (await _admin_login(client)).status == 200
        payload = unsign(shop.container.settings().session_secret, _cookie(client))
        assert payload is not None
        # The same session, as a browser that ignores the cookie's Max-Age would keep it.
        for age, expected in ((11 * 3600, 200), (12 * 3600 + 60, 401), (6 * 86400, 401)):
            old = sign(shop.container.settings().session_secret,
                       {**payload, "iat": int(time.time()) - age})
            assert await _replay(server, old) == expected, age


async def test_changing_admin_credentials_ends_every_admin_session(data_dir: Path) -> None:
    shop = _shop(data_dir)
    server = TestServer(create_admin_app(shop.container))
    async with TestClient(server) as client:
        assert (await _admin_login(client)).status == 200
        saved = _cookie(client)
    base = shop.container.settings()
    for change in ({"admin_password": "a new admin password"},
                   {"admin_token": "another-admin-token-0123456789abcdef"}):
        # The operator rotates a credential and restarts the panel (same store, same secret).
        container = build_container(dataclasses.replace(base, **change))
        restarted = TestServer(create_admin_app(container))
        assert await _replay(restarted, saved) == 401, change
    # Unchanged credentials: the session carries over a restart.
    assert await _replay(TestServer(create_admin_app(build_container(base))), saved) == 200


async def test_a_stranger_cannot_lock_the_admin_out(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=0, admin_token=TOKEN, admin_user="ops",
                     admin_password=PASSWORD, trusted_proxies=("127.0.0.1/32",))
    server = TestServer(create_admin_app(shop.container))
    async with TestClient(server) as client:
        assert (await _admin_login(client, source="203.0.113.5")).status == 200
        statuses = [(await _admin_login(client, password="guess", source="198.51.100.7")).status
                    for _ in range(7)]
        assert statuses == [401] * 5 + [429, 429]
        assert (await _admin_login(client, source="198.51.100.7")).status == 429
        # The owner, from where they always log in or from anywhere else: not locked.
        assert (await _admin_login(client, source="203.0.113.5")).status == 200
        assert (await _admin_login(client, source="192.0.2.10")).status == 200
        # A stranger behind the owner's own address (a shared NAT) only slows it down.
        for _ in range(5):
            await _admin_login(client, password="guess", source="203.0.113.5")
        slowed = await _admin_login(client, source="203.0.113.5")
        assert slowed.status == 429 and int(slowed.headers["Retry-After"]) <= 31


async def test_deeply_nested_json_on_the_admin_api_is_a_400(data_dir: Path) -> None:
    shop = _shop(data_dir)
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        for depth in (100, 900, 5_000, 200_000):
            nested = b"[" * depth + b"]" * depth
            for path, body in (
                ("/api/plugins/coupons", b'{"enabled": ' + nested + b"}"),
                ("/api/admin/withdrawals/wd_x/reject", b'{"reason": ' + nested + b"}"),
                (f"/api/customers/{BUYER}/block", b'{"instance": "' + INSTANCE.encode()
                 + b'", "reason": ' + nested + b"}"),
                ("/admin/login", b'{"user": ' + nested + b"}"),
            ):
                resp = await client.post(path, data=body, headers=auth)
                assert resp.status == 400, (path, depth, resp.status, await resp.text())


async def test_a_withdrawal_cannot_be_paid_while_the_balance_is_negative(data_dir: Path) -> None:
    shop = _shop(data_dir)
    order = _sell(shop)
    shop.wallet.settle_postings(INSTANCE)
    assert shop.wallet.balance(OWNER) == 1871
    w = shop.wallet.request_withdrawal(OWNER, 1871, "test@example.com")
    # The buyer's bank charges the sale back after the seller asked for the money.
    shop.settlement.refund(INSTANCE, order.id, kind="chargeback", reason="MED")
    shop.wallet.settle_postings(INSTANCE)
    assert shop.wallet.balance(OWNER) == -1871
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        rows = await (await client.get("/api/admin/withdrawals", headers=auth)).json()
        assert [(r["id"], r["balance_cents"]) for r in rows] == [(w.id, -1871)]
        page = await (await client.get("/admin/solicitacoes", headers=auth)).text()
        assert "-R$ 18,71" in page and "não pague" in page
        assert f"/api/admin/withdrawals/{w.id}/complete" not in page  # no button to pay it
        assert f"/api/admin/withdrawals/{w.id}/reject" in page
        resp = await client.post(f"/api/admin/withdrawals/{w.id}/complete", headers=auth)
        assert resp.status == 409
        assert (await resp.json())["error"] == "negative_balance"
        assert shop.wallet.withdrawals()[0]["status"] == "requested"
        # Once new sales cover it, it can be paid.
        _sell(shop, "222222222222222222")
        _sell(shop, "333333333333333333")
        shop.wallet.settle_postings(INSTANCE)
        assert shop.wallet.balance(OWNER) == 1871
        resp = await client.post(f"/api/admin/withdrawals/{w.id}/complete", headers=auth)
        assert resp.status == 200 and (await resp.json())["status"] == "paid"


def _actions(html: str) -> list[str]:
    return re.findall(r'data-action="([^"]*)"', html)


async def test_tenant_ids_cannot_aim_admin_buttons_at_other_routes(data_dir: Path) -> None:
    shop = _shop(data_dir)
    _sell(shop)
    evil = ("../accounts/usr_x", "../../api/accounts/usr_x", "..", ".", "a/../../accounts/usr_x",
            "x?instance=y", "%2e%2e%2faccounts%2fusr_x", "ok id")
    # A compromised bot writes whatever ids it likes into its own instance's data.
    with shop.store.instance(INSTANCE) as uow:
        for i, bad in enumerate((*evil, "good_1")):
            uow.buyers.put({"id": bad, "instance_id": INSTANCE, "blocked": False,
                            "first_seen_at": "2026-11-29T12:00:00+00:00", "username": f"b{i}"})
            cart = uow.carts.all()[0]
            uow.carts.put({**cart, "id": bad, "state": "open", "order_id": None})
            order = uow.orders.all()[0]
            uow.orders.put({**order, "id": bad, "status": "paid", "charge_id": "c1"})
            uow.deliveries.put({"id": f"dlv_{i}", "order_id": bad, "buyer_id": "1",
                                "status": "failed", "attempts": []})
        uow.commit()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = "http://admin.example/admin/operacao/"
    routes = {"clientes": "/api/customers/", "pedidos": "/api/orders/",
              "carrinhos": "/api/carts/", "entregas": "/api/orders/"}
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        for tab, prefix in routes.items():
            resp = await client.get(f"/admin/operacao/{tab}", headers=auth)
            assert resp.status == 200, tab
            html = await resp.text()
            for bad in evil:
                assert f'data-id="{bad}"' in html or bad in ("x?instance=y",), (tab, bad)
            actions = _actions(html)
            assert any("good_1" in a for a in actions), tab  # well-formed ids keep their buttons
            for action in actions:
                # Where a browser's fetch() would send the POST after resolving the URL.
                path = urlsplit(urljoin(base, unescape(action))).path
                if path == "/api/orders/retry-waiting-stock":
                    continue  # the page's own button, not a row's
                assert path.startswith(prefix) and path.count("/") == 4, (tab, action)
                assert "accounts" not in unquote(path), (tab, action)
