"""The seller portal's pages in a real browser (Debian's Chromium through Playwright), against a
real aiohttp server, a real JSON store, the fake Discord and the sandbox payments.

One seller's first day: sign up, start the trial, see the PIX of the paid plan, create an
instance with a bot token the fake Discord accepts, add a product with two variants and stock
(pasted and as a file), post it in a channel, create a coupon, make a sale (through the services,
as the bot would), withdraw. Screenshots of every tab at desktop and phone sizes are saved to the
test artifacts, and the same tabs again in English.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from astra.container import Container, build_container
from astra.entrypoints.portal.app import create_portal_app
from astra.settings import Settings, ensure_dev_secrets
from tests.e2e.browser import chromium
from tests.fakes.discord import FakeDiscord

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

TOKEN = "MTE5ODc2NTQzMjEwOTg3NjU0MzI.GzYxWv.abcdefghijklmnopqrstuvwxyz0123456789AB"
EMAIL = "ana@example.com"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple battery horse"
INSTANCE = "loja-da-ana"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TABS = {
    "dashboard": "/dashboard",
    "instances": "/dashboard/instances",
    "store": f"/dashboard/store?instance={INSTANCE}",
    "wallet": "/dashboard/wallet",
    "account": "/dashboard/account",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class World:
    base: str
    container: Container
    discord: FakeDiscord
    channel_id: str

    def url(self, path: str) -> str:
        return self.base + path


@asynccontextmanager
async def running_portal(tmp_path: Path) -> AsyncIterator[World]:
    discord = FakeDiscord(bot_token=TOKEN)
    await discord.start()
    guild = discord.add_guild("Loja do Teste")
    channel = discord.add_channel(guild.id, "produtos")
    port = free_port()
    settings = ensure_dev_secrets(
        Settings(
            data_dir=tmp_path / "data",
            discord_api_base=discord.api_url,
            runtime="process",
            public_url=f"http://127.0.0.1:{port}",
        )
    )
    container = build_container(settings)
    runner = web.AppRunner(create_portal_app(container), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield World(f"http://127.0.0.1:{port}", container, discord, str(channel.id))
    finally:
        await runner.cleanup()
        await discord.stop()
        container.store().close()


class Watch:
    """Everything a page must not do: script errors, requests to other hosts."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.foreign: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        url = request.url
        if not url.startswith((self.base, "data:")):
            self.foreign.append(url)

    def check(self) -> None:
        # A 4xx the page handled (a wrong password, say) is logged by Chromium as a failed
        # resource; only script errors count.
        errors = [e for e in self.errors if "Failed to load resource" not in e]
        assert errors == [], errors
        assert self.foreign == [], self.foreign


async def shoot(page: Any, artifacts: Path, name: str) -> None:
    await page.wait_for_load_state("load")
    # A full-page capture of a scrolled page would draw the sticky header mid-page.
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(artifacts / f"portal-{name}.png"), full_page=True)


async def no_sideways_scroll(page: Any) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def approve_plan(container: Container) -> None:
    with container.store().portal(write=False) as uow:
        (tx,) = uow.plan_transactions.all()
    charge = container.gateway().approve(tx["charge_id"])
    container.payments().apply_charge(charge)


def sell(container: Container, product_id: str, variant_id: str) -> Any:
    """A buyer's purchase as the bot makes it, paid (sandbox) and settled into the wallet."""
    sales = container.sales()
    buyer = "123456789012345678"
    sales.add_item(INSTANCE, buyer, product_id, variant_id, 1)
    order = sales.checkout(INSTANCE, buyer)
    return container.settlement().confirm_payment(
        INSTANCE, order.id, amount_cents=order.total_cents, payment_id="sandbox-e2e-1"
    )


