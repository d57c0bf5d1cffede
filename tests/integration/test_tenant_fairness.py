"""The platform's loops that talk to Discord for every seller, across sellers: one seller whose bot
Discord keeps rate-limiting (a drop of sales, each call waiting out a 429) holds up neither
another seller's keys (the courier), nor their staff notices (the notifier), nor their
subscription ends (the keeper); a seller whose webhook endpoint hangs holds up no other seller's
webhooks (the sender).

A fleet of fake Discord bots at one REST base (as discord.com is), two shops on the platform, the
loops as `astra serve` runs them; payments through the sandbox gateway."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from astra.domain.subscription import Subscription, SubscriptionStatus
from astra.entrypoints.courier import Courier
from astra.entrypoints.notifier import Notifier
from astra.entrypoints.subscription_keeper import SubscriptionKeeper
from astra.entrypoints.webhook_sender import WebhookSender
from tests.pool_world import PoolWorld, Shop, pool_world
from tests.ports import free_port


def pay(world: PoolWorld, shop: Shop, buyer: str) -> str:
    c = world.container
    variant = shop.product.variants[0].id
    c.sales().add_item(shop.instance_id, buyer, shop.product.id, variant, 1)
    order, charge = c.payments().pay_cart(shop.instance_id, buyer)
    assert charge is not None
    c.gateway().approve(charge.id)
    outcome = c.payments().handle_notification(charge.id)
    assert outcome.action == "paid", outcome
    return order.id


def delivered(world: PoolWorld, shop: Shop, order_id: str) -> bool:
    order = world.container.sales().get_order(shop.instance_id, order_id)
    return order.status.value == "delivered"


async def test_a_rate_limited_seller_does_not_hold_up_another_sellers_keys(
    tmp_path: Path,
) -> None:
    world = await pool_world(tmp_path / "data", instances=2, buyers=6, prefix="courier-shop")
    # Sorted first, so a courier serving one instance after another meets it first.
    slow, fast = world.shops
    stop = asyncio.Event()
    courier = Courier(world.container, interval=0.2)
    task: asyncio.Task[None] | None = None
    try:
        # Every call of the slow shop's bot gets a 429 of 1.5 s: the REST client waits it out
        # once and gives up on the second (RateLimited), so each attempt at one of its
        # deliveries costs the courier seconds.
        slow.discord.rate_limit_next(10_000, retry_after=1.5)
        slow_orders = [await asyncio.to_thread(pay, world, slow, b) for b in slow.buyers]
        task = asyncio.create_task(courier.run(stop))
        await asyncio.sleep(0.3)  # the courier is in the slow shop's deliveries
        paid = time.monotonic()
        fast_order = await asyncio.to_thread(pay, world, fast, fast.buyers[0])
        dm = await fast.discord.wait_for_message(dm_user=fast.buyers[0], timeout=10)
        took = time.monotonic() - paid
        # In line behind the slow seller's 6 deliveries (a 1.5 s wait and a second 429 each)
        # they would wait some 9 s; served side by side, about as long as an idle courier.
        assert took < 4.0, f"the other seller's keys waited {took:.1f}s"
        assert "KEY-1-" in str(dm)
        deadline = time.monotonic() + 5
        while not delivered(world, fast, fast_order) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert delivered(world, fast, fast_order)
        # The slow shop's orders are still owed, none lost: once Discord lets its bot through
        # (and staff asks again, past the retry backoff), each buyer gets one DM.
        assert not any(delivered(world, slow, o) for o in slow_orders)
        slow.discord.rate_limiter.rules.clear()
        slow.discord.rate_limiter.blocked.clear()
        for order_id in slow_orders:
            await asyncio.to_thread(world.container.delivery().redeliver, slow.instance_id,
                                    order_id, actor="test")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(
                delivered(world, slow, o) for o in slow_orders):
            await asyncio.sleep(0.1)
        assert all(delivered(world, slow, o) for o in slow_orders)
        for buyer in slow.buyers:
            assert len(slow.discord.dm_messages(buyer)) == 1
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 30)
        await world.close()


async def test_a_rate_limited_seller_does_not_hold_up_another_sellers_staff_notices(
    tmp_path: Path,
) -> None:
    world = await pool_world(tmp_path / "data", instances=2, buyers=6, prefix="notice-shop")
    slow, fast = world.shops
    logs = {}
    for shop in world.shops:
        logs[shop.instance_id] = shop.discord.add_channel(shop.guild.id, "logs")
        await asyncio.to_thread(world.container.instances().update_settings, shop.instance_id,
                                {"log_channel_id": str(logs[shop.instance_id].id)},
                                actor="test")
    stop = asyncio.Event()
    notifier = Notifier(world.container, tick=0.1)
    task = asyncio.create_task(notifier.run(stop))
    try:
        await asyncio.sleep(0.1)  # subscribed to the publisher
        slow.discord.rate_limit_next(10_000, retry_after=1.5)
        variant = slow.product.variants[0].id
        for buyer in slow.buyers:  # a cart opened and a PIX made: two notices each
            await asyncio.to_thread(world.container.sales().add_item, slow.instance_id, buyer,
                                    slow.product.id, variant, 1)
            await asyncio.to_thread(world.container.payments().pay_cart, slow.instance_id,
                                    buyer)
        await asyncio.sleep(0.3)  # the notifier is in the slow shop's notices
        opened = time.monotonic()
        await asyncio.to_thread(world.container.sales().add_item, fast.instance_id,
                                fast.buyers[0], fast.product.id, fast.product.variants[0].id, 1)
        await fast.discord.wait_for_message(logs[fast.instance_id], timeout=10)
        took = time.monotonic() - opened
        # In line behind twelve notices that each wait out a 429 and meet another, it would
        # wait half a minute.
        assert took < 4.0, f"the other seller's staff notice waited {took:.1f}s"
        assert slow.discord.messages(logs[slow.instance_id]) == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await world.close()


def _members_with_role(world: PoolWorld, shop: Shop,
                       ends: list[datetime]) -> tuple[str, list[str]]:
    """A VIP role, one member holding it per end, and a subscription of theirs ending then."""
    role = shop.discord.add_role(shop.guild.id, "VIP")
    users = []
    with world.container.store().instance(shop.instance_id) as uow:
        for n, end in enumerate(ends):
            user = shop.discord.add_user(f"membro{n}")
            shop.discord.add_member(shop.guild.id, user.id, [role.id])
            users.append(str(user.id))
            sub = Subscription(
                id=f"sub_prod_vip_{user.id}", buyer_id=str(user.id), product_id="prod_vip",
                variant_id="var_vip", product_name="Clube", variant_name="Mensal",
                role_ids=[str(role.id)], period_days=30, price_cents=2990,
                status=SubscriptionStatus.ACTIVE,
                started_at=(end - timedelta(days=30)).isoformat(), ends_at=end.isoformat(),
                created_at=(end - timedelta(days=30)).isoformat(), periods=[],
                roles_granted=True)
            uow.subscriptions.add(sub.to_doc())
        uow.commit()
    return str(role.id), users


async def test_a_rate_limited_seller_does_not_hold_up_another_sellers_ends(
    tmp_path: Path,
) -> None:
    world = await pool_world(tmp_path / "data", instances=2, prefix="subs-shop")
    slow, fast = world.shops
    now = datetime.now(UTC)
    # Twenty ends at once on the slow shop's guild, where Discord allows one role change per
    # 3 s: its backlog takes a minute. The fast shop's one end comes right after.
    slow.discord.limit_rate(1, 3.0, path_contains="/roles/")
    _members_with_role(world, slow, [now + timedelta(seconds=0.5)] * 20)
    fast_end = now + timedelta(seconds=1.5)
    role, (member,) = _members_with_role(world, fast, [fast_end])
    stop = asyncio.Event()
    keeper = SubscriptionKeeper(world.container)
    task = asyncio.create_task(keeper.run(stop))
    try:
        deadline = time.monotonic() + 15
        removed = []
        while not removed and time.monotonic() < deadline:
            removed = [c for c in fast.discord.calls_to("DELETE", f"/members/{member}/roles/")
                       if c.status == 204]
            await asyncio.sleep(0.05)
        assert removed, "the other seller's role was not taken off"
        lag = removed[0].at - fast_end.timestamp()
        assert lag < 4.0, f"the other seller's end waited {lag:.1f}s"
        assert role not in fast.discord.roles_of(fast.guild.id, member)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await world.close()


async def test_a_hanging_webhook_endpoint_does_not_hold_up_another_sellers_webhooks(
    tmp_path: Path,
) -> None:
    world = await pool_world(tmp_path / "data", instances=2, prefix="hook-shop")
    slow, fast = world.shops
    arrived: dict[str, list[float]] = {"slow": [], "fast": []}
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        arrived["slow"].append(time.monotonic())
        await release.wait()  # past the sender's timeout, until the test ends
        return web.Response(status=204)

    async def answer(request: web.Request) -> web.Response:
        arrived["fast"].append(time.monotonic())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/slow", hang)
    app.router.add_post("/fast", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    hooks = world.container.outgoing_webhooks()
    for shop, path in ((slow, "slow"), (fast, "fast")):
        hooks.configure(shop.instance_id, f"http://127.0.0.1:{port}/{path}", actor="test")
    stop = asyncio.Event()
    sender = WebhookSender(hooks, allow_private=True, scan_seconds=0.2, timeout_seconds=1.5)
    task = asyncio.create_task(sender.run(stop))
    try:
        # Twenty events of the hanging seller first: more than the sender's slots, each
        # holding one until the timeout.
        for n in range(20):
            hooks.enqueue(slow.instance_id, "order.paid", f"ord-slow-{n}", {"order": {}})
        await asyncio.sleep(0.5)
        queued = time.monotonic()
        hooks.enqueue(fast.instance_id, "order.paid", "ord-fast", {"order": {}})
        deadline = time.monotonic() + 10
        while not arrived["fast"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert arrived["fast"], "the other seller's webhook never came"
        took = arrived["fast"][0] - queued
        assert took < 1.0, f"the other seller's webhook waited {took:.1f}s"
        # The hanging seller's events are sent one at a time, in order: one in flight.
        assert len(arrived["slow"]) <= 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        release.set()
        await runner.cleanup()
        await world.close()
