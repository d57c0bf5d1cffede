"""Issue 15 through the fake Discord and the real bot: a branded store (posts, cart, PIX,
Termos, DM embeds), staff notices in the log channel, staff confirmation (and attackers trying
it), cart warnings, posting with purge, permcheck, /loja portal and the welcome message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from astra.adapters.instance_api.http import HttpInstanceAPI
from astra.domain.errors import DomainError, Forbidden, NotFoundError
from astra.ports.chat import InteractionRef
from tests.e2e.bot_world import INSTANCE, OWNER, Shop, running_shop, text_of
from tests.e2e.test_bot_purchase import _open_cart, _setup_catalog
from tests.fakes.discord import permissions as P
from tests.fakes.discord.state import message_text

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]

BRANDING = {
    "color": "#FF8800",
    "banner_url": "https://cdn.example/banner.gif",
    "thumbnail_url": "https://cdn.example/logo.png",
    "cart_footer": "Dúvidas? Chame a equipe.",
    "pix_instructions": "Pague pelo app do seu banco.",
    "terms_text": "Sem reembolso depois da entrega.",
}


async def _branded(shop: Shop, **settings: Any) -> dict[str, Any]:
    """A log channel, a staff role and member, the branding; returns them."""
    logs = shop.discord.add_channel(shop.guild.id, "logs")
    staff_role = shop.discord.add_role(shop.guild.id, "Equipe")
    alert_role = shop.discord.add_role(shop.guild.id, "Estoque")
    staff = shop.discord.add_user("atendente")
    shop.discord.add_member(shop.guild.id, staff.id, [staff_role.id])
    await asyncio.to_thread(
        shop.instances.update_settings, INSTANCE,
        {"branding": BRANDING, "log_channel_id": str(logs.id),
         "staff_role_id": str(staff_role.id), "stock_alert_role_id": str(alert_role.id),
         **settings},
        actor="test",
    )
    shop.bot.ctx.forget_settings()
    return {"logs": logs, "staff_role": staff_role, "staff": staff, "alert_role": alert_role}


def _posted(shop: Shop, channel: Any) -> list[dict[str, Any]]:
    """The channel's visible messages with embeds (not the ephemeral command answers)."""
    return [m for m in shop.discord.messages(channel)
            if m.get("embeds") and not int(m.get("flags") or 0) & 64]


def _log_texts(shop: Shop, logs: Any) -> list[str]:
    return [m.get("content") or "" for m in shop.discord.messages(logs.id)]


async def _notice(shop: Shop, logs: Any, text: str, timeout: float = 10) -> dict[str, Any]:
    return await shop.discord.wait_for_message(
        logs.id, check=lambda m: text in (m.get("content") or ""), timeout=timeout
    )


async def _pending_order(shop: Shop) -> Any:
    orders = await asyncio.to_thread(shop.sales.list_orders, INSTANCE)
    return orders[0]


