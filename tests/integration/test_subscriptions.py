"""Subscriptions on the real store and services, time on a FrozenClock moved across months; and
the internal API as a compromised tenant sees it: nothing it sends extends its own buyer's
subscription or stops a removal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from astra.domain.pricing import Adjustment
from astra.domain.subscription import Subscription
from astra.entrypoints.internal.app import create_internal_app
from astra.plugins import hookimpl
from tests.e2e.bot_world import BOT_TOKEN, free_port
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.bot_side import deferred
from tests.integration.sales_world import INSTANCE, Shop, make_shop

BUYER = "111111111111111111"
OTHER = "222222222222222222"
ROLE_A, ROLE_B = "900000000000000001", "900000000000000002"
DAY = timedelta(days=1)


def _product(shop: Shop, roles: str, name: str = "VIP", days: int = 30,
             price: int = 2990) -> tuple[str, str]:
    product = shop.catalog.create_product(
        INSTANCE,
        {"name": name, "delivery_kind": "subscription", "content": roles,
         "variants": [{"name": f"{days} dias", "price_cents": price, "period_days": days}]},
        actor="test",
    )
    return product.id, product.variants[0].id


def _pay(shop: Shop, buyer: str, product_id: str, variant_id: str, qty: int = 1) -> str:
    """Checkout, payment and the delivery's recording of the period (what the courier does)."""
    shop.sales.set_item(INSTANCE, buyer, product_id, variant_id, qty)
    order = shop.sales.checkout(INSTANCE, buyer)
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=order.total_cents,
                                    payment_id=f"p-{order.id}")
    shop.subscriptions.activate(INSTANCE, order.id)
    return order.id


def _sub(shop: Shop, product_id: str, buyer: str = BUYER) -> Subscription:
    return shop.subscriptions.get(INSTANCE, f"sub_{product_id}_{buyer}")


def test_periods_extend_from_the_current_end_across_months(data_dir: Path) -> None:
    shop = make_shop(data_dir)
    pid, vid = _product(shop, ROLE_A)
    start = shop.clock.now()
    order1 = _pay(shop, BUYER, pid, vid)
    assert _sub(shop, pid).end() == start + 30 * DAY
    shop.subscriptions.activate(INSTANCE, order1)  # a redelivery adds nothing
    assert _sub(shop, pid).end() == start + 30 * DAY
    shop.clock.advance(20 * DAY)
    _pay(shop, BUYER, pid, vid, qty=2)  # early: from the current end, two periods
    sub = _sub(shop, pid)
    assert sub.end() == start + 90 * DAY and sub.renewals == 1
    # Months later, after it ended: a new purchase starts from now.
    shop.clock.advance(100 * DAY)
    work = shop.subscriptions.work(INSTANCE)
    assert [s.id for s in work.ending] == [sub.id]
    closed = shop.subscriptions.close_expired_many(INSTANCE, [sub.id])
    assert closed[0][1] == [ROLE_A]
    assert _sub(shop, pid).ended_at == (start + 90 * DAY).isoformat()
    now = shop.clock.now()
    _pay(shop, BUYER, pid, vid)
    assert _sub(shop, pid).end() == now + 30 * DAY and _sub(shop, pid).status.value == "active"


def test_refund_takes_back_the_unused_days_and_later_periods_move(data_dir: Path) -> None:
    shop = make_shop(data_dir)
    pid, vid = _product(shop, ROLE_A)
    start = shop.clock.now()
    first = _pay(shop, BUYER, pid, vid)
    shop.clock.advance(10 * DAY)
    _pay(shop, BUYER, pid, vid)  # ends at start + 60
    shop.clock.advance(5 * DAY)  # day 15: 15 days of the first period are left
    shop.settlement.refund(INSTANCE, first, kind="chargeback", reason="test")
    sub = _sub(shop, pid)
    assert sub.end() == start + 45 * DAY and sub.status.value == "active"
    # Refunding the second one too: nothing left, it ends now, for the roles to go.
    second = [p["order_id"] for p in sub.periods][1]
    shop.settlement.refund(INSTANCE, second, reason="test")
    sub = _sub(shop, pid)
    assert sub.status.value == "ended" and sub.end_reason == "refund"
    assert [s.id for s in shop.subscriptions.work(INSTANCE).revoke] == [sub.id]


