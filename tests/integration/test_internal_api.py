"""The internal API a runtime uses: only its own instance, only its own pending orders."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from astra.adapters.payments.platform import request_to_doc
from astra.domain.timestamps import parse_iso
from astra.entrypoints.portal.app import create_portal_app
from astra.ports.payments import ChargeRequest
from tests.integration.sales_world import INSTANCE, make_shop

BUYER = "111111111111111111"


def _request(order, *, instance: str = INSTANCE, amount: int | None = None) -> dict:
    return request_to_doc(
        ChargeRequest(
            amount_cents=order.total_cents if amount is None else amount,
            description="x",
            payer_email="b@example.com",
            expires_at=parse_iso(order.expires_at),
            idempotency_key=f"order-{order.id}",
            external_reference=order.id,
            created_at=parse_iso(order.created_at),
            metadata={"kind": "order", "instance_id": instance, "order_id": order.id},
        )
    )


async def test_internal_api_serves_only_the_key_holders_own_orders(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=2)
    shop.instances.create("other-shop", owner_id="usr_x", name="Outra", actor="test")
    shop.instances.rotate_instance_key(INSTANCE, actor="test")
    other_key = shop.instances.rotate_instance_key("other-shop", actor="test")
    credential = shop.instances.runtime_credential(INSTANCE)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    base = f"/internal/instances/{INSTANCE}"
    auth = {"Authorization": f"Bearer {credential}"}
    async with TestClient(TestServer(create_portal_app(shop.container))) as client:
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": f"Bearer {other_key}"},
        ):
            resp = await client.post(f"{base}/charges", json=_request(order), headers=headers)
            assert resp.status == 401
        resp = await client.post(f"{base}/charges", json=_request(order, amount=1), headers=auth)
        assert resp.status == 409
        resp = await client.post(
            f"{base}/charges", json=_request(order, instance="other-shop"), headers=auth
        )
        assert resp.status == 403
        resp = await client.post(f"{base}/charges", data=b"{garbage", headers=auth)
        assert resp.status == 400
        resp = await client.post(f"{base}/charges", json=_request(order), headers=auth)
        assert resp.status == 200
        charge = await resp.json()
        assert charge["amount_cents"] == order.total_cents and charge["qr_code"]
        resp = await client.get(f"{base}/charges/{charge['id']}", headers=auth)
        assert resp.status == 200
        other = {"Authorization": f"Bearer {other_key}"}
        resp = await client.get(
            f"/internal/instances/other-shop/charges/{charge['id']}", headers=other
        )
        assert resp.status == 404  # not its charge
        resp = await client.post(f"{base}/charges/{charge['id']}/cancel", headers=auth)
        assert (await resp.json())["status"] == "cancelled"
        resp = await client.get("/internal/instances/..%2Fetc/charges/1", headers=auth)
        assert resp.status in (401, 404)