async def test_a_branded_sale_and_what_staff_is_told(data_dir) -> None:
    async with running_shop(data_dir) as shop:
        world = await _branded(shop)
        logs, staff = world["logs"], world["staff"]
        product_id, variant_id = await _setup_catalog(shop, ["BR-KEY-1", "BR-KEY-2"])

        # The post: the system banner first, then the embed in the store's colour.
        banner, post = _posted(shop, shop.post_channel.id)[-2:]
        assert banner["embeds"][0]["image"]["url"] == BRANDING["banner_url"]
        assert not banner["components"]
        assert post["embeds"][0]["color"] == 0xFF8800
        assert post["embeds"][0]["thumbnail"]["url"] == BRANDING["thumbnail_url"]
        stored = await asyncio.to_thread(shop.catalog.get_product, INSTANCE, product_id)
        assert stored.posts[0]["banner_message_id"] == banner["id"]

        buyer = shop.buyer("cliente")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        cart_channel = opened["channel"]
        # Staff (the configured role) sees and can act in the buyer's cart channel.
        assert shop.discord.can_view(cart_channel, staff.id)
        assert shop.discord.permissions_in(cart_channel, staff.id) & P.SEND_MESSAGES
        other = shop.buyer("curioso")
        assert not shop.discord.can_view(cart_channel, other.id)
        cart_message = shop.discord.messages(cart_channel)[0]
        assert cart_message["embeds"][0]["color"] == 0xFF8800
        assert BRANDING["cart_footer"] in cart_message["embeds"][0]["footer"]["text"]
        await _notice(shop, logs, "abriu um carrinho")

        pay = await shop.discord.click(cart_channel, buyer.id, "astra:cart:pay")
        await pay.wait_message()
        pix = await shop.discord.wait_for_message(
            cart_channel, check=lambda m: "astra:terms" in str(m.get("components")))
        assert BRANDING["pix_instructions"] in pix["embeds"][0]["description"]
        terms = await shop.discord.click(cart_channel, buyer.id, "astra:terms")
        await terms.wait_message()
        assert BRANDING["terms_text"] in text_of(terms) and "Termos" in text_of(terms)
        order = await _pending_order(shop)
        await _notice(shop, logs, f"PIX gerado para <@{buyer.id}>: pedido {order.id}")
        # Manual confirmation is off: no staff button on the cart.
        assert "astra:staff:confirm" not in str(shop.discord.messages(cart_channel))

        await asyncio.to_thread(shop.mp.approve, order.charge_id)
        dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=15)
        embed = dm["embeds"][0]
        assert embed["title"] == "✅ Compra entregue" and embed["color"] == 0xFF8800
        assert "BR-KEY-1" in message_text(dm) or "BR-KEY-2" in message_text(dm)
        await _notice(shop, logs, f"Pagamento aprovado: pedido {order.id}")
        await _notice(shop, logs, f"Pedido {order.id} entregue a <@{buyer.id}> por DM")
        # Each fact once, however the events came (webhook, reconcile).
        await asyncio.sleep(0.5)
        texts = _log_texts(shop, logs)
        assert sum("Pagamento aprovado" in x for x in texts) == 1
        assert sum("abriu um carrinho" in x for x in texts) == 1

        # Out of stock: the alert role is mentioned (and allowed to be pinged).
        second = shop.buyer("segundo")
        await _open_cart(shop, second, product_id, variant_id)
        third = shop.buyer("terceiro")
        refused = await shop.discord.select(shop.post_channel.id, third.id,
                                            f"astra:variant:{product_id}", [variant_id])
        await refused.wait_message()
        assert "Sem estoque" in text_of(refused)
        alert = await _notice(shop, logs, "Sem estoque")
        assert f"<@&{world['alert_role'].id}>" in alert["content"]
        assert sum("Sem estoque" in x for x in _log_texts(shop, logs)) == 1  # once an hour


async def test_staff_confirms_a_payment_and_a_buyer_cannot(data_dir) -> None:
    async with running_shop(data_dir) as shop:
        world = await _branded(shop, manual_confirmation=True)
        logs, staff = world["logs"], world["staff"]
        product_id, variant_id = await _setup_catalog(shop, ["MAN-KEY-1"])
        buyer = shop.buyer("comprador")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        channel = opened["channel"]
        pay = await shop.discord.click(channel, buyer.id, "astra:cart:pay")
        await pay.wait_message()
        order = await _pending_order(shop)
        confirm_id = f"astra:staff:confirm:{order.cart_id}"
        await shop.discord.wait_for_message(
            channel, check=lambda m: confirm_id in str(m.get("components")))

        # The buyer presses the staff button: refused, nothing paid, the refusal audited.
        pressed = await shop.discord.click(channel, buyer.id, confirm_id)
        await pressed.wait_message()
        assert "Só a equipe" in text_of(pressed)
        assert (await _pending_order(shop)).status.value == "pending"

        pressed = await shop.discord.click(channel, staff.id, confirm_id)
        await pressed.wait_message()
        assert "confirmado manualmente" in text_of(pressed), text_of(pressed)
        dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=15)
        assert dm["embeds"][0]["title"] == "📦 Entrega da equipe"
        assert "MAN-KEY-1" in message_text(dm)
        # The DM goes out before the courier records it: wait for the record.
        paid = await shop.eventually(
            lambda: (o := shop.sales.get_order(INSTANCE, order.id)).status.value == "delivered"
            and o, what="the order delivered")
        assert paid.net_cents == 0 and paid.fee_cents == 0
        # No money reached the platform: the seller's wallet is not credited.
        assert await asyncio.to_thread(shop.wallet.balance, OWNER) == 0
        await _notice(shop, logs, f"confirmado manualmente por <@{staff.id}>")
        with shop.store.instance(INSTANCE, write=False) as uow:
            audit = [(a["action"], a["actor"]) for a in uow.audit.all()]
        assert ("payment.manual_confirmed", f"staff:discord:{staff.id}") in audit
        assert ("payment.manual_refused", f"discord:{buyer.id}") in audit


