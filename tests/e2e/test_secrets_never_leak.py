"""Sentinel secrets through a whole purchase: no log line, page or API answer shows one, and
the sold key appears only in its buyer's DM.

After the sale the instance's owner logs in to the portal with e-mail and password, as a seller
would, and every GET route of the portal — the JSON API as /api/openapi.json lists it, the pages
pages.py serves, and the rest of the router — is fetched as that seller and as another seller;
so are the write answers that carry a secret in their request (bot tokens, passwords) or one by
design (the rotated instance key, shown once to its owner). Bodies, headers and the session
cookie's payload are scanned, and so are the portal's log lines."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from astra.entrypoints.admin.app import create_admin_app
from astra.entrypoints.internal.app import create_internal_app
from astra.entrypoints.portal import pages
from astra.entrypoints.portal.app import create_portal_app
from astra.logs import configure_logging
from tests.e2e.bot_world import BOT_TOKEN, INSTANCE, OWNER, WEBHOOK_SECRET, Shop, running_shop
from tests.e2e.test_bot_purchase import _open_cart, _paid_and_delivered, _setup_catalog
from tests.fakes.discord.state import message_text

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SESSION = "SENTINEL-session-secret-7c1f4e"
ADMIN = "SENTINEL-admin-token-19a2b3"
MASTER = "SENTINEL-master-key-55d0aa"
STOCK_KEY = "SENTINEL-STOCK-KEY-0001"
ADMIN_PASSWORD = "SENTINEL-admin-password-3b9c0d"
MONITOR = "SENTINEL-monitor-token-a81f22"
DISCORD_SECRET = "SENTINEL-discord-client-secret-6e04"
PASSWORD = "SENTINEL-seller-password-d41d8c"
NEW_PASSWORD = "SENTINEL-seller-new-password-0f3a"
WRONG_PASSWORD = "SENTINEL-wrong-password-77e1b9"
# Shaped like a Discord bot token; the fake Discord refuses it.
WRONG_TOKEN = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.SENTINELwrongTOKENzzzzzzzzzzzzzzzzzzzzz"
OWNER_EMAIL = "dona-da-loja@example.com"
OTHER_EMAIL = "outro-vendedor@example.com"
COUPON = "PROMO10"  # made by _setup_catalog


# -- the portal through a seller's browser ---------------------------------------------------------


@dataclass
class Answer:
    who: str
    method: str
    path: str
    status: int
    body: str
    headers: str  # every header line (Set-Cookie included) and what each cookie carries


@dataclass
class Browser:
    """One seller's browser on the running portal: its own cookie jar and CSRF token."""

    who: str
    http: aiohttp.ClientSession
    csrf: str | None = None
    answers: list[Answer] = field(default_factory=list)

    async def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        headers = dict(kwargs.pop("headers", {}))
        if self.csrf and method not in ("GET", "HEAD"):
            headers.setdefault("X-CSRF-Token", self.csrf)
        # Redirects are not followed: /auth/discord points away from loopback.
        async with self.http.request(
            method, path, headers=headers, allow_redirects=False, **kwargs
        ) as resp:
            body = (await resp.read()).decode("utf-8", "replace")
            lines = [f"{name}: {value}" for name, value in resp.headers.items()]
            lines += [_cookie_payload(morsel.value) for morsel in resp.cookies.values()]
            answer = Answer(self.who, method, path, resp.status, body, "\n".join(lines))
        self.answers.append(answer)
        return answer

    async def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        answer = await self.call(method, path, **kwargs)
        try:
            return answer.status, json.loads(answer.body)
        except ValueError:
            return answer.status, None


def _cookie_payload(value: str) -> str:
    """What a signed cookie carries: base64 would hide a secret from a plain scan."""
    head = value.split(".", 1)[0]
    try:
        return base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode("utf-8", "replace")
    except ValueError:
        return ""


def _seed_owner_account(shop: Shop) -> None:
    """A password account for the instance's owner. bot_world made the instance for OWNER before
    any account existed, so the account the real sign-up service makes takes that id."""
    user = shop.accounts.register(OWNER_EMAIL, PASSWORD, "Dona da Loja")
    with shop.container.store().portal() as uow:
        doc = uow.users.require(user["id"])
        uow.users.delete(user["id"])
        uow.users.add({**doc, "id": OWNER})
        uow.commit()


@dataclass
class Routes:
    api: list[str]  # GET paths of /api/openapi.json under /api/
    pages: list[str]  # GET routes served by pages.py
    rest: list[str]  # every other GET route (health, OAuth, internal API)


