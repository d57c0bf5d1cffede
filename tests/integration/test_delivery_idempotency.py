"""Delivery across crashes: a bot that dies between "DM sent" and "result recorded" must not
leave the buyer waiting for its lease nor DM the keys twice. The real DeliveryService on the
JSON store, the real DiscordChat (interactions.py's HTTP client) and the fake Discord, which
honours `enforce_nonce` as Discord documents it."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from astra.ports.chat import OutgoingMessage
from tests.fakes.discord import FakeDiscord
from tests.integration.sales_world import INSTANCE, RecordingChat, Shop, make_shop

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # interactions imports audioop
    import interactions

    from astra.adapters.chat.discord.platform import DiscordChat

pytestmark = [
    pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:parameter 'timeout' of type 'float':DeprecationWarning"),
]

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.fake.bot-token-for-tests"
DEAD = "bot:4242:1700000000000"  # a bot process that no longer exists
ALIVE = "bot:4343:1800000000000"  # the bot that runs now


class Killed(BaseException):
    """The process died here (a BaseException, so no plugin guard or retry logic catches it)."""


class DiesAfterSending:
    """A chat that really sends, then dies after `sends` messages, before anything is
    recorded: the crash this test suite is about."""

    def __init__(self, chat: Any, sends: int = 1) -> None:
        self.chat = chat
        self.left = sends

    async def _then_die(self, sent: Any) -> Any:
        result = await sent
        self.left -= 1
        if self.left == 0:
            raise Killed
        return result

    async def send_dm(self, user_id: str, message: OutgoingMessage) -> str:
        return await self._then_die(self.chat.send_dm(user_id, message))

    async def send_message(self, channel_id: str, message: OutgoingMessage) -> str:
        return await self._then_die(self.chat.send_message(channel_id, message))


@dataclass
class World:
    shop: Shop
    fake: FakeDiscord
    chat: DiscordChat
    buyer: str

    def paid_order(self, mensal: int = 1, anual: int = 0, payment: str = "p1") -> Any:
        if mensal:
            self.shop.sales.add_item(
                INSTANCE, self.buyer, self.shop.product_id, self.shop.variant_id, mensal
            )
        if anual:
            self.shop.sales.add_item(
                INSTANCE, self.buyer, self.shop.product_id, self.shop.other_variant_id, anual
            )
        order = self.shop.sales.checkout(INSTANCE, self.buyer)
        self.shop.settlement.confirm_payment(
            INSTANCE, order.id, amount_cents=order.total_cents, payment_id=payment
        )
        return order

    async def deliver(self, order_id: str, chat: Any = None, holder: str = ALIVE) -> Any:
        return await self.shop.delivery.deliver(
            INSTANCE, order_id, {"chat": chat or self.chat}, holder=holder
        )

    def dms(self) -> list[str]:
        return self.fake.dm_texts(self.buyer)


@pytest.fixture
async def world(data_dir: Path) -> AsyncIterator[World]:
    fake = FakeDiscord(bot_token=TOKEN)
    await fake.start()
    guild = fake.add_guild("Loja")
    buyer = fake.add_user("comprador")
    fake.add_member(guild, buyer)  # a bot can DM only someone it shares a guild with
    shop = make_shop(data_dir, keys=5)
    shop.catalog.import_stock(
        INSTANCE, shop.product_id, shop.other_variant_id, "ANUAL-1\nANUAL-2", actor="test"
    )
    client = interactions.Client(token=TOKEN)
    try:
        with fake.routed():
            runner = asyncio.create_task(client.astart())
            await asyncio.wait_for(client.wait_until_ready(), 10)
            try:
                yield World(shop, fake, DiscordChat(client), buyer.id)
            finally:
                await asyncio.wait_for(client._connection_state.stop(), 10)
                await asyncio.wait_for(runner, 10)
    finally:
        await fake.stop()
        shop.store.close()


async def test_a_delivery_cut_after_the_dm_is_sent_once_by_the_next_bot(world: World) -> None:
    order = world.paid_order()
    with pytest.raises(Killed):
        await world.deliver(order.id, DiesAfterSending(world.chat), holder=DEAD)
    assert len(world.dms()) == 1
    # The dead bot's lease would hold the order back for two minutes...
    assert world.shop.delivery.due(INSTANCE) == []
    # ...until the next bot of the instance frees it.
    assert world.shop.delivery.release_leases(INSTANCE, ALIVE) == [order.id]
    assert world.shop.delivery.due(INSTANCE) == [order.id]

    done = await world.deliver(order.id)
    assert done.status == "delivered" and done.lease_until is None and done.lease_holder is None
    dms = world.dms()
    assert len(dms) == 1 and "KEY-00000" in dms[0]
    # The retry did reach Discord, which returned the first message instead of a new one.
    posts = world.fake.calls_to("POST", f"/channels/{world.fake.dm_channel_id(world.buyer)}/")
    assert [c.status for c in posts] == [200, 200]
    assert world.shop.sales.get_order(INSTANCE, order.id).status == "delivered"


async def test_a_crash_between_two_lines_resends_neither(world: World) -> None:
    order = world.paid_order(mensal=1, anual=1)
    with pytest.raises(Killed):
        await world.deliver(order.id, DiesAfterSending(world.chat, sends=1), holder=DEAD)
    world.shop.delivery.release_leases(INSTANCE, ALIVE)
    done = await world.deliver(order.id)
    assert done.status == "delivered" and sorted(done.delivered_lines) == [0, 1]
    dms = world.dms()
    assert len(dms) == 2
    assert sum("KEY-00000" in d for d in dms) == 1 and sum("ANUAL-1" in d for d in dms) == 1


async def test_staff_redelivery_sends_again(world: World) -> None:
    order = world.paid_order()
    first = await world.deliver(order.id)
    assert first.status == "delivered" and first.generation == 0
    redo = world.shop.delivery.redeliver(INSTANCE, order.id, actor="admin:ops")
    assert redo.generation == 1
    again = await world.deliver(order.id)
    assert again.status == "delivered"
    messages = world.fake.dm_messages(world.buyer)
    texts = world.dms()
    assert len(messages) == 2 and all("KEY-00000" in t for t in texts)
    # A redelivery staff asked for is worded with the staff template.
    assert "Compra entregue" in texts[0] and "Entrega da equipe" in texts[1]
    assert messages[0]["nonce"] != messages[1]["nonce"]

    # A redelivery cut after its DM is, like any other, not sent a third time.
    world.shop.delivery.redeliver(INSTANCE, order.id, actor="admin:ops")
    with pytest.raises(Killed):
        await world.deliver(order.id, DiesAfterSending(world.chat), holder=DEAD)
    world.shop.delivery.release_leases(INSTANCE, ALIVE)
    assert (await world.deliver(order.id)).status == "delivered"
    assert len(world.dms()) == 3


def test_release_leases_frees_only_the_leases_of_others(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=5)
    orders = []
    for n, buyer in enumerate(("111111111111111111", "222222222222222222", "333333333333333333",
                               "444444444444444444")):
        shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
        order = shop.sales.checkout(INSTANCE, buyer)
        shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id=f"p{n}")
        orders.append(order.id)
    dead, mine, delivered, free = orders

    def cut(order_id: str, holder: str) -> None:
        with pytest.raises(Killed):
            asyncio.run(
                shop.delivery.deliver(
                    INSTANCE, order_id, {"chat": DiesAfterSending(RecordingChat())}, holder=holder
                )
            )

    cut(dead, DEAD)
    cut(mine, ALIVE)
    asyncio.run(shop.delivery.deliver(INSTANCE, delivered, {"chat": RecordingChat()}))
    assert shop.delivery.due(INSTANCE) == [free]

    assert shop.delivery.release_leases(INSTANCE, ALIVE) == [dead]
    assert sorted(shop.delivery.due(INSTANCE)) == sorted([dead, free])
    assert shop.delivery.release_leases(INSTANCE, ALIVE) == []  # nothing more to free
    with shop.store.instance(INSTANCE, write=False) as uow:
        held = uow.deliveries.require(mine)
        released = [a for a in uow.audit.all() if a["action"] == "delivery.lease_released"]
    assert held["lease_holder"] == ALIVE and held["lease_until"]
    assert [(a["target"], a["details"]["holder"]) for a in released] == [(f"order:{dead}", DEAD)]


async def test_a_dm_whose_answer_is_lost_is_confirmed_not_repeated(world: World) -> None:
    """Discord creates the DM, then the connection drops before its answer: the adapter asks
    again with the same nonce and gets the same message back; the order is delivered now."""
    order = world.paid_order()
    world.fake.lose_answer_next(1, method="POST", path_contains="/messages")
    done = await world.deliver(order.id)
    assert done.status == "delivered"
    assert len(world.dms()) == 1
    assert not world.fake.lost_answers[0]["remaining"]


async def test_a_lost_answer_on_a_call_that_cannot_be_repeated_is_a_retryable_error(
    world: World,
) -> None:
    from astra.ports.chat import ChatError

    guild = world.fake.add_guild("Loja", owner=world.fake.add_user("dono").id)
    world.fake.lose_answer_next(1, method="POST", path_contains="/channels")
    with pytest.raises(ChatError) as lost:
        await world.chat.open_private_channel(str(guild.id), "carrinho-x", member_ids=[])
    assert lost.value.retryable
    # Discord did create it: the caller finds it by its topic (see the shop's cart flow).
    assert [c["name"] for c in world.fake.channels_of(guild.id)].count("carrinho-x") == 1


async def test_a_delivery_in_the_cart_channel_keeps_it_until_received_or_its_days(
    data_dir: Path,
) -> None:
    """Closed DMs: the keys go to the cart channel, which must stay readable for the instance's
    `delivery_channel_keep_days`, or until the buyer presses "Recebi" (theirs alone)."""
    from datetime import timedelta

    from astra.domain.errors import NotFoundError

    shop = make_shop(data_dir, keys=2)
    buyer = "555555555555555555"
    shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, buyer)
    shop.sales.bind_cart_channel(INSTANCE, order.cart_id, "900000000000000001", "9000000002")
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=1990, payment_id="p")
    chat = RecordingChat(dms_closed=True)
    done = await shop.delivery.deliver(INSTANCE, order.id, {"chat": chat})
    assert done is not None and done.channel == "cart_channel"
    cart = shop.sales.get_cart_by_id(INSTANCE, order.cart_id).to_doc()
    keep = shop.delivery.channel_keep_until(INSTANCE, cart, order.id)
    assert keep == shop.clock.now() + timedelta(days=7)
    shop.instances.update_settings(INSTANCE, {"delivery_channel_keep_days": 2}, actor="t")
    assert shop.delivery.channel_keep_until(INSTANCE, cart, order.id) == \
        shop.clock.now() + timedelta(days=2)
    with pytest.raises(NotFoundError):
        shop.delivery.acknowledge(INSTANCE, order.id, "666666666666666666")
    assert shop.delivery.acknowledge(INSTANCE, order.id, buyer)
    cart = shop.sales.get_cart_by_id(INSTANCE, order.cart_id).to_doc()
    assert shop.delivery.channel_keep_until(INSTANCE, cart, order.id) is None
    purchases = shop.delivery.purchases_of(INSTANCE, buyer)
    assert [p["order_id"] for p in purchases] == [order.id]
    assert purchases[0]["lines"][0]["keys"] == ["KEY-00000"]
    assert shop.delivery.purchases_of(INSTANCE, "666666666666666666") == []


async def test_closed_dms_are_logged_as_normal_operation_not_as_errors(world: World) -> None:
    """interactions.py logs Discord's 403 before raising it; for a DM, where 50007 (closed
    DMs) is expected and handled by a fallback, that line is info and the outcome is logged."""
    import io
    import json

    from astra.logs import configure_logging
    from astra.ports.chat import DirectMessagesClosed

    out = io.StringIO()
    configure_logging("info", fmt="json", stream=out)
    world.fake.set_dms_closed(world.buyer)
    with pytest.raises(DirectMessagesClosed):
        await world.chat.send_dm(world.buyer, OutgoingMessage(content="sua chave"))
    # an error answer outside a DM (here a channel that does not exist) is still an error
    nowhere = world.fake.add_guild("Outra")
    with pytest.raises(Exception):  # noqa: B017 - whatever the adapter makes of it
        await world.chat.send_message(str(nowhere.id), OutgoingMessage(content="x"))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    library = [r for r in records if r.get("logger") == "interactions"
               and ": 403" in r.get("event", "")]
    assert library and library[0]["level"] == "info", records
    assert "expected" in library[0]["event"]
    closed = [r for r in records if r.get("event") == "discord.dm_closed"]
    assert closed and closed[0]["level"] == "info" and "outcome" in closed[0]
    errors = [r["event"] for r in records if r["level"] == "error"]
    assert len(errors) == 1 and errors[0].endswith(": 404"), errors
