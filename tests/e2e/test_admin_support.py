"""The admin panel's support pages in a real browser (Debian's Chromium through Playwright) over a
real aiohttp server, a real JSON store and the fake Discord: an operator edits a seller's
product, adds and removes keys, creates, disables and deletes a coupon, posts a product and
changes the instance's settings from Suporte; then reads Auditoria's platform logs (no bot token
in them), the work waiting and which posts are stale or missing. Every write is seen in the
instance's audit log under the operator's name. Screenshots go to SCREENS."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from astra.adapters.chat.discord.rest import DiscordRest
from astra.adapters.chat.discord.token import fetch_bot_profile
from astra.entrypoints.admin.app import create_admin_app
from astra.logs import configure_logging
from tests.e2e.browser import chromium
from tests.e2e.test_portal_editors import SCREENS, screen
from tests.fakes.discord import FakeDiscord
from tests.integration.sales_world import INSTANCE, OWNER, Shop, make_shop

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

USER = "ops"
PASSWORD = "correct horse battery"
BOT_TOKEN = "MTE5ODc2NTQzMjEwOTg3NjU0MzI.GzYxWv.abcdefghijklmnopqrstuvwxyz0123456789AB"
DESKTOP = {"width": 1280, "height": 900}


def audit(shop: Shop, action: str) -> list[dict[str, Any]]:
    with shop.store.instance(INSTANCE, write=False) as uow:
        return [a for a in uow.audit.all() if a["action"] == action]


async def _login(page: Any, base: str, path: str) -> None:
    await page.goto(base + path)
    await page.fill("input[name=user]", USER)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(base + path)


async def test_an_operator_runs_a_sellers_store(tmp_path: Path) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=8000)
    fake = FakeDiscord(bot_token=BOT_TOKEN)
    await fake.start()
    guild = fake.add_guild("Loja do Teste")
    channel = str(fake.add_channel(guild.id, "produtos").id)
    shop = make_shop(tmp_path / "data", keys=3, admin_user=USER, admin_password=PASSWORD,
                     admin_token="admin-token-for-page-tests-0123456789",
                     discord_api_base=fake.api_url)
    profile = await fetch_bot_profile(BOT_TOKEN, fake.api_url)
    shop.container.instances().set_bot_token(INSTANCE, BOT_TOKEN, profile, actor="test")
    configure_logging("info", fmt="json", stream=io.StringIO())
    logging.getLogger("astra.test.support").warning("discord refused token %s", BOT_TOKEN)
    # Work waiting: a paid order not yet delivered and a withdrawal.
    buyer = "777777777777777777"
    shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, buyer)
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=order.total_cents,
                                    payment_id="pay-support")
    shop.wallet.request_withdrawal(OWNER, 1000, "ana@example.com")

    runner = web.AppRunner(create_admin_app(shop.container))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with chromium(DESKTOP) as context:
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await _login(page, base, f"/admin/suporte?instance={INSTANCE}")
            card = page.locator(f"#product-{shop.product_id}")
            await expect(card).to_contain_text("Steam Key")

            # Edit the product's fields (JSON of the seller's API) and save.
            await card.get_by_text("Editar (JSON)").click()
            editor = card.locator("textarea[name=_body]")
            fields = await editor.input_value()
            await editor.fill(fields.replace('"Steam Key"', '"Steam Key Premium"'))
            await card.get_by_role("button", name="Salvar produto").click()
            await expect(page.locator("#flash")).to_contain_text("Salvar produto")
            card = page.locator(f"#product-{shop.product_id}")
            await expect(card.locator("h3")).to_contain_text("Steam Key Premium")
            assert audit(shop, "product.updated")[-1]["actor"] == f"admin:{USER}"

            # A broken JSON is refused in the page, before any request.
            await card.get_by_text("Editar (JSON)").click()
            await card.locator("textarea[name=_body]").fill("{nope")
            await card.get_by_role("button", name="Salvar produto").click()
            await expect(card.locator(".form-error").first).to_contain_text("JSON inválido")

            # Stock: add keys, then remove one (masked in the list).
            await card.get_by_text("Estoque", exact=True).click()
            add = card.locator("form", has=page.locator("textarea[name=keys]"))
            await add.locator("textarea[name=keys]").fill("NOVA-1\nNOVA-2")
            await add.get_by_role("button", name="Adicionar chaves").click()
            await expect(page.locator("#flash")).to_contain_text("Adicionar chaves")
            assert audit(shop, "stock.imported")[-1]["actor"] == f"admin:{USER}"
            card = page.locator(f"#product-{shop.product_id}")
            await card.get_by_text("Estoque", exact=True).click()
            assert "NOVA-1" not in await page.content()
            removal = card.locator("form", has=page.locator("input[name=key_ids]")).first
            await removal.locator("li.key-available input[name=key_ids]").first.check()
            await screen(page, "admin-suporte")
            await removal.get_by_role("button", name="Remover selecionadas").click()
            await expect(page.locator("#flash")).to_contain_text("Remover selecionadas")
            (removed,) = audit(shop, "stock.removed")
            assert removed["actor"] == f"admin:{USER}" and removed["details"]["removed"] == 1

            # Coupons: create, disable, delete.
            await page.locator("#new-coupon summary").click()
            coupon_form = page.locator("#new-coupon form")
            await coupon_form.locator("input[name=code]").fill("SUPORTE5")
            await coupon_form.locator("input[name=value]").fill("5")
            await coupon_form.get_by_role("button", name="Criar cupom").click()
            await expect(page.locator("#flash")).to_contain_text("Criar cupom")
            row = page.locator('#support-coupons tr[data-id="SUPORTE5"]')
            await row.get_by_role("button", name="Desativar").click()
            await page.locator("#confirm-dialog [data-dialog-confirm]").click()
            await expect(page.locator("#flash")).to_contain_text("Desativar")
            await expect(row).to_contain_text("desativado")
            await row.get_by_role("button", name="Excluir").click()
            await page.locator("#confirm-dialog [data-dialog-confirm]").click()
            await expect(page.locator("#flash")).to_contain_text("Excluir")
            await expect(page.locator('#support-coupons tr[data-id="SUPORTE5"]')).to_have_count(0)
            for action in ("coupon.created", "coupon.disabled", "coupon.deleted"):
                assert audit(shop, action)[-1]["actor"] == f"admin:{USER}", action

            # Post the product in a channel through the instance's bot.
            card = page.locator(f"#product-{shop.product_id}")
            await card.get_by_text("Publicar num canal").click()
            await card.locator("input[name=channel_id]").fill(channel)
            await card.get_by_role("button", name="Publicar", exact=True).click()
            await expect(page.locator("#flash")).to_contain_text("Publicar")
            assert len(fake.messages(channel)) == 1
            assert audit(shop, "product.posted")[-1]["actor"] == f"admin:{USER}"

            # Settings: only what changed is sent.
            settings = page.locator("#support-settings textarea[name=settings]")
            text = await settings.input_value()
            await settings.fill(text.replace('"cart_ttl_seconds": 900',
                                             '"cart_ttl_seconds": 1800'))
            await page.locator("#support-settings").get_by_role(
                "button", name="Salvar configurações").click()
            await expect(page.locator("#flash")).to_contain_text("Salvar configurações")
            assert shop.container.instances().settings(INSTANCE)["cart_ttl_seconds"] == 1800
            changed = audit(shop, "instance.settings_changed")[-1]
            assert changed["actor"] == f"admin:{USER}"
            assert changed["details"]["fields"] == ["cart_ttl_seconds"]

            # A write without the session's CSRF token is refused.
            status = await page.evaluate(f"""async () => (await fetch(
                '/api/instances/{INSTANCE}/products/{shop.product_id}/deactivate',
                {{method: 'POST'}})).status""")
            assert status == 403

            # Auditoria: the platform's logs, redacted.
            await page.goto(base + "/admin/auditoria/logs?level=warning")
            await expect(page.locator("#platform-logs")).to_contain_text("discord refused token")
            assert BOT_TOKEN not in await page.content()
            await expect(page.locator("#platform-logs")).to_contain_text("[REDACTED]")
            await screen(page, "admin-auditoria-logs")

            # The work waiting on someone.
            await page.goto(base + "/admin/auditoria/pendencias")
            await expect(page.locator("#work-paid")).to_contain_text(order.id)
            await expect(page.locator("#work-withdrawals tbody tr")).to_have_count(1)
            await screen(page, "admin-auditoria-pendencias")

            # Posts: up to date, then stale after a change, then missing once deleted.
            await page.goto(base + "/admin/auditoria/publicacoes")
            row = page.locator(f'#posts tr[data-id="{shop.product_id}"]')
            await expect(row).to_have_attribute("data-state", "ok")
            shop.clock.set(shop.clock.now() + timedelta(minutes=5))
            shop.catalog.update_product(INSTANCE, shop.product_id, {"description": "Nova"},
                                        actor="test")
            await page.reload()
            await expect(row).to_have_attribute("data-state", "stale")
            await expect(row).to_contain_text("desatualizada")
            await screen(page, "admin-auditoria-publicacoes")
            (post,) = shop.catalog.get_product(INSTANCE, shop.product_id).posts
            async with DiscordRest(BOT_TOKEN, fake.api_url) as discord:
                await discord.delete_message(channel, post["message_id"])
            await page.reload()
            await expect(row).to_have_attribute("data-state", "missing")
            # Republishing from the posts view brings it back.
            await row.get_by_role("button", name="Republicar").click()
            await page.locator("#confirm-dialog [data-dialog-confirm]").click()
            await expect(page.locator("#flash")).to_contain_text("Republicar")
            await expect(page.locator(f'#posts tr[data-id="{shop.product_id}"]')) \
                .to_have_attribute("data-state", "ok")
            assert audit(shop, "product.reposted")[-1]["actor"] == f"admin:{USER}"

            # English too.
            await page.goto(base + "/admin/suporte?instance=" + INSTANCE + "&lang=en")
            await expect(page.locator("h1")).to_have_text("Store support")
            await page.goto(base + "/admin/auditoria/pendencias")
            await expect(page.locator("h2").first).to_have_text("Withdrawals to pay")
            assert errors == [], errors
    finally:
        await runner.cleanup()
        await fake.stop()
        shop.container.store().close()
    assert SCREENS.exists()
