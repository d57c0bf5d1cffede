"""Plans like the original: a plan paid by card through Mercado Pago Checkout Pro (the real SDK
against the fake's /checkout/preferences, the fake's signed webhook into the real portal), the
sandbox's stand-in for it, the instances a plan allows, and a bonus day per R$ 20 sold."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from astra.container import Container, build_container
from astra.domain.timestamps import iso, parse_iso
from astra.entrypoints.portal import sessions
from astra.entrypoints.portal.app import create_portal_app
from astra.entrypoints.portal.webhooks import WEBHOOK_QUEUE_KEY
from astra.entrypoints.workers import Reconciler
from astra.ports.payments import ChargeStatus
from astra.settings import Settings, ensure_dev_secrets
from tests.fakes.mercadopago import FakeMercadoPagoThread
from tests.integration.sales_world import INSTANCE, OWNER, make_shop
from tests.ports import free_port

SECRET = "whsec-plan-test-0123456789"
SESSION_ROUTE = "/test/session/{user_id}"
CONTAINER = web.AppKey("plan_test_container", Container)


async def _start_session(request: web.Request) -> web.Response:
    with request.app[CONTAINER].store().portal(write=False) as uow:
        user = uow.users.require(request.match_info["user_id"])
    response = web.Response(content_type="application/json")
    response.text = json.dumps({"csrf_token": sessions.start_session(request, response, user)})
    return response


@dataclass
class World:
    container: Container
    app: web.Application
    url: str
    fake: FakeMercadoPagoThread | None
    http: aiohttp.ClientSession
    user_id: str = ""
    csrf: str = ""

    async def login(self, email: str) -> None:
        user = self.container.accounts().register(email, "correct horse battery", "Vendedor")
        self.user_id = user["id"]
        async with self.http.get(self.url + SESSION_ROUTE.format(user_id=user["id"])) as resp:
            self.csrf = (await resp.json())["csrf_token"]

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        async with self.http.post(self.url + path, headers=headers, **kw) as resp:
            raw = await resp.read()
            return resp.status, (json.loads(raw) if raw and resp.content_type ==
                                 "application/json" else raw.decode())

    def plan(self) -> dict[str, Any]:
        return self.container.plans().status(self.user_id)

    async def wait_paid(self, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            plan = self.plan()
            if plan["kind"] == "paid":
                return plan
            await asyncio.sleep(0.05)
        raise AssertionError(f"plan never paid: {self.plan()}")

    async def settle(self) -> None:
        assert await self.app[WEBHOOK_QUEUE_KEY].idle(10)




@asynccontextmanager
async def running(data_dir: Path, *, with_mercadopago: bool, **settings: Any
                  ) -> AsyncIterator[World]:
    fake = FakeMercadoPagoThread(webhook_secret=SECRET) if with_mercadopago else None
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if fake is not None:
        base = fake.start()
        settings.update(mercadopago_access_token=fake.access_token,
                        mercadopago_api_base=base, mercadopago_webhook_secret=SECRET,
                        public_url=url)
    container = build_container(ensure_dev_secrets(Settings(data_dir=data_dir, **settings)))
    app = create_portal_app(container)
    app[CONTAINER] = container
    app.router.add_get(SESSION_ROUTE, _start_session)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    world = World(container, app, url, fake, http)
    try:
        yield world
    finally:
        await world.http.close()
        await runner.cleanup()
        if fake is not None:
            await asyncio.to_thread(fake.stop)


@pytest.fixture
async def mp(data_dir: Path) -> AsyncIterator[World]:
    async with running(data_dir, with_mercadopago=True) as world:
        await world.login("card@example.com")
        yield world


async def checkout(world: World) -> dict[str, Any]:
    status, body = await world.post("/api/checkout/plan/card", json={"plan_id": "monthly"})
    assert status == 200, body
    return body


# -- Checkout Pro against the fake Mercado Pago --------------------------------------------------


async def test_card_checkout_makes_a_preference_and_the_payment_credits_the_plan_once(
    mp: World,
) -> None:
    assert mp.fake is not None
    body = await checkout(mp)
    tx_id, pref_id = body["transaction_id"], body["preference_id"]
    # TEST- credentials: the seller goes to Mercado Pago's sandbox checkout.
    assert body["redirect_url"] == body["sandbox_init_point"]
    assert pref_id in body["init_point"] and body["amount_cents"] == 4990
    [create] = [r for r in mp.fake.requests if r.path == "/checkout/preferences"]
    sent = create.body
    assert sent["items"] == [{"id": "plan-monthly", "title": "Astra - plano 30 dias",
                              "quantity": 1, "currency_id": "BRL", "unit_price": 49.9}]
    assert sent["external_reference"] == tx_id and sent["metadata"]["transaction_id"] == tx_id
    assert sent["back_urls"]["success"] == f"{mp.url}/checkout/plan/return?checkout=success"
    assert sent["notification_url"] == (
        f"{mp.url}/api/webhooks/mercadopago?source_news=webhooks")
    assert "auto_return" not in sent  # Mercado Pago auto-returns to https URLs only
    assert create.idempotency_key == f"plan-card-{tx_id}"
    # Asking again reuses the open preference.
    assert (await checkout(mp))["preference_id"] == pref_id
    assert len([r for r in mp.fake.requests if r.path == "/checkout/preferences"]) == 1

    before = datetime.now(UTC)
    payment = await asyncio.to_thread(mp.fake.pay_preference, pref_id)
    assert payment["payment_type_id"] == "credit_card"
    assert payment["external_reference"] == tx_id
    plan = await mp.wait_paid()
    until = parse_iso(plan["until"])
    assert until is not None
    assert timedelta(days=29, hours=23) < until - before < timedelta(days=30, minutes=5)

    # Replays through both webhook paths, five times each: still one plan's worth of days.
    await asyncio.to_thread(mp.fake.drain)
    for path in ("/api/webhooks/mercadopago", "/webhooks/mercadopago"):
        url, headers, raw = mp.fake.build_webhook(
            payment["id"], url=f"{mp.url}{path}?source_news=webhooks")
        for _ in range(5):
            async with mp.http.post(url, headers=headers, data=raw) as resp:
                assert resp.status == 200
    # ...and the seller's return from the checkout, twice.
    for _ in range(2):
        async with mp.http.get(
            f"{mp.url}/checkout/plan/return?checkout=success&payment_id={payment['id']}",
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/dashboard?checkout=success"
    await mp.settle()
    assert mp.plan()["until"] == plan["until"]
    with mp.container.store().portal(write=False) as uow:
        tx = uow.plan_transactions.require(tx_id)
        audits = [a for a in uow.audit.all() if a.get("action") == "plan.paid"]
    assert tx["status"] == "paid" and tx["charge_id"] == str(payment["id"])
    assert len(audits) == 1


async def test_forged_webhooks_credit_nothing_and_reconcile_finds_the_lost_one(
    mp: World,
) -> None:
    assert mp.fake is not None
    body = await checkout(mp)
    mp.fake.webhook_mode.drop = 1  # the genuine notification is lost
    payment = await asyncio.to_thread(mp.fake.pay_preference, body["preference_id"])
    await asyncio.sleep(0.2)
    for url, headers, raw in (
        mp.fake.build_webhook(payment["id"], url=f"{mp.url}/webhooks/mercadopago",
                              secret="not-the-secret"),
        mp.fake.build_webhook(payment["id"], url=f"{mp.url}/api/webhooks/mercadopago",
                              ts=int(time.time()) - 3600),
    ):
        async with mp.http.post(url, headers=headers, data=raw) as resp:
            assert resp.status == 401
    await mp.settle()
    assert mp.plan()["kind"] == "none"
    # The reconcile loop finds the lost payment by its reference, and credits it once.
    reconciler = Reconciler(mp.container)
    for _ in range(3):
        await asyncio.to_thread(reconciler.pass_once)
    plan = mp.plan()
    assert plan["kind"] == "paid" and plan["days_left"] == 30


async def test_a_rejected_card_or_a_mismatched_payment_credits_nothing(mp: World) -> None:
    assert mp.fake is not None
    body = await checkout(mp)
    payment = await asyncio.to_thread(mp.fake.pay_preference, body["preference_id"],
                                      status="rejected")
    await asyncio.sleep(0.3)
    await mp.settle()
    assert mp.plan()["kind"] == "none"
    # A payment whose metadata names another user than the transaction's is refused.
    charge = await asyncio.to_thread(mp.container.gateway().get_charge, str(payment["id"]))
    assert charge is not None
    forged = replace(charge, status=ChargeStatus.APPROVED,
                     metadata={**charge.metadata, "user_id": "usr_attacker"})
    outcome = await asyncio.to_thread(mp.container.payments().apply_charge, forged)
    assert outcome.action == "mismatch" and mp.plan()["kind"] == "none"


# -- the sandbox's Checkout Pro ----------------------------------------------------------------


async def test_sandbox_card_checkout_page_pays_the_plan_once(data_dir: Path) -> None:
    async with running(data_dir, with_mercadopago=False) as world:
        await world.login("sandbox@example.com")
        body = await checkout(world)
        page_url = world.url + body["redirect_url"]
        assert body["redirect_url"].startswith("/sandbox/checkout/")
        async with world.http.get(page_url) as resp:
            assert resp.status == 200
            page = await resp.text()
        assert "R$" in page and "csrf_token" in page
        # Without the CSRF token the form is refused.
        async with world.http.post(page_url + "/pay", data={"csrf_token": "wrong"},
                                   allow_redirects=False) as r:
            assert r.status == 403
        async with world.http.post(page_url + "/pay", data={"csrf_token": world.csrf},
                                   allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"].startswith(
                "/checkout/plan/return?checkout=success&payment_id=")
        plan = await world.wait_paid()
        assert plan["days_left"] == 30
        # Paying the same preference again is the same payment: no second plan.
        async with world.http.post(page_url + "/pay", data={"csrf_token": world.csrf},
                                   allow_redirects=False) as r:
            assert r.status == 303
        await world.settle()
        assert world.plan()["until"] == plan["until"]
        # Another seller can neither open nor pay this preference.
        owner = world.user_id
        await world.http.close()
        world.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        await world.login("other@example.com")
        async with world.http.get(page_url) as resp:
            assert resp.status == 404
        async with world.http.post(page_url + "/pay", data={"csrf_token": world.csrf},
                                   allow_redirects=False) as r:
            assert r.status == 404
        assert world.container.plans().status(owner)["until"] == plan["until"]
        assert world.plan()["kind"] == "none"


PRODUCTION_SECRETS = {
    "session_secret": "session-secret-value-0123456789",
    "admin_token": "admin-token-value-0123456789",
    "master_key": "master-key-value-0123456789",
    "admin_password": "admin-password-value-0123",
}


async def test_in_production_a_seller_cannot_approve_their_own_sandbox_plan(
    data_dir: Path,
) -> None:
    """ASTRA_PAYMENTS=sandbox in production: the sandbox's checkout pages are gone (404 to the
    seller who owns the preference, CSRF token and all); only the operator settles a charge."""
    import os
    import subprocess
    import sys

    async with running(data_dir, with_mercadopago=False, mode="production",
                       payments="sandbox", **PRODUCTION_SECRETS) as world:
        await world.login("prod-sandbox@example.com")
        body = await checkout(world)
        page_url = world.url + body["redirect_url"]
        assert body["redirect_url"].startswith("/sandbox/checkout/")
        async with world.http.get(page_url) as resp:
            assert resp.status == 404
        async with world.http.post(page_url + "/pay", data={"csrf_token": world.csrf},
                                   allow_redirects=False) as r:
            assert r.status == 404
        await world.settle()
        assert world.plan()["kind"] == "none"
        # The PIX plan charge is settled by the operator's CLI, as documented.
        status, pix = await world.post("/api/checkout/plan", json={"plan_id": "monthly"})
        assert status == 200 and pix["sandbox"] is True
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ASTRA_", "MERCADOPAGO_"))}
        env.update(ASTRA_MODE="production", ASTRA_PAYMENTS="sandbox",
                   PORTAL_SESSION_SECRET=PRODUCTION_SECRETS["session_secret"],
                   ADMIN_PANEL_TOKEN=PRODUCTION_SECRETS["admin_token"],
                   ASTRA_MASTER_KEY=PRODUCTION_SECRETS["master_key"],
                   ADMIN_PANEL_PASSWORD=PRODUCTION_SECRETS["admin_password"])
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "astra.entrypoints.cli", "--data-dir", str(data_dir),
             "payments", "approve", pix["charge_id"]],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert world.plan()["kind"] == "paid"


# -- instances per plan -----------------------------------------------------------------------


async def test_the_plan_caps_instances_with_a_clear_409(data_dir: Path) -> None:
    async with running(data_dir, with_mercadopago=False, trial_max_instances=1,
                       max_instances_per_seller=2) as world:
        await world.login("cap@example.com")
        status, body = await world.post("/api/instances", json={"id": "loja-cap-0", "name": "A"})
        assert status == 402 and body["error"] == "plan_required"
        assert (await world.post("/api/plans/trial"))[0] == 200
        catalog = world.container.plans().catalog()
        assert {p["id"]: p["max_instances"] for p in catalog} == {"trial": 1, "monthly": 2}
        status, _ = await world.post("/api/instances", json={"id": "loja-cap-0", "name": "A"})
        assert status == 201
        status, body = await world.post("/api/instances", json={"id": "loja-cap-1", "name": "B"})
        assert status == 409 and body["error"] == "instance_limit"
        assert "até 1 instância" in body["message"]
        # A paid plan allows its own number.
        with world.container.store().portal() as uow:
            user = uow.users.require(world.user_id)
            user["plan"] = {"kind": "paid", "until": iso(datetime.now(UTC) + timedelta(days=3))}
            uow.users.put(user)
            uow.commit()
        status, _ = await world.post("/api/instances", json={"id": "loja-cap-1", "name": "B"})
        assert status == 201
        status, body = await world.post("/api/instances", json={"id": "loja-cap-2", "name": "C"})
        assert status == 409 and "até 2" in body["message"]
        assert not (data_dir / "instances" / "loja-cap-2").exists()


# -- a bonus day per R$ 20 sold ---------------------------------------------------------------


def _owner_with_plan(shop: Any, days: int = 10) -> datetime:
    until = shop.clock.now() + timedelta(days=days)
    with shop.store.portal() as uow:
        uow.users.put({"id": OWNER, "email": "owner@example.com",
                       "plan": {"kind": "paid", "until": iso(until)}})
        uow.commit()
    return until


def _sell(shop: Any, buyer: str) -> str:
    shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
    _, charge = shop.payments.pay_cart(INSTANCE, buyer)
    shop.gateway.approve(charge.id)
    assert shop.payments.handle_notification(charge.id).action == "paid"
    return charge.id


def _until(shop: Any) -> datetime:
    with shop.store.portal(write=False) as uow:
        until = parse_iso(uow.users.require(OWNER)["plan"]["until"])
    assert until is not None
    return until


def test_a_bonus_day_per_20_reais_sold_counted_once(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=6)  # R$ 19,90 a key; the bonus: a day per R$ 20,00
    until = _owner_with_plan(shop)
    first = _sell(shop, "500000000000000001")
    assert _until(shop) == until  # R$ 19,90: not yet
    second = _sell(shop, "500000000000000002")
    assert _until(shop) == until + timedelta(days=1)  # R$ 39,80: one day
    # Webhooks replayed, settlement run again: nothing more.
    for charge_id in (first, second) * 5:
        shop.payments.handle_notification(charge_id)
    shop.wallet.settle_postings(INSTANCE)
    assert _until(shop) == until + timedelta(days=1)
    # A refund takes its sale out of the count (no day earned twice by selling and refunding).
    shop.gateway.refund_charge(second)
    shop.payments.handle_notification(second)
    _sell(shop, "500000000000000003")  # back to R$ 39,80 net: that day was given already
    assert _until(shop) == until + timedelta(days=1)
    _sell(shop, "500000000000000004")  # R$ 59,70 net: the second day
    assert _until(shop) == until + timedelta(days=2)
    with shop.store.portal(write=False) as uow:
        bonus = uow.users.require(OWNER)["sales_bonus"]
        audits = [a for a in uow.audit.all() if a.get("action") == "plan.sales_bonus"]
    assert bonus["sold_cents"] == 3 * 1990 and bonus["days_granted"] == 2
    assert len(audits) == 2


def test_the_bonus_can_be_turned_off(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3, plan_bonus_cents_per_day=0)
    until = _owner_with_plan(shop)
    for buyer in ("600000000000000001", "600000000000000002", "600000000000000003"):
        _sell(shop, buyer)
    assert _until(shop) == until


async def test_https_portals_ask_for_auto_return_and_the_fake_checks_preferences(
    data_dir: Path,
) -> None:
    from astra.adapters.payments.mercadopago import MercadoPagoGateway
    from astra.ports.payments import CheckoutRequest

    fake = FakeMercadoPagoThread(webhook_secret=SECRET)
    base = fake.start()
    try:
        gateway = MercadoPagoGateway(fake.access_token, api_base=base, webhook_secret=SECRET,
                                     notification_url="https://loja.example/api/webhooks/"
                                     "mercadopago")
        now = datetime.now(UTC)
        request = CheckoutRequest(
            amount_cents=4990, title="Astra - plano 30 dias", payer_email="a@example.com",
            external_reference="ptx_0123456789abcdef", idempotency_key="plan-card-x",
            return_url="https://loja.example/checkout/plan/return", created_at=now,
            expires_at=now + timedelta(days=1), metadata={"kind": "plan"})
        link = await asyncio.to_thread(gateway.create_checkout, request)
        [sent] = [r.body for r in fake.requests if r.path == "/checkout/preferences"]
        assert sent["auto_return"] == "approved" and sent["expires"] is True
        assert sent["notification_url"].endswith("source_news=webhooks")
        assert link.init_point.endswith(link.id) and "sandbox" in link.sandbox_init_point
        # The same idempotency key and body: the same preference, not a second one.
        again = await asyncio.to_thread(gateway.create_checkout, request)
        assert again.id == link.id
        # What Mercado Pago refuses, the fake refuses too.
        headers = {"Authorization": f"Bearer {fake.access_token}"}
        async with aiohttp.ClientSession() as http:
            for body in (
                {"items": []},
                {"items": [{"title": "x", "quantity": 1, "unit_price": 10}],
                 "auto_return": "approved"},
                {"items": [{"title": "x", "quantity": 0, "unit_price": 10}]},
                {"items": [{"title": "x", "quantity": 1, "unit_price": 10}], "bogus": 1},
            ):
                async with http.post(f"{base}/checkout/preferences", json=body,
                                     headers=headers) as resp:
                    assert resp.status == 400, body
            async with http.post(f"{base}/checkout/preferences", json={"items": []}) as resp:
                assert resp.status == 401
    finally:
        await asyncio.to_thread(fake.stop)


async def test_a_refunded_or_charged_back_plan_payment_takes_its_days_back_once(
    mp: World,
) -> None:
    """Two months bought by card; one is charged back (webhooks replayed), the other refunded:
    each takes back its own 30 days, once, and the plan ends no earlier than now."""
    assert mp.fake is not None
    paid = []
    for _ in range(2):
        body = await checkout(mp)
        payment = await asyncio.to_thread(mp.fake.pay_preference, body["preference_id"])
        paid.append(payment["id"])
        await mp.settle()
        await asyncio.to_thread(mp.fake.drain)
        await mp.settle()
    until = parse_iso(mp.plan()["until"])
    assert until is not None and until - datetime.now(UTC) > timedelta(days=59)

    await asyncio.to_thread(mp.fake.chargeback, paid[0])
    await asyncio.to_thread(mp.fake.drain)
    await mp.settle()
    for _ in range(3):  # replayed: still one month less, not three
        url, headers, raw = mp.fake.build_webhook(
            paid[0], url=f"{mp.url}/api/webhooks/mercadopago?source_news=webhooks")
        async with mp.http.post(url, headers=headers, data=raw) as resp:
            assert resp.status == 200
    await mp.settle()
    after_chargeback = parse_iso(mp.plan()["until"])
    assert after_chargeback == until - timedelta(days=30)
    assert mp.plan()["active"]

    await asyncio.to_thread(mp.fake.refund, paid[1])
    await asyncio.to_thread(mp.fake.drain)
    await mp.settle()
    ended = mp.plan()
    assert not ended["active"] and ended["days_left"] == 0
    assert parse_iso(ended["until"]) <= datetime.now(UTC)
    with mp.container.store().portal(write=False) as uow:
        actions = [a["action"] for a in uow.audit.all() if a["action"].startswith("plan.")]
        statuses = sorted(t["status"] for t in uow.plan_transactions.all())
    assert actions.count("plan.charged_back") == 1 and actions.count("plan.refunded") == 1
    assert statuses == ["charged_back", "refunded"]
