"""The portal's editors in a real browser (Debian's Chromium through Playwright), against a real
aiohttp server, a real JSON store and the fake Discord: the instance's settings with the server,
channel and role pickers listed from Discord and the branding and DM templates; the full
product editor and its live preview; the stock editor (masked keys, only available ones
removed); the account's name and e-mail; the public pages in pt-BR and English. Each form is
filled, saved, the page reloaded and the values seen again. Screenshots go to SCREENS."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from astra.adapters.chat.discord.token import fetch_bot_profile
from tests.e2e.browser import chromium
from tests.e2e.test_portal_pages import (
    DESKTOP,
    INSTANCE,
    PASSWORD,
    PHONE,
    TOKEN,
    Watch,
    World,
    no_sideways_scroll,
    running_portal,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

EMAIL = "bia@example.com"
KEYS = ["AAAA-1111-BBBB-2222", "CCCC-3333-DDDD-4444", "EEEE-5555-FFFF-6666", "GGGG-7777-HHHH-8888"]
SCREENS = Path(os.environ.get("ASTRA_SCREENS_DIR", "/work/screens"))


async def screen(page: Any, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


async def _seller_with_a_shop(world: World) -> dict[str, Any]:
    """A seller on trial with an instance (the fake's bot), a product with two variants and
    four keys (one of them reserved by a buyer's cart), and a Discord server with a category,
    channels and roles to pick from."""
    profile = await fetch_bot_profile(TOKEN, world.discord.api_url)

    def build() -> dict[str, Any]:
        c = world.container
        user = c.accounts().register(EMAIL, PASSWORD, "Bia")
        c.plans().start_trial(user["id"])
        c.instances().create(INSTANCE, owner_id=user["id"], name="Loja da Bia", actor="test",
                             token=TOKEN, profile=profile)
        product = c.catalog().create_product(INSTANCE, {
            "name": "Chave Steam",
            "description": "Um jogo aleatório.",
            "variants": [{"name": "Bronze", "price_cents": 990},
                         {"name": "Ouro", "price_cents": 4990}],
        }, actor="test")
        bronze = product.variants[0].id
        c.catalog().import_stock(INSTANCE, product.id, bronze, "\n".join(KEYS), actor="test")
        c.sales().add_item(INSTANCE, "555555555555555555", product.id, bronze, 1)
        return {"user": user, "product": product, "bronze": bronze}

    return await asyncio.to_thread(build)


async def _login(page: Any, world: World, path: str) -> None:
    await page.goto(world.url(f"/login?next={path}"))
    form = page.locator("#form-login")
    await form.get_by_label("E-mail", exact=True).fill(EMAIL)
    await form.get_by_label("Senha", exact=True).fill(PASSWORD)
    await form.get_by_role("button", name="Entrar").click()
    await page.wait_for_url(f"**{path}")


async def test_the_editors(tmp_path: Path) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=8000)
    async with running_portal(tmp_path) as world, chromium(DESKTOP) as context:
        fake = world.discord
        guild_id = fake.channel(world.channel_id).guild_id
        category = fake.add_category(guild_id, "Carrinhos")
        logs = fake.add_channel(guild_id, "logs")
        sales_channel = fake.add_channel(guild_id, "vendas")
        buyer_role = fake.add_role(guild_id, "Cliente")
        staff_role = fake.add_role(guild_id, "Equipe")
        shop = await _seller_with_a_shop(world)
        product = shop["product"]

        watch = Watch(world.base)
        page = await context.new_page()
        watch.attach(page)
        await _login(page, world, "/dashboard/instances")

        # -- Instâncias: pickers from Discord, branding, DM templates --------------------------
        card = page.locator(f"#instance-{INSTANCE}")
        await card.get_by_text("Configurações").click()
        form = card.locator("form.js-settings")
        await expect(form.locator("[data-picker-status]")).to_contain_text("Listados do Discord")
        await expect(form.get_by_label("Servidor", exact=True)).to_have_value(str(guild_id))
        await form.get_by_label("Categoria dos carrinhos", exact=True).select_option(
            label="Carrinhos")
        await form.get_by_label("Canal de logs", exact=True).select_option(label="#logs")
        await form.get_by_label("Canal de anúncio de vendas", exact=True).select_option(
            label="#vendas")
        await form.get_by_label("Canal da equipe", exact=True).select_option(label="#produtos")
        await form.get_by_label("Cargo de comprador", exact=True).select_option(label="@Cliente")
        await form.get_by_label("Cargo da equipe", exact=True).select_option(label="@Equipe")
        await form.get_by_label("Cor dos embeds", exact=True).fill("#ff5500")
        await form.get_by_label("Rodapé dos posts", exact=True).fill(
            "Loja da Bia · entrega na hora")
        await form.get_by_label("Banner do sistema (imagem ou GIF)", exact=True).fill(
            "https://cdn.example.com/bia.gif")
        await form.get_by_label("Instruções do PIX", exact=True).fill(
            "Pague pelo app do seu banco.")
        sale_body = form.locator(f"#tpl-sale-body-{INSTANCE}")
        await sale_body.fill("Valeu, {buyer}! Sua chave: {chavez}")
        await form.get_by_role("button", name="Salvar").click()
        await expect(form.locator("[data-error]")).to_contain_text("{chavez}")
        await sale_body.fill("Valeu, {buyer}! Pedido {order}: {keys}")
        await form.get_by_role("button", name="Salvar").click()
        await expect(page.locator(".toast")).to_contain_text("Configurações salvas")

        settings = await asyncio.to_thread(world.container.instances().settings, INSTANCE)
        assert settings["cart_category_id"] == str(category.id)
        assert settings["log_channel_id"] == str(logs.id)
        assert settings["sales_channel_id"] == str(sales_channel.id)
        assert settings["staff_channel_id"] == world.channel_id
        assert settings["buyer_role_id"] == str(buyer_role.id)
        assert settings["staff_role_id"] == str(staff_role.id)
        assert settings["branding"]["color"] == 0xFF5500
        assert settings["branding"]["footer_text"] == "Loja da Bia · entrega na hora"
        assert settings["templates"]["sale"]["body"] == "Valeu, {buyer}! Pedido {order}: {keys}"

        # Reloaded, the form shows what was saved (pickers by name, once Discord answers).
        await page.reload()
        card = page.locator(f"#instance-{INSTANCE}")
        await card.get_by_text("Configurações").click()
        form = card.locator("form.js-settings")
        await expect(form.locator("[data-picker-status]")).to_contain_text("Listados do Discord")
        picked = form.get_by_label("Cargo de comprador", exact=True)
        await expect(picked).to_have_value(str(buyer_role.id))
        assert await picked.locator("option:checked").inner_text() == "@Cliente"
        await expect(form.get_by_label("Categoria dos carrinhos", exact=True)).to_have_value(
            str(category.id))
        await expect(form.get_by_label("Cor dos embeds", exact=True)).to_have_value("#ff5500")
        await expect(form.locator(f"#tpl-sale-body-{INSTANCE}")).to_have_value(
            "Valeu, {buyer}! Pedido {order}: {keys}")
        assert TOKEN not in await page.content()
        await screen(page, "portal-instances-settings")

        # Clearing a picker sends null: the setting is gone.
        await form.get_by_label("Canal de anúncio de vendas", exact=True).select_option(value="")
        await form.get_by_role("button", name="Salvar").click()
        await expect(page.locator(".toast")).to_contain_text("Configurações salvas")
        settings = await asyncio.to_thread(world.container.instances().settings, INSTANCE)
        assert settings["sales_channel_id"] is None

        # -- Loja: the product editor and its preview ------------------------------------------
        await page.goto(world.url(f"/dashboard/store?instance={INSTANCE}"))
        pcard = page.locator(f"#product-{product.id}")
        await pcard.get_by_text("Editar produto").click()
        editor = pcard.locator("form.js-product-edit")
        preview = pcard.locator("[data-preview]")
        await expect(preview.locator(".dc-title")).to_have_text("Chave Steam")
        await editor.get_by_label("Nome do produto").fill("Chave Steam Deluxe")
        await editor.get_by_label("Descrição").fill("Um jogo **aleatório** com DLC.")
        await expect(preview.locator(".dc-title")).to_have_text("Chave Steam Deluxe")
        await expect(preview.locator(".dc-description strong")).to_have_text("aleatório")
        await editor.get_by_label("Cor do embed").fill("#00aa88")
        await editor.get_by_label("Imagem do post").fill("https://cdn.example.com/capa.png")
        await editor.get_by_label("Link de demonstração").fill("https://example.com/demo")
        await editor.get_by_label("Texto do botão de demonstração").fill("Ver demo")
        await editor.get_by_role("button", name="Adicionar seção").click()
        await editor.get_by_label("Título da seção").fill("Requisitos")
        await editor.get_by_label("Texto da seção").fill("Windows 10 ou superior")
        rows = editor.locator("[data-variant-row]")
        await rows.nth(0).get_by_label("Emoji").fill("🔥")
        await rows.nth(0).get_by_label("Duração").fill("Vitalício")
        await rows.nth(1).get_by_label("Preço").fill("59,90")
        await expect(preview.locator(".dc-field-name", has_text="Requisitos")).to_be_visible()
        await expect(preview.locator(".dc-button", has_text="Ver demo")).to_be_visible()
        await expect(preview.locator(".dc-option-label").first).to_contain_text("🔥")
        await expect(preview).to_contain_text("R$ 59,90")
        post_embed = preview.locator(".dc-embed", has=page.locator(".dc-title"))
        border = await post_embed.evaluate(
            "e => getComputedStyle(e).borderLeftColor")
        assert border == "rgb(0, 170, 136)"
        await screen(page, "portal-store-product-editor")
        await editor.get_by_role("button", name="Salvar produto").click()
        await expect(page.locator(".toast")).to_contain_text("Produto salvo")

        saved = await asyncio.to_thread(world.container.catalog().get_product, INSTANCE,
                                        product.id)
        assert saved.name == "Chave Steam Deluxe" and saved.color == 0x00AA88
        assert saved.sections == [{"title": "Requisitos", "text": "Windows 10 ou superior"}]
        assert saved.variants[0].emoji == "🔥" and saved.variants[0].duration == "Vitalício"
        assert saved.variants[1].price_cents == 5990
        assert [v.id for v in saved.variants] == [v.id for v in product.variants]

        await page.reload()
        pcard = page.locator(f"#product-{product.id}")
        await pcard.get_by_text("Editar produto").click()
        editor = pcard.locator("form.js-product-edit")
        await expect(editor.get_by_label("Nome do produto")).to_have_value("Chave Steam Deluxe")
        await expect(editor.get_by_label("Título da seção")).to_have_value("Requisitos")
        await expect(editor.locator("[data-variant-row]").nth(1).get_by_label("Preço")) \
            .to_have_value("59,90")
        await pcard.get_by_text("Editar produto").click()  # closed again

        # -- Loja: post twice in the channel, the second time purging the first -------------
        for purge in (False, True):
            await pcard.get_by_text("Publicar no Discord").first.click()
            post = pcard.locator("form.js-post")
            await post.get_by_label("Canal").select_option(label="#produtos")
            if purge:
                await post.get_by_label("Substituir as publicações antigas").check()
            await post.get_by_role("button", name="Publicar no Discord").click()
            await expect(page.locator(".toast")).to_be_visible()
            pcard = page.locator(f"#product-{product.id}")
        posts = [m for m in world.discord.messages(world.channel_id) if m.get("components")]
        assert len(posts) == 1
        assert posts[0]["embeds"][0]["title"] == "Chave Steam Deluxe"

        # -- Loja: the stock editor ------------------------------------------------------------
        await pcard.get_by_text("Gerenciar chaves").click()
        keys = pcard.locator(".js-keys")
        await expect(keys.locator("li.key")).to_have_count(4)
        await expect(keys.locator("[data-keys-count]")).to_contain_text("3 disponível(is)")
        page_text = await page.content()
        assert not any(k in page_text for k in KEYS)
        reserved = keys.locator("li.key-reserved input[type=checkbox]")
        await expect(reserved).to_be_disabled()
        available = keys.locator("li.key-available input[type=checkbox]")
        await available.nth(0).check()
        await available.nth(1).check()
        await screen(page, "portal-store-stock-editor")
        await keys.get_by_role("button", name="Remover selecionadas").click()
        await page.locator("#confirm-dialog").get_by_role("button", name="Confirmar").click()
        await expect(page.locator(".toast").last).to_contain_text("2 chave(s) removida(s)")
        await expect(keys.locator("li.key")).to_have_count(2)
        await expect(pcard.locator(f'[data-stock="{shop["bronze"]}"]')).to_have_text("1")
        counts = await asyncio.to_thread(world.container.catalog().stock_counts, INSTANCE)
        assert counts[shop["bronze"]] == {"available": 1, "reserved": 1, "sold": 0}

        # -- Loja: a new product in the same editor, previewed before it exists ---------------
        await page.locator("details.new-product > summary").click()
        creator = page.locator("#new-product")
        await creator.get_by_label("Nome do produto").fill("Assinatura VIP")
        first = creator.locator("[data-variant-row]").nth(0)
        await first.get_by_label("Nome da variante").fill("Mensal")
        await first.get_by_label("Preço").fill("29,90")
        await first.get_by_label("Duração").fill("30 dias")
        new_preview = page.locator("details.new-product [data-preview]")
        await expect(new_preview.locator(".dc-title")).to_have_text("Assinatura VIP")
        await expect(new_preview).to_contain_text("R$ 29,90")
        await screen(page, "portal-store-new-product")
        await creator.get_by_role("button", name="Cadastrar produto").click()
        await expect(page.locator("article.product", has_text="Assinatura VIP")).to_contain_text(
            "R$ 29,90")
        products = await asyncio.to_thread(world.container.catalog().list_products, INSTANCE)
        created = next(p for p in products if p.name == "Assinatura VIP")
        assert created.variants[0].duration == "30 dias"

        # -- Conta: name and e-mail, confirmed with the password -------------------------------
        await page.goto(world.url("/dashboard/account"))
        await page.get_by_text("Alterar nome e e-mail").click()
        profile = page.locator("#profile-form")
        await profile.get_by_label("Nome", exact=True).fill("Beatriz")
        await profile.get_by_label("E-mail").fill("beatriz@example.com")
        await profile.get_by_label("Senha atual (para confirmar)").fill("senha-errada-1")
        await profile.get_by_role("button", name="Salvar").click()
        await expect(profile.locator("[data-error]")).to_contain_text("senha atual")
        await profile.get_by_label("Senha atual (para confirmar)").fill(PASSWORD)
        await screen(page, "portal-account-profile-form")
        await profile.get_by_role("button", name="Salvar").click()
        await expect(page.locator(".toast")).to_contain_text("Perfil salvo")
        await expect(page.locator("#profile-title + dl")).to_contain_text("beatriz@example.com")
        await expect(page.locator("#profile-title + dl")).to_contain_text("Beatriz")
        await screen(page, "portal-account-profile")

        # A write without the session's CSRF token is refused, whatever the page's script does.
        status = await page.evaluate("""async () => (await fetch('/api/me', {method: 'PATCH',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({name: 'X', current_password: 'x'})})).status""")
        assert status == 403

        # -- English -----------------------------------------------------------------------------
        await page.goto(world.url("/lang?to=en&next=/dashboard/instances"))
        card = page.locator(f"#instance-{INSTANCE}")
        await card.get_by_text("Settings", exact=True).click()
        form = card.locator("form.js-settings")
        await expect(form.locator("[data-picker-status]")).to_contain_text("Listed from Discord")
        await expect(form.get_by_label("Buyer role", exact=True)).to_have_value(
            str(buyer_role.id))
        await screen(page, "portal-instances-settings-en")
        await page.goto(world.url(f"/dashboard/store?instance={INSTANCE}"))
        pcard = page.locator(f"#product-{product.id}")
        await pcard.get_by_text("Edit product").click()
        await expect(pcard.locator(".dc-title")).to_have_text("Chave Steam Deluxe")
        # The page speaks English; the post, the bot's language (the instance's: pt-BR).
        await expect(pcard.locator("[data-preview-status]")).to_contain_text("How the bot")
        await expect(pcard.locator(".dc-select")).to_contain_text("Escolha uma opção")
        await screen(page, "portal-store-product-editor-en")
        await page.goto(world.url("/lang?to=pt-BR&next=/dashboard"))

        # -- phone size: the editors fit -------------------------------------------------------
        phone = await context.new_page()
        await phone.set_viewport_size(PHONE)
        watch.attach(phone)
        await phone.goto(world.url(f"/dashboard/store?instance={INSTANCE}"))
        await phone.locator(f"#product-{product.id}").get_by_text("Editar produto").click()
        await expect(phone.locator(".dc-title")).to_have_text("Chave Steam Deluxe")
        await no_sideways_scroll(phone)
        await screen(phone, "portal-store-product-editor-phone")
        await phone.close()
        watch.check()


@pytest.mark.parametrize("language", ["pt-BR", "en"])
async def test_public_pages(tmp_path: Path, language: str) -> None:
    from playwright.async_api import expect

    headings = {
        "pt-BR": {"plans": "Planos", "tutorials": "Tutoriais", "terms": "Termos de uso",
                  "privacy": "Privacidade"},
        "en": {"plans": "Plans", "tutorials": "Tutorials", "terms": "Terms of use",
               "privacy": "Privacy"},
    }[language]
    async with running_portal(tmp_path) as world, chromium(DESKTOP) as context:
        watch = Watch(world.base)
        page = await context.new_page()
        watch.attach(page)
        await page.goto(world.url(f"/lang?to={language}&next=/plans"))
        for name, heading in headings.items():
            await page.goto(world.url(f"/{name}"))
            await expect(page.locator("article h1")).to_have_text(heading)
            await expect(page.locator(f'.public-nav a[href="/{name}"]')).to_have_attribute(
                "aria-current", "page")
            await no_sideways_scroll(page)
            await screen(page, f"portal-public-{name}-{language}")
        await page.goto(world.url("/plans"))
        await expect(page.locator("#plan-monthly")).to_contain_text("R$ 49,90")
        await expect(page.locator("#plan-trial")).to_contain_text("7")
        await page.goto(world.url("/tutorials"))
        await expect(page.locator("article")).to_contain_text("/loja vincular")
        # Linked from every page's footer.
        await page.goto(world.url("/"))
        await expect(page.locator(".footer-links a")).to_have_count(4)
        watch.check()
