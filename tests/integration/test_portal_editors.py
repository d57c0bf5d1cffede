"""The portal's editors through its JSON API (real server, real JSON store, the fake Discord):
the stock editor (keys listed masked, only available ones removed, never one a cart reserves),
the product preview, the settings pickers' channels and roles, the account's name and e-mail.
Each new route is also attacked by another seller and sent without its CSRF token."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sales_world import INSTANCE, Shop, make_shop
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

BASE = "/api/instances/loja-ana"
KEYS = ["AAAA-1111-BBBB-2222", "CCCC-3333-DDDD-4444", "EEEE-5555-FFFF-6666", "GGGG-7777-HHHH-8888"]


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    async with running_portal(tmp_path) as world:
        yield world


async def _stocked(portal: Portal) -> tuple[Seller, str, str]:
    seller = await portal.seller("ana@example.com")
    await shop(seller, "loja-ana")
    status, product = await seller.post(f"{BASE}/products", json=TWO_VARIANTS)
    assert status == 201
    pid, vid = product["id"], product["variants"][0]["id"]
    status, report = await seller.post(
        f"{BASE}/stock/{pid}", json={"variant_id": vid, "keys": KEYS}
    )
    assert status == 200 and report["added"] == 4
    return seller, pid, vid


async def test_stock_editor_lists_masked_keys_and_removes_only_available_ones(
    portal: Portal,
) -> None:
    seller, pid, vid = await _stocked(portal)
    c = portal.container
    # One key reserved by a buyer's cart, one sold.
    c.sales().add_item("loja-ana", "111111111111111111", pid, vid, 1)
    c.sales().add_item("loja-ana", "222222222222222222", pid, vid, 1)
    order = c.sales().checkout("loja-ana", "222222222222222222")
    c.settlement().confirm_payment(
        "loja-ana", order.id, amount_cents=order.total_cents, payment_id="pay-1"
    )

    status, listing = await seller.get(f"{BASE}/stock/{pid}/keys?variant_id={vid}")
    assert status == 200, listing
    states = [k["state"] for k in listing["keys"]]
    assert states == ["available", "available", "reserved", "sold"]
    assert listing["counts"] == {"available": 2, "reserved": 1, "sold": 1}
    for key in listing["keys"]:
        assert "••••" in key["masked"] and key["masked"] not in KEYS
        assert key["removable"] is (key["state"] == "available")
    raw = b"".join(seller.bodies)
    assert not any(k.encode() in raw for k in KEYS)  # no key in clear in any answer

    by_state = {k["state"]: k["id"] for k in listing["keys"]}
    every = [k["id"] for k in listing["keys"]]
    status, outcome = await seller.post(
        f"{BASE}/stock/{pid}/remove",
        json={"variant_id": vid, "key_ids": [*every, "key_nope"]},
    )
    assert status == 200, outcome
    assert len(outcome["removed"]) == 2
    assert {k["state"] for k in outcome["kept"]} == {"reserved", "sold"}
    assert by_state["reserved"] in {k["id"] for k in outcome["kept"]}
    assert outcome["not_found"] == ["key_nope"]
    status, listing = await seller.get(f"{BASE}/stock/{pid}/keys?variant_id={vid}")
    assert [k["state"] for k in listing["keys"]] == ["reserved", "sold"]

    with c.store().instance("loja-ana", write=False) as uow:
        audit = [a for a in uow.audit.all() if a["action"] == "stock.removed"]
    assert len(audit) == 1 and audit[0]["actor"] == f"user:{seller.user_id}"
    assert audit[0]["details"]["removed"] == 2 and audit[0]["details"]["kept"] == 2

    # Bad input: a 4xx with the field, never a 500.
    for body in ({"variant_id": vid, "key_ids": []}, {"variant_id": vid},
                 {"variant_id": vid, "key_ids": "all"}, {"variant_id": vid, "key_ids": [1]}):
        status, answer = await seller.post(f"{BASE}/stock/{pid}/remove", json=body)
        assert status == 422, (body, answer)
    status, every = await seller.get(f"{BASE}/stock/{pid}/keys")  # every variant's
    assert status == 200 and [k["variant_id"] for k in every["keys"]] == [vid, vid]
    status, _ = await seller.get(f"{BASE}/stock/{pid}/keys?variant_id=")
    assert status == 422
    status, _ = await seller.get(f"{BASE}/stock/{pid}/keys?variant_id=var_nope")
    assert status == 404


def _race_once(shop_: Shop) -> dict[str, Any]:
    """Six buyers reserve two keys each while the seller removes all twelve, one by one."""
    catalog, sales = shop_.catalog, shop_.sales
    listing = catalog.list_keys(INSTANCE, shop_.product_id, shop_.variant_id)
    ids = [k["id"] for k in listing["keys"]]
    results: dict[str, Any] = {}
    start = threading.Barrier(7)

    def buy(n: int) -> None:
        start.wait()
        try:
            sales.add_item(INSTANCE, f"90000000000000000{n}", shop_.product_id,
                           shop_.variant_id, 2)
        except Exception as exc:  # out of stock once the seller removed the rest
            results[f"buyer{n}"] = exc

    def remove() -> None:
        # Key by key, as a seller ticking boxes and saving often would, so the buyers' carts
        # and the removals interleave.
        start.wait()
        removed: list[str] = []
        kept: list[dict[str, str]] = []
        for key_id in ids:
            outcome = catalog.remove_keys(
                INSTANCE, shop_.product_id, shop_.variant_id, [key_id], actor="test")
            removed += outcome["removed"]
            kept += outcome["kept"]
        results["removal"] = {"removed": removed, "kept": kept}

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(6)]
    threads.append(threading.Thread(target=remove))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results["removal"]


def test_removing_keys_while_carts_reserve_them_never_removes_a_reserved_key(
    tmp_path: Path,
) -> None:
    """30 rounds: every key ends either removed (and in no cart) or reserved (and still in
    stock), whoever wins each key."""
    mixed = 0
    for round_ in range(30):
        shop_ = make_shop(tmp_path / f"r{round_}", keys=12)
        removal = _race_once(shop_)
        with shop_.container.store().instance(INSTANCE, write=False) as uow:
            left = {d["id"]: d for d in uow.stock.all()}
            in_carts = {
                key for cart in uow.carts.all() for line in cart.get("lines", [])
                for key in line.get("key_ids", [])
            }
        removed = set(removal["removed"])
        assert removed.isdisjoint(left)  # really gone
        assert removed.isdisjoint(in_carts)
        assert set(left) == {k["id"] for k in removal["kept"]} == in_carts
        assert all(d["state"] == "reserved" for d in left.values())
        assert len(removed) + len(left) == 12
        mixed += bool(removed) and bool(left)
        shop_.container.store().close()
    print(f"rounds where both carts and the removal got keys: {mixed}/30")


async def test_product_preview_is_the_post_discord_would_get(portal: Portal) -> None:
    seller, pid, vid = await _stocked(portal)
    draft = {
        "name": "Chave Steam Deluxe",
        "description": "Agora com DLC",
        "banner_url": "https://cdn.example.com/banner.gif",
        "variants": [{"id": vid, "name": "Bronze", "price_cents": 1290}],
    }
    status, preview = await seller.post(
        f"{BASE}/products/preview", json={**draft, "product_id": pid}
    )
    assert status == 200, preview
    (embed,) = preview["message"]["embeds"]
    assert embed["title"] == "Chave Steam Deluxe"
    # The banner goes just before the post, as a message of its own.
    assert preview["banner"]["embeds"][0]["image"]["url"] == "https://cdn.example.com/banner.gif"
    assert embed["fields"][0]["value"].startswith("R$ 12,90")
    assert "4" in embed["fields"][0]["value"]  # the stock of the saved variant
    select = preview["message"]["components"][0]["components"][0]
    assert select["options"][0]["value"] == vid
    # Nothing was saved.
    status, product = await seller.get(f"{BASE}/products/{pid}")
    assert product["name"] == "Chave Steam" and len(product["variants"]) == 2

    status, fresh = await seller.post(f"{BASE}/products/preview", json={
        "name": "Novo", "variants": [{"name": "Único", "price_cents": 500}]})
    assert status == 200 and fresh["message"]["embeds"][0]["title"] == "Novo"
    for bad in ({"name": "", "variants": [{"name": "x", "price_cents": 1}]},
                {"name": "x", "variants": []}, {"name": "x", "image_url": "javascript:1",
                                                "variants": [{"name": "a", "price_cents": 1}]}):
        status, body = await seller.post(f"{BASE}/products/preview", json=bad)
        assert status == 422, (bad, body)


async def test_channels_come_with_the_roles_for_the_settings_pickers(portal: Portal) -> None:
    seller = await portal.seller("ana@example.com")
    await shop(seller, "loja-ana", bot_token=TOKEN)
    vip = portal.fake.add_role(portal.guild, "Cliente VIP")
    category = portal.fake.add_category(portal.guild, "Carrinhos")
    status, body = await seller.get(f"{BASE}/discord/channels")
    assert status == 200, body
    names = {r["name"]: r["id"] for r in body["roles"]}
    assert names.get("Cliente VIP") == str(vip.id)
    assert portal.guild.id not in {r["id"] for r in body["roles"]}  # not @everyone
    assert str(category.id) in {c["id"] for c in body["channels"] if c["type"] == 4}

    settings = {"cart_category_id": str(category.id), "buyer_role_id": str(vip.id),
                "staff_channel_id": portal.general_channel(),
                "sales_channel_id": portal.general_channel()}
    status, inst = await seller.patch(BASE, json={"settings": settings})
    assert status == 200, inst
    status, inst = await seller.get(BASE)
    assert {k: inst["settings"][k] for k in settings} == settings


async def test_name_and_email_change_with_the_password(portal: Portal) -> None:
    seller = await portal.seller("ana@example.com")
    await portal.seller("bia@example.com", trial=False)
    status, body = await seller.patch("/api/me", json={"name": "Ana Paula",
                                                        "current_password": "errada123"})
    assert status == 422 and body["error"] == "wrong_current_password"
    status, body = await seller.patch("/api/me", json={"email": "bia@example.com",
                                                        "current_password": PASSWORD})
    assert status == 422 and body["error"] == "email_taken"
    status, body = await seller.patch("/api/me", json={"email": "ana@example.com"})
    assert status == 422  # the password is required
    status, body = await seller.patch("/api/me", json={
        "name": "Ana Paula", "email": "Ana.Paula@Example.com", "current_password": PASSWORD})
    assert status == 200, body
    assert body["user"]["name"] == "Ana Paula" and body["user"]["email"] == "ana.paula@example.com"
    status, me = await seller.get("/api/me")
    assert me["user"]["email"] == "ana.paula@example.com"
    # The new e-mail logs in; the old one no longer does.
    user = portal.container.accounts().authenticate("ana.paula@example.com", PASSWORD,
                                                    client="test")
    assert user["id"] == seller.user_id
    with portal.container.store().portal(write=False) as uow:
        (entry,) = [a for a in uow.audit.all() if a["action"] == "account.profile_changed"]
    assert entry["details"]["fields"] == ["email", "name"]
    assert "password_hash" not in str(body)


async def test_another_seller_reaches_none_of_the_new_routes(portal: Portal) -> None:
    owner, pid, vid = await _stocked(portal)
    mallory = await portal.seller("mallory@example.com")
    await shop(mallory, "loja-mallory")
    status, listing = await owner.get(f"{BASE}/stock/{pid}/keys?variant_id={vid}")
    key_ids = [k["id"] for k in listing["keys"]]
    attempts = [
        ("GET", f"{BASE}/stock/{pid}/keys?variant_id={vid}", None),
        ("POST", f"{BASE}/stock/{pid}/remove", {"variant_id": vid, "key_ids": key_ids}),
        ("POST", f"{BASE}/products/preview", {"product_id": pid, "name": "x"}),
        ("GET", f"{BASE}/discord/channels", None),
        ("PATCH", BASE, {"settings": {"buyer_role_id": "123456789012345678"}}),
        # Her own instance's routes, pointed at the owner's product and keys.
        ("POST", f"/api/instances/loja-mallory/stock/{pid}/remove",
         {"variant_id": vid, "key_ids": key_ids}),
        ("GET", f"/api/instances/loja-mallory/stock/{pid}/keys?variant_id={vid}", None),
        ("POST", "/api/instances/loja-mallory/products/preview", {"product_id": pid}),
    ]
    for method, path, body in attempts:
        status, answer = await mallory.call(method, path, json=body)
        assert status == 404, (method, path, status, answer)
    status, listing = await owner.get(f"{BASE}/stock/{pid}/keys?variant_id={vid}")
    assert [k["id"] for k in listing["keys"]] == key_ids
    status, inst = await owner.get(BASE)
    assert inst["settings"]["buyer_role_id"] is None


async def test_every_new_write_needs_the_csrf_token(portal: Portal) -> None:
    seller, pid, vid = await _stocked(portal)
    status, listing = await seller.get(f"{BASE}/stock/{pid}/keys?variant_id={vid}")
    key_ids = [k["id"] for k in listing["keys"]]
    for method, path, body in [
        ("POST", f"{BASE}/stock/{pid}/remove", {"variant_id": vid, "key_ids": key_ids}),
        ("POST", f"{BASE}/products/preview", {"product_id": pid}),
        ("PATCH", "/api/me", {"name": "Outro", "current_password": PASSWORD}),
    ]:
        status, answer = await seller.call(method, path, json=body, csrf=False)
        assert status == 403 and answer["error"] == "csrf_failed", (path, answer)
    status, listing = await seller.get(f"{BASE}/stock/{pid}/keys?variant_id={vid}")
    assert len(listing["keys"]) == 4
    status, me = await seller.get("/api/me")
    assert me["user"]["name"] == "ana"