async def test_a_runtime_cannot_forge_a_staff_confirmation(data_dir) -> None:
    """The attacker holds the runtime's credential (a compromised tenant bot) and calls the
    internal API directly, with the interactions it received: the buyer's own clicks."""
    async with running_shop(data_dir, tenant=True) as shop:
        world = await _branded(shop)
        product_id, variant_id = await _setup_catalog(shop, ["ATK-KEY-1"])
        buyer = shop.buyer("golpista")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        pay = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:pay")
        await pay.wait_message()
        order = await _pending_order(shop)
        buyers_click = InteractionRef(pay.id, pay.token)
        credential = await asyncio.to_thread(shop.instances.runtime_credential, INSTANCE)
        api = HttpInstanceAPI(shop.internal_url, INSTANCE, credential)
        try:
            # Manual confirmation is off, and the runtime cannot turn it on.
            with pytest.raises(Forbidden):
                await api.staff_confirm(order.cart_id, interaction=buyers_click)
            with pytest.raises(DomainError):
                await api.update_settings({"manual_confirmation": True},
                                          interaction=buyers_click)
            assert (await asyncio.to_thread(shop.instances.settings, INSTANCE))[
                "manual_confirmation"] is False
            # The seller turned it on in the portal; the buyer's click is not staff's.
            await asyncio.to_thread(shop.instances.update_settings, INSTANCE,
                                    {"manual_confirmation": True}, actor="user:seller")
            with pytest.raises(Forbidden):
                await api.staff_confirm(order.cart_id, interaction=buyers_click)
            # A real staff member's interaction id with a token the runtime made up.
            with pytest.raises(Forbidden):
                await api.staff_confirm(order.cart_id, interaction=InteractionRef(
                    pay.id, "forged-token-" + "x" * 40))
            # A cart that is not this instance's.
            with pytest.raises((NotFoundError, Forbidden)):
                await api.staff_confirm("cart_of_someone_else", interaction=buyers_click)
        finally:
            await api.close()
        after = await asyncio.to_thread(shop.sales.get_order, INSTANCE, order.id)
        assert after.status.value == "pending" and not after.payment_events
        assert shop.discord.dm_messages(buyer.id) == []
        assert await asyncio.to_thread(shop.wallet.balance, OWNER) == 0
        with shop.store.instance(INSTANCE, write=False) as uow:
            refusals = [a for a in uow.audit.all() if a["action"] in
                        ("runtime.refused", "payment.manual_refused")]
        # Audited under the user Discord named, whatever the runtime claimed.
        assert {a["actor"] for a in refusals} >= {f"discord:{buyer.id}"}
        assert world["staff"].id not in str(refusals)


async def test_a_cart_about_to_expire_warns_its_buyer_then_staff_is_told(data_dir) -> None:
    async with running_shop(data_dir) as shop:
        world = await _branded(shop, cart_idle_seconds=600)
        product_id, variant_id = await _setup_catalog(shop, ["EXP-KEY-1"])
        buyer = shop.buyer("distraido")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        cart = opened["cart"].cart
        assert cart.idle_until is not None
        now = shop.clock.now()

        def idle_soon(seconds: float) -> None:
            from datetime import timedelta

            from astra.domain.timestamps import iso
            with shop.store.instance(INSTANCE) as uow:
                doc = uow.carts.require(cart.id)
                doc["idle_until"] = iso(now + timedelta(seconds=seconds))
                uow.carts.put(doc)
                uow.commit()

        # The buyer sat idle: a minute (less) before the end, the warning in their channel.
        await asyncio.to_thread(idle_soon, 30)
        warning = await shop.discord.wait_for_message(
            opened["channel"], check=lambda m: "expira" in (m.get("content") or ""))
        assert f"<@{buyer.id}>" in warning["content"]
        await asyncio.sleep(0.5)
        warnings = [m for m in shop.discord.messages(opened["channel"])
                    if "expira" in (m.get("content") or "")]
        assert len(warnings) == 1
        await asyncio.to_thread(idle_soon, -1)
        await _notice(shop, world["logs"], f"Carrinho de <@{buyer.id}> expirou")
        released = await asyncio.to_thread(shop.catalog.stock_counts, INSTANCE)
        assert released[variant_id]["available"] == 1


