"""A big stock import in a real browser (Debian's Chromium through Playwright, real aiohttp
server, real JSON store): the stock form's progress bar while the job waits and runs, then the
report; and a page opened mid-import picks the job up. In pt-BR, the portal's default."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from astra.adapters.chat.discord.token import fetch_bot_profile
from astra.entrypoints.stock_importer import StockImporter
from tests.e2e.browser import chromium
from tests.e2e.test_portal_pages import DESKTOP, INSTANCE, PASSWORD, TOKEN, Watch, running_portal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

EMAIL = "caio@example.com"


async def test_the_stock_form_shows_a_big_imports_progress(tmp_path: Path) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=10000)
    async with running_portal(tmp_path) as world, chromium(DESKTOP) as context:
        profile = await fetch_bot_profile(TOKEN, world.discord.api_url)

        def build() -> Any:
            c = world.container
            user = c.accounts().register(EMAIL, PASSWORD, "Caio")
            c.plans().start_trial(user["id"])
            c.instances().create(INSTANCE, owner_id=user["id"], name="Loja do Caio",
                                 actor="test", token=TOKEN, profile=profile)
            return c.catalog().create_product(INSTANCE, {
                "name": "Chave Steam", "variants": [{"name": "Bronze", "price_cents": 990}],
            }, actor="test")

        product = await asyncio.to_thread(build)
        watch = Watch(world.base)
        page = await context.new_page()
        watch.attach(page)
        await page.goto(world.url("/login?next=/dashboard/store"))
        form = page.locator("#form-login")
        await form.get_by_label("E-mail", exact=True).fill(EMAIL)
        await form.get_by_label("Senha", exact=True).fill(PASSWORD)
        await form.get_by_role("button", name="Entrar").click()
        await page.wait_for_url("**/dashboard/store")

        card = page.locator("article.product", has_text="Chave Steam")
        await card.get_by_text("Adicionar estoque").click()
        stock = card.locator("form.js-stock")
        keys = "\n".join(f"LOTE-{i:05d}-WXYZ" for i in range(3000)).encode()
        await stock.get_by_label("ou um arquivo .txt").set_input_files(
            {"name": "lote.txt", "mimeType": "text/plain", "buffer": keys})
        await stock.get_by_role("button", name="Enviar estoque").click()

        # No importer is running yet: the job waits, and the bar says so.
        progress = stock.locator("[data-progress]")
        await expect(progress).to_be_visible()
        await expect(progress).to_contain_text("Importando: 0 de 3000 chaves (0%)")
        assert await stock.locator("[data-progress-bar]").get_attribute("value") == "0"

        # A page opened now finds the job and shows it too.
        other = await context.new_page()
        watch.attach(other)
        await other.goto(world.url("/dashboard/store"))
        other_stock = other.locator("article.product", has_text="Chave Steam").locator(
            "form.js-stock")
        await expect(other_stock.locator("[data-progress]")).to_contain_text("0 de 3000")

        # The importer (as in `astra serve`) runs it: both pages end on the report.
        stop = asyncio.Event()
        importer = asyncio.ensure_future(
            StockImporter(world.container.catalog().imports, scan_seconds=0.2).run(stop))
        try:
            report = stock.locator("[data-report]")
            await expect(report).to_contain_text("3000 chave(s) adicionada(s), 0 ignorada(s)")
            await expect(progress).to_be_hidden()
            await expect(card.locator(f'[data-stock="{product.variants[0].id}"]')).to_have_text(
                "3000")
            await expect(other_stock.locator("[data-report]")).to_contain_text(
                "3000 chave(s) adicionada(s)")
        finally:
            stop.set()
            await importer
        watch.check()
