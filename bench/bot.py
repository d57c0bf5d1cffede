"""Bot runtime benchmark (DESIGN.md "Performance" 4), against the local fake Discord.

    python bench/bot.py [--products 50] [--purchases 200]

Runs `astra instance run` as its own process, as a tenant runtime (no store: the platform's
internal API, served by this process with `--products` products), and prints, as its last lines:
    RESULT bot_rss_mb <x> target<=60          resident memory of that process after READY
    RESULT bot_ready_s <x> target<2           from spawning the process to READY
    RESULT click_to_answer_p99_ms <x> target<100
                                              a buyer's click -> its answer, through the API hop
    RESULT approval_to_dm_p99_ms <x>          payment approved -> keys in the buyer's DM
and exits 0. Purchases are made through the services (sandbox gateway) in this process, and
delivered by this process's courier, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

INSTANCE = "bench-bot"
TOKEN = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100)[pct - 1] if len(values) > 1 else values[0]


async def main_async(args: argparse.Namespace) -> None:
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    from aiohttp import web

    from astra.adapters.chat.discord import ui
    from astra.adapters.chat.discord.rest import DiscordRest
    from astra.container import build_container
    from astra.entrypoints.courier import Courier
    from astra.entrypoints.internal.app import create_internal_app
    from astra.settings import Settings, ensure_dev_secrets
    from tests.e2e.bot_world import free_port
    from tests.fakes.discord import FakeDiscord

    discord = FakeDiscord(bot_token=TOKEN)
    await discord.start()
    owner = discord.add_user("dono")
    guild = discord.add_guild("Bench", owner=owner.id)
    post_channel = discord.add_channel(guild.id, "produtos")
    buyers = []
    for n in range(args.purchases):
        user = discord.add_user(f"comprador{n}")
        discord.add_member(guild.id, user.id)
        buyers.append(str(user.id))

    tmp = tempfile.TemporaryDirectory(prefix="astra-bot-bench-")
    data = Path(tmp.name) / "data"
    port = free_port()
    c = build_container(ensure_dev_secrets(Settings(data_dir=data,
                                                    discord_api_base=discord.api_url)))
    c.instances().create(INSTANCE, owner_id="usr_bench", name="Bench", actor="bench")
    c.instances().set_bot_token(INSTANCE, TOKEN, {"id": str(discord.bot.id),
                                 "application_id": str(discord.application_id)},
                                 actor="bench")
    c.instances().bind_guild(INSTANCE, str(guild.id), actor="bench")
    first = None
    for n in range(args.products):
        product = c.catalog().create_product(INSTANCE, {
            "name": f"Produto {n}", "description": "Chave digital " * 10,
            "variants": [{"name": "Mensal", "price_cents": 1990, "max_per_order": 5},
                         {"name": "Anual", "price_cents": 9990}]}, actor="bench")
        if first is None:
            first = product
            c.catalog().import_stock(
                INSTANCE, product.id, product.variants[0].id,
                "\n".join(f"BENCH-KEY-{i:05d}" for i in range(args.purchases)), actor="bench")
    assert first is not None
    variant_id = first.variants[0].id
    async with DiscordRest(TOKEN, discord.api_url) as rest:
        await rest.send_message(
            str(post_channel.id), ui.product_post(first, c.catalog().stock_counts(INSTANCE),
                                                  "pt-BR"))

    # The platform: its internal API (what the bot talks to) and its courier.
    internal = web.AppRunner(create_internal_app(c))
    await internal.setup()
    await web.TCPSite(internal, "127.0.0.1", port).start()
    courier_stop = asyncio.Event()
    courier = asyncio.create_task(Courier(c, interval=1.0).run(courier_stop))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRA_", "DISCORD_"))}
    env.update({"ASTRA_TENANT": "1", "ASTRA_INSTANCE_ID": INSTANCE,
                "ASTRA_INSTANCE_KEY": c.instances().runtime_credential(INSTANCE),
                "ASTRA_PLATFORM_URL": f"http://127.0.0.1:{port}",
                "DISCORD_API_BASE": discord.api_url, "ASTRA_BOT_TOKEN": TOKEN,
                "ASTRA_LOG_LEVEL": "warning"})
    board = c.heartbeats()
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "astra.entrypoints.cli", "instance", "run",
                             INSTANCE], cwd=tmp.name, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        while not (board(INSTANCE) or {}).get("ready_at"):
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read() if proc.stderr else "bot exited")
            if time.time() - started > 60:
                raise RuntimeError("the bot never became ready")
            await asyncio.sleep(0.02)
        ready_s = board(INSTANCE)["ready_at"] - started
        await asyncio.sleep(1.0)  # settle: commands synced, first passes of the workers done
        rss = rss_mb(proc.pid)

        # Clicks: each buyer picks the product (the bot opens a cart channel), then presses
        # "Quantidade", whose answer (a modal) needs the cart from the platform: one API hop.
        clicks = []
        for buyer in buyers[: args.clicks]:
            pick = await discord.select(post_channel.id, buyer, f"astra:variant:{first.id}",
                                        [variant_id])
            await pick.wait_message(timeout=15)
            cart = (await asyncio.to_thread(c.sales().get_cart, INSTANCE, buyer)).cart
            pressed = time.perf_counter()
            quantity = await discord.click(cart.channel_id, buyer, "astra:cart:quantity")
            await quantity.response(timeout=15)
            clicks.append((time.perf_counter() - pressed) * 1000)
        for buyer in buyers[: args.clicks]:
            await asyncio.to_thread(c.sales().cancel_cart, INSTANCE, buyer)

        # Purchases: carts and approvals through the services; the platform's courier delivers.
        sales, payments, gateway = c.sales(), c.payments(), c.gateway()
        charges = []
        for buyer in buyers:
            await asyncio.to_thread(sales.add_item, INSTANCE, buyer, first.id, variant_id, 1)
            _, charge = await asyncio.to_thread(payments.pay_cart, INSTANCE, buyer)
            charges.append((buyer, charge.id))
        delays = []
        for buyer, charge_id in charges:
            await asyncio.to_thread(gateway.approve, charge_id)
            approved = time.perf_counter()
            await asyncio.to_thread(payments.handle_notification, charge_id)
            await discord.wait_for_message(dm_user=buyer, timeout=30)
            delays.append((time.perf_counter() - approved) * 1000)
        slowest = sorted(range(len(clicks)), key=lambda i: clicks[i])[-5:]
        print("slowest clicks (index, ms):", [(i, round(clicks[i])) for i in slowest])
        p99 = percentile(delays, 99)
        click_p99 = percentile(clicks, 99)
        print(f"{args.products} products, {args.purchases} purchases: ready in {ready_s:.2f}s, "
              f"{rss:.1f} MB resident, click->answer median {statistics.median(clicks):.0f} ms, "
              f"approval->DM median {statistics.median(delays):.0f} ms")
        print(f"RESULT bot_rss_mb {rss:.1f} target<=60")
        print(f"RESULT bot_ready_s {ready_s:.2f} target<2")
        print(f"RESULT click_to_answer_p99_ms {click_p99:.0f} target<100")
        print(f"RESULT approval_to_dm_p99_ms {p99:.0f}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        courier_stop.set()
        await courier
        await internal.cleanup()
        await discord.stop()
        c.store().close()
        tmp.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--purchases", type=int, default=200)
    parser.add_argument("--clicks", type=int, default=100)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
