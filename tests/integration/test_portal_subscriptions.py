"""The seller's subscriptions in the portal: the month's report (API and page with its SVG
charts), extend / end (audited), and another seller's subscriptions out of reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_portal_api import Portal, running_portal, shop

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")

BUYER = "111111111111111111"


async def _subscriber(portal: Portal, instance_id: str) -> str:
    container = portal.container
    product = container.catalog().create_product(
        instance_id,
        {"name": "Clube", "delivery_kind": "subscription", "content": "900000000000000001",
         "variants": [{"name": "Mensal", "price_cents": 2990, "period_days": 30}]},
        actor="test",
    )
    container.sales().set_item(instance_id, BUYER, product.id, product.variants[0].id, 1)
    order = container.sales().checkout(instance_id, BUYER)
    container.settlement().confirm_payment(instance_id, order.id, amount_cents=2990,
                                           payment_id="p1")
    [sub] = container.subscriptions().activate(instance_id, order.id)
    return sub.id


async def test_report_page_and_audited_actions(tmp_path: Path) -> None:
    async with running_portal(tmp_path) as portal:
        seller = await portal.seller("ana@example.com")
        await shop(seller, "loja-ana")
        sub_id = await _subscriber(portal, "loja-ana")

        status, report = await seller.get("/api/instances/loja-ana/subscriptions")
        assert status == 200
        assert report["active"] == 1 and report["mrr_cents"] == 2990
        assert report["totals"]["new"] == 1
        assert report["subscribers"][0]["id"] == sub_id
        status, body = await seller.get("/api/instances/loja-ana/subscriptions?month=13-2026")
        assert status == 422, body

        status, sub = await seller.post(
            f"/api/instances/loja-ana/subscriptions/{sub_id}/extend", json={"days": 7})
        assert status == 200 and sub["status"] == "active"
        status, body = await seller.post(
            f"/api/instances/loja-ana/subscriptions/{sub_id}/extend", json={"days": 0})
        assert status == 422
        status, sub = await seller.post(f"/api/instances/loja-ana/subscriptions/{sub_id}/end")
        assert status == 200 and sub["status"] == "ended"
        status, _ = await seller.post(f"/api/instances/loja-ana/subscriptions/{sub_id}/end")
        assert status == 409
        with portal.container.store().instance("loja-ana", write=False) as uow:
            actions = {(a["actor"], a["action"]) for a in uow.audit.all()}
        assert (f"user:{seller.user_id}", "subscription.extended") in actions
        assert (f"user:{seller.user_id}", "subscription.ended_by_staff") in actions

        async with seller.client.get("/dashboard/subscriptions?instance=loja-ana") as resp:
            html = await resp.text()
        assert resp.status == 200
        assert "<svg" in html and 'id="subscribers-table"' in html and BUYER in html

        # Another seller cannot see or touch it: the same 404 as a missing instance.
        other = await portal.seller("bia@example.com")
        await shop(other, "loja-bia")
        status, _ = await other.get("/api/instances/loja-ana/subscriptions")
        assert status == 404
        status, _ = await other.post(
            f"/api/instances/loja-ana/subscriptions/{sub_id}/extend", json={"days": 30})
        assert status == 404
        status, _ = await other.post(
            f"/api/instances/loja-bia/subscriptions/{sub_id}/extend", json={"days": 30})
        assert status == 404
        sub = portal.container.subscriptions().get("loja-ana", sub_id)
        assert sub.status.value == "ended"
