"""Deliveries and clicks across stops and restarts: the platform's courier finishes the delivery
in hand when it stops, a restarted platform delivers what a dead one left half done at once and
without a second DM, and a bot that stops lets the buyer's click in progress get its answer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.bot_world import INSTANCE, Shop, running_shop
from tests.fakes.discord.state import message_text

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]


async def _paid_order(shop: Shop, buyer: Any) -> Any:
    def buy() -> Any:
        product = shop.catalog.create_product(
            INSTANCE,
            {"name": "Steam Key", "variants": [{"name": "Mensal", "price_cents": 1990}]},
            actor="test",
        )
        variant = product.variants[0].id
        shop.catalog.import_stock(INSTANCE, product.id, variant, "KEY-RESTART-1", actor="test")
        shop.sales.add_item(INSTANCE, str(buyer.id), product.id, variant, 1)
        order = shop.sales.checkout(INSTANCE, str(buyer.id))
        shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id="p1")
        return order

    return await asyncio.to_thread(buy)


def _delivery(shop: Shop, order_id: str) -> dict[str, Any]:
    with shop.store.instance(INSTANCE, write=False) as uow:
        return uow.deliveries.require(order_id)


async def test_a_restarted_platform_delivers_what_a_dead_one_left_without_a_second_dm(
    data_dir: Path,
) -> None:
    async with running_shop(data_dir) as shop:
        buyer = shop.buyer("comprador")
        delivery = shop.container.delivery()
        recorded = delivery._record

        def power_cut(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("power cut")  # the DM went out; its result is never recorded

        delivery._record = power_cut
        try:
            order = await _paid_order(shop, buyer)
            await shop.discord.wait_for_message(dm_user=buyer.id)
            assert shop.courier is not None
            dead = shop.courier.holder
            leased = await shop.eventually(
                lambda: _delivery(shop, order.id).get("lease_holder") == dead, what="the lease"
            )
            assert leased
            await shop.stop_courier()  # the platform died with the lease in hand
        finally:
            delivery._record = recorded

        started = time.monotonic()
        await asyncio.sleep(0.002)  # a new process: another start time in its holder name
        courier = shop.start_courier()
        assert courier.holder != dead
        await shop.eventually(
            lambda: _delivery(shop, order.id)["status"] == "delivered", what="the delivery"
        )
        assert time.monotonic() - started < 10  # not the two minutes of the dead lease
        dms = shop.discord.dm_texts(buyer.id)
        assert len(dms) == 1 and "KEY-RESTART-1" in dms[0]
        with shop.store.instance(INSTANCE, write=False) as uow:
            released = [a for a in uow.audit.all() if a["action"] == "delivery.lease_released"]
        assert [a["details"]["holder"] for a in released] == [dead]


async def test_a_platform_stop_lets_the_delivery_in_hand_finish(data_dir: Path) -> None:
    async with running_shop(data_dir) as shop:
        buyer = shop.buyer("comprador")
        # The DM is answered with a 429: the courier waits, then sends it again.
        shop.discord.rate_limit_next(1, retry_after=1.0, path_contains="/messages")
        order = await _paid_order(shop, buyer)
        await shop.discord.wait_for(lambda: shop.discord.rate_limited, 5, "the DM's 429")
        await shop.stop_courier()
        done = _delivery(shop, order.id)
        assert done["status"] == "delivered" and done["lease_until"] is None
        assert len(shop.discord.dm_messages(buyer.id)) == 1


async def test_deliveries_need_no_bot(data_dir: Path) -> None:
    """The platform delivers with the instance's token over REST: a bot that is down (a crash,
    an upgrade) holds back no buyer's keys."""
    async with running_shop(data_dir) as shop:
        await shop.stop_bot()
        buyer = shop.buyer("sem-bot")
        order = await _paid_order(shop, buyer)
        dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=10)
        assert "KEY-RESTART-1" in message_text(dm)
        await shop.eventually(
            lambda: _delivery(shop, order.id)["status"] == "delivered", what="the record"
        )


async def test_stop_lets_a_buyer_click_in_progress_get_its_answer(data_dir: Path) -> None:
    """SIGTERM while a buyer's pick is being handled: the gateway stops at once, but the
    handler finishes (channel opened, cart recorded, answer sent) before REST closes."""
    from tests.e2e.test_bot_purchase import _setup_catalog

    async with running_shop(data_dir) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["S-1", "S-2"])
        buyer = shop.buyer("no-limite")
        # Opening the cart channel is answered with a 429: the handler is mid-way for 1 s.
        shop.discord.rate_limit_next(1, retry_after=1.0, path_contains="/channels")
        pick = await shop.discord.select(
            shop.post_channel.id, buyer.id, f"astra:variant:{product_id}", [variant_id]
        )
        await shop.discord.wait_for(lambda: shop.discord.rate_limited, 5, "the 429")
        await shop.stop_bot()
        answer = await pick.wait_message(timeout=1)
        assert "Continue em" in (answer.get("content") or "")
        cart = (await asyncio.to_thread(shop.sales.get_cart, INSTANCE, str(buyer.id))).cart
        assert cart.channel_id and cart.message_id
