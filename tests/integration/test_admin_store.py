"""The admin panel runs a seller's store (support), over a real server, a real store and the fake
Discord: products and variants, stock, coupons, settings, posts and reposts — each write audited
in the instance's log with the operator's name. Also the platform's recent log lines (a bot token
never shows), the feed of work waiting on someone, and which posts are missing or stale."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from astra.adapters.chat.discord.rest import DiscordRest
from astra.adapters.chat.discord.token import fetch_bot_profile
from astra.entrypoints.admin.app import create_admin_app
from astra.logs import configure_logging
from tests.fakes.discord import FakeDiscord
from tests.integration.sales_world import INSTANCE, OWNER, Shop, make_shop

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")

PASSWORD = "correct horse battery"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
MONITOR = "monitor-token-for-tests-0123456789"
BOT_TOKEN = "MTE5ODc2NTQzMjEwOTg3NjU0MzI.GzYxWv.abcdefghijklmnopqrstuvwxyz0123456789AB"
BASE = f"/api/instances/{INSTANCE}"


class Operator:
    """An operator logged in to the panel as `ops` (session cookie and CSRF token)."""

    def __init__(self, client: TestClient, csrf: str) -> None:
        self.client = client
        self.csrf = csrf

    async def call(self, method: str, path: str, body: Any = None,
                   csrf: bool = True) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf and method != "GET" else {}
        async with self.client.request(method, path, json=body, headers=headers) as resp:
            data = await resp.json(content_type=None) if resp.content_length != 0 else None
            return resp.status, data


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Shop, Operator, FakeDiscord, str]]:
    fake = FakeDiscord(bot_token=BOT_TOKEN)
    await fake.start()
    guild = fake.add_guild("Loja do Teste")
    channel = fake.add_channel(guild.id, "produtos")
    shop = make_shop(tmp_path / "data", keys=3, admin_token=ADMIN_TOKEN,
                     admin_monitor_token=MONITOR, admin_user="ops", admin_password=PASSWORD,
                     discord_api_base=fake.api_url)
    profile = await fetch_bot_profile(BOT_TOKEN, fake.api_url)
    shop.container.instances().set_bot_token(INSTANCE, BOT_TOKEN, profile, actor="test")
    async with TestClient(TestServer(create_admin_app(shop.container))) as client:
        resp = await client.post("/admin/login", json={"user": "ops", "password": PASSWORD})
        operator = Operator(client, (await resp.json())["csrf_token"])
        yield shop, operator, fake, str(channel.id)
    await fake.stop()
    shop.container.store().close()


def audit(shop: Shop, action: str) -> list[dict[str, Any]]:
    with shop.store.instance(INSTANCE, write=False) as uow:
        return [a for a in uow.audit.all() if a["action"] == action]


async def test_an_operator_runs_the_catalog_stock_and_coupons(world) -> None:
    shop, ops, _, _ = world
    status, product = await ops.call("POST", f"{BASE}/products", {
        "name": "Gift Card", "variants": [{"name": "R$ 50", "price_cents": 5000}]})
    assert status == 201, product
    created = audit(shop, "product.created")[-1]
    assert created["actor"] == "admin:ops" and created["target"] == f"product:{product['id']}"

    vid = product["variants"][0]["id"]
    status, updated = await ops.call("PATCH", f"{BASE}/products/{product['id']}", {
        "name": "Gift Card Steam",
        "variants": [{"id": vid, "name": "R$ 50", "price_cents": 4990},
                     {"name": "R$ 100", "price_cents": 9990}]})
    assert status == 200 and updated["name"] == "Gift Card Steam"
    assert updated["variants"][0]["id"] == vid and len(updated["variants"]) == 2
    assert audit(shop, "product.updated")[-1]["actor"] == "admin:ops"

    status, off = await ops.call("POST", f"{BASE}/products/{product['id']}/deactivate")
    assert status == 200 and off["active"] is False
    status, on = await ops.call("POST", f"{BASE}/products/{product['id']}/activate")
    assert status == 200 and on["active"] is True

    status, report = await ops.call("POST", f"{BASE}/stock/{product['id']}",
                                    {"variant_id": vid, "keys": "GC-1\nGC-2\nGC-2\nGC-3"})
    assert status == 200 and report["added"] == 3 and report["duplicate_in_file"] == 1
    (imported,) = audit(shop, "stock.imported")[-1:]
    assert imported["actor"] == "admin:ops" and imported["details"]["added"] == 3

    shop.sales.add_item(INSTANCE, "444444444444444444", product["id"], vid, 1)  # reserves one
    status, listing = await ops.call("GET", f"{BASE}/stock/{product['id']}/keys?variant_id={vid}")
    assert status == 200 and listing["counts"] == {"available": 2, "reserved": 1, "sold": 0}
    assert not any(k in str(listing) for k in ("GC-1", "GC-2", "GC-3"))
    ids = [k["id"] for k in listing["keys"]]
    status, removed = await ops.call("POST", f"{BASE}/stock/{product['id']}/remove",
                                     {"variant_id": vid, "key_ids": ids})
    assert status == 200 and len(removed["removed"]) == 2
    assert [k["state"] for k in removed["kept"]] == ["reserved"]
    (entry,) = audit(shop, "stock.removed")
    assert entry["actor"] == "admin:ops" and entry["details"]["removed"] == 2

    status, coupon = await ops.call("POST", f"{BASE}/coupons",
                                    {"code": "suporte10", "kind": "percent", "value": 10})
    assert status == 201 and coupon["code"] == "SUPORTE10"
    status, coupon = await ops.call("POST", f"{BASE}/coupons/SUPORTE10/disable")
    assert status == 200 and coupon["active"] is False
    status, coupon = await ops.call("POST", f"{BASE}/coupons/suporte10/enable")
    assert status == 200 and coupon["active"] is True
    status, gone = await ops.call("DELETE", f"{BASE}/coupons/SUPORTE10")
    assert status == 200 and gone["deleted"] is True
    assert [a["actor"] for a in audit(shop, "coupon.created") + audit(shop, "coupon.disabled")
            + audit(shop, "coupon.enabled") + audit(shop, "coupon.deleted")] == ["admin:ops"] * 4
    assert shop.coupons.list(INSTANCE) == []

    # A used coupon cannot be deleted (its orders name it): disable it instead.
    shop.coupons.create(INSTANCE, {"code": "USADO", "kind": "percent", "value": 5},
                        actor="test")
    shop.sales.add_item(INSTANCE, "666666666666666666", shop.product_id, shop.variant_id, 1)
    shop.sales.apply_coupon(INSTANCE, "666666666666666666", "USADO")
    shop.sales.checkout(INSTANCE, "666666666666666666")
    status, refused = await ops.call("DELETE", f"{BASE}/coupons/USADO")
    assert status == 422 and refused["error"] == "coupon_used", refused

    status, settings = await ops.call("PATCH", f"{BASE}/settings", {"settings": {
        "cart_ttl_seconds": 1200, "buyer_role_id": "123456789012345678"}})
    assert status == 200 and settings["cart_ttl_seconds"] == 1200
    (changed,) = audit(shop, "instance.settings_changed")[-1:]
    assert changed["actor"] == "admin:ops"
    assert changed["details"]["fields"] == ["buyer_role_id", "cart_ttl_seconds"]
    status, settings = await ops.call("GET", f"{BASE}/settings")
    assert settings["buyer_role_id"] == "123456789012345678"


async def test_bad_input_unknown_instances_monitor_and_csrf(world) -> None:
    shop, ops, _, _ = world
    for method, path, body in [
        ("POST", f"{BASE}/products", {"name": "x"}),
        ("POST", f"{BASE}/products", {"name": "x", "variants": [], "evil": 1}),
        ("PATCH", f"{BASE}/products/{shop.product_id}", {"variants": "all"}),
        ("POST", f"{BASE}/stock/{shop.product_id}", {"variant_id": shop.variant_id}),
        ("POST", f"{BASE}/stock/{shop.product_id}/remove", {"variant_id": "v", "key_ids": []}),
        ("POST", f"{BASE}/coupons", {"code": "X", "value": "dez"}),
        ("PATCH", f"{BASE}/settings", {"settings": {"cart_ttl_seconds": 5}}),
        ("PATCH", f"{BASE}/settings", {"settings": {"owner_id": "usr_me"}}),
        ("POST", f"{BASE}/products/{shop.product_id}/post", {"channel_id": "general"}),
    ]:
        status, answer = await ops.call(method, path, body)
        assert status in (400, 422), (method, path, status, answer)
    for path in ("/api/instances/nope-nope/settings", "/api/instances/../x/settings",
                 f"{BASE}/products/prod_nope/deactivate"):
        status, _ = await ops.call("POST" if "deactivate" in path else "GET", path)
        assert status == 404, path
    assert "nope-nope" not in shop.store.instance_ids()

    # A monitor reads but never writes; a session without its CSRF token never writes.
    monitor = {"Authorization": f"Bearer {MONITOR}"}
    resp = await ops.client.post(f"{BASE}/products/{shop.product_id}/deactivate",
                                 headers=monitor)
    assert resp.status == 403
    status, _ = await ops.call("POST", f"{BASE}/products/{shop.product_id}/deactivate",
                               csrf=False)
    assert status == 403
    assert shop.catalog.get_product(INSTANCE, shop.product_id).active is True
    assert audit(shop, "product.updated") == []


async def test_posts_reposts_and_the_posts_view(world) -> None:
    shop, ops, fake, channel = world
    pid = shop.product_id
    status, posted = await ops.call("POST", f"{BASE}/products/{pid}/post",
                                    {"channel_id": channel})
    assert status == 200, posted
    assert [m["id"] for m in fake.messages(channel)] == [posted["message_id"]]
    (entry,) = audit(shop, "product.posted")
    assert entry["actor"] == "admin:ops" and entry["details"]["channel_id"] == channel

    status, rows = await ops.call("GET", f"/api/posts?instance={INSTANCE}")
    assert status == 200 and [r["state"] for r in rows] == ["ok"]

    # The product changes after the post: stale. A repost makes it current again.
    shop.clock.set(shop.clock.now() + timedelta(minutes=5))
    shop.catalog.update_product(INSTANCE, pid, {"description": "Nova descrição"}, actor="test")
    status, rows = await ops.call("GET", "/api/posts")
    assert [r["state"] for r in rows] == ["stale"]
    status, reposted = await ops.call("POST", f"{BASE}/products/{pid}/repost")
    assert status == 200, reposted
    (post,) = reposted["posts"]
    assert [m["id"] for m in fake.messages(channel)] == [post["message_id"]]
    assert post["message_id"] != posted["message_id"]  # the old one was deleted
    assert audit(shop, "product.reposted")[0]["actor"] == "admin:ops"
    status, rows = await ops.call("GET", "/api/posts")
    assert [r["state"] for r in rows] == ["ok"]

    # Someone deletes the post in Discord: missing.
    async with DiscordRest(BOT_TOKEN, fake.api_url) as discord:
        await discord.delete_message(channel, post["message_id"])
    status, rows = await ops.call("GET", "/api/posts")
    assert [r["state"] for r in rows] == ["missing"]
    assert rows[0]["product_name"] == "Steam Key"

    # Past the per-request budget, a post is listed but not checked.
    from astra.entrypoints.product_posts import post_states

    (unchecked,) = await post_states(shop.container, INSTANCE, max_checks=0)
    assert (unchecked["state"], unchecked["reason"]) == ("unknown", "not_checked")

    # Discord's refusals are clear answers; a product off sale is not posted.
    status, answer = await ops.call("POST", f"{BASE}/products/{pid}/post",
                                    {"channel_id": "99999999999999999"})
    assert status == 404 and answer["error"] == "discord_not_found"
    await ops.call("POST", f"{BASE}/products/{pid}/deactivate")
    status, answer = await ops.call("POST", f"{BASE}/products/{pid}/post",
                                    {"channel_id": channel})
    assert status == 422


async def test_platform_logs_are_filtered_and_never_show_a_bot_token(world) -> None:
    _, ops, _, _ = world
    configure_logging("info", fmt="json", stream=io.StringIO())
    log = logging.getLogger("astra.test.support")
    log.info("routine line about carts")
    log.warning("discord refused token %s for instance %s", BOT_TOKEN, INSTANCE)
    log.error("payment gateway down", extra={"access_token": "APP_USR-1234567890abcdef-xyz"})
    status, lines = await ops.call("GET", "/api/logs/platform?level=warning")
    assert status == 200
    events = [line["event"] for line in lines]
    assert any("discord refused token" in e for e in events)
    assert "payment gateway down" in events
    assert not any("routine line" in e for e in events)  # below the level
    status, lines = await ops.call("GET", "/api/logs/platform?q=ROUTINE")
    assert [line["event"] for line in lines] == ["routine line about carts"]
    status, everything = await ops.call("GET", "/api/logs/platform?limit=1000")
    raw = str(everything)
    assert BOT_TOKEN not in raw and "APP_USR-1234567890abcdef" not in raw
    assert "[REDACTED]" in raw
    for bad in ("?level=loud", "?limit=0", "?limit=abc", "?limit=100000"):
        status, _ = await ops.call("GET", f"/api/logs/platform{bad}")
        assert status == 422, bad


async def test_the_work_feed(world) -> None:
    shop, ops, _, _ = world
    buyer = "777777777777777777"
    shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, buyer)
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=order.total_cents,
                                    payment_id="pay-work")
    withdrawal = shop.wallet.request_withdrawal(OWNER, 1000, "ana@example.com")
    with shop.store.portal() as uow:
        doc = uow.instances.require(INSTANCE)
        doc.update(status="error", status_reason="crash_loop")
        uow.instances.put(doc)
        uow.commit()
    status, feed = await ops.call("GET", "/api/work")
    assert status == 200
    assert [w["id"] for w in feed["withdrawals"]] == [withdrawal.id]
    assert [o["id"] for o in feed["paid_not_delivered"]] == [order.id]
    assert feed["waiting_stock"] == []
    assert [r["status_reason"] for r in feed["runtime_errors"]] == ["crash_loop"]
    assert feed["total"] == 3
