"""Personal API tokens and the original portal's route names, through the real portal app on a
real server: a script with `Authorization: Bearer` and no cookie, attacked the way a stolen or
misused token would be."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from astra.logs import configure_logging, get_logger
from tests.integration.test_portal_api import (
    PASSWORD,
    TWO_VARIANTS,
    Portal,
    Seller,
    running_portal,
    shop,
)


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    async with running_portal(tmp_path) as world:
        yield world


class Script:
    """An automation client: its own connection, no cookie jar, only the token."""

    def __init__(self, portal: Portal, token: str) -> None:
        self.portal = portal
        self.token = token

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        client = await self.portal.client()
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        async with client.request(method, path, headers=headers, **kwargs) as resp:
            raw = await resp.read()
            return resp.status, json.loads(raw) if raw else None


async def new_token(seller: Seller, scope: str, name: str = "script") -> tuple[str, dict]:
    status, body = await seller.post("/api/me/tokens", json={"name": name, "scope": scope,
                                                               "password": PASSWORD})
    assert status == 201, body
    assert body["key"].startswith("astra_pat_") and body["token"]["scope"] == scope
    return body["key"], body["token"]


def stored_bytes(portal: Portal) -> bytes:
    return b"".join(p.read_bytes() for p in portal.data_dir.rglob("*") if p.is_file())


async def test_a_read_write_token_works_without_cookie_or_csrf(portal: Portal) -> None:
    seller = await portal.seller("ana@example.com")
    await shop(seller, "loja-ana")
    token, doc = await new_token(seller, "read-write")
    script = Script(portal, token)
    status, body = await script.call("GET", "/api/instances")
    assert status == 200 and [i["id"] for i in body["instances"]] == ["loja-ana"]
    status, product = await script.call("POST", "/api/instances/loja-ana/products",
                                        json=TWO_VARIANTS)
    assert status == 201, product
    # The original's PUT verb, with the token too.
    status, body = await script.call("PUT", f"/api/instances/loja-ana/products/{product['id']}",
                                     json={"name": "Chave Steam Gold"})
    assert status == 200 and body["name"] == "Chave Steam Gold"
    # Shown once: the list and the store never hold the token itself.
    status, listed = await seller.get("/api/me/tokens")
    assert status == 200 and token not in json.dumps(listed)
    assert listed["tokens"][0]["id"] == doc["id"] and listed["tokens"][0]["last_used_at"]
    assert token.encode() not in stored_bytes(portal)


async def test_a_read_token_cannot_write(portal: Portal) -> None:
    seller = await portal.seller("bia@example.com")
    await shop(seller, "loja-bia")
    token, _ = await new_token(seller, "read")
    script = Script(portal, token)
    assert (await script.call("GET", "/api/instances/loja-bia"))[0] == 200
    before = await seller.get("/api/instances/loja-bia")
    attempts = [
        ("POST", "/api/instances/loja-bia/products", {"json": TWO_VARIANTS}),
        ("PATCH", "/api/instances/loja-bia", {"json": {"name": "Hacked"}}),
        ("PUT", "/api/instances/loja-bia", {"json": {"name": "Hacked"}}),
        ("DELETE", "/api/instances/loja-bia", {}),
        ("POST", "/api/instances/loja-bia/rotate-key", {}),
        ("PUT", "/api/instances/loja-bia/webhook", {"json": {"url": "http://127.0.0.1:9/x"}}),
        ("POST", "/api/wallet/withdrawals", {"json": {"amount_cents": 1000, "pix_key": "a@b.co"}}),
    ]
    for method, path, kw in attempts:
        status, body = await script.call(method, path, **kw)
        assert status == 403 and body["error"] == "read_only_token", (method, path, body)
    assert await seller.get("/api/instances/loja-bia") == before
    assert (await seller.get("/api/instances/loja-bia/products"))[1]["products"] == []


async def test_a_token_of_seller_a_cannot_touch_seller_b(portal: Portal) -> None:
    alice = await portal.seller("alice@example.com")
    bob = await portal.seller("bob@example.com")
    await shop(alice, "loja-alice")
    await shop(bob, "loja-bob")
    status, product = await bob.post("/api/instances/loja-bob/products", json=TWO_VARIANTS)
    assert status == 201
    token, _ = await new_token(alice, "read-write")
    script = Script(portal, token)
    before = (await bob.get("/api/instances/loja-bob"),
              await bob.get("/api/instances/loja-bob/products"))
    pid = product["id"]
    for method, path, kw in [
        ("GET", "/api/instances/loja-bob", {}),
        ("GET", "/api/instances/loja-bob/orders", {}),
        ("PUT", "/api/instances/loja-bob", {"json": {"name": "Owned"}}),
        ("PATCH", "/api/instances/loja-bob", {"json": {"name": "Owned"}}),
        ("PUT", f"/api/instances/loja-bob/products/{pid}", {"json": {"name": "Owned"}}),
        ("DELETE", f"/api/instances/loja-bob/products/{pid}", {}),
        ("POST", f"/api/instances/loja-bob/stock/{pid}",
         {"json": {"variant_id": product["variants"][0]["id"], "keys": ["X-1"]}}),
        ("GET", "/api/instances/loja-bob/webhook/deliveries", {}),
        ("DELETE", "/api/instances/loja-bob", {}),
    ]:
        status, body = await script.call(method, path, **kw)
        assert status == 404 and body["error"] == "instance_not_found", (method, path, body)
    # Bob's webhook and bot: those routes refuse any token before they look at the instance.
    for method, path, kw in [
        ("PUT", "/api/instances/loja-bob/webhook", {"json": {"url": "http://127.0.0.1:9/x"}}),
        ("PUT", "/api/instances/loja-bob/bot-token", {"json": {"token": "x" * 60}}),
    ]:
        status, body = await script.call(method, path, **kw)
        assert status == 403 and body["error"] == "session_required", (method, path, body)
    # Nor Bob's tokens: tokens are managed with a session only, and one's own only.
    _, bob_token = await new_token(bob, "read")
    assert (await script.call("DELETE", f"/api/me/tokens/{bob_token['id']}"))[0] == 403
    assert (await alice.delete(f"/api/me/tokens/{bob_token['id']}",
                               json={"password": PASSWORD}))[0] == 404
    assert (await bob.get("/api/me/tokens"))[1]["tokens"][0]["active"] is True
    after = (await bob.get("/api/instances/loja-bob"),
             await bob.get("/api/instances/loja-bob/products"))
    assert after == before
    # A cookie of Bob's next to Alice's token: the token decides who calls.
    async with bob.client.get("/api/instances", headers={"Authorization": f"Bearer {token}"}) \
            as resp:
        listed = await resp.json()
    assert [i["id"] for i in listed["instances"]] == ["loja-alice"]


async def test_revoked_unknown_and_malformed_tokens_get_401(portal: Portal) -> None:
    seller = await portal.seller("caio@example.com")
    token, doc = await new_token(seller, "read-write")
    script = Script(portal, token)
    assert (await script.call("GET", "/api/instances"))[0] == 200
    status, body = await seller.delete(f"/api/me/tokens/{doc['id']}",
                                       json={"password": PASSWORD})
    assert status == 200 and body["active"] is False
    status, body = await script.call("GET", "/api/instances")
    assert status == 401 and body["error"] == "invalid_token"
    for bad in ("astra_pat_" + "A" * 43, "nonsense", token + "x", ""):
        assert (await Script(portal, bad).call("GET", "/api/instances"))[0] == 401
    client = await portal.client()
    async with client.get("/api/instances", headers={"Authorization": f"Basic {token}"}) as r:
        assert r.status == 401
    # A token cannot mint tokens.
    other, _ = await new_token(seller, "read-write", "second")
    status, body = await Script(portal, other).call(
        "POST", "/api/me/tokens", json={"name": "more", "scope": "read-write"})
    assert status == 403 and body["error"] == "session_required"
    # The cookie still needs CSRF for writes: the token path is not a way around it.
    status, body = await seller.post("/api/me/tokens", csrf=False,
                                     json={"name": "x", "scope": "read", "password": PASSWORD})
    assert status == 403 and body["error"] == "csrf_failed"
    # Input is checked like any route.
    for bad in ({"name": "", "scope": "read"}, {"name": "x", "scope": "admin"}):
        assert (await seller.post("/api/me/tokens",
                                  json={**bad, "password": PASSWORD}))[0] == 422


async def test_bad_tokens_are_rate_limited_per_client(portal: Portal) -> None:
    bad = Script(portal, "astra_pat_" + "B" * 43)
    statuses = [(await bad.call("GET", "/api/instances"))[0] for _ in range(22)]
    assert statuses[:20] == [401] * 20 and statuses[20:] == [429, 429]
    # ...even a good token from that client waits (like a locked login).
    seller = await portal.seller("duda@example.com")
    token, _ = await new_token(seller, "read")
    status, _ = await Script(portal, token).call("GET", "/api/instances")
    assert status == 429


async def test_tokens_never_reach_the_log(portal: Portal) -> None:
    stream = io.StringIO()
    configure_logging("debug", fmt="json", stream=stream)
    try:
        seller = await portal.seller("hal@example.com")
        token, _ = await new_token(seller, "read")
        script = Script(portal, token)
        await script.call("GET", "/api/instances")
        await script.call("POST", "/api/instances", json={"id": "x"})  # 403, logged or not
        await Script(portal, token + "garbage").call("GET", "/api/instances")
        log = get_logger("astra.test")
        log.warning("client failed", headers={"Authorization": f"Bearer {token}"},
                    note=f"retrying with {token}", api_token=token)
        logging.getLogger("aiohttp.access").info("GET /api/x Authorization: Bearer %s", token)
    finally:
        configure_logging("info")
    text = stream.getvalue()
    assert "client failed" in text and "[REDACTED]" in text
    assert token not in text and token[len("astra_pat_"):] not in text


async def test_original_route_names_answer_with_the_same_checks(portal: Portal) -> None:
    seller = await portal.seller("edu@example.com")
    await shop(seller, "loja-edu")
    # PUT /api/instances/:id = PATCH: CSRF with the cookie, 422 on bad input, 404 for others'.
    status, body = await seller.put("/api/instances/loja-edu", json={"name": "Nova"})
    assert status == 200 and body["name"] == "Nova"
    assert (await seller.put("/api/instances/loja-edu", csrf=False, json={"name": "X"}))[0] == 403
    assert (await seller.put("/api/instances/loja-edu", json={"bogus": 1}))[0] == 422
    other = await portal.seller("fia@example.com")
    assert (await other.put("/api/instances/loja-edu", json={"name": "X"}))[0] == 404
    status, product = await seller.post("/api/instances/loja-edu/products", json=TWO_VARIANTS)
    status, body = await seller.put(f"/api/instances/loja-edu/products/{product['id']}",
                                    json={"description": "Atualizado"})
    assert status == 200 and body["description"] == "Atualizado"
    assert (await seller.put(f"/api/instances/loja-edu/products/{product['id']}",
                             json={"variants": "no"}))[0] == 422
    # POST /webhooks/mercadopago: the webhook handler (a forged one is 401, not a CSRF 403).
    client = await portal.client()
    async with client.post("/webhooks/mercadopago?data.id=123&type=payment",
                           json={"type": "payment", "data": {"id": "123"}},
                           headers={"x-signature": "ts=1,v1=00", "x-request-id": "r"}) as r:
        assert r.status in (200, 401)
        assert r.status == 401 or portal.container.settings().mercadopago_webhook_secret == ""
    doc = (await seller.get("/api/openapi.json"))[1]
    assert {"get", "put", "patch", "delete"} <= set(doc["paths"]["/api/instances/{id}"])
    assert "put" in doc["paths"]["/api/instances/{id}/products/{productId}"]
    assert "post" in doc["paths"]["/webhooks/mercadopago"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert set(doc["webhooks"]) == {"order.paid", "order.delivered", "order.refunded",
                                    "stock.low"}
    assert "X-Astra-Signature" in json.dumps(doc["webhooks"]["order.paid"])
    assert doc["paths"]["/api/me/tokens"]["post"]["security"] == [{"session": [], "csrf": []}]


async def test_webhook_api_shows_the_secret_once_and_the_log(portal: Portal) -> None:
    seller = await portal.seller("gil@example.com")
    await shop(seller, "loja-gil")
    url = "http://127.0.0.1:9/hook"
    status, body = await seller.put("/api/instances/loja-gil/webhook",
                                    json={"url": url, "password": PASSWORD})
    assert status == 200 and body["secret"].startswith("whsec_") and body["webhook"]["url"] == url
    secret = body["secret"]
    status, body = await seller.put("/api/instances/loja-gil/webhook",
                                    json={"url": url, "events": ["order.paid"],
                                          "password": PASSWORD})
    assert status == 200 and "secret" not in body and body["webhook"]["events"] == ["order.paid"]
    status, body = await seller.get("/api/instances/loja-gil/webhook")
    assert status == 200 and secret not in json.dumps(body)
    assert (await seller.put("/api/instances/loja-gil/webhook",
                             json={"url": "ftp://x", "password": PASSWORD}))[0] == 422
    assert (await seller.put("/api/instances/loja-gil/webhook",
                             json={"url": url, "events": ["order.stolen"],
                                   "password": PASSWORD}))[0] == 422
    status, body = await seller.post("/api/instances/loja-gil/webhook/rotate-secret",
                                     json={"password": PASSWORD})
    assert status == 200 and body["secret"] != secret
    status, body = await seller.get("/api/instances/loja-gil/webhook/deliveries")
    assert status == 200 and body == {"deliveries": []}
    assert (await seller.post("/api/instances/loja-gil/webhook/deliveries/evt_nope/redeliver"
                              ))[0] == 404
    status, _ = await seller.delete("/api/instances/loja-gil/webhook",
                                    json={"password": PASSWORD})
    assert status == 200
    assert (await seller.get("/api/instances/loja-gil/webhook"))[1] == {"webhook": None}
    await asyncio.sleep(0)
