"""Who acted, through the real bot on the tenant path (HTTP, runtime credential) and the fake
Discord: the attacker holds the runtime's credential and the interactions its bot received,
and calls the internal API itself; the honest flows through the same bot keep working.

The internal API's own attack suite (tests/integration/test_internal_api.py) covers every
operation; this one checks the flows a buyer and a seller see end to end."""

from __future__ import annotations

import asyncio

import pytest

from astra.adapters.instance_api.http import HttpInstanceAPI
from astra.domain.errors import Forbidden
from astra.ports.chat import InteractionRef
from tests.e2e.bot_world import INSTANCE, running_shop, text_of
from tests.e2e.test_bot_purchase import _open_cart, _paid_and_delivered, _setup_catalog
from tests.fakes.discord.state import message_text

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]


async def test_a_buyers_keys_reach_only_that_buyers_own_interaction(data_dir) -> None:
    async with running_shop(data_dir, tenant=True) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["MINE-KEY-1", "MINE-KEY-2"])
        buyer = shop.buyer("comprador")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        order, dm = await _paid_and_delivered(shop, buyer, opened)
        key = next(k for k in ("MINE-KEY-1", "MINE-KEY-2") if k in message_text(dm))
        await shop.eventually(
            lambda: shop.sales.get_order(INSTANCE, order.id).status.value == "delivered",
            what="delivered")

        # The attacker's own click (it is any member), and the buyer's id it knows: there is
        # no field to name the buyer with, and a made-up token is not Discord's.
        stranger = shop.buyer("curioso")
        click = await shop.command("minhas-compras", user=stranger)
        credential = await asyncio.to_thread(shop.instances.runtime_credential, INSTANCE)
        api = HttpInstanceAPI(shop.internal_url, INSTANCE, credential)
        try:
            assert await api.send_purchases(InteractionRef(click.id, click.token)) == 0
            with pytest.raises(Forbidden):
                await api.send_purchases(InteractionRef(click.id, "made-up-" + "k" * 40))
            with pytest.raises(Forbidden):  # the buyer's id as the interaction's: not Discord's
                await api.send_purchases(InteractionRef(str(buyer.id), click.token))
        finally:
            await api.close()
        assert all(key not in text_of(h) for h in shop.discord.interactions
                   if h.user_id != str(buyer.id))
        # The honest path: the buyer's own command, through the tenant bot.
        mine = await shop.command("minhas-compras", user=buyer)
        assert mine.ephemeral and key in text_of(mine)


async def test_staff_confirmation_on_the_tenant_path_by_real_staff_only(data_dir) -> None:
    async with running_shop(data_dir, tenant=True) as shop:
        staff_role = shop.discord.add_role(shop.guild.id, "Equipe")
        staff = shop.discord.add_user("atendente")
        shop.discord.add_member(shop.guild.id, staff.id, [staff_role.id])
        product_id, variant_id = await _setup_catalog(shop, ["STAFF-KEY-1"])
        # Only the portal sets these two (the seller, as the portal does).
        await asyncio.to_thread(shop.instances.update_settings, INSTANCE, {
            "staff_role_id": str(staff_role.id), "manual_confirmation": True}, actor="test")
        shop.bot.ctx.forget_settings()
        buyer = shop.buyer("comprador")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        pay = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:pay")
        await pay.wait_message()
        order = (await asyncio.to_thread(shop.sales.list_orders, INSTANCE))[0]
        confirm = f"astra:staff:confirm:{order.cart_id}"
        await shop.discord.wait_for_message(
            opened["channel"], check=lambda m: confirm in str(m.get("components")))
        pressed = await shop.discord.click(opened["channel"], buyer.id, confirm)
        await pressed.wait_message()
        assert "Só a equipe" in text_of(pressed)
        assert (await asyncio.to_thread(
            shop.sales.get_order, INSTANCE, order.id)).status.value == "pending"
        pressed = await shop.discord.click(opened["channel"], staff.id, confirm)
        await pressed.wait_message()
        assert "confirmado manualmente" in text_of(pressed), text_of(pressed)
        dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=15)
        assert "STAFF-KEY-1" in message_text(dm)