async def test_a_sellers_first_day(tmp_path: Path, artifacts_dir: Path) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=8000)
    async with running_portal(tmp_path) as world, chromium(DESKTOP) as context:
        watch = Watch(world.base)
        page = await context.new_page()
        watch.attach(page)

        # Not logged in: the dashboard sends to the login page.
        await page.goto(world.url("/dashboard/wallet"))
        assert page.url.endswith("/login?next=/dashboard/wallet")

        await page.goto(world.url("/"))
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Discord")
        await shoot(page, artifacts_dir, "landing-desktop")

        # Sign up (fetch + JSON); a refusal is shown in the form.
        form = page.locator("#form-register")
        await form.get_by_label("Seu nome").fill("Ana")
        await form.get_by_label("E-mail").fill(EMAIL)
        await form.get_by_label("Senha").fill("short")
        await page.evaluate("document.querySelector('#register-password').minLength = 0")
        await form.get_by_role("button", name="Criar conta").click()
        await expect(form.locator("[data-error]")).to_contain_text("8")
        await form.get_by_label("Senha").fill(PASSWORD)
        await form.get_by_role("button", name="Criar conta").click()
        await page.wait_for_url("**/dashboard")
        csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        assert csrf

        # The plan banner: no plan -> trial.
        banner = page.locator(".plan-banner")
        await expect(banner).to_contain_text("teste grátis")
        await banner.get_by_role("button", name="Começar teste grátis").click()
        await expect(banner).to_contain_text("Teste grátis: restam 7 dia(s)")

        # Buying the plan shows the PIX: QR image and copy-paste code.
        await banner.get_by_role("button", name="Assinar plano").click()
        dialog = page.locator("#pix-dialog")
        await expect(dialog).to_be_visible()
        assert (await dialog.locator("textarea").input_value()).startswith("000201")
        src = await dialog.locator("img").get_attribute("src")
        assert src and src.startswith("data:image/png;base64,iVBOR")
        await expect(dialog.locator("[data-pix-amount]")).to_have_text("R$ 49,90")
        await shoot(page, artifacts_dir, "plan-pix-desktop")
        # Paid (the sandbox's "approve", as Mercado Pago's webhook would tell it): the open
        # dialog notices and the page shows the paid plan, 30 days after the trial's 7.
        await asyncio.to_thread(approve_plan, world.container)
        await expect(dialog.locator("[data-pix-status]")).to_contain_text(
            "Pagamento confirmado", timeout=10_000
        )
        await expect(banner).to_contain_text("Plano mensal ativo: restam 37 dia(s)")
        await expect(page.locator(".toast")).to_contain_text("Pagamento confirmado")

        # Instances: create one with a bot token the fake Discord accepts.
        await page.get_by_role("navigation", name="Navegação principal").get_by_role(
            "link", name="Instâncias"
        ).click()
        await page.wait_for_url("**/dashboard/instances")
        create = page.locator("#create-instance")
        await create.get_by_label("Nome da loja").fill("Loja da Ana")
        await expect(create.get_by_label("Identificador")).to_have_value(INSTANCE)
        await create.get_by_label("Token do bot").fill("not-a-valid-token")
        await create.get_by_role("button", name="Criar instância").click()
        await expect(create.locator("[data-error]")).to_contain_text("Discord recusou")
        await create.get_by_label("Token do bot").fill(TOKEN)
        await create.get_by_role("button", name="Criar instância").click()
        card = page.locator(f"#instance-{INSTANCE}")
        await expect(card).to_contain_text(world.discord.bot.username)
        await expect(page.locator(".toast")).to_contain_text("Instância criada")
        assert TOKEN not in await page.content()
        invite = await card.get_by_role("link", name="Convidar bot").get_attribute("href")
        assert invite and f"client_id={world.discord.application_id}" in invite

        await card.get_by_role("button", name="Ligar", exact=True).click()
        await expect(page.locator(".toast")).to_contain_text("o bot liga")
        await expect(card.locator("[data-desired]")).to_have_text("ligado")

        # The instance key: shown once, in a dialog, after the password is asked again.
        reauth = page.locator("#reauth-dialog")
        await card.get_by_role("button", name="Gerar nova chave").click()
        await expect(reauth).to_contain_text("Confirme com sua senha")
        await reauth.get_by_label("Sua senha atual").fill("not my password")
        await reauth.get_by_role("button", name="Confirmar").click()
        await expect(page.locator(".toast-error")).to_contain_text("A senha não confere")
        await card.get_by_role("button", name="Gerar nova chave").click()
        await reauth.get_by_label("Sua senha atual").fill(PASSWORD)
        await reauth.get_by_role("button", name="Confirmar").click()
        key_dialog = page.locator("#key-dialog")
        await expect(key_dialog).to_be_visible()
        key = await key_dialog.locator("input").input_value()
        assert key.startswith(f"astra_{INSTANCE}_")
        assert await asyncio.to_thread(
            world.container.instances().verify_instance_key, INSTANCE, key
        )
        await key_dialog.get_by_role("button", name="Fechar").click()
        await expect(card).to_contain_text("Chave definida")
        await expect(card.locator("[data-status-pill]")).to_have_text("offline")

        # Store: a product with two variants, prices typed the Brazilian way.
        await page.goto(world.url("/dashboard/store"))
        new_product = page.locator("#new-product")
        await new_product.get_by_label("Nome do produto").fill("Chave Steam")
        await new_product.get_by_label("Descrição").fill("Um jogo aleatório da Steam.")
        rows = new_product.locator("[data-variant-row]")
        await rows.nth(0).get_by_label("Nome da variante").fill("Bronze")
        await rows.nth(0).get_by_label("Preço").fill("19,90")
        await new_product.get_by_role("button", name="+ Variante").click()
        await rows.nth(1).get_by_label("Nome da variante").fill("Ouro")
        await rows.nth(1).get_by_label("Preço").fill("abc")
        await new_product.get_by_role("button", name="Cadastrar produto").click()
        await expect(new_product.locator("[data-error]")).to_contain_text("Preço inválido")
        await rows.nth(1).get_by_label("Preço").fill("1.049,90")
        await rows.nth(1).get_by_label("Máx. por pedido").fill("2")
        await new_product.get_by_role("button", name="Cadastrar produto").click()
        product_card = page.locator("article.product", has_text="Chave Steam")
        await expect(product_card).to_contain_text("R$ 1.049,90")
        products = await asyncio.to_thread(world.container.catalog().list_products, INSTANCE)
        (product,) = products
        bronze, ouro = product.variants
        assert (bronze.name, bronze.price_cents) == ("Bronze", 1990)
        assert (ouro.name, ouro.price_cents, ouro.max_per_order) == ("Ouro", 104990, 2)

        # Stock, pasted: the report says what was skipped.
        await product_card.get_by_text("Adicionar estoque").click()
        stock = product_card.locator("form.js-stock")
        await stock.get_by_label("Variante").select_option(label="Bronze")
        await stock.get_by_label("Chaves").fill("BRONZE-1\nBRONZE-2\nBRONZE-2\n\nBRONZE-3\n")
        await stock.get_by_role("button", name="Enviar estoque").click()
        report = stock.locator("[data-report]")
        await expect(report).to_contain_text("3 chave(s) adicionada(s), 1 ignorada(s)")
        await expect(report).to_contain_text("Repetidas no envio: 1")
        await expect(product_card.locator(f'[data-stock="{bronze.id}"]')).to_have_text("3")
        # ... and as a .txt file.
        await stock.get_by_label("Variante").select_option(label="Ouro")
        await stock.get_by_label("ou um arquivo .txt").set_input_files(
            {"name": "ouro.txt", "mimeType": "text/plain", "buffer": b"OURO-1\r\nOURO-2\r\n"}
        )
        await stock.get_by_role("button", name="Enviar estoque").click()
        await expect(report).to_contain_text("2 chave(s) adicionada(s), 0 ignorada(s)")
        await expect(product_card.locator(f'[data-stock="{ouro.id}"]')).to_have_text("2")

        # Post it in a channel chosen from the bot's server.
        await product_card.get_by_text("Publicar no Discord").first.click()
        post = product_card.locator("form.js-post")
        channel_select = post.get_by_label("Canal")
        await expect(channel_select.locator("option", has_text="#produtos")).to_have_count(1)
        await channel_select.select_option(label="#produtos")
        await shoot(page, artifacts_dir, "store-tools-desktop")
        await post.get_by_role("button", name="Publicar no Discord").click()
        await expect(page.locator(".toast")).to_contain_text("Produto publicado")
        await expect(product_card).to_contain_text("Publicado em 1 canal(is)")
        messages = world.discord.messages(world.channel_id)
        assert len(messages) == 1
        assert messages[0]["embeds"][0]["title"] == "Chave Steam"

        # A coupon.
        coupon = page.locator("#new-coupon")
        await coupon.get_by_label("Código").fill("promo10")
        await coupon.get_by_label("Desconto").fill("10")
        await coupon.get_by_role("button", name="Criar cupom").click()
        await expect(page.locator("table", has_text="PROMO10")).to_contain_text("10%")

        # A buyer pays in Discord (the bot's part, through the services): the sale shows up.
        order = await asyncio.to_thread(sell, world.container, product.id, bronze.id)
        assert order.status == "paid"
        await page.reload()
        sales = page.locator("section", has=page.get_by_role("heading", name="Vendas"))
        await expect(sales).to_contain_text(order.id)
        await expect(sales).to_contain_text("pago")
        net = 1990 - (1990 * 600 + 5000) // 10000
        net_text = f"R$ {net // 100},{net % 100:02d}"

        # Wallet: the sale's net credit, a withdrawal, one cancelled.
        await page.goto(world.url("/dashboard/wallet"))
        await expect(page.locator("[data-balance]")).to_have_text(net_text)
        withdraw = page.locator("#withdraw-form")
        await withdraw.get_by_label("Valor").fill("999,00")
        await withdraw.get_by_label("Chave PIX").fill(EMAIL)
        await withdraw.get_by_label("Sua senha atual").fill(PASSWORD)
        await withdraw.get_by_role("button", name="Solicitar saque").click()
        await expect(withdraw.locator("[data-error]")).to_contain_text("Saldo insuficiente")
        await withdraw.get_by_label("Valor").fill("10,00")
        await withdraw.get_by_role("button", name="Solicitar saque").click()
        await expect(page.locator(".toast")).to_contain_text("Saque solicitado")
        remaining = net - 1000
        await expect(page.locator("[data-balance]")).to_have_text(
            f"R$ {remaining // 100},{remaining % 100:02d}"
        )
        rows_w = page.locator("tr[data-withdrawal]")
        await expect(rows_w).to_have_count(1)
        await expect(rows_w.first).to_contain_text("solicitado")
        withdrawals = await asyncio.to_thread(
            world.container.wallet().withdrawals, user_id=order_owner(world)
        )
        assert [(w["amount_cents"], w["pix_key"], w["status"]) for w in withdrawals] == [
            (1000, EMAIL, "requested")
        ]

        # Screenshots of every tab, desktop then phone; the phone never scrolls sideways.
        for name, path in TABS.items():
            await page.goto(world.url(path))
            await shoot(page, artifacts_dir, f"{name}-desktop")
        await page.set_viewport_size(PHONE)
        for name, path in TABS.items():
            await page.goto(world.url(path))
            await no_sideways_scroll(page)
            tabbar = page.get_by_role("navigation", name="Navegação principal")
            await expect(tabbar).to_be_visible()
            await shoot(page, artifacts_dir, f"{name}-phone")
        await page.goto(world.url("/dashboard/instances"))
        await page.locator(f"#instance-{INSTANCE} summary", has_text="Configurações").click()
        await shoot(page, artifacts_dir, "instances-settings-phone")
        await page.goto(world.url("/dashboard/wallet"))
        await page.get_by_role("button", name="Cancelar saque").click()
        await page.locator("#confirm-dialog").get_by_role("button", name="Confirmar").click()
        await expect(page.locator("tr[data-withdrawal]").first).to_contain_text("cancelado")
        await expect(page.locator("[data-balance]")).to_have_text(net_text)
        await page.set_viewport_size(DESKTOP)

        # Account: change the password (the session carries on with a new CSRF token).
        await page.goto(world.url("/dashboard/account"))
        password = page.locator("form.js-password")
        await password.get_by_label("Senha atual").fill(PASSWORD)
        await password.get_by_label("Nova senha", exact=True).fill(NEW_PASSWORD)
        await password.get_by_label("Repita a nova senha").fill(NEW_PASSWORD)
        await password.get_by_role("button", name="Salvar").click()
        await expect(page.locator(".toast")).to_contain_text("Senha alterada")
        new_csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        assert new_csrf and new_csrf != csrf

        # The language switch in the header.
        await page.get_by_role("link", name="EN").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Account")
        await page.get_by_role("link", name="PT").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Conta")

        # Log out: back to the landing page, and the dashboard is closed again.
        await page.get_by_role("button", name="Sair").click()
        await page.wait_for_url(world.base + "/")
        await page.goto(world.url("/dashboard"))
        assert "/login" in page.url
        watch.check()

        # English (the `lang` cookie), logging in again through the login page.
        english = await context.browser.new_context(viewport=DESKTOP)
        await english.add_cookies([{"name": "lang", "value": "en", "url": world.base}])
        page = await english.new_page()
        watch.attach(page)
        await page.goto(world.url("/dashboard/store"))
        assert "/login" in page.url
        login = page.locator("#form-login")
        await expect(login.get_by_role("heading")).to_have_text("Log in to Astra")
        await login.get_by_label("E-mail").fill(EMAIL)
        await login.get_by_label("Password").fill(PASSWORD)  # the old one
        await login.get_by_role("button", name="Log in").click()
        await expect(login.locator("[data-error]")).to_be_visible()
        await login.get_by_label("Password").fill(NEW_PASSWORD)
        await login.get_by_role("button", name="Log in").click()
        await page.wait_for_url("**/dashboard/store")
        nav = page.get_by_role("navigation", name="Main navigation")
        for label in ("Dashboard", "Instances", "Store", "Wallet", "Account"):
            await expect(nav.get_by_role("link", name=label)).to_be_visible()
        await expect(page.locator(".plan-banner")).to_contain_text("Monthly plan active")
        for name, path in TABS.items():
            await page.goto(world.url(path))
            await shoot(page, artifacts_dir, f"{name}-desktop-en")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Account")
        await english.close()
        watch.check()

        # Without JavaScript the login form still works, and a refusal is a page, not JSON.
        plain = await context.browser.new_context(java_script_enabled=False, viewport=PHONE)
        page = await plain.new_page()
        await page.goto(world.url("/"))
        await no_sideways_scroll(page)
        await shoot(page, artifacts_dir, "landing-phone")
        await page.goto(world.url("/login"))
        login = page.locator("#form-login")
        await login.get_by_label("E-mail").fill(EMAIL)
        await login.get_by_label("Senha").fill("wrong password")
        await login.get_by_role("button", name="Entrar").click()
        await expect(login.locator("[data-error]")).to_contain_text("incorretos")
        await expect(login.get_by_label("E-mail")).to_have_value(EMAIL)
        await shoot(page, artifacts_dir, "login-refused-phone")
        await login.get_by_label("Senha").fill(NEW_PASSWORD)
        await login.get_by_role("button", name="Entrar").click()
        await page.wait_for_url("**/dashboard")
        await expect(page.locator(".plan-banner")).to_contain_text("Plano mensal ativo")
        await plain.close()


def order_owner(world: World) -> str:
    with world.container.store().portal(write=False) as uow:
        return uow.users.first(email=EMAIL)["id"]