def test_a_role_another_live_subscription_grants_stays(data_dir: Path) -> None:
    shop = make_shop(data_dir)
    short_p, short_v = _product(shop, f"{ROLE_A} {ROLE_B}", name="Curto", days=7)
    long_p, long_v = _product(shop, ROLE_A, name="Longo", days=30)
    _pay(shop, BUYER, short_p, short_v)
    _pay(shop, BUYER, long_p, long_v)
    shop.clock.advance(8 * DAY)
    closed = shop.subscriptions.close_expired_many(INSTANCE, [f"sub_{short_p}_{BUYER}"])
    assert closed[0][1] == [ROLE_B]  # ROLE_A is still paid by the other one


def test_reminders_follow_the_instance_schedule_once_per_end(data_dir: Path) -> None:
    shop = make_shop(data_dir)
    shop.instances.update_settings(INSTANCE, {"subscription_reminder_days": [5, 2]},
                                   actor="test")
    pid, vid = _product(shop, ROLE_A, days=7)
    _pay(shop, BUYER, pid, vid)
    sub_id = f"sub_{pid}_{BUYER}"
    shop.clock.advance(1 * DAY)
    assert shop.subscriptions.work(INSTANCE).reminders == []
    shop.clock.advance(1.5 * DAY)  # 4.5 days left
    [(sub, days)] = shop.subscriptions.work(INSTANCE).reminders
    assert days == 5
    shop.subscriptions.record_reminded(INSTANCE, sub_id, days, sub.ends_at)
    assert shop.subscriptions.work(INSTANCE).reminders == []
    shop.clock.advance(3 * DAY)  # 1.5 days left
    [(_, days)] = shop.subscriptions.work(INSTANCE).reminders
    assert days == 2
    with pytest.raises(Exception, match="subscription_reminder_days"):
        shop.instances.update_settings(INSTANCE, {"subscription_reminder_days": [0]},
                                       actor="test")


def test_staff_extend_and_end_are_audited(data_dir: Path) -> None:
    shop = make_shop(data_dir)
    pid, vid = _product(shop, ROLE_A)
    _pay(shop, BUYER, pid, vid)
    sub_id = f"sub_{pid}_{BUYER}"
    before = _sub(shop, pid).end()
    shop.subscriptions.extend(INSTANCE, sub_id, 5, actor="seller:usr_owner")
    assert _sub(shop, pid).end() == before + 5 * DAY
    shop.subscriptions.end_now(INSTANCE, sub_id, actor="seller:usr_owner")
    assert _sub(shop, pid).status.value == "ended"
    with shop.store.instance(INSTANCE, write=False) as uow:
        actions = [(a["actor"], a["action"]) for a in uow.audit.all()
                   if a["target"] == f"subscription:{sub_id}"]
    assert ("seller:usr_owner", "subscription.extended") in actions
    assert ("seller:usr_owner", "subscription.ended_by_staff") in actions


def test_report_counts_new_renewals_churn_and_mrr(data_dir: Path) -> None:
    shop = make_shop(data_dir)  # 2026-11-29
    pid, vid = _product(shop, ROLE_A, days=30, price=3000)
    _pay(shop, BUYER, pid, vid)
    _pay(shop, OTHER, pid, vid)
    shop.clock.advance(3 * DAY)  # December
    _pay(shop, BUYER, pid, vid)  # a renewal in December
    shop.clock.advance(30 * DAY)  # OTHER's end passed on Dec 29
    shop.subscriptions.close_expired_many(INSTANCE, [f"sub_{pid}_{OTHER}"])
    report = shop.subscriptions.report(INSTANCE, "2026-12")
    assert report["totals"] == {"new": 0, "renewals": 1, "churn": 1}
    assert report["active"] == 1 and report["mrr_cents"] == 3000
    assert report["products"][0]["active"] == 1
    assert shop.subscriptions.report(INSTANCE, "2026-11")["totals"]["new"] == 2
    assert shop.subscriptions.mrr_cents([INSTANCE]) == 3000


