"""The seller's automation in a real browser (Debian's Chromium through Playwright): the Conta
tab's API tokens (create — shown once —, use from a script, revoke), an instance's bot token
(set and removed with the password asked again) and its outgoing webhook with its delivery log
after a real receiver failed once and then accepted. Screenshots
go to the test artifacts and to /work/screens when that folder exists."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from astra.entrypoints.webhook_sender import WebhookSender
from tests.e2e.browser import chromium
from tests.e2e.test_portal_pages import DESKTOP, PASSWORD, TOKEN, Watch, running_portal
from tests.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

EMAIL = "rita@example.com"
SHOP = "loja-da-rita"
SCREENS = Path("/work/screens")


async def shoot(page: Any, artifacts: Path, name: str) -> None:
    await page.wait_for_load_state("load")
    await page.evaluate("window.scrollTo(0, 0)")
    for folder in (artifacts, SCREENS):
        if folder.is_dir():
            await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


class Receiver:
    """The seller's own system: refuses the first delivery, accepts the rest."""

    def __init__(self) -> None:
        self.hits = 0
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.hits += 1
        return web.Response(status=503 if self.hits == 1 else 200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/astra", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/astra"


async def test_api_tokens_and_webhook_log_in_the_browser(tmp_path: Path,
                                                         artifacts_dir: Path) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=8000)
    receiver = Receiver()
    await receiver.start()
    async with running_portal(tmp_path) as world, chromium(DESKTOP) as context:
        container = world.container
        user = container.accounts().register(EMAIL, PASSWORD, "Rita")
        container.plans().start_trial(user["id"])
        watch = Watch(world.base)
        page = await context.new_page()
        watch.attach(page)
        await page.goto(world.url("/login?next=/dashboard/account"))
        await page.locator("#login-email").fill(EMAIL)
        await page.locator("#login-password").fill(PASSWORD)
        await page.locator("#form-login").get_by_role("button", name="Entrar").click()
        await page.wait_for_url("**/dashboard/account")

        # Create a read-write token: shown once in the dialog.
        section = page.locator("#api-tokens")
        await expect(section).to_contain_text("Nenhum token ainda.")
        await section.get_by_label("Nome").fill("Deploy do site")
        await section.get_by_label("Permissão").select_option("read-write")
        # The password is asked again: a wrong one is refused in the form, nothing made.
        await section.get_by_label("Sua senha atual").fill("not my password")
        await section.get_by_role("button", name="Criar token").click()
        await expect(section.locator("[data-error]")).to_contain_text("A senha não confere")
        assert container.api_tokens().list(user["id"]) == []
        await section.get_by_label("Sua senha atual").fill(PASSWORD)
        await section.get_by_role("button", name="Criar token").click()
        dialog = page.locator("#key-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("Copie o token agora")
        token = await dialog.locator("[data-key-value]").input_value()
        assert token.startswith("astra_pat_")
        await dialog.get_by_role("button", name="Fechar").click()
        await page.wait_for_load_state("load")
        await expect(section.locator("tbody tr")).to_have_count(1)
        await expect(section).to_contain_text("Deploy do site")
        await expect(section).to_contain_text("Leitura e escrita")
        assert token not in await page.content()  # never shown again

        # A script uses it: no cookie, no CSRF.
        async with aiohttp.ClientSession() as script:
            auth = {"Authorization": f"Bearer {token}"}
            async with script.post(world.url("/api/instances"), headers=auth,
                                   json={"id": SHOP, "name": "Loja da Rita"}) as resp:
                assert resp.status == 201, await resp.text()
            async with script.post(world.url(f"/api/instances/{SHOP}/products"), headers=auth,
                                   json={"name": "Gift card",
                                         "variants": [{"name": "R$ 25", "price_cents": 2500}]}
                                   ) as resp:
                assert resp.status == 201
                product = await resp.json()

        # A second, read-only token, then revoked from the page.
        await section.get_by_label("Nome").fill("Relatórios")
        await section.get_by_label("Sua senha atual").fill(PASSWORD)
        await section.get_by_role("button", name="Criar token").click()
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("button", name="Fechar").click()
        await page.wait_for_load_state("load")
        row = section.locator("tbody tr", has_text="Relatórios")
        await expect(row).to_contain_text("Somente leitura")
        await row.get_by_role("button", name="Revogar").click()
        reauth = page.locator("#reauth-dialog")
        await expect(reauth).to_contain_text("Revogar este token?")
        await reauth.get_by_label("Sua senha atual").fill(PASSWORD)
        await reauth.get_by_role("button", name="Confirmar").click()
        await expect(section.locator("tbody tr", has_text="Relatórios")).to_contain_text(
            "Revogado")
        await shoot(page, artifacts_dir, "seller-api-tokens")

        # The bot token, set in the page: the form asks for the password, a wrong one is refused.
        instances = container.instances()
        await page.goto(world.url("/dashboard/instances"))
        bot = page.locator(f"#instance-{SHOP} form[data-url$='/bot-token']")
        await bot.get_by_label("Token do bot").fill(TOKEN)
        await bot.get_by_label("Sua senha atual").fill("not my password")
        await bot.get_by_role("button", name="Salvar", exact=True).click()
        await expect(bot.locator("[data-error]")).to_contain_text("A senha não confere")
        assert not (await asyncio.to_thread(instances.get, SHOP))["has_token"]
        await bot.get_by_label("Sua senha atual").fill(PASSWORD)
        await bot.get_by_role("button", name="Salvar", exact=True).click()
        await expect(page.locator(".toast")).to_contain_text("Token verificado e salvo")
        await page.wait_for_load_state("load")
        await expect(page.locator(f"#instance-{SHOP}")).to_contain_text(world.discord.bot.username)
        assert (await asyncio.to_thread(instances.get, SHOP))["has_token"]
        # Removing it asks in the dialog: cancelled, the bot stays; confirmed, it goes.
        card = page.locator(f"#instance-{SHOP}")
        await card.locator("summary", has_text="Trocar token").click()
        await card.get_by_role("button", name="Remover token").click()
        await expect(reauth).to_contain_text("Remover o token?")
        await reauth.get_by_role("button", name="Cancelar").click()
        await expect(reauth).to_be_hidden()
        assert (await asyncio.to_thread(instances.get, SHOP))["has_token"]
        await card.get_by_role("button", name="Remover token").click()
        await reauth.get_by_label("Sua senha atual").fill(PASSWORD)
        await reauth.get_by_role("button", name="Confirmar").click()
        await expect(page.locator(".toast")).to_contain_text("Token removido")
        await page.wait_for_load_state("load")
        assert not (await asyncio.to_thread(instances.get, SHOP))["has_token"]

        # The instance's outgoing webhook, set in the page with the password: the secret is
        # shown once.
        await page.goto(world.url("/dashboard/instances"))
        box = page.locator(f"#webhook-{SHOP}")
        await box.locator("summary").click()
        await box.get_by_label("URL (https)").fill(receiver.url)
        await box.get_by_label("Sua senha atual").fill("not my password")
        await box.get_by_role("button", name="Salvar webhook").click()
        await expect(box.locator("[data-error]")).to_contain_text("A senha não confere")
        assert await asyncio.to_thread(container.outgoing_webhooks().endpoint, SHOP) is None
        await box.get_by_label("Sua senha atual").fill(PASSWORD)
        await box.get_by_role("button", name="Salvar webhook").click()
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("Seu segredo de assinatura")
        secret = await dialog.locator("[data-key-value]").input_value()
        assert secret.startswith("whsec_")
        await dialog.get_by_role("button", name="Fechar").click()
        await page.wait_for_load_state("load")

        # Rotating the secret asks for the password; cancelling the dialog changes nothing.
        box = page.locator(f"#webhook-{SHOP}")
        await box.locator("summary").click()
        await box.get_by_role("button", name="Gerar novo segredo").click()
        await reauth.get_by_role("button", name="Cancelar").click()
        await expect(reauth).to_be_hidden()
        await box.get_by_role("button", name="Gerar novo segredo").click()
        await reauth.get_by_label("Sua senha atual").fill(PASSWORD)
        await reauth.get_by_role("button", name="Confirmar").click()
        await expect(dialog).to_be_visible()
        rotated = await dialog.locator("[data-key-value]").input_value()
        assert rotated.startswith("whsec_") and rotated != secret
        await dialog.get_by_role("button", name="Fechar").click()
        await page.wait_for_load_state("load")

        # A sale; the platform delivers the events (the first attempt refused, then retried).
        catalog, sales = container.catalog(), container.sales()
        variant = product["variants"][0]["id"]
        catalog.import_stock(SHOP, product["id"], variant, "GC-1\nGC-2\nGC-3", actor="test")
        buyer = "700000000000000001"
        sales.add_item(SHOP, buyer, product["id"], variant, 1)
        order = sales.checkout(SHOP, buyer)
        container.settlement().confirm_payment(SHOP, order.id, amount_cents=order.total_cents,
                                               payment_id="sandbox-e2e-9")
        webhooks = container.outgoing_webhooks()
        webhooks.policy = type(webhooks.policy)(allow_private=True, retry_base_seconds=0.3)
        stop = asyncio.Event()
        task = asyncio.create_task(
            WebhookSender(webhooks, allow_private=True, scan_seconds=0.1).run(stop))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            r["status"] == "delivered" for r in webhooks.deliveries(SHOP) or [{"status": ""}]
        ):
            await asyncio.sleep(0.05)
        stop.set()
        await task
        rows = webhooks.deliveries(SHOP)
        assert rows and all(r["status"] == "delivered" for r in rows), rows

        await page.reload()
        box = page.locator(f"#webhook-{SHOP}")
        await box.locator("summary").click()
        log = box.locator("[data-webhook-log]")
        await expect(log).to_contain_text("Pedido pago")
        await expect(log).to_contain_text("Entregue")
        await expect(log.locator("tbody tr").first).to_contain_text("200")
        await box.scroll_into_view_if_needed()
        await shoot(page, artifacts_dir, "seller-api-webhooks")

        # The same sections in English.
        await page.goto(world.url("/lang?to=en&next=/dashboard/account"))
        await expect(page.locator("#api-tokens")).to_contain_text("API tokens")
        await expect(page.locator("#api-tokens")).to_contain_text("Read and write")
        await shoot(page, artifacts_dir, "seller-api-tokens-en")
        await page.goto(world.url("/dashboard/instances"))
        box = page.locator(f"#webhook-{SHOP}")
        await box.locator("summary").click()
        await expect(box).to_contain_text("Outgoing webhook")
        await expect(box.locator("[data-webhook-log]")).to_contain_text("Delivered")
        await box.scroll_into_view_if_needed()
        await shoot(page, artifacts_dir, "seller-api-webhooks-en")
        # Removed from the page, the password asked in the dialog (in English here).
        await box.get_by_role("button", name="Remove webhook").click()
        await expect(reauth).to_contain_text("Confirm with your password")
        await expect(reauth).to_contain_text("Remove the webhook?")
        await reauth.get_by_label("Your current password").fill(PASSWORD)
        await reauth.get_by_role("button", name="Confirm").click()
        await expect(page.locator(".toast")).to_contain_text("Webhook removed")
        await page.wait_for_load_state("load")
        assert await asyncio.to_thread(container.outgoing_webhooks().endpoint, SHOP) is None
        watch.check()
    if receiver.runner is not None:
        await receiver.runner.cleanup()
