"""Sentinel secrets through a whole purchase: no log line, page or API answer shows one, and
the sold key appears only in its buyer's DM."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from astra.entrypoints.admin.app import create_admin_app
from astra.logs import configure_logging
from tests.e2e.bot_world import BOT_TOKEN, INSTANCE, running_shop
from tests.e2e.test_bot_purchase import _open_cart, _setup_catalog

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SESSION = "SENTINEL-session-secret-7c1f4e"
ADMIN = "SENTINEL-admin-token-19a2b3"
MASTER = "SENTINEL-master-key-55d0aa"
STOCK_KEY = "SENTINEL-STOCK-KEY-0001"


async def test_no_secret_in_logs_pages_or_answers(data_dir: Path) -> None:
    stream = io.StringIO()
    configure_logging("debug", fmt="json", stream=stream)
    try:
        async with running_shop(data_dir, session_secret=SESSION, admin_token=ADMIN,
                                master_key=MASTER) as shop:
            access_token = shop.mp.access_token
            product_id, variant_id = await _setup_catalog(shop, [STOCK_KEY, "OTHER-KEY-2"])
            buyer = shop.buyer("sentinela")
            opened = await _open_cart(shop, buyer, product_id, variant_id)
            pay = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:pay")
            await pay.wait_message()
            order = (await asyncio.to_thread(shop.sales.list_orders, INSTANCE))[0]
            await asyncio.to_thread(shop.mp.approve, order.charge_id)
            dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=15)
            assert STOCK_KEY in dm["content"]

            answers: list[str] = []
            async with TestClient(TestServer(create_admin_app(shop.container))) as admin:
                auth = {"Authorization": f"Bearer {ADMIN}"}
                for path in ("/api/status", "/api/orders", "/api/carts", "/api/deliveries",
                             "/api/customers", "/api/products", "/api/coupons", "/api/stock",
                             "/api/accounts", "/api/runtime", "/api/logs/recent",
                             "/api/diagnostics", "/api/plugins", "/api/admin/withdrawals",
                             "/metrics", "/api/business/overview", "/api/openapi.json"):
                    resp = await admin.get(path, headers=auth)
                    assert resp.status == 200, path
                    answers.append(await resp.text())
                login = await admin.post("/admin/login", json={"user": "x", "password": "y"})
                answers.append(await login.text())
                for page in ("/admin", "/admin/operacao/pedidos", "/admin/runtime",
                             "/admin/auditoria", "/admin/diagnostico", "/admin/contas"):
                    resp = await admin.get(page, headers=auth)
                    answers.append(await resp.text())
            # every message the bot sent anywhere but the buyer's DM
            public = [m for ch in shop.discord.channels_of(shop.guild.id)
                      for m in shop.discord.messages(ch["id"])]
    finally:
        logging.getLogger().handlers.clear()
    logs = stream.getvalue()
    assert "webhook.handled" in logs and "bot.ready" in logs  # the capture saw the run
    for secret in (BOT_TOKEN, access_token, SESSION, ADMIN, MASTER, STOCK_KEY):
        assert secret not in logs, f"a log line shows {secret[:12]}..."
        for answer in answers:
            assert secret not in answer, f"an answer shows {secret[:12]}..."
    assert not any(STOCK_KEY in str(m) for m in public)
    for path in data_dir.rglob("*"):
        if path.is_file() and path.name != ".secrets.json":
            assert STOCK_KEY.encode() not in path.read_bytes(), path
            assert BOT_TOKEN.encode() not in path.read_bytes(), path