class Loyalty:
    """A plugin: 10% off a renewal, and a record of the subscription events."""

    NAME = "loyalty"
    DESCRIPTION = "test"
    DEFAULT_ENABLED = True

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    @hookimpl
    def astra_subscription_renewal_adjustments(self, cart: Any, line: Any,
                                               subscription: dict) -> list[Adjustment]:
        return [Adjustment("loyalty", "Fidelidade", -(line.total_cents // 10))]

    @hookimpl
    def astra_subscription_started(self, subscription: dict) -> None:
        self.events.append(("started", subscription["id"]))

    @hookimpl
    def astra_subscription_renewed(self, subscription: dict) -> None:
        self.events.append(("renewed", subscription["id"]))

    @hookimpl
    def astra_subscription_ended(self, subscription: dict) -> None:
        self.events.append(("ended", subscription["end_reason"]))


def test_plugin_hooks_price_renewals_and_see_the_events(data_dir: Path) -> None:
    shop = make_shop(data_dir)
    plugin = Loyalty()
    shop.plugins.register(plugin)
    pid, vid = _product(shop, ROLE_A, days=30, price=3000)
    first = _pay(shop, BUYER, pid, vid)
    assert shop.sales.get_order(INSTANCE, first).total_cents == 3000  # not a renewal yet
    second = _pay(shop, BUYER, pid, vid)
    assert shop.sales.get_order(INSTANCE, second).total_cents == 2700
    shop.clock.advance(61 * DAY)
    shop.subscriptions.close_expired_many(INSTANCE, [f"sub_{pid}_{BUYER}"])
    sid = f"sub_{pid}_{BUYER}"
    assert plugin.events == [("started", sid), ("renewed", sid), ("ended", "expired")]


# -- a compromised tenant ---------------------------------------------------------------------


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    """The shop's bot and server: the buyers' clicks the attacker hands the platform."""
    fake = FakeDiscord(bot_token=BOT_TOKEN)
    await fake.start()
    guild = fake.add_guild("Servidor", guild_id="700000000000000001")
    fake.add_channel(guild.id, "produtos")
    for buyer in (BUYER, OTHER):
        fake.add_member(guild.id, fake.add_user(f"u{buyer[:3]}", user_id=buyer).id)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def tenant(data_dir: Path, discord: FakeDiscord
                 ) -> AsyncIterator[tuple[Shop, str, str, str]]:
    shop = make_shop(data_dir, discord_api_base=discord.api_url)
    shop.instances.set_bot_token(INSTANCE, discord.bot_token, {
        "id": str(discord.bot.id), "application_id": str(discord.application_id)}, actor="t")
    shop.instances.update_settings(INSTANCE, {"guild_id": "700000000000000001"}, actor="t")
    pid, vid = _product(shop, ROLE_A, days=7)
    _pay(shop, BUYER, pid, vid)
    runner = web.AppRunner(create_internal_app(shop.container))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield shop, f"http://127.0.0.1:{port}/internal/instances/{INSTANCE}", \
            shop.instances.runtime_credential(INSTANCE), pid
    finally:
        await runner.cleanup()
        shop.store.close()


async def test_a_runtime_cannot_extend_or_keep_its_buyers_subscription(
    tenant: tuple[Shop, str, str, str], discord: FakeDiscord,
) -> None:
    shop, base, credential, pid = tenant
    sub_id = f"sub_{pid}_{BUYER}"
    end = _sub(shop, pid).end()
    auth = {"Authorization": f"Bearer {credential}"}
    shop.clock.advance(7 * DAY + timedelta(minutes=1))  # ended a minute ago; no keeper pass yet

    async with aiohttp.ClientSession(headers=auth) as http:
        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            data = orjson.dumps(body) if body is not None else None
            async with http.request(method, base + path, data=data) as resp:
                return resp.status, orjson.loads(await resp.read() or b"null")

        channel = next(iter(discord.world.guilds["700000000000000001"].channel_ids))

        async def click(user: str) -> dict[str, str]:
            """A real click of `user` the bot received and deferred."""
            async with aiohttp.ClientSession() as bot:
                ref = await deferred(bot, discord.api_url,
                                     discord.interaction_from(user, channel))
            return {"id": ref.id, "token": ref.token}

        mine, theirs = {"interaction": await click(BUYER)}, {"interaction": await click(OTHER)}
        attempts = [
            # Fields no operation has: refused, never applied.
            ("POST", f"/subscriptions/{sub_id}/renew", {**mine, "days": 30}),
            ("POST", f"/subscriptions/{sub_id}/renew", {**mine, "ends_at": "2099-01-01"}),
            ("POST", f"/subscriptions/{sub_id}/card", {**mine, "status": "authorized"}),
            ("POST", f"/members/{BUYER}/joined", {"roles": [ROLE_A]}),
            # Made-up routes a compromised runtime would try.
            ("POST", f"/subscriptions/{sub_id}/extend", {**mine, "days": 30}),
            ("PATCH", f"/subscriptions/{sub_id}", {**mine, "ends_at": "2099-01-01"}),
            ("DELETE", f"/subscriptions/{sub_id}", None),
            # Someone else's subscription (another buyer's click), or a malformed id.
            ("POST", f"/subscriptions/{sub_id}/renew", theirs),
            ("POST", "/subscriptions/..%2F..%2Fx/renew", mine),
        ]
        for method, path, body in attempts:
            status, _ = await call(method, path, body)
            assert status in (404, 405, 422), (method, path, status)

        # What the runtime may do changes no date: a renewal is a pending order to pay,
        # a join of a member whose time is up owes no role, a card needs the seller's opt-in.
        status, answer = await call("POST", f"/subscriptions/{sub_id}/renew", mine)
        assert status == 200 and answer["result"]["order"]["status"] == "pending"
        status, answer = await call("POST", f"/members/{BUYER}/joined")
        assert status == 200 and answer["result"] == 0
        status, _ = await call("POST", f"/subscriptions/{sub_id}/card", mine)
        assert status == 422
        status, answer = await call("POST", "/subscriptions/list", mine)
        assert status == 200 and answer["result"][0]["status"] == "ended"

    sub = _sub(shop, pid)
    assert sub.end() == end and len(sub.periods) == 1
    # The removal is still owed and happens on the keeper's next pass.
    assert [s.id for s in shop.subscriptions.work(INSTANCE).ending] == [sub_id]


def test_a_renewal_granted_while_the_removal_was_on_its_way_is_granted_again(
    data_dir: Path,
) -> None:
    """The keeper closes an expired subscription and sends the removal; meanwhile the buyer's
    renewal is delivered (its grant may reach Discord before the removal, in any order). After
    the keeper records its removal, the renewed subscription is owed its roles again, and the
    next pass grants them, so a paid role is never left off."""
    shop = make_shop(data_dir)
    pid, vid = _product(shop, f"{ROLE_A} {ROLE_B}", days=7)
    other_p, other_v = _product(shop, ROLE_A, name="Outro", days=30)
    _pay(shop, BUYER, pid, vid)
    shop.clock.advance(7 * DAY + timedelta(seconds=1))
    sub_id = f"sub_{pid}_{BUYER}"
    [(_, roles)] = shop.subscriptions.close_expired_many(INSTANCE, [sub_id])
    assert roles == [ROLE_A, ROLE_B]
    # Renewed (and another product with a shared role bought) before the removal is recorded.
    _pay(shop, BUYER, pid, vid)
    _pay(shop, BUYER, other_p, other_v)
    shop.subscriptions.record_granted(INSTANCE, sub_id)
    shop.subscriptions.record_granted(INSTANCE, f"sub_{other_p}_{BUYER}")
    shop.subscriptions.record_revoked_many(INSTANCE, [(sub_id, None)])
    owed = {s.id for s in shop.subscriptions.work(INSTANCE).grant}
    assert owed == {sub_id, f"sub_{other_p}_{BUYER}"}
    assert _sub(shop, pid).status.value == "active"
