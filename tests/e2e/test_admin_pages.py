"""The admin panel's pages in a real browser (Debian's Chromium through Playwright) over a real
aiohttp server and a real JSON store: log in, approve and reject withdrawals, turn the coupons
plugin off and see a coupon refused, redeliver an order, monitor mode, the lockout, and a
screenshot of every page at desktop and phone sizes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from astra.domain.errors import CouponRejected
from astra.entrypoints.admin.app import create_admin_app
from tests.e2e.browser import chromium
from tests.integration.sales_world import INSTANCE, OWNER, RecordingChat, Shop, make_shop

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

USER = "ops"
PASSWORD = "correct horse battery"
TOKEN = "admin-token-for-page-tests-0123456789"
DELIVERED_BUYER = "111111111111111111"
PAID_BUYER = "222222222222222222"
CART_BUYER = "333333333333333333"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PAGES = [
    ("resumo", "/admin"),
    ("pedidos", "/admin/operacao/pedidos"),
    ("carrinhos", "/admin/operacao/carrinhos"),
    ("entregas", "/admin/operacao/entregas"),
    ("clientes", "/admin/operacao/clientes"),
    ("catalogo", "/admin/catalogo"),
    ("solicitacoes", "/admin/solicitacoes"),
    ("contas", "/admin/contas"),
    ("runtime", f"/admin/runtime?logs={INSTANCE}"),
    ("plugins", f"/admin/plugins?instance={INSTANCE}"),
    ("auditoria", "/admin/auditoria"),
    ("suporte", f"/admin/suporte?instance={INSTANCE}"),
    ("auditoria-logs", "/admin/auditoria/logs"),
    ("pendencias", "/admin/auditoria/pendencias"),
    ("publicacoes", "/admin/auditoria/publicacoes"),
    ("diagnostico", "/admin/diagnostico"),
]


def _sell(shop: Shop, buyer: str) -> Any:
    shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, buyer)
    return shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=order.total_cents,
                                           payment_id=f"pay-{buyer}")


async def _world(data_dir: Path) -> tuple[Shop, dict[str, Any]]:
    """A shop with a delivered order, a paid one, an open cart, a coupon, a seller account on
    trial and two withdrawals funded by the sales."""

    def build() -> tuple[Shop, dict[str, Any]]:
        shop = make_shop(data_dir, keys=6, admin_user=USER, admin_password=PASSWORD,
                         admin_token=TOKEN)
        seller = shop.accounts.register("vendedora@example.com", "senha-forte-123", "Vendedora")
        shop.plans.start_trial(seller["id"])
        shop.coupons.create(INSTANCE, {"code": "PROMO10", "kind": "percent", "value": 10},
                            actor="test")
        delivered = _sell(shop, DELIVERED_BUYER)
        paid = _sell(shop, PAID_BUYER)
        shop.sales.add_item(INSTANCE, CART_BUYER, shop.product_id, shop.variant_id, 1)
        approve = shop.wallet.request_withdrawal(OWNER, 1000, "loja@example.com")
        reject = shop.wallet.request_withdrawal(OWNER, 1500, "outra@example.com")
        return shop, {"delivered": delivered, "paid": paid, "approve": approve,
                      "reject": reject}

    shop, ids = await asyncio.to_thread(build)
    done = await shop.delivery.deliver(INSTANCE, ids["delivered"].id, {"chat": RecordingChat()})
    assert done is not None and done.status.value == "delivered"
    return shop, ids


@asynccontextmanager
async def _serving(shop: Shop) -> AsyncIterator[str]:
    runner = web.AppRunner(create_admin_app(shop.container))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _login(page: Any, base: str, *, monitor: bool = False, path: str = "/admin") -> None:
    await page.goto(base + path)
    assert "/admin/login" in page.url  # no session: the page sends us to the login
    await page.fill("input[name=user]", USER)
    await page.fill("input[name=password]", PASSWORD)
    if monitor:
        await page.check("input[name=monitor]")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(base + path)


async def _act(page: Any, row: str, label: str, reason: str | None = None) -> None:
    """Click an action button in a row, confirm it in the dialog, wait for the reload."""
    from playwright.async_api import expect

    await page.locator(f'tr[data-id="{row}"] button[data-action]', has_text=label).click()
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    if reason is not None:
        await dialog.locator("textarea").fill(reason)
    await dialog.locator("[data-dialog-confirm]").click()
    await expect(page.locator("#flash")).to_be_visible()


async def _screenshots(context: Any, base: str, out: Path, size: str) -> None:
    page = await context.new_page()
    for name, path in PAGES:
        await page.goto(base + path)
        await page.screenshot(path=str(out / f"admin-{name}-{size}.png"), full_page=True)
    await page.close()


async def test_operator_runs_the_business_from_the_pages(data_dir: Path,
                                                         artifacts_dir: Path) -> None:
    from playwright.async_api import expect

    shop, ids = await _world(data_dir)
    async with _serving(shop) as base, chromium(DESKTOP) as context:
        page = await context.new_page()
        problems: list[str] = []  # script errors and CSP refusals (a refused API call is fine)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error"
                and not msg.text.startswith("Failed to load resource") else None)
        await _login(page, base)
        await expect(page.locator("#kpi-gmv")).to_have_text("R$ 39,80")
        assert await page.locator("svg.chart rect.bar").count() >= 2  # GMV + orders charts

        # Solicitações: approve one withdrawal; a rejection without a reason shows the API's
        # message, then one with a reason goes through.
        await page.goto(base + "/admin/solicitacoes")
        approve, reject = ids["approve"].id, ids["reject"].id
        await _act(page, approve, "Concluir")
        await expect(page.locator(f'tr[data-id="{approve}"] .withdrawal-status')).to_have_text(
            "pago")
        await page.locator(f'tr[data-id="{reject}"] button', has_text="Rejeitar").click()
        await page.locator("#confirm-dialog [data-dialog-confirm]").click()
        error = page.locator("#confirm-dialog .dialog-error")
        await expect(error).to_have_text("Campo inválido: reason.")
        await page.locator("#confirm-dialog textarea").fill("chave PIX de outra pessoa")
        await page.locator("#confirm-dialog [data-dialog-confirm]").click()
        await expect(page.locator("#flash")).to_be_visible()
        await expect(page.locator(f'tr[data-id="{reject}"] .withdrawal-status')).to_have_text(
            "rejeitado")
        statuses = {w["id"]: w["status"]
                    for w in await asyncio.to_thread(shop.wallet.withdrawals)}
        assert statuses == {approve: "paid", reject: "rejected"}

        # Plugins: the coupon works, the operator turns `coupons` off, the same coupon is refused.
        view = await asyncio.to_thread(shop.sales.apply_coupon, INSTANCE, CART_BUYER, "promo10")
        assert view.cart.coupon_code == "PROMO10"
        await asyncio.to_thread(shop.sales.remove_coupon, INSTANCE, CART_BUYER)
        await page.goto(base + "/admin/plugins")
        await page.locator('tr[data-id="coupons"] button', has_text="Desativar").click()
        await page.screenshot(path=str(artifacts_dir / "admin-confirm-dialog-desktop.png"))
        await page.locator("#confirm-dialog [data-dialog-confirm]").click()
        await expect(page.locator("#flash")).to_be_visible()
        await expect(page.locator('tr[data-id="coupons"] .global-state .badge')).to_have_text(
            "desativado")
        with pytest.raises(CouponRejected) as refused:
            await asyncio.to_thread(shop.sales.apply_coupon, INSTANCE, CART_BUYER, "PROMO10")
        assert refused.value.code == "coupons_unavailable"

        # Entregas: a delivered order goes back to the queue.
        order_id = ids["delivered"].id
        await page.goto(base + "/admin/operacao/entregas")
        state = page.locator(f'tr[data-id="{order_id}"] .delivery-status')
        await expect(state).to_have_text("entregue")
        await _act(page, order_id, "Reentregar")
        await expect(state).to_have_text("pendente")
        with shop.store.instance(INSTANCE, write=False) as uow:
            assert uow.deliveries.get(order_id)["status"] == "pending"
        with shop.store.portal(write=False) as uow:
            mine = {a["action"] for a in uow.audit.all() if a["actor"] == f"admin:{USER}"}
        assert {"withdrawal.paid", "withdrawal.rejected", "plugin.disabled"} <= mine

        # English through the `lang` cookie.
        await page.goto(base + "/admin?lang=en")
        await expect(page.locator("h1")).to_have_text("Executive overview")
        await page.goto(base + "/admin/diagnostico")
        await expect(page.locator("h1")).to_have_text("Diagnostics")
        await page.goto(base + "/admin?lang=pt-BR")
        assert problems == []

        # Every page, at desktop and phone sizes (with a request still waiting for a decision).
        await asyncio.to_thread(shop.wallet.request_withdrawal, OWNER, 1200, "+5511987654321")
        await _screenshots(context, base, artifacts_dir, "desktop")
        state_file = await context.storage_state()
        phone = await context.browser.new_context(viewport=PHONE, locale="pt-BR",
                                                  storage_state=state_file,
                                                  device_scale_factor=2, is_mobile=True)
        await _screenshots(phone, base, artifacts_dir, "phone")
        await phone.close()

        # Monitor mode: a banner, no action anywhere, and the API refuses a write anyway.
        monitor = await context.browser.new_context(viewport=DESKTOP, locale="pt-BR")
        mpage = await monitor.new_page()
        await _login(mpage, base, monitor=True)
        await expect(mpage.locator("#monitor-banner")).to_be_visible()
        for _, path in PAGES:
            await mpage.goto(base + path)
            assert await mpage.locator("[data-action]").count() == 0, path
            assert await mpage.locator("form[data-api]").count() == 0, path
            assert await mpage.locator("#confirm-dialog").count() == 0, path
        await mpage.goto(base + "/admin/plugins")
        await mpage.screenshot(path=str(artifacts_dir / "admin-monitor-desktop.png"),
                               full_page=True)
        refused_write = await mpage.evaluate("""async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/api/plugins/coupons', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                body: JSON.stringify({enabled: true})});
            return [r.status, (await r.json()).message];
        }""")
        assert refused_write == [403, "Monitor mode is read-only."]
        effective = await asyncio.to_thread(shop.plugins.effective, INSTANCE)
        assert effective["coupons"] is False
        await monitor.close()

        # Lockout: five wrong passwords, then even the right one is refused for a while. This
        # browser's address logged in before (above), so it is only slowed down (30 s), not
        # locked for 15 minutes as a stranger's would be.
        locked = await context.browser.new_context(viewport=PHONE, locale="pt-BR")
        lpage = await locked.new_page()
        await lpage.goto(base + "/admin/login")
        await lpage.screenshot(path=str(artifacts_dir / "admin-login-phone.png"))
        message = lpage.locator("#login-error")
        for attempt in range(5):
            await lpage.fill("input[name=user]", USER)
            await lpage.fill("input[name=password]", f"wrong-{attempt}")
            await lpage.click("#login-form button[type=submit]")
            await expect(message).to_have_text("Usuário ou senha inválidos.")
            await lpage.evaluate("document.getElementById('login-error').textContent = ''")
        await lpage.fill("input[name=password]", PASSWORD)
        await lpage.click("#login-form button[type=submit]")
        await expect(message).to_contain_text("Muitas tentativas")
        await expect(message).to_contain_text("bloqueado por mais 1 min")
        assert "/admin/login" in lpage.url
        await lpage.screenshot(path=str(artifacts_dir / "admin-login-locked-phone.png"))
        await locked.close()


async def test_pages_need_a_session_and_stay_out_of_the_openapi_document(data_dir: Path) -> None:
    shop = await asyncio.to_thread(make_shop, data_dir, keys=0, admin_user=USER,
                                   admin_password=PASSWORD, admin_token=TOKEN)
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        visit = await client.get("/admin/catalogo?instance=shop-1", allow_redirects=False)
        assert visit.status == 302
        assert visit.headers["Location"] == "/admin/login?next=/admin/catalogo?instance%3Dshop-1"
        assert (await client.get("/api/orders")).status == 401  # the API keeps its JSON 401
        page = await client.get("/admin", headers={"Authorization": f"Bearer {TOKEN}"})
        assert page.status == 200 and page.content_type == "text/html"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert (await client.get("/static/admin.js")).status == 200  # public, like the login
        doc = await (await client.get("/api/openapi.json")).json()
        paths = doc["paths"]
        assert "/admin" not in paths and "/admin/operacao/{tab}" not in paths
        assert set(paths["/admin/login"]) == {"post"}
        assert not any(p.startswith("/static") for p in paths)
        reject = paths["/api/admin/withdrawals/{id}/reject"]["post"]
        assert reject["requestBody"]["content"]["application/json"]["schema"]["required"] == [
            "reason"]
        assert reject["security"] == [{"bearer": []}, {"session": []}]
        assert {q["name"] for q in paths["/api/orders"]["get"]["parameters"]} == {
            "instance", "status", "q"}
        assert doc["components"]["securitySchemes"]["session"]["name"] == "astra_admin"

        # A monitor session may not write, yet it can leave (POST or GET /admin/logout).
        login = await client.post("/admin/login", json={"user": USER, "password": PASSWORD,
                                                        "monitor": True})
        assert (await login.json())["role"] == "monitor"
        assert (await client.get("/admin/plugins", allow_redirects=False)).status == 200
        assert (await client.post("/admin/logout")).status == 200
        login = await client.post("/admin/login", json={"user": USER, "password": PASSWORD,
                                                        "monitor": True})
        out = await client.get("/admin/logout", allow_redirects=False)
        assert out.status == 302 and out.headers["Location"] == "/admin/login"
        assert (await client.get("/admin", allow_redirects=False)).status == 302
