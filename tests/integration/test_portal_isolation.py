"""Tenant isolation of the portal, generated from the app's route table.

Every route whose path names something a seller owns (an instance, one of its products or
coupons, a withdrawal) is called by a second seller with the first seller's real ids: each
method answers 404, and every file of the data directory is byte-identical afterwards. A route
added tomorrow is covered without touching this file — and a new kind of path parameter fails
here until it is given a value below. State-changing requests without the CSRF token: 403, and
nothing changes either.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from astra.entrypoints.portal.sessions import CSRF_EXEMPT_PREFIXES, SAFE_METHODS
from tests.integration.test_portal_api import (
    PASSWORD,
    TOKEN,
    TWO_VARIANTS,
    Portal,
    Seller,
    running_portal,
    shop,
)

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    async with running_portal(tmp_path) as world:
        yield world


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
# Not seller routes: the test's own session helper.
_NOT_PORTAL = ("/test/",)
# Authenticated by a runtime credential, not a session: a seller's cookie opens nothing there.
_KEY_AUTHENTICATED = ("/internal/",)
# A body that would be valid for many routes: the refusal must come from ownership, not shape.
_BODY: dict[str, Any] = {
    "name": "Tomada",
    "token": TOKEN,
    "variant_id": "var_x",
    "keys": "STOLEN-1\nSTOLEN-2",
    "code": "HACK10",
    "value": 10,
    "variants": [{"name": "X", "price_cents": 100}],
    "settings": {"language": "en"},
    # The caller's own password: the sensitive routes (reauth) check it first, then ownership.
    "password": PASSWORD,
}
# Sensitive routes read (and check the shape of) the body before ownership, for the password:
# those whose body takes no other field get one they accept, so the refusal is still ownership.
_STRICT_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/api/instances/{id}/bot-token"): {"token": TOKEN, "password": PASSWORD},
    ("PUT", "/api/instances/{id}/webhook"): {"url": "http://127.0.0.1:9/stolen",
                                             "password": PASSWORD},
}


@dataclass
class Victim:
    instance_id: str
    product_id: str
    variant_id: str
    coupon: str
    withdrawal_id: str
    channel_id: str
    token_id: str = ""


def snapshot(data_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data_dir.rglob("*"))
        if p.is_file()
    }


def routes(portal: Portal) -> list[tuple[str, str]]:
    """(method, path template) of every route but HEAD (aiohttp adds one per GET)."""
    found = []
    for route in portal.app.router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        found.append((route.method, route.resource.canonical))
    return found


async def victim_world(portal: Portal) -> tuple[Seller, Seller, Victim]:
    alice = await portal.seller("alice@example.com")
    await shop(alice, "loja-alice", bot_token=TOKEN)
    base = "/api/instances/loja-alice"
    _, product = await alice.post(f"{base}/products", json=TWO_VARIANTS)
    variant = product["variants"][0]["id"]
    assert (
        await alice.post(
            f"{base}/stock/{product['id']}",
            json={"variant_id": variant, "keys": "ALICE-1\nALICE-2"},
        )
    )[0] == 200
    assert (await alice.post(f"{base}/coupons", json={"code": "ALICE10", "value": 10}))[0] == 201
    channel = portal.general_channel()
    status, _ = await alice.post(
        f"{base}/discord/post-product", json={"product_id": product["id"], "channel_id": channel}
    )
    assert status == 200
    portal.credit(alice.user_id, 5000, "alice")
    status, withdrawal = await alice.post(
        "/api/wallet/withdrawals", json={"amount_cents": 1500, "pix_key": "alice@example.com",
                                         "password": PASSWORD}
    )
    assert status == 201

    status, token = await alice.post("/api/me/tokens", json={"name": "ci", "scope": "read",
                                                           "password": PASSWORD})
    assert status == 201

    bob = await portal.seller("bob@example.com")
    await shop(bob, "loja-bob")
    victim = Victim("loja-alice", product["id"], variant, "ALICE10", withdrawal["id"], channel,
                    token["token"]["id"])
    return alice, bob, victim


def fill(path: str, victim: Victim) -> str:
    values = {
        "id": victim.instance_id,
        "instance_id": victim.instance_id,
        "productId": victim.product_id,
        "code": victim.coupon,
        "withdrawal_id": victim.withdrawal_id,
        "token_id": victim.token_id,
        # A stock import job id: the instance's ownership is checked before the job is looked up.
        "jobId": "sjob_0000000000000001",
        "event_id": "evt_00000000000000000000000000000000",
        "pref_id": "sbx-pref-0000000000000000",
        # Only on the internal API's routes (runtime credential, not a session):
        "buyer_id": "111111111111111111",
        "cart_id": "cart_0000000000000001",
        "order_id": "ord_0000000000000001",
        "product_id": victim.product_id,
        "variant_id": victim.variant_id,
        # Subscriptions (the seller's routes, and the internal API's):
        "subscriptionId": f"sub_{victim.product_id}_111111111111111111",
        "subscription_id": f"sub_{victim.product_id}_111111111111111111",
        "member_id": "111111111111111111",
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(f"{path}: give the isolation test a value for {{{name}}}")
        return values[name]

    return _PARAM.sub(value, path)


async def test_another_seller_gets_404_everywhere_and_nothing_changes(portal: Portal) -> None:
    alice, bob, victim = await victim_world(portal)
    body = {**_BODY, "product_id": victim.product_id, "channel_id": victim.channel_id}
    before = snapshot(portal.data_dir)
    messages_before = len(portal.fake.messages(victim.channel_id))
    covered = []
    for method, template in routes(portal):
        if not _PARAM.search(template) or template.startswith(_NOT_PORTAL):
            continue
        path = fill(template, victim)
        kwargs = {} if method in SAFE_METHODS else {
            "json": _STRICT_BODIES.get((method, template), body)}
        status, answer = await bob.call(method, path, **kwargs)
        if template.startswith(_KEY_AUTHENTICATED):
            assert status in (401, 404), (method, path, status, answer)
        else:
            assert status == 404, (method, path, status, answer)
            assert answer["message"], (method, path)
            if "{id}" in template or "{instance_id}" in template:
                assert answer == {
                    "error": "instance_not_found",
                    "message": "Instância não encontrada.",
                }, (method, path)
            # An instance that does not exist answers the same as someone else's.
            if "{id}" in template:
                ghost = fill(template.replace("{id}", "no-such-shop"), victim)
                ghost_status, ghost_answer = await bob.call(method, ghost, **kwargs)
                assert (ghost_status, ghost_answer) == (status, answer), (method, ghost)
        covered.append((method, template))
    assert snapshot(portal.data_dir) == before
    assert len(portal.fake.messages(victim.channel_id)) == messages_before
    # The generated list really covers the instance routes (a sanity floor, not a list).
    assert len([c for c in covered if "/api/instances/{id}" in c[1]]) >= 25
    assert ("POST", "/api/wallet/withdrawals/{withdrawal_id}/cancel") in covered
    # Alice still sees all of it.
    assert (await alice.get(f"/api/instances/{victim.instance_id}"))[0] == 200
    assert not any(TOKEN.encode() in raw for raw in alice.bodies + bob.bodies)


async def test_writes_without_the_csrf_token_are_refused(portal: Portal) -> None:
    alice, _, victim = await victim_world(portal)
    before = snapshot(portal.data_dir)
    checked = 0
    for method, template in routes(portal):
        if method in SAFE_METHODS or template.startswith(CSRF_EXEMPT_PREFIXES + _NOT_PORTAL):
            continue
        path = fill(template, victim)
        status, answer = await alice.call(method, path, csrf=False, json=_BODY)
        assert status == 403 and answer["error"] == "csrf_failed", (method, path, answer)
        status, answer = await alice.call(
            method, path, csrf=False, headers={"X-CSRF-Token": "forged"}, json=_BODY
        )
        assert status == 403, (method, path, answer)
        checked += 1
    assert checked >= 20
    assert snapshot(portal.data_dir) == before


async def test_seller_routes_need_a_session(portal: Portal) -> None:
    _, _, victim = await victim_world(portal)
    client = await portal.client()
    before = snapshot(portal.data_dir)
    for method, template in routes(portal):
        if not template.startswith(
            ("/api/instances", "/api/plans", "/api/checkout", "/api/wallet")
        ):
            continue
        async with client.request(method, fill(template, victim), json=_BODY) as resp:
            assert resp.status == 401, (method, template)
    assert snapshot(portal.data_dir) == before
