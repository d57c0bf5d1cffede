"""Store branding, DM templates, staff notices and permission arithmetic: pure rules, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astra.adapters.chat.discord import permcheck, ui
from astra.domain import branding, templates
from astra.domain.cart import Cart, CartState
from astra.domain.catalog import Product, Variant
from astra.domain.errors import InvalidInput
from astra.domain.events import DomainEvent
from astra.domain.notifications import notice_for
from astra.domain.services.instances import validate_settings_change

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


# -- templates ---------------------------------------------------------------------------------


def test_unknown_placeholder_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        templates.template_text("Olá {buyer}, pedido {pedidoo} {keys}", "templates.sale.body")
    assert err.value.code == "unknown_placeholder"
    message = err.value.message()
    assert "{pedidoo}" in message and "templates.sale.body" in message
    for known in ("{buyer}", "{product}", "{variant}", "{keys}", "{order}", "{instance}"):
        assert known in message
    assert "Unknown placeholder" in err.value.message("en")


def test_known_placeholders_english_and_portuguese_pass() -> None:
    text = "{buyer} {product} {variant} {keys} {order} {instance} {chaves} {pedido}"
    assert templates.template_text(text, "x") == text


def test_render_sale_and_staff_templates_as_embeds() -> None:
    values = {"buyer": "<@1>", "product": "Jogo", "variant": "Mensal", "keys": "`K-1`",
              "order": "ord_1", "instance": "Loja", "quantity": "1", "amount": "R$ 1,00",
              "date": "2026-12-03"}
    settings = {"language": "pt-BR", "templates": {
        "sale": {"title": "Valeu {buyer}", "body": "Seu {product} ({variant}): {keys}",
                 "footer": "Pedido {order}", "color": 0x112233},
        "staff": {"title": "", "body": "", "footer": "", "color": None}},
        "branding": {"color": 0x445566}}
    sale = templates.render_dm("sale", values, language="pt-BR", settings=settings)
    assert sale.embed == {"title": "Valeu <@1>", "description": "Seu Jogo (Mensal): `K-1`",
                          "color": 0x112233, "footer": {"text": "Pedido ord_1"}}
    assert "Seu Jogo (Mensal): `K-1`" in sale.text and "Pedido ord_1" in sale.text
    staff = templates.render_dm("staff", values, language="en", settings=settings)
    assert staff.embed is not None and staff.embed["color"] == 0x445566  # the instance's
    assert staff.embed["title"] == "📦 Delivery from the staff"
    assert "The Loja staff delivered your order ord_1" in staff.embed["description"]
    # A product's own body wins over the instance's.
    own = templates.render_dm("sale", values, language="pt-BR", settings=settings,
                              product_body="Só {keys}", product_color=0x00FF00)
    assert own.embed is not None and own.embed["description"] == "Só `K-1`"
    assert own.embed["color"] == 0x112233  # the template's colour first


def test_a_dm_too_long_for_an_embed_falls_back_to_plain_text() -> None:
    keys = "\n".join(f"`KEY-{i:05d}-{'x' * 40}`" for i in range(120))
    rendered = templates.render_dm("sale", {"keys": keys, "buyer": "<@1>"}, language="pt-BR",
                                   settings={})
    assert rendered.embed is None
    assert "KEY-00000" in rendered.text and "KEY-00119" in rendered.text


def test_templates_setting_merges_and_checks() -> None:
    out = validate_settings_change({"templates": {"sale": {"body": "Oi {buyer}: {keys}"}}}, {})
    assert out["templates"]["sale"]["body"] == "Oi {buyer}: {keys}"
    assert out["templates"]["staff"]["body"] == ""
    out = validate_settings_change({"templates": {"staff": {"color": "#ff0000"}}},
                                   {"templates": out["templates"]})
    assert out["templates"]["sale"]["body"] == "Oi {buyer}: {keys}"
    assert out["templates"]["staff"]["color"] == 0xFF0000
    for bad in ({"other": {}}, {"sale": {"body": "{x}"}}, {"sale": {"nope": "a"}},
                {"sale": {"body": "a" * 2001}}, {"sale": "text"}):
        with pytest.raises(InvalidInput):
            validate_settings_change({"templates": bad}, {})


# -- branding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [("#7C3AED", 0x7C3AED), ("7c3aed", 0x7C3AED),
                                            (0, 0), (0xFFFFFF, 0xFFFFFF), ("", None), (None, None)])
def test_colours(value: object, expected: int | None) -> None:
    assert branding.color(value, "color") == expected


@pytest.mark.parametrize("value", ["red", "#12345", "#1234567", -1, 0x1000000, True, 1.5])
def test_bad_colours(value: object) -> None:
    with pytest.raises(InvalidInput):
        branding.color(value, "color")


@pytest.mark.parametrize("value", ["http://img.example/a.png", "javascript:alert(1)",
                                   "https://", "https://a b.png", "ftp://x/y",
                                   "https://x/" + "a" * 1000])
def test_only_https_links(value: str) -> None:
    with pytest.raises(InvalidInput):
        branding.https_url(value, "banner_url")


def test_branding_setting_is_checked_field_by_field() -> None:
    out = validate_settings_change({"branding": {"color": "#00ff00",
                                                 "banner_url": "https://cdn.example/b.gif",
                                                 "terms_text": "Sem reembolso."}}, {})
    assert out["branding"]["color"] == 0x00FF00
    assert out["branding"]["banner_url"] == "https://cdn.example/b.gif"
    assert out["branding"]["cart_footer"] == ""
    for bad in ({"color": "purple"}, {"banner_url": "http://x/y.png"}, {"unknown": 1},
                {"terms_text": "a" * 1901}, {"footer_text": 5}, {"pix_instructions": "\x07"}):
        with pytest.raises(InvalidInput):
            validate_settings_change({"branding": bad}, {})


@pytest.mark.parametrize("value", ["🔥", "⭐", "<:gem:123456789012345678>",
                                   "<a:spin:123456789012345678>", "🇧🇷"])
def test_variant_emoji(value: str) -> None:
    assert Variant("v", "Mensal", 100, emoji=value).validate().emoji == value


@pytest.mark.parametrize("value", ["a", "fire", ":fire:", "<:x:1>", "🔥 a", "12"])
def test_bad_variant_emoji(value: str) -> None:
    with pytest.raises(InvalidInput):
        Variant("v", "Mensal", 100, emoji=value).validate()


def _product(**kwargs: object) -> Product:
    return Product(id="prod_1", name="Jogo", variants=[Variant("var_1", "Mensal", 1990)],
                   **kwargs)  # type: ignore[arg-type]


def test_product_branding_rules() -> None:
    p = _product(color="#ff8800", sections=[{"title": "Requisitos", "text": "Windows"}],
                 demo_url="https://demo.example", demo_label="Ver", footer_text="Loja").validate()
    assert p.color == 0xFF8800 and p.sections[0]["title"] == "Requisitos"
    for bad in (
        {"sections": [{"title": "", "text": "x"}]},
        {"sections": [{"title": "t", "text": "x"}] * 11},
        {"sections": [{"title": "t", "text": "x" * 1025}]},
        {"demo_label": "Ver"},  # a label with no link
        {"demo_url": "http://demo.example"},
        {"dm_template": "{keyz}"},
        {"staff_dm_template": "{pedido} {x}"},
        {"unlimited_stock": True},  # a shared key needs the key (content)
        {"unlimited_stock": True, "delivery_kind": "text", "content": "LINK"},
        {"show_thumbnail": "yes"},
        {"description": "d" * 4000, "sections": [{"title": "t", "text": "x" * 1000}]},
    ):
        with pytest.raises(InvalidInput):
            _product(**bad).validate()
    assert _product(unlimited_stock=True, content="SHARED-KEY").validate().unlimited_stock


def test_product_post_carries_the_branding() -> None:
    product = _product(color=0x123456, image_url="https://cdn.example/p.png",
                       banner_url="https://cdn.example/banner.gif", footer_text="Entrega na hora",
                       sections=[{"title": "Requisitos", "text": "Windows 10"}],
                       demo_url="https://demo.example", show_thumbnail=True).validate()
    product.variants[0].emoji = "🔥"
    product.variants[0].duration = "30 dias"
    settings = {"branding": {"thumbnail_url": "https://cdn.example/logo.png", "color": 0x999999}}
    post = ui.product_post(product, {"var_1": {"available": 3}}, "pt-BR", settings)
    embed = post.embeds[0]
    assert embed["color"] == 0x123456
    assert embed["image"] == {"url": "https://cdn.example/p.png"}
    assert embed["thumbnail"] == {"url": "https://cdn.example/logo.png"}
    assert embed["footer"] == {"text": "Entrega na hora"}
    assert embed["fields"][0] == {"name": "Requisitos", "value": "Windows 10", "inline": False}
    assert embed["fields"][1]["name"] == "🔥 Mensal"
    value = embed["fields"][1]["value"]
    assert "30 dias" in value and "3 em estoque" in value
    select = post.components[0][0]
    assert select.options[0].emoji == "🔥" and "30 dias" in select.options[0].description
    demo = post.components[1][0]
    assert demo.style == "link" and demo.url == "https://demo.example"
    banner = ui.banner_message(product, settings)
    assert banner is not None and banner.embeds[0]["image"]["url"].endswith("banner.gif")
    # Thumbnail off; no banner anywhere; unlimited stock is never "sold out".
    bare = _product(show_thumbnail=False, unlimited_stock=True, content="K").validate()
    post = ui.product_post(bare, {}, "pt-BR", settings)
    assert "thumbnail" not in post.embeds[0]
    assert "esgotado" not in str(post.embeds[0]) and ui.banner_message(bare, {}) is None


# -- carts -------------------------------------------------------------------------------------


def test_idle_cart_expires_before_its_hard_limit_and_a_touch_extends_it() -> None:
    cart = Cart(id="cart_1", buyer_id="1", state=CartState.OPEN, created_at=NOW.isoformat(),
                expires_at=(NOW + timedelta(minutes=15)).isoformat())
    cart.touch(NOW, 300)
    assert not cart.expired(NOW + timedelta(minutes=4))
    assert cart.expired(NOW + timedelta(minutes=5))
    cart.touch(NOW + timedelta(minutes=4), 300)
    assert not cart.expired(NOW + timedelta(minutes=8))
    cart.touch(NOW + timedelta(minutes=14), 300)
    assert cart.expired(NOW + timedelta(minutes=15))  # the hard limit still holds
    # A cart waiting for its PIX is not idle.
    cart.state = CartState.CHECKOUT
    assert cart.ends_at() == NOW + timedelta(minutes=15)


def test_cart_idle_setting_bounds() -> None:
    assert validate_settings_change({"cart_idle_seconds": 0})["cart_idle_seconds"] == 0
    assert validate_settings_change({"cart_idle_seconds": 600})["cart_idle_seconds"] == 600
    for bad in (30, 90000, "600", True, None):
        with pytest.raises(InvalidInput):
            validate_settings_change({"cart_idle_seconds": bad})


# -- notices -----------------------------------------------------------------------------------


def _order(status: str = "paid", **extra: object) -> dict:
    return {"id": "ord_1", "total_cents": 1990, "status": status, "payment_events": [],
            "lines": [{"product_name": "Jogo", "variant_name": "Mensal"}], **extra}


@pytest.mark.parametrize("name,data,expect", [
    ("cart.opened", {"cart": {"id": "cart_1"}}, "abriu um carrinho"),
    ("order.charged", {"order": _order("pending")}, "PIX gerado"),
    ("order.paid", {"order": _order()}, "Pagamento aprovado"),
    ("order.paid", {"order": _order("waiting_stock")}, "aguardando estoque"),
    ("order.paid", {"order": _order(payment_events=["manual:cart_1"]),
                    "actor": "staff:discord:555555"}, "manualmente por <@555555>"),
    ("order.delivered", {"order": _order("delivered"), "channel": "cart_channel"},
     "por canal do carrinho"),
    ("delivery.failed", {"order": _order(), "attempt": 2, "error": "403", "final": True},
     "Tentativas esgotadas"),
    ("stock.out", {"product_name": "Jogo", "variant_name": "Mensal", "variant_id": "var_1"},
     "<@&777777> 🚫 Sem estoque: **Jogo — Mensal**"),
    ("cart.expired", {"cart": {"id": "cart_1"}}, "expirou"),
    ("order.refunded", {"order": _order("refunded"), "kind": "refund"}, "reembolsado"),
    ("order.refunded", {"order": _order("refunded"), "kind": "chargeback"}, "chargeback"),
])
def test_each_event_is_told_to_staff(name: str, data: dict, expect: str) -> None:
    settings = {"language": "pt-BR", "stock_alert_role_id": "777777"}
    notice = notice_for(DomainEvent(name, "loja", {"buyer_id": "123456", **data}), settings)
    assert notice is not None and expect in notice.text and notice.to == "staff"
    en = notice_for(DomainEvent(name, "loja", {"buyer_id": "123456", **data}),
                    {**settings, "language": "en"})
    assert en is not None and en.text != notice.text
    off = notice_for(DomainEvent(name, "loja", {"buyer_id": "1", **data}),
                     {"staff_notifications": False})
    assert off is None


def test_stock_alert_mentions_the_configured_role() -> None:
    data = {"product_name": "Jogo", "variant_name": "Mensal", "variant_id": "var_1",
            "buyer_id": "1"}
    notice = notice_for(DomainEvent("stock.out", "loja", data), {"stock_alert_role_id": "9999"})
    assert notice is not None and notice.mention_role == "9999"
    bare = notice_for(DomainEvent("stock.out", "loja", data), {})
    assert bare is not None and bare.mention_role is None and "<@&" not in bare.text


# -- permissions -------------------------------------------------------------------------------


def test_channel_permissions_follow_discords_order() -> None:
    guild, bot, role = "1000", "2000", "3000"
    roles = [{"id": guild, "permissions": str(permcheck.VIEW_CHANNEL)},
             {"id": role, "permissions": str(permcheck.SEND_MESSAGES | permcheck.EMBED_LINKS)}]
    base = permcheck.base_permissions(guild, roles, [role])
    assert base == permcheck.VIEW_CHANNEL | permcheck.SEND_MESSAGES | permcheck.EMBED_LINKS
    everyone_deny = [{"id": guild, "type": 0, "deny": str(permcheck.VIEW_CHANNEL), "allow": "0"}]
    assert permcheck.channel_permissions(base, guild, bot, [role], everyone_deny) == 0
    view = str(permcheck.VIEW_CHANNEL)
    role_allow = [*everyone_deny, {"id": role, "type": 0, "allow": view, "deny": "0"}]
    assert permcheck.channel_permissions(base, guild, bot, [role], role_allow) == base
    embed = str(permcheck.EMBED_LINKS)
    member_deny = [*role_allow, {"id": bot, "type": 1, "deny": embed, "allow": "0"}]
    assert permcheck.channel_permissions(base, guild, bot, [role], member_deny) == \
        base & ~permcheck.EMBED_LINKS
    admin = [{"id": guild, "permissions": str(permcheck.ADMINISTRATOR)}]
    assert permcheck.channel_permissions(permcheck.base_permissions(guild, admin, []), guild,
                                         bot, [], everyone_deny) == -1
