"""Issue 15 through the seller API (a real aiohttp server, the JSON store on disk, the fake
Discord): branding and DM templates in the instance's settings, product branding, and the post
action's banner and purge."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_portal_api import PASSWORD, TOKEN, TWO_VARIANTS, Portal, portal, shop

__all__ = ["portal"]  # the fixture, imported for pytest

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")

BASE = "/api/instances/loja-marca"


async def _seller(portal: Portal) -> Any:
    seller = await portal.seller("marca@example.com")
    await shop(seller, "loja-marca")
    return seller


async def test_branding_and_templates_are_saved_checked_and_returned(portal: Portal) -> None:
    seller = await _seller(portal)
    branding = {
        "color": "#FF8800",
        "banner_url": "https://cdn.example/banner.gif",
        "thumbnail_url": "https://cdn.example/logo.png",
        "footer_text": "Loja oficial",
        "cart_footer": "Dúvidas? Chame a equipe.",
        "pix_instructions": "Pague em até 10 minutos.",
        "terms_text": "Sem reembolso após a entrega.",
        "welcome_text": "Bem-vindos!",
    }
    templates = {
        "sale": {"title": "Obrigado, {buyer}!", "body": "{product} — {variant}\n{keys}",
                 "footer": "Pedido {order} · {instance}", "color": "#00ff00"},
        "staff": {"body": "A equipe entregou {product}: {keys}"},
    }
    status, body = await seller.patch(BASE, json={"settings": {
        "branding": branding, "templates": templates, "manual_confirmation": True,
        "cart_idle_seconds": 300, "stock_alert_role_id": "123456789012345678",
        "staff_notifications": True,
    }})
    assert status == 200, body
    settings = body["settings"]
    assert settings["branding"]["color"] == 0xFF8800
    assert settings["branding"]["terms_text"] == "Sem reembolso após a entrega."
    assert settings["templates"]["sale"]["color"] == 0x00FF00
    assert settings["templates"]["staff"]["body"] == "A equipe entregou {product}: {keys}"
    assert settings["templates"]["staff"]["title"] == ""  # untouched: the built-in text
    assert settings["manual_confirmation"] is True and settings["cart_idle_seconds"] == 300

    # A partial change keeps the rest.
    status, body = await seller.patch(BASE, json={"settings": {"branding": {"color": None}}})
    assert status == 200
    assert body["settings"]["branding"]["color"] is None
    assert body["settings"]["branding"]["banner_url"] == "https://cdn.example/banner.gif"

    # An unknown placeholder: 422 naming it and listing the known ones.
    status, body = await seller.patch(
        BASE, json={"settings": {"templates": {"sale": {"body": "Oi {comprador} {chave}"}}}}
    )
    assert status == 422, body
    assert body["error"] == "unknown_placeholder"
    assert "{chave}" in body["message"]
    for known in ("{buyer}", "{product}", "{variant}", "{keys}", "{order}", "{instance}"):
        assert known in body["message"]

    for bad in (
        {"branding": {"banner_url": "http://cdn.example/banner.gif"}},
        {"branding": {"thumbnail_url": "javascript:alert(1)"}},
        {"branding": {"color": "roxo"}},
        {"branding": {"color": 0x1000000}},
        {"branding": {"terms_text": "t" * 1901}},
        {"branding": {"nope": "x"}},
        {"branding": "texto"},
        {"templates": {"sale": {"title": "t" * 201}}},
        {"templates": {"refund": {"body": "x"}}},
        {"cart_idle_seconds": 10},
        {"manual_confirmation": "yes"},
        {"stock_alert_role_id": "@equipe"},
    ):
        status, body = await seller.patch(BASE, json={"settings": bad})
        assert status == 422, (bad, status, body)
    status, body = await seller.get(BASE)
    assert body["settings"]["branding"]["banner_url"] == "https://cdn.example/banner.gif"
    assert body["settings"]["templates"]["sale"]["body"] == "{product} — {variant}\n{keys}"


async def test_product_branding_fields(portal: Portal) -> None:
    seller = await _seller(portal)
    product = {
        **TWO_VARIANTS,
        "variants": [
            {"name": "Bronze", "price_cents": 990, "emoji": "🥉", "duration": "30 dias"},
            {"name": "Ouro", "price_cents": 4990, "emoji": "<:ouro:123456789012345678>",
             "duration": "Vitalício"},
        ],
        "color": "#123456",
        "image_url": "https://cdn.example/produto.png",
        "banner_url": "https://cdn.example/banner.gif",
        "show_thumbnail": False,
        "footer_text": "Entrega automática",
        "sections": [{"title": "Requisitos", "text": "Windows 10"}],
        "demo_url": "https://demo.example/video",
        "demo_label": "Ver vídeo",
        "dm_template": "Sua chave de {product}: {keys}",
        "staff_dm_template": "A equipe entregou: {keys}",
    }
    status, body = await seller.post(f"{BASE}/products", json=product)
    assert status == 201, body
    assert body["color"] == 0x123456 and body["show_thumbnail"] is False
    assert body["variants"][0]["emoji"] == "🥉" and body["variants"][1]["duration"] == "Vitalício"
    assert body["sections"] == [{"title": "Requisitos", "text": "Windows 10"}]
    pid = body["id"]

    status, body = await seller.post(f"{BASE}/products", json={
        "name": "Conta compartilhada", "variants": [{"name": "Único", "price_cents": 500}],
        "unlimited_stock": True, "content": "login: a / senha: b"})
    assert status == 201 and body["unlimited_stock"] is True
    status, body = await seller.post(f"{BASE}/stock/{body['id']}", json={
        "variant_id": body["variants"][0]["id"], "keys": "K1"})
    assert status == 422  # no key stock for a shared key

    for bad in (
        {"image_url": "http://cdn.example/p.png"},
        {"demo_url": "ftp://demo.example"},
        {"demo_label": "Sem link", "demo_url": ""},
        {"color": "azul"},
        {"sections": [{"title": "t", "text": "x"}] * 11},
        {"sections": [{"title": "", "text": "x"}]},
        {"sections": [{"title": "t"}]},
        {"dm_template": "Sua {chave}"},
        {"staff_dm_template": "{order} {nada}"},
        {"variants": [{"name": "A", "price_cents": 1, "emoji": "fogo"}]},
        {"variants": [{"name": "A", "price_cents": 1, "duration": "d" * 41}]},
        {"unlimited_stock": True, "content": ""},
        {"show_thumbnail": "sim"},
    ):
        status, body = await seller.patch(f"{BASE}/products/{pid}", json=bad)
        assert status == 422, (bad, status, body)
    status, body = await seller.patch(f"{BASE}/products/{pid}", json={"dm_template": "{x}"})
    assert status == 422 and body["error"] == "unknown_placeholder" and "{keys}" in body["message"]
    status, body = await seller.get(f"{BASE}/products/{pid}")
    assert body["dm_template"] == "Sua chave de {product}: {keys}"


async def test_post_with_banner_then_purge_leaves_one_post(portal: Portal) -> None:
    seller = await _seller(portal)
    assert (await seller.put(f"{BASE}/bot-token",
                             json={"token": TOKEN, "password": PASSWORD}))[0] == 200
    status, product = await seller.post(f"{BASE}/products", json={
        **TWO_VARIANTS, "banner_url": "https://cdn.example/banner.gif", "color": "#00aa00"})
    assert status == 201
    pid = product["id"]
    channel = portal.general_channel()
    portal.fake.user_message(channel, portal.fake.add_user("alguem").id, "oi")
    post = {"product_id": pid, "channel_id": channel}
    for _ in range(2):  # two posts, the second without purge: both stay
        status, body = await seller.post(f"{BASE}/discord/post-product", json=post)
        assert status == 200 and body["purged"] == 0
    messages = portal.fake.messages(channel)
    assert len(messages) == 5  # the user's, then banner + post twice
    banner, first = messages[1], messages[2]
    assert banner["embeds"][0]["image"]["url"] == "https://cdn.example/banner.gif"
    assert not banner["components"]
    assert first["embeds"][0]["color"] == 0x00AA00

    status, body = await seller.post(f"{BASE}/discord/post-product", json={**post, "purge": True})
    assert status == 200, body
    assert body["purged"] == 2
    messages = portal.fake.messages(channel)
    assert [m["content"] for m in messages[:1]] == ["oi"]  # someone else's message stays
    assert len(messages) == 3 and messages[2]["id"] == body["message_id"]
    status, stored = await seller.get(f"{BASE}/products/{pid}")
    # (each post also carries when it was made and the product's version then: posted_at,
    # version, for the admin's posts view)
    ids = ("channel_id", "message_id", "banner_message_id")
    assert [{k: p[k] for k in ids} for p in stored["posts"]] == [
        {"channel_id": channel, "message_id": body["message_id"],
         "banner_message_id": messages[1]["id"]}]
    status, body = await seller.post(f"{BASE}/discord/post-product", json={**post, "purge": "1"})
    assert status == 422


async def test_template_help_lists_the_placeholders(portal: Portal) -> None:
    seller = await _seller(portal)
    status, body = await seller.get("/api/templates")
    assert status == 200, body
    assert body["placeholders"][:6] == ["buyer", "product", "variant", "keys", "order",
                                        "instance"]
    assert body["aliases"]["keys"] == "chaves"
    assert "{keys}" in body["defaults"]["staff"]["en"]["body"]
    assert body["limits"]["sections"] == 10
