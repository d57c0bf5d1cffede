"""The bot as an operator runs it (`astra instance run`), and the buyer's error messages."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from astra.container import build_container
from astra.domain.timestamps import iso
from astra.entrypoints.internal.app import create_internal_app
from astra.settings import Settings, ensure_dev_secrets
from tests.e2e.bot_world import BOT_TOKEN, INSTANCE, free_port, running_shop, text_of
from tests.e2e.test_bot_purchase import _open_cart, _setup_catalog
from tests.fakes.discord import FakeDiscord

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]
ROOT = Path(__file__).resolve().parents[2]


async def test_instance_run_as_a_tenant_opens_no_store_and_beats_through_the_api(
    data_dir: Path, tmp_path: Path
) -> None:
    """`astra instance run` as its runtime starts it: no data directory, no store path, its
    token and credential only. It reaches READY, its heartbeat arrives through the internal
    API, it never holds a file of the data directory open, and SIGTERM stops it cleanly."""
    discord = FakeDiscord(bot_token=BOT_TOKEN)
    await discord.start()
    container = build_container(ensure_dev_secrets(Settings(data_dir=data_dir)))
    internal = web.AppRunner(create_internal_app(container))
    await internal.setup()
    port = free_port()
    await web.TCPSite(internal, "127.0.0.1", port).start()
    try:
        instances = container.instances()
        await asyncio.to_thread(
            instances.create, INSTANCE, owner_id="usr_1", name="Loja", actor="test"
        )
        await asyncio.to_thread(
            instances.set_bot_token, INSTANCE, BOT_TOKEN,
            {"id": str(discord.bot.id), "application_id": str(discord.application_id)},
            actor="test",
        )
        credential = await asyncio.to_thread(instances.runtime_credential, INSTANCE)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRA_", "DISCORD_"))}
        env.update(
            {
                "ASTRA_TENANT": "1",
                "ASTRA_INSTANCE_ID": INSTANCE,
                "ASTRA_INSTANCE_KEY": credential,
                "ASTRA_BOT_TOKEN": BOT_TOKEN,
                "ASTRA_PLATFORM_URL": f"http://127.0.0.1:{port}",
                "DISCORD_API_BASE": discord.api_url,
            }
        )
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-m", "astra.entrypoints.cli", "instance", "run", INSTANCE],
            cwd=scratch,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        board = container.heartbeats()
        while time.monotonic() < deadline and proc.poll() is None:
            beat = board(INSTANCE)
            if beat and beat.get("ready_at"):
                break
            await asyncio.sleep(0.05)
        beat = board(INSTANCE)
        assert beat and beat["ready_at"] and beat["pid"] == proc.pid and beat["guilds"] == 0
        assert discord.ready_count == 1
        held = [os.readlink(f) for f in Path(f"/proc/{proc.pid}/fd").iterdir()
                if f.is_symlink()]
        assert not [f for f in held if f.startswith(str(data_dir.resolve()))], held
        assert not any(scratch.iterdir())  # nothing written even in its own scratch
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=20)
        assert proc.returncode == 0, err
        assert time.monotonic() - started < 10
        assert "bot.stopped" in err and "Traceback" not in err
        assert BOT_TOKEN not in err and credential not in err  # secrets are never logged
    finally:
        await internal.cleanup()
        await discord.stop()
        container.store().close()


async def test_buyer_mistakes_get_clear_ephemeral_messages(data_dir: Path) -> None:
    async with running_shop(data_dir) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["K-1", "K-2", "K-3"])
        buyer = shop.buyer("distraido")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        coupon = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:coupon")
        await coupon.response()
        wrong = await shop.discord.submit_modal(
            buyer.id, "astra:modal:coupon", {"code": "NAOEXISTE"}
        )
        await wrong.wait_message()
        assert "NAOEXISTE não existe" in text_of(wrong) and wrong.ephemeral
        quantity = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:quantity")
        await quantity.response()
        too_many = await shop.discord.submit_modal(
            buyer.id, "astra:modal:quantity", {variant_id: "9"}
        )
        await too_many.wait_message()
        assert "no máximo 5" in text_of(too_many)
        quantity = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:quantity")
        await quantity.response()
        junk = await shop.discord.submit_modal(buyer.id, "astra:modal:quantity", {variant_id: "x2"})
        await junk.wait_message()
        assert "Quantidade inválida" in text_of(junk)
        # nothing changed: one key still reserved
        counts = await asyncio.to_thread(shop.catalog.stock_counts, INSTANCE)
        assert counts[variant_id]["reserved"] == 1


async def test_expired_cart_is_closed_with_a_dm(data_dir: Path) -> None:
    async with running_shop(data_dir) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["E-1"])
        buyer = shop.buyer("atrasado")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        # time passes: the cart's reservation ends
        with shop.store.instance(INSTANCE) as uow:
            cart = uow.carts.first(buyer_id=str(buyer.id), state="open")
            cart["expires_at"] = iso(shop.clock.now())
            uow.carts.put(cart)
            uow.commit()
        dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=10)
        assert "expirou" in dm["content"]
        await shop.eventually(
            lambda: all(
                str(c["id"]) != str(opened["channel"])
                for c in shop.discord.channels_of(shop.guild.id)
            ),
            what="the cart channel to close",
        )
        counts = await asyncio.to_thread(shop.catalog.stock_counts, INSTANCE)
        assert counts[variant_id] == {"available": 1, "reserved": 0, "sold": 0}