def _get_routes(app: web.Application, openapi: dict[str, Any]) -> Routes:
    api = sorted(p for p, ops in openapi["paths"].items() if "get" in ops and p.startswith("/api/"))
    page_paths: set[str] = set()
    every: set[str] = set()
    for route in app.router.routes():
        if route.method != "GET" or isinstance(route.resource, web.StaticResource):
            continue
        assert route.resource is not None
        every.add(route.resource.canonical)
        if getattr(route.handler, "__module__", None) == pages.__name__:
            page_paths.add(route.resource.canonical)
    assert set(api) <= every, "the OpenAPI document lists a GET route the router does not have"
    return Routes(api, sorted(page_paths), sorted(every - set(api) - page_paths))


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a path parameter of {path}: add one to the test"
    return path


@dataclass
class PortalViews:
    answers: list[Answer]
    rotated_key: str
    routes: Routes


async def _seller_views(
    shop: Shop, product_id: str, charge_id: str, order: Any, buyer_id: str
) -> PortalViews:
    """Everything the portal answers the instance's owner and another seller after the sale."""
    await asyncio.to_thread(_seed_owner_account, shop)
    base = shop.container.settings().public_url  # the running portal, on loopback
    # unsafe=True: keep the cookies of an IP address (127.0.0.1).
    async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as h1, \
            aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as h2:
        owner, other = Browser("owner", h1), Browser("other", h2)

        # The login form, refused once: the page comes back with the e-mail, not the password.
        refused = await owner.call(
            "POST", "/auth/local/login", headers={"Accept": "text/html"},
            data={"email": OWNER_EMAIL, "password": WRONG_PASSWORD, "next": "/dashboard"},
        )
        assert refused.status == 401 and OWNER_EMAIL in refused.body, refused.body[:300]
        status, body = await owner.json(
            "POST", "/auth/local/login", json={"email": OWNER_EMAIL, "password": PASSWORD}
        )
        assert status == 200 and body["user"]["id"] == OWNER, body
        owner.csrf = body["csrf_token"]
        status, body = await owner.json(
            "POST", "/auth/local/change-password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert status == 200, body
        owner.csrf = body["csrf_token"]
        status, _ = await owner.json("POST", "/api/plans/trial")
        assert status == 200

        status, body = await other.json(
            "POST", "/auth/local/register",
            json={"email": OTHER_EMAIL, "password": PASSWORD, "name": "Outro"},
        )
        assert status == 201, body
        other.csrf = body["csrf_token"]

        # Writes with a secret in the request, or (the key rotation) in the answer.
        instance = f"/api/instances/{INSTANCE}"
        # Choosing the bot takes the password too (the sentinel must not leak from there either).
        status, doc = await owner.json("PUT", f"{instance}/bot-token",
                                       json={"token": BOT_TOKEN, "password": NEW_PASSWORD})
        assert status == 200 and doc["has_token"], doc
        status, _ = await owner.json("PUT", f"{instance}/bot-token",
                                     json={"token": WRONG_TOKEN, "password": NEW_PASSWORD})
        assert status == 422
        status, refused = await owner.json("PUT", f"{instance}/bot-token",
                                           json={"token": BOT_TOKEN, "password": WRONG_PASSWORD})
        assert status == 403 and refused["error"] == "wrong_password", refused
        status, _ = await owner.json(
            "POST", "/api/instances",
            json={"id": "loja-dois", "name": "Dois", "bot_token": BOT_TOKEN},
        )
        assert status == 409  # that bot already serves loja-bot
        status, _ = await other.json("PUT", f"{instance}/bot-token",
                                     json={"token": BOT_TOKEN, "password": PASSWORD})
        assert status == 404
        # The money and key routes take the password again: never in an answer either.
        status, rotated = await owner.json("POST", f"{instance}/rotate-key",
                                           json={"password": NEW_PASSWORD})
        assert status == 200 and rotated["key"], rotated
        status, _ = await other.json("POST", f"{instance}/rotate-key", json={"password": PASSWORD})
        assert status == 404
        status, refused = await owner.json("POST", f"{instance}/rotate-key",
                                           json={"password": WRONG_PASSWORD})
        assert status == 403 and refused["error"] == "wrong_password", refused
        status, withdrawal = await owner.json(
            "POST", "/api/wallet/withdrawals",
            json={"amount_cents": 1000, "pix_key": OWNER_EMAIL, "password": NEW_PASSWORD},
        )
        assert status == 201, withdrawal
        # A plan paid by card: the sandbox's Checkout Pro page is one more GET route to read.
        status, card = await owner.json("POST", "/api/checkout/plan/card",
                                        json={"plan_id": "monthly"})
        assert status == 200, card

        # A big import goes on as a job: its status is one more GET route to read.
        started = await asyncio.to_thread(
            shop.catalog.imports.start, INSTANCE, product_id, order.lines[0].variant_id,
            "\n".join(f"JOB-KEY-{n:05d}" for n in range(1500)), actor="test")
        assert started.job is not None

        # Every GET route, as each seller, with this run's ids in the path.
        status, openapi = await owner.json("GET", "/api/openapi.json")
        assert status == 200
        # A fresh app on the same container has the running portal's route table.
        routes = _get_routes(create_portal_app(shop.container), openapi)
        values = {"id": INSTANCE, "instance_id": INSTANCE, "productId": product_id,
                  "code": COUPON, "charge_id": charge_id, "withdrawal_id": withdrawal["id"],
                  # the internal API's, read below as the instance's runtime reads them
                  "buyer_id": buyer_id, "order_id": order.id, "cart_id": order.cart_id,
                  "product_id": product_id, "variant_id": order.lines[0].variant_id,
                  "channel_id": str(shop.post_channel.id), "jobId": started.job["id"],
                  # seller automation and the sandbox's card checkout (tokens and events
                  # nobody has; the card checkout's preference is real)
                  "token_id": "tok_0000000000000000", "event_id": "evt_" + "0" * 32,
                  "pref_id": card["preference_id"]}
        variants = {
            "/": ["/?mode=login"],
            "/dashboard/store": [f"/dashboard/store?instance={INSTANCE}"],
            "/lang": ["/lang?to=en&next=/dashboard"],
            f"{instance}/orders": [f"{instance}/orders?status=delivered"],
        }
        for browser in (owner, other):
            for path in routes.api:
                for url in (_fill(path, values), *variants.get(_fill(path, values), [])):
                    answer = await browser.call("GET", url)
                    # The other seller gets a 404 for the owner's instance, nothing more.
                    want = 404 if browser is other and "{id}" in path else 200
                    assert answer.status == want, (browser.who, url, answer.body[:300])
            for path in routes.pages:
                for url in (_fill(path, values), *variants.get(_fill(path, values), [])):
                    answer = await browser.call("GET", url)
                    assert answer.status < 500, (browser.who, url, answer.status)
                    if url.startswith("/dashboard"):
                        want = 404 if browser is other and "instance=" in url else 200
                        assert answer.status == want, (browser.who, url, answer.status)
                        assert "<html" in answer.body.lower(), url
            for path in routes.rest:
                answer = await browser.call("GET", _fill(path, values))
                assert answer.status < 500, (browser.who, path, answer.status)
        store = next(a for a in owner.answers if a.path.endswith(f"instance={INSTANCE}"))
        assert "Steam Key" in store.body  # the owner's store page shows this run's shop

        status, _ = await owner.json("POST", "/auth/logout")
        assert status == 200
        assert (await owner.call("GET", "/api/me")).status == 401

    # The internal API as the instance's own runtime reads it: its data, none of its secrets.
    credential = await asyncio.to_thread(shop.instances.runtime_credential, INSTANCE)
    async with aiohttp.ClientSession(
        shop.internal_url, headers={"Authorization": f"Bearer {credential}"}
    ) as h3:
        runtime = Browser("runtime", h3)
        # On the internal API's own listener: the portal serves none of it.
        assert not any(p.startswith("/internal/") for p in routes.rest)
        internal_routes = _get_routes(create_internal_app(shop.container), {"paths": {}})
        internal = [p for p in internal_routes.rest if p.startswith("/internal/")]
        for path in internal:
            answer = await runtime.call("GET", _fill(path, values))
            assert answer.status == 200, (path, answer.status, answer.body[:300])
    assert len(internal) >= 8, internal
    assert len(routes.api) >= 10 and len(routes.pages) >= 7, routes
    return PortalViews(owner.answers + other.answers + runtime.answers, rotated["key"], routes)


# -- the run -----------------------------------------------------------------------------------


async def test_no_secret_in_logs_pages_or_answers(data_dir: Path) -> None:
    stream = io.StringIO()
    configure_logging("debug", fmt="json", stream=stream)
    try:
        async with running_shop(data_dir, session_secret=SESSION, admin_token=ADMIN,
                                master_key=MASTER, admin_password=ADMIN_PASSWORD,
                                admin_monitor_token=MONITOR, discord_client_id="4242",
                                discord_client_secret=DISCORD_SECRET) as shop:
            access_token = shop.mp.access_token
            first_instance_key = shop.instance_key
            product_id, variant_id = await _setup_catalog(shop, [STOCK_KEY, "OTHER-KEY-2"])
            buyer = shop.buyer("sentinela")
            opened = await _open_cart(shop, buyer, product_id, variant_id)
            order, dm = await _paid_and_delivered(shop, buyer, opened)
            assert STOCK_KEY in message_text(dm)
            await shop.eventually(lambda: shop.wallet.balance(OWNER) > 0, what="the sale credit")

            answers: list[str] = []
            async with TestClient(TestServer(create_admin_app(shop.container))) as admin:
                auth = {"Authorization": f"Bearer {ADMIN}"}
                for path in ("/api/status", "/api/orders", "/api/carts", "/api/deliveries",
                             "/api/customers", "/api/products", "/api/coupons", "/api/stock",
                             "/api/accounts", "/api/runtime", "/api/logs/recent",
                             "/api/diagnostics", "/api/plugins", "/api/admin/withdrawals",
                             "/metrics", "/api/business/overview", "/api/openapi.json",
                             "/api/posts", "/api/logs/platform?limit=1000", "/api/work",
                             f"/api/instances/{INSTANCE}/settings",
                             f"/api/instances/{INSTANCE}/stock/{product_id}/keys"):
                    resp = await admin.get(path, headers=auth)
                    assert resp.status == 200, path
                    answers.append(await resp.text())
                login = await admin.post("/admin/login", json={"user": "x", "password": "y"})
                answers.append(await login.text())
                for page in ("/admin", "/admin/operacao/pedidos", "/admin/runtime",
                             "/admin/auditoria", "/admin/diagnostico", "/admin/contas",
                             f"/admin/suporte?instance={INSTANCE}", "/admin/auditoria/logs",
                             "/admin/auditoria/pendencias", "/admin/auditoria/publicacoes"):
                    resp = await admin.get(page, headers=auth)
                    answers.append(await resp.text())

            portal = await _seller_views(shop, product_id, order.charge_id, order, str(buyer.id))
            # every message the bot sent anywhere but the buyer's DM
            public = [m for ch in shop.discord.channels_of(shop.guild.id)
                      for m in shop.discord.messages(ch["id"])]
    finally:
        logging.getLogger().handlers.clear()
    logs = stream.getvalue()
    assert "webhook.handled" in logs and "bot.ready" in logs  # the capture saw the run
    # ... and the portal's own lines: the sign-up, the access log of the sellers' requests
    assert "portal.registered" in logs and "/dashboard/wallet" in logs
    secrets = (BOT_TOKEN, access_token, SESSION, ADMIN, MASTER, STOCK_KEY, ADMIN_PASSWORD,
               MONITOR, DISCORD_SECRET, WEBHOOK_SECRET, PASSWORD, NEW_PASSWORD, WRONG_PASSWORD,
               WRONG_TOKEN, first_instance_key)
    for secret in (*secrets, portal.rotated_key):
        leaking = [line for line in logs.splitlines() if secret in unquote(line)]
        assert not leaking, f"log lines show {secret[:12]}...: {leaking[:3]}"
        for answer in answers:
            assert secret not in answer, f"an admin answer shows {secret[:12]}..."
        assert not any(secret in str(m) for m in public), f"a public message shows {secret[:12]}"
    for secret in secrets:
        for seen in portal.answers:
            for text in (seen.body, seen.headers, unquote(seen.headers)):
                assert secret not in text, f"{seen.who} {seen.method} {seen.path}: {secret[:12]}"
    # The rotated key: in the rotation's answer to its owner, nowhere else.
    showing = [(s.who, s.method, s.path) for s in portal.answers
               if portal.rotated_key in s.body or portal.rotated_key in s.headers]
    assert showing == [("owner", "POST", f"/api/instances/{INSTANCE}/rotate-key")], showing
    # The scan reads what it should: the session cookie's payload names its user.
    assert any(f'"uid":"{OWNER}"' in s.headers for s in portal.answers)
    for path in data_dir.rglob("*"):
        if path.is_file() and path.name != ".secrets.json":
            assert STOCK_KEY.encode() not in path.read_bytes(), path
            assert BOT_TOKEN.encode() not in path.read_bytes(), path