async def test_postar_purge_repostar_forcar_portal_and_permcheck(data_dir) -> None:
    async with running_shop(data_dir) as shop:
        world = await _branded(shop)
        product_id, _ = await _setup_catalog(shop, ["P-KEY-1"])
        channel = shop.post_channel.id
        await shop.command("loja postar", {"produto": "Steam Key", "canal": channel})
        assert sum(1 for m in _posted(shop, channel) if m.get("components")) == 2
        purged = await shop.command("loja postar",
                                    {"produto": "Steam Key", "canal": channel, "purge": True})
        assert "2 publicação(ões) antiga(s) removida(s)" in text_of(purged), text_of(purged)
        posts = [m for m in _posted(shop, channel) if m.get("components")]
        banners = [m for m in _posted(shop, channel) if not m.get("components")]
        assert len(posts) == 1 and len(banners) == 1
        # An old post the platform lost track of: repostar forcar finds it in the channel.
        await asyncio.to_thread(shop.catalog.record_posts, INSTANCE, product_id,
                                [{"channel_id": str(channel), "message_id": posts[0]["id"]}])
        shop.discord.user_message(channel, shop.seller.id, "promoção!")
        await shop.command("loja repostar", {"produto": "Steam Key", "forcar": True})
        posts = [m for m in _posted(shop, channel) if m.get("components")]
        assert len(posts) == 1 and len(_posted(shop, channel)) == 2
        assert any(m.get("content") == "promoção!" for m in shop.discord.messages(channel))

        portal = await shop.command("loja portal")
        assert f"/dashboard?instance={INSTANCE}" in text_of(portal)
        assert shop.container.settings().public_url in text_of(portal)

        # The bot may not send in the log channel (an overwrite denies its role).
        bot_role = next(r for r in shop.discord.world.guild(shop.guild.id).roles.values()
                        if r.managed)
        shop.discord.add_channel(shop.guild.id, "logs-fechado", overwrites=[
            {"id": str(bot_role.id), "type": 0, "allow": "0",
             "deny": str(P.SEND_MESSAGES | P.EMBED_LINKS)}])
        closed = shop.discord.channel_by_name(shop.guild.id, "logs-fechado")
        await asyncio.to_thread(shop.instances.update_settings, INSTANCE,
                                {"log_channel_id": str(closed["id"]),
                                 "products_channel_id": str(channel)}, actor="test")
        report = await shop.command("loja permcheck")
        text = text_of(report)
        assert "canal de logs" in text and "Enviar mensagens" in text and "Inserir links" in text
        assert "canal de produtos" not in text and "Como corrigir" in text
        await asyncio.to_thread(shop.instances.update_settings, INSTANCE,
                                {"log_channel_id": str(world["logs"].id)}, actor="test")
        report = await shop.command("loja permcheck")
        assert "✅" in text_of(report), text_of(report)


async def test_welcome_when_the_bot_joins_a_server(data_dir) -> None:
    async with running_shop(data_dir) as shop:
        await _branded(shop)
        other = shop.discord.add_guild("Servidor Novo")
        general = shop.discord.channel_by_name(other.id, "general")
        welcome = await shop.discord.wait_for_message(general["id"], timeout=10)
        embed = welcome["embeds"][0]
        assert embed["image"]["url"] == BRANDING["banner_url"]
        assert "Loja do Bot" in embed["title"] and "/loja vincular" in embed["description"]
        # The guilds it was in at start-up are not welcomed again.
        assert not [m for m in shop.discord.messages(shop.post_channel.id)
                    if "vincular" in str(m.get("embeds"))]


async def test_unlimited_stock_sells_one_shared_key_to_everyone(data_dir) -> None:
    async with running_shop(data_dir) as shop:
        await shop.command("loja vincular", {"chave": shop.instance_key})
        product = await asyncio.to_thread(
            shop.catalog.create_product, INSTANCE,
            {"name": "Conta VIP", "unlimited_stock": True, "content": "SHARED-KEY-42",
             "variants": [{"name": "Único", "price_cents": 500, "max_per_order": 1}]},
            actor="test")
        await shop.command("loja postar", {"produto": "Conta VIP",
                                           "canal": shop.post_channel.id})
        post = _posted(shop, shop.post_channel.id)[-1]
        assert "esgotado" not in str(post)
        variant_id = product.variants[0].id
        for name in ("um", "dois"):
            buyer = shop.buyer(name)
            opened = await _open_cart(shop, buyer, product.id, variant_id)
            pay = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:pay")
            await pay.wait_message()
            order = next(o for o in await asyncio.to_thread(shop.sales.list_orders, INSTANCE)
                         if o.buyer_id == str(buyer.id))
            await asyncio.to_thread(shop.mp.approve, order.charge_id)
            dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=15)
            assert "SHARED-KEY-42" in message_text(dm)


async def test_loja_config_sets_the_new_settings(data_dir) -> None:
    async with running_shop(data_dir) as shop:
        await shop.command("loja vincular", {"chave": shop.instance_key})
        role = shop.discord.add_role(shop.guild.id, "Estoque")
        saved = await shop.command("loja config", {
            "canal_produtos": shop.post_channel.id, "cargo_estoque": role.id,
            "minutos_inatividade": 10, "avisos_equipe": False})
        assert "salvas" in text_of(saved), text_of(saved)
        settings = await asyncio.to_thread(shop.instances.settings, INSTANCE)
        assert settings["products_channel_id"] == str(shop.post_channel.id)
        assert settings["stock_alert_role_id"] == str(role.id)
        assert settings["cart_idle_seconds"] == 600 and settings["staff_notifications"] is False
        refused = await shop.command("loja config", {"minutos_inatividade": 1})
        assert "cart_idle_seconds" in text_of(refused)
        assert (await asyncio.to_thread(shop.instances.settings, INSTANCE))[
            "cart_idle_seconds"] == 600
