"""The routes that move money or hand out credentials, attacked through the real portal on a real
server: with a seller's stolen read-write API token, and with the seller's session but not the
password (a browser left logged in). Each refusal is checked against the state it protects: the
wallet's ledger and withdrawals, the instance key, the webhook secret and configuration, the bot
token (which bot delivers the keys by DM), the token list."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from astra.domain.services.outgoing_webhooks import ENDPOINT_ID
from tests.integration.test_api_tokens import Script, new_token
from tests.integration.test_portal_api import (
    PASSWORD,
    TEST_SESSION,
    TOKEN,
    Portal,
    Seller,
    running_portal,
    shop,
)

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")

INSTANCE = "loja-vitima"
BASE = f"/api/instances/{INSTANCE}"
ATTACKER_PIX = "attacker@example.com"
# The attacker's own bot (it would read the keys it delivers by DM) and their receiver.
ATTACKER_BOT = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.Attack.the-attackers-own-bot-token-00000000000"
ATTACKER_HOOK = "https://attacker.example/orders"
# The victim's second shop, with no webhook yet: a first PUT there would answer a new secret.
SPARE = "loja-vitima-2"


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    async with running_portal(tmp_path) as world:
        yield world


@dataclass
class Victim:
    seller: Seller
    token: str  # the seller's read-write API token, in the attacker's hands
    token_id: str
    instance_key: str
    webhook_secret: str


async def victim(portal: Portal, email: str = "vitima@example.com") -> Victim:
    seller = await portal.seller(email)
    await shop(seller, INSTANCE, bot_token=TOKEN)
    await shop(seller, SPARE)
    portal.credit(seller.user_id, 50_000, "sale")
    token, doc = await new_token(seller, "read-write")
    status, body = await seller.post(f"{BASE}/rotate-key", json={"password": PASSWORD})
    assert status == 200, body
    key = body["key"]
    status, body = await seller.put(f"{BASE}/webhook", json={
        "url": "http://127.0.0.1:9/hook", "events": ["order.paid"], "password": PASSWORD})
    assert status == 200, body
    return Victim(seller, token, doc["id"], key, body["secret"])


def sealed_webhook_secret(portal: Portal) -> str:
    with portal.container.store().instance(INSTANCE, write=False) as uow:
        return str(uow.webhook_endpoints.get(ENDPOINT_ID)["secret_sealed"])


async def protected_state(portal: Portal, v: Victim) -> dict[str, Any]:
    """What the attacks must leave untouched (read with the seller's own session)."""
    _, wallet = await v.seller.get("/api/wallet/transactions")
    _, withdrawals = await v.seller.get("/api/wallet/withdrawals")
    _, tokens = await v.seller.get("/api/me/tokens")
    with portal.container.store().portal(write=False) as uow:
        docs = {i: uow.instances.get(i) for i in (INSTANCE, SPARE)}
    key_hash = docs[INSTANCE]["key_hash"]
    webhooks = {i: (await v.seller.get(f"/api/instances/{i}/webhook"))[1] for i in docs}
    return {
        "wallet": wallet,
        "withdrawals": withdrawals,
        # Using a token stamps its last_used_at: the list is compared without that stamp.
        "tokens": sorted((t["id"], t["name"], t["scope"], t["active"]) for t in tokens["tokens"]),
        "instance_key_hash": key_hash,
        "webhook_secret": sealed_webhook_secret(portal),
        # Which bot serves each shop: the sealed token, its fingerprint and Discord's profile.
        "bots": {i: {k: doc.get(k) for k in ("token_encrypted", "token_hash", "bot_profile",
                                             "token_set_at")} for i, doc in docs.items()},
        "webhooks": webhooks,  # URL, events, threshold, active (and none on the spare shop)
    }


def attacks(v: Victim, password: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    extra = {} if password is None else {"password": password}
    return [
        ("POST", "/api/wallet/withdrawals",
         {"amount_cents": 40_000, "pix_key": ATTACKER_PIX, **extra}),
        ("POST", f"{BASE}/rotate-key", extra),
        ("POST", f"{BASE}/webhook/rotate-secret", extra),
        ("POST", "/api/me/tokens", {"name": "backdoor", "scope": "read-write", **extra}),
        ("DELETE", f"/api/me/tokens/{v.token_id}", extra),
    ]


def bindings(password: str | None,
             instance: str = INSTANCE) -> list[tuple[str, str, dict[str, Any]]]:
    """The routes that choose the bot and where the orders go, as an attacker would call them."""
    extra = {} if password is None else {"password": password}
    base = f"/api/instances/{instance}"
    return [
        ("PUT", f"{base}/bot-token", {"token": ATTACKER_BOT, **extra}),
        ("DELETE", f"{base}/bot-token", extra),
        ("PUT", f"{base}/webhook", {"url": ATTACKER_HOOK, "events": ["order.delivered"], **extra}),
        ("DELETE", f"{base}/webhook", extra),
    ]


def token_checks(portal: Portal) -> int:
    """How many bot tokens the portal has shown Discord (a refused one must never get there)."""
    return len(portal.fake.calls_to("GET", "/users/@me"))


def still_valid(portal: Portal, v: Victim) -> None:
    assert portal.container.instances().verify_instance_key(INSTANCE, v.instance_key)


async def test_a_stolen_read_write_token_cannot_move_money_or_rotate_credentials(
    portal: Portal,
) -> None:
    v = await victim(portal)
    script = Script(portal, v.token)
    before = await protected_state(portal, v)
    # The token works for ordinary writes: the refusals below are about what these routes are.
    status, body = await script.call("PATCH", BASE, json={"name": "Loja da Vítima"})
    assert status == 200, body
    checked = token_checks(portal)
    # Even with the right password in the body: a token is not a session.
    for password in (None, "guess", PASSWORD):
        routes = attacks(v, password) + bindings(password) + bindings(password, SPARE)
        for method, path, body in routes:
            status, answer = await script.call(method, path, json=body)
            assert status == 403, (method, path, answer)
            assert answer["error"] == "session_required", (method, path, answer)
            assert answer["message"]
            # No signing secret for the attacker's URL, not even on the shop without a webhook.
            assert "secret" not in answer and "whsec_" not in json.dumps(answer)
    assert await protected_state(portal, v) == before
    assert token_checks(portal) == checked  # the attacker's bot token never reached Discord
    still_valid(portal, v)
    # The refusals counted nothing toward the owner's lockout: the owner still gets in.
    status, body = await v.seller.post("/api/wallet/withdrawals", json={
        "amount_cents": 1_000, "pix_key": "vitima@example.com", "password": PASSWORD})
    assert status == 201, body


async def test_a_session_without_the_password_changes_nothing(portal: Portal) -> None:
    v = await victim(portal)
    before = await protected_state(portal, v)
    # A missing password counts toward nothing (no guess was made): every route, twice.
    for password in (None, ""):
        for method, path, body in attacks(v, password) + bindings(password):
            status, answer = await v.seller.call(method, path, json=body)
            assert status == 403, (method, path, password, answer)
            assert answer["error"] == "password_needed_sensitive", (method, path, answer)
    # A wrong one is refused on each route (one route fewer than the lockout's limit).
    routes = attacks(v, "wrong password 1")
    assert len(routes) == portal.container.accounts().config.max_failures
    for method, path, body in routes[:-1]:
        status, answer = await v.seller.call(method, path, json=body)
        assert status == 403 and answer["error"] == "wrong_password", (method, path, answer)
        assert PASSWORD not in json.dumps(answer) and "wrong password 1" not in json.dumps(answer)
    assert await protected_state(portal, v) == before
    still_valid(portal, v)
    # A password that is not a string is a 422 about the field, never a 500.
    status, answer = await v.seller.post(f"{BASE}/rotate-key", json={"password": 12345678})
    assert status == 422 and "password" in answer["message"], answer


async def test_a_wrong_password_cannot_rebind_the_bot_or_the_webhook(portal: Portal) -> None:
    v = await victim(portal)
    before = await protected_state(portal, v)
    checked = token_checks(portal)
    routes = bindings("wrong password 2")
    # Each is refused as wrong, none locks (fewer than the lockout's limit).
    assert len(routes) < portal.container.accounts().config.max_failures
    for method, path, body in routes:
        status, answer = await v.seller.call(method, path, json=body)
        assert status == 403 and answer["error"] == "wrong_password", (method, path, answer)
        assert "secret" not in answer and "wrong password 2" not in json.dumps(answer)
    assert await protected_state(portal, v) == before
    assert token_checks(portal) == checked
    # Bad input still gets its own clear 4xx, before the password is looked at.
    status, answer = await v.seller.put(f"{BASE}/bot-token", json={"password": PASSWORD})
    assert status == 422 and "token" in answer["message"], answer
    status, answer = await v.seller.put(f"{BASE}/webhook", json={"url": 5, "password": "x"})
    assert status == 422 and "url" in answer["message"], answer


async def test_wrong_passwords_lock_like_failed_logins(portal: Portal) -> None:
    v = await victim(portal)
    before = await protected_state(portal, v)
    config = portal.container.accounts().config
    routes = attacks(v, "not the password")
    answers = []
    for i in range(config.max_failures):
        method, path, body = routes[i % len(routes)]
        answers.append(await v.seller.call(method, path, json=body))
    statuses = [status for status, _ in answers]
    # The failure that reaches the limit locks (as a login's does), and says for how long.
    assert statuses == [403] * (config.max_failures - 1) + [429], answers
    assert answers[-1][1]["error"] == "account_locked"
    assert int(v.seller.last_headers["Retry-After"]) > 0
    # Locked: even the right password is refused now...
    for method, path, body in attacks(v, PASSWORD):
        status, answer = await v.seller.call(method, path, json=body)
        assert status == 429 and answer["error"] == "account_locked", (path, answer)
        assert int(v.seller.last_headers["Retry-After"]) > 0
    assert await protected_state(portal, v) == before
    # ...and it is the login's lockout: logging in from here with the right password is refused.
    async with v.seller.client.post("/auth/local/login", json={
            "email": "vitima@example.com", "password": PASSWORD}) as resp:
        assert resp.status == 423 and (await resp.json())["error"] == "account_locked"
    # The failures and the lock are in the audit log, never the password.
    with portal.container.store().portal(write=False) as uow:
        entries = uow.repo("audit").all()
    actions = [e["action"] for e in entries]
    assert actions.count("account.password_change_failed") == config.max_failures
    assert "account.locked" in actions
    audit = json.dumps(entries)
    assert "not the password" not in audit and PASSWORD not in audit


async def test_session_and_password_can_do_each_of_them(portal: Portal) -> None:
    v = await victim(portal)
    status, w = await v.seller.post("/api/wallet/withdrawals", json={
        "amount_cents": 20_000, "pix_key": "vitima@example.com", "password": PASSWORD})
    assert status == 201 and w["pix_key"] == "vitima@example.com", w
    assert (await v.seller.get("/api/wallet/transactions"))[1]["balance_cents"] == 30_000

    status, body = await v.seller.post(f"{BASE}/rotate-key", json={"password": PASSWORD})
    assert status == 200 and body["key"] != v.instance_key
    assert portal.container.instances().verify_instance_key(INSTANCE, body["key"])
    assert not portal.container.instances().verify_instance_key(INSTANCE, v.instance_key)

    sealed = sealed_webhook_secret(portal)
    status, body = await v.seller.post(f"{BASE}/webhook/rotate-secret",
                                       json={"password": PASSWORD})
    assert status == 200 and body["secret"].startswith("whsec_")
    assert body["secret"] != v.webhook_secret and sealed_webhook_secret(portal) != sealed

    status, made = await v.seller.post("/api/me/tokens", json={
        "name": "deploy", "scope": "read", "password": PASSWORD})
    assert status == 201 and made["key"].startswith("astra_pat_")
    status, body = await v.seller.delete(f"/api/me/tokens/{v.token_id}",
                                         json={"password": PASSWORD})
    assert status == 200 and body["active"] is False
    assert (await Script(portal, v.token).call("GET", "/api/instances"))[0] == 401

    # The bot: cleared, then set again (checked with Discord), with the password.
    status, body = await v.seller.delete(f"{BASE}/bot-token", json={"password": PASSWORD})
    assert status == 200 and body["has_token"] is False, body
    status, body = await v.seller.put(f"{BASE}/bot-token",
                                      json={"token": TOKEN, "password": PASSWORD})
    assert status == 200 and body["has_token"] is True, body
    assert body["bot_profile"]["id"] == portal.fake.bot.id
    # The webhook: moved, made on the shop without one (its secret answered once), removed.
    moved = "http://127.0.0.1:9/moved"
    status, body = await v.seller.put(f"{BASE}/webhook", json={"url": moved,
                                                              "password": PASSWORD})
    assert status == 200 and body["webhook"]["url"] == moved and "secret" not in body, body
    status, body = await v.seller.put(f"/api/instances/{SPARE}/webhook",
                                      json={"url": moved, "password": PASSWORD})
    assert status == 200 and body["secret"].startswith("whsec_"), body
    status, body = await v.seller.delete(f"{BASE}/webhook", json={"password": PASSWORD})
    assert status == 200 and body == {"webhook": None, "deleted": True}, body
    assert (await v.seller.get(f"{BASE}/webhook"))[1] == {"webhook": None}

    # A CSRF token is still needed with the session, password or not.
    status, body = await v.seller.post(f"{BASE}/rotate-key", csrf=False,
                                       json={"password": PASSWORD})
    assert status == 403 and body["error"] == "csrf_failed"
    status, body = await v.seller.delete(f"/api/instances/{SPARE}/webhook", csrf=False,
                                         json={"password": PASSWORD})
    assert status == 403 and body["error"] == "csrf_failed"
    assert (await v.seller.get(f"/api/instances/{SPARE}/webhook"))[1]["webhook"]["url"] == moved


async def test_a_discord_only_account_is_told_to_set_a_password_first(portal: Portal) -> None:
    user = portal.container.accounts().login_with_discord({
        "id": "112233445566778899", "username": "dora", "email": "dora@example.com",
        "verified": True})
    client = await portal.client()
    async with client.get(TEST_SESSION.format(user_id=user["id"])) as resp:
        csrf = (await resp.json())["csrf_token"]
    seller = Seller(client, user["id"], csrf)
    portal.credit(user["id"], 5_000, "dora")
    for method, path, body in [
        ("POST", "/api/wallet/withdrawals",
         {"amount_cents": 2_000, "pix_key": "dora@example.com", "password": "anything"}),
        ("POST", "/api/me/tokens", {"name": "x", "scope": "read", "password": "anything"}),
    ]:
        status, answer = await seller.call(method, path, json=body)
        assert status == 403 and answer["error"] == "password_first_sensitive", answer
        assert "senha" in answer["message"]
    assert (await seller.get("/api/wallet/withdrawals"))[1]["withdrawals"] == []
    assert (await seller.get("/api/me/tokens"))[1]["tokens"] == []
    # In English with the language switch.
    status, answer = await seller.call("POST", "/api/me/tokens", cookies={"lang": "en"},
                                       json={"name": "x", "scope": "read", "password": "x"})
    assert status == 403 and "set one" in answer["message"]


async def test_the_openapi_document_asks_for_the_password_and_no_token(portal: Portal) -> None:
    seller = await portal.seller("doc@example.com")
    doc = (await seller.get("/api/openapi.json"))[1]
    sensitive = [
        ("post", "/api/wallet/withdrawals"),
        ("post", "/api/instances/{id}/rotate-key"),
        ("post", "/api/instances/{id}/webhook/rotate-secret"),
        ("put", "/api/instances/{id}/bot-token"),
        ("delete", "/api/instances/{id}/bot-token"),
        ("put", "/api/instances/{id}/webhook"),
        ("delete", "/api/instances/{id}/webhook"),
        ("post", "/api/me/tokens"),
        ("delete", "/api/me/tokens/{token_id}"),
    ]
    for method, path in sensitive:
        op = doc["paths"][path][method]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema["properties"]["password"]["type"] == "string", path
        assert "password" in schema["required"], path
        assert op["security"] == [{"session": [], "csrf": []}], path
        assert {"403", "429"} <= set(op["responses"]), path
    withdrawal = doc["paths"]["/api/wallet/withdrawals"]["post"]["requestBody"]
    assert {"amount_cents", "pix_key", "password"} <= set(
        withdrawal["content"]["application/json"]["schema"]["required"])
    webhook = doc["paths"]["/api/instances/{id}/webhook"]["put"]["requestBody"]
    assert {"url", "password"} <= set(webhook["content"]["application/json"]["schema"]["required"])
    # Other writes still offer the token.
    assert {"bearer": []} in doc["paths"]["/api/instances/{id}"]["patch"]["security"]
