"""Subscriptions through the real interactions.py bot, the fake Discord and the fake Mercado Pago
(real SDK, real webhook endpoint), with the platform's time on a FrozenClock moved by days:
buy -> role -> reminded -> renew from the DM button -> lapse -> role removed; the same end
while the bot is down; a rejoin that gets the role back; a refund that ends the period."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from astra.adapters.clock import FrozenClock
from astra.domain.order import OrderStatus
from astra.entrypoints.subscription_keeper import SubscriptionKeeper
from tests.e2e.bot_world import INSTANCE, Shop, running_shop, text_of

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]

DAY = 86400.0


def _clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def _advance(shop: Shop, clock: FrozenClock, seconds: float) -> None:
    clock.advance(seconds)
    shop.mp.advance(seconds)  # the gateway's clock moves with the platform's


async def _setup(shop: Shop) -> tuple[Any, str, str]:
    bind = await shop.command("loja vincular", {"chave": shop.instance_key})
    assert "vinculado" in text_of(bind)
    vip = shop.discord.add_role(shop.guild.id, "VIP")
    product = await asyncio.to_thread(
        shop.catalog.create_product,
        INSTANCE,
        {
            "name": "Clube VIP",
            "delivery_kind": "subscription",
            "content": str(vip.id),
            "variants": [{"name": "Semanal", "price_cents": 990, "period_days": 7}],
        },
        actor="test",
    )
    posted = await shop.command("loja postar", {"produto": "Clube VIP",
                                                "canal": shop.post_channel.id})
    assert "publicado" in text_of(posted)
    return vip, product.id, product.variants[0].id


async def _buy(shop: Shop, buyer: Any, product_id: str, variant_id: str) -> Any:
    chosen = await shop.discord.select(
        shop.post_channel.id, buyer.id, f"astra:variant:{product_id}", [variant_id]
    )
    await chosen.wait_message()
    view = await shop.eventually(lambda: shop.sales.get_cart(INSTANCE, str(buyer.id)),
                                 what="a cart")
    pay = await shop.discord.click(view.cart.channel_id, buyer.id, "astra:cart:pay")
    await pay.wait_message()
    order = await shop.eventually(
        lambda: next((o for o in shop.sales.list_orders(INSTANCE)
                      if o.buyer_id == str(buyer.id) and o.status is OrderStatus.PENDING
                      and o.charge_id), None),
        what="a pending order with its PIX",
    )
    await asyncio.to_thread(shop.mp.approve, order.charge_id)
    return await shop.eventually(
        lambda: (o := shop.sales.get_order(INSTANCE, order.id)).status
        is OrderStatus.DELIVERED and o, what="the order delivered")


def _sub(shop: Shop, buyer: Any) -> Any:
    subs = shop.subscriptions.of_buyer(INSTANCE, str(buyer.id))
    assert len(subs) == 1
    return subs[0]


def _has_role(shop: Shop, buyer: Any, role: Any) -> bool:
    return str(role.id) in shop.discord.roles_of(shop.guild.id, buyer.id)


def _dms_with(shop: Shop, buyer: Any, custom_prefix: str) -> list[dict]:
    out = []
    for message in shop.discord.dm_messages(buyer.id):
        for row in message.get("components") or []:
            if any(str(c.get("custom_id", "")).startswith(custom_prefix)
                   for c in row.get("components", [])):
                out.append(message)
    return out


async def test_buy_remind_renew_from_dm_lapse(data_dir: Path) -> None:
    clock = _clock()
    # The bot as a tenant runtime runs it: everything through the internal API over HTTP.
    async with running_shop(data_dir, clock=clock, tenant=True) as shop:
        vip, product_id, variant_id = await _setup(shop)
        keeper = SubscriptionKeeper(shop.container)
        buyer = shop.buyer("assinante")

        await _buy(shop, buyer, product_id, variant_id)
        assert _has_role(shop, buyer, vip)
        sub = _sub(shop, buyer)
        first_end = sub.end()
        assert first_end == clock.now() + timedelta(days=7)
        assert any("<t:" in (m.get("content") or "") for m in shop.discord.dm_messages(buyer.id))

        # Day 3.5: nothing due yet.
        _advance(shop, clock, 3.5 * DAY)
        await keeper.pass_once()
        assert not _dms_with(shop, buyer, "astra:sub:renew:")
        # Day 4.5 (2.5 days left): the 3-day reminder, once.
        _advance(shop, clock, 1 * DAY)
        await keeper.pass_once()
        await keeper.pass_once()
        reminders = _dms_with(shop, buyer, "astra:sub:renew:")
        assert len(reminders) == 1
        assert "assinatura" in reminders[0]["embeds"][0]["title"].lower()
        assert "Loja do Bot" in reminders[0]["embeds"][0]["author"]["name"]

        # "Renovar" in the DM: a cart for the same variant, straight to its PIX, in the DM.
        click = await shop.discord.click(reminders[0]["id"], buyer.id,
                                         f"astra:sub:renew:{sub.id}")
        await click.wait_message()
        pix = await shop.discord.wait_for_message(
            dm_user=buyer.id, check=lambda m: any("PIX" in (e.get("title") or "")
                                                  for e in m.get("embeds") or []))
        assert pix
        renewal = next(o for o in shop.sales.list_orders(INSTANCE)
                       if o.status is OrderStatus.PENDING)
        assert [(ln.variant_id, ln.quantity) for ln in renewal.lines] == [(variant_id, 1)]
        # Not paid yet: the end has not moved (the runtime cannot move it).
        assert _sub(shop, buyer).end() == first_end
        await asyncio.to_thread(shop.mp.approve, renewal.charge_id)
        await shop.eventually(
            lambda: shop.sales.get_order(INSTANCE, renewal.id).status is OrderStatus.DELIVERED,
            what="the renewal delivered")
        renewed = _sub(shop, buyer)
        assert renewed.end() == first_end + timedelta(days=7)  # from the old end, not today
        assert renewed.renewals == 1

        # Past the first end: still paid, the role stays.
        _advance(shop, clock, 3 * DAY)
        await keeper.pass_once()
        assert _has_role(shop, buyer, vip)

        # The new end passes with no renewal: the role is taken off, a last DM is sent.
        _advance(shop, clock, 7 * DAY)
        await keeper.pass_once()
        assert not _has_role(shop, buyer, vip)
        ended = _sub(shop, buyer)
        assert ended.status.value == "ended" and ended.roles_revoked
        await keeper.pass_once()
        last = shop.discord.dm_messages(buyer.id)[-1]
        assert "terminou" in last["embeds"][0]["title"]
        # The buyer's command lists it, ephemeral.
        handle = await shop.discord.slash(shop.guild.id, buyer.id, "minhas-assinaturas", {},
                                          channel=shop.post_channel.id)
        await handle.wait_message()
        assert "Clube VIP" in text_of(handle) and "encerrada" in text_of(handle)


async def test_end_while_the_bot_is_down_and_rejoin(data_dir: Path) -> None:
    clock = _clock()
    async with running_shop(data_dir, clock=clock, member_events=True) as shop:
        vip, product_id, variant_id = await _setup(shop)
        keeper = SubscriptionKeeper(shop.container)
        buyer = shop.buyer("ausente")
        other = shop.buyer("fiel")
        await _buy(shop, buyer, product_id, variant_id)
        _advance(shop, clock, 2 * DAY)
        await _buy(shop, other, product_id, variant_id)
        assert _has_role(shop, buyer, vip) and _has_role(shop, other, vip)

        # A member who leaves and comes back while paid gets the role back.
        shop.discord.remove_member(shop.guild.id, other.id)
        shop.discord.add_member(shop.guild.id, other.id)
        assert not _has_role(shop, other, vip)
        await shop.eventually(lambda: not _sub(shop, other).roles_granted, what="join seen")
        await keeper.pass_once()
        assert _has_role(shop, other, vip)

        # The bot goes down; the first subscription's end passes meanwhile.
        await shop.stop_bot()
        _advance(shop, clock, 5.5 * DAY)
        await keeper.pass_once()
        assert not _has_role(shop, buyer, vip)
        assert _has_role(shop, other, vip)  # still paid
        shop.bot = shop.new_bot()
        await shop.run_bot()

        # A refund of the other buyer's payment ends the period it paid for, at once.
        order = next(o for o in shop.sales.list_orders(INSTANCE)
                     if o.buyer_id == str(other.id))
        await asyncio.to_thread(shop.mp.refund, order.charge_id)
        await shop.eventually(
            lambda: shop.sales.get_order(INSTANCE, order.id).status is OrderStatus.REFUNDED,
            what="the refund seen")
        assert _sub(shop, other).end_reason == "refund"
        await keeper.pass_once()
        assert not _has_role(shop, other, vip)


async def test_card_renewal_by_preapproval(data_dir: Path) -> None:
    clock = _clock()
    async with running_shop(data_dir, clock=clock, tenant=True) as shop:
        vip, product_id, variant_id = await _setup(shop)
        await asyncio.to_thread(shop.instances.update_settings, INSTANCE,
                                {"subscription_card_renewal": True}, actor="test")
        shop.bot.ctx.forget_settings()  # what the bot's 2-second settings cache would do
        keeper = SubscriptionKeeper(shop.container)
        buyer = shop.buyer("cartao")
        await _buy(shop, buyer, product_id, variant_id)
        sub = _sub(shop, buyer)
        first_end = sub.end()

        listing = await shop.discord.slash(shop.guild.id, buyer.id, "minhas-assinaturas", {},
                                           channel=shop.post_channel.id)
        await listing.wait_message()
        start = await shop.discord.click(listing.message["id"], buyer.id,
                                         f"astra:sub:card:{sub.id}")
        await start.wait_message()
        assert "mercadopago" in text_of(start).lower() or "/subscriptions/checkout" in \
            text_of(start)
        (pre_id, pre), = shop.mp.preapprovals.items()
        assert pre["external_reference"] == f"sub:{INSTANCE}:{sub.id}"
        assert pre["auto_recurring"]["frequency"] == 7
        assert pre["auto_recurring"]["transaction_amount"] == 9.9
        assert pre["status"] == "pending"

        # The buyer authorises the card; the webhook is read back from the gateway.
        await asyncio.to_thread(shop.mp.authorize_preapproval, pre_id)
        await shop.eventually(lambda: (_sub(shop, buyer).card or {}).get("status")
                              == "authorized", what="card authorised")
        # With card renewal on, no reminder is sent.
        _advance(shop, clock, 6.5 * DAY)
        await keeper.pass_once()
        assert not _dms_with(shop, buyer, "astra:sub:renew:")

        # The billing date: the charge's webhook adds one period from the current end, once.
        ap = await asyncio.to_thread(shop.mp.charge_preapproval, pre_id)
        await shop.eventually(lambda: _sub(shop, buyer).end() == first_end + timedelta(days=7),
                              what="the card renewal")
        await asyncio.to_thread(shop.payments.handle_notification,
                                f"subscription_authorized_payment:{ap['id']}")
        assert _sub(shop, buyer).end() == first_end + timedelta(days=7)  # replay: once
        _advance(shop, clock, 1 * DAY)
        await keeper.pass_once()
        assert _has_role(shop, buyer, vip)

        # A rejected charge adds nothing; a refunded one takes its days back.
        await asyncio.to_thread(shop.mp.charge_preapproval, pre_id, approved=False)
        await asyncio.to_thread(shop.mp.refund_authorized_payment, ap["id"])
        await shop.eventually(lambda: _sub(shop, buyer).status.value == "ended",
                              what="the refunded card period ended")
        await keeper.pass_once()
        assert not _has_role(shop, buyer, vip)

        # Cancelling from the command stops it at the gateway.
        listing = await shop.discord.slash(shop.guild.id, buyer.id, "minhas-assinaturas", {},
                                           channel=shop.post_channel.id)
        await listing.wait_message()
        cancel = await shop.discord.click(listing.message["id"], buyer.id,
                                          f"astra:sub:cardcancel:{sub.id}")
        await cancel.wait_message()
        assert "cancelada" in text_of(cancel)
        assert shop.mp.preapprovals[pre_id]["status"] == "cancelled"


async def test_a_chargeback_of_a_replaced_card_renewal_still_takes_its_days_back(
    data_dir: Path,
) -> None:
    """The buyer's card paid a period, then they cancelled card renewal and authorised it
    again (a new preapproval): a chargeback of the old one's payment must still take its days
    back, and the old preapproval's news must not touch the new one's status."""
    clock = _clock()
    async with running_shop(data_dir, clock=clock, tenant=True) as shop:
        _, product_id, variant_id = await _setup(shop)
        await asyncio.to_thread(shop.instances.update_settings, INSTANCE,
                                {"subscription_card_renewal": True}, actor="test")
        shop.bot.ctx.forget_settings()
        buyer = shop.buyer("trocou-cartao")
        await _buy(shop, buyer, product_id, variant_id)
        sub = _sub(shop, buyer)
        first_end = sub.end()

        async def press(prefix: str) -> None:
            listing = await shop.discord.slash(shop.guild.id, buyer.id, "minhas-assinaturas",
                                               {}, channel=shop.post_channel.id)
            await listing.wait_message()
            pressed = await shop.discord.click(listing.message["id"], buyer.id,
                                               f"{prefix}{sub.id}")
            await pressed.wait_message()

        await press("astra:sub:card:")
        (old_id, _), = shop.mp.preapprovals.items()
        await asyncio.to_thread(shop.mp.authorize_preapproval, old_id)
        await shop.eventually(lambda: (_sub(shop, buyer).card or {}).get("status")
                              == "authorized", what="card authorised")
        paid = await asyncio.to_thread(shop.mp.charge_preapproval, old_id)
        await shop.eventually(lambda: _sub(shop, buyer).end() == first_end + timedelta(days=7),
                              what="the card renewal")

        await press("astra:sub:cardcancel:")
        await press("astra:sub:card:")
        new_id = next(p for p in shop.mp.preapprovals if p != old_id)
        await shop.eventually(lambda: (_sub(shop, buyer).card or {}).get("preapproval_id")
                              == new_id, what="the new preapproval")

        await asyncio.to_thread(shop.mp.refund_authorized_payment, paid["id"], chargeback=True)
        await shop.eventually(lambda: _sub(shop, buyer).end() == first_end,
                              what="the old card period taken back")
        card = _sub(shop, buyer).card or {}
        assert card["preapproval_id"] == new_id and card["status"] == "pending"
