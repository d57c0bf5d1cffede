"""Webhook throughput (DESIGN.md "Performance" 3): signed Mercado Pago webhooks at the running
portal, against a bare aiohttp handler that answers 200, same run, same load.

    python bench/webhook.py [--payments 400] [--concurrency 16]

The portal runs as `astra serve` in its own process, on the Mercado Pago adapter pointed at the
local fake (tests/fakes/mercadopago.py): every webhook is verified and its id kept in the webhook
inbox before the 200 goes back; meanwhile the portal's workers fetch each payment from the fake
with the real SDK and confirm its order (keys sold, wallet credited, delivery queued), on the same
two CPUs. Prints, as its last lines:
    RESULT webhook_vs_bare <x> target>=0.5
    RESULT webhook_to_paid_p99_ms <x>
and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.ports import free_port, free_ports  # noqa: E402, F401 - free_port for bench/reconcile

INSTANCE = "bench-shop"
SECRET = "bench-webhook-secret"

BARE_SERVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.json_response({"ok": True})
app = web.Application()
app.router.add_post("/api/webhooks/mercadopago", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


async def fire(requests: list[tuple[str, dict[str, str], bytes]], concurrency: int
               ) -> tuple[float, list[float], list[int]]:
    """Send every request with `concurrency` in flight; (seconds, wall-clock send time of each
    request in order, statuses)."""
    sent_at = [0.0] * len(requests)
    statuses: list[int] = []
    queue: asyncio.Queue = asyncio.Queue()
    for i, r in enumerate(requests):
        queue.put_nowait((i, r))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            while not queue.empty():
                i, (url, headers, body) = queue.get_nowait()
                sent_at[i] = time.time()
                async with http.post(url, headers=headers, data=body) as resp:
                    await resp.read()
                    statuses.append(resp.status)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, sent_at, statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    from astra.container import build_container
    from astra.settings import Settings, ensure_dev_secrets
    from tests.fakes.mercadopago import FakeMercadoPagoThread

    fake = FakeMercadoPagoThread(webhook_secret=SECRET)
    base = fake.start()
    tmp = tempfile.TemporaryDirectory(prefix="astra-webhook-bench-")
    data = Path(tmp.name) / "data"
    portal_port, admin_port, bare_port = free_ports(3)
    settings = ensure_dev_secrets(Settings(
        data_dir=data, mercadopago_access_token=fake.access_token, mercadopago_api_base=base,
        mercadopago_webhook_secret=SECRET))
    c = build_container(settings)
    c.instances().create(INSTANCE, owner_id="usr_bench", name="Bench", actor="bench")
    product = c.catalog().create_product(INSTANCE, {
        "name": "Chave", "variants": [{"name": "Única", "price_cents": 1990,
                                       "max_per_order": 1}]}, actor="bench")
    variant = product.variants[0].id
    c.catalog().import_stock(INSTANCE, product.id, variant,
                             "\n".join(f"BENCH-{i:06d}" for i in range(args.payments)),
                             actor="bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRA_", "MERCADOPAGO_"))}
    env.update({
        "ASTRA_DATA_DIR": str(data), "ASTRA_PORTAL_PORT": str(portal_port),
        "ASTRA_ADMIN_PORT": str(admin_port), "ASTRA_LOG_LEVEL": "warning",
        "MERCADOPAGO_ACCESS_TOKEN": fake.access_token, "MERCADOPAGO_API_BASE": base,
        "MERCADOPAGO_WEBHOOK_SECRET": SECRET,
        # Only the webhooks may settle these orders during the run.
        "ASTRA_RECONCILE_INTERVAL_SECONDS": "3600",
        "ASTRA_RECONCILE_OPEN_INTERVAL_SECONDS": "3600",
    })
    server = subprocess.Popen([sys.executable, "-m", "astra.entrypoints.cli", "serve"],
                              cwd=Path(tmp.name), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(portal_port, server)
        wait_port(bare_port, bare)
        # Orders made after the server's first reconcile pass: nothing but webhooks settle them.
        orders, charges = [], []
        for n in range(args.payments):
            buyer = str(300_000_000_000_000_000 + n)
            c.sales().add_item(INSTANCE, buyer, product.id, variant, 1)
            order, charge = c.payments().pay_cart(INSTANCE, buyer)
            orders.append(order.id)
            charges.append(charge.id)
        fake.drain()
        for cid in charges:
            fake.approve(cid)
        endpoint = f"http://127.0.0.1:{portal_port}/api/webhooks/mercadopago"
        signed = [fake.build_webhook(cid, url=endpoint) for cid in charges]
        bare_requests = [(url.replace(f":{portal_port}/", f":{bare_port}/"), h, b)
                         for url, h, b in signed]
        ours_s, sent_at, statuses = asyncio.run(fire(signed, args.concurrency))
        # Webhook-to-paid: from sending each webhook to its order's paid_at, as the server
        # recorded it (one machine, one clock).
        deadline = time.monotonic() + 120
        paid_at: dict[str, float] = {}
        while len(paid_at) < len(orders) and time.monotonic() < deadline:
            for oid in orders:
                if oid not in paid_at:
                    order = c.sales().get_order(INSTANCE, oid)
                    if order.paid_at:
                        paid_at[oid] = datetime.fromisoformat(order.paid_at).timestamp()
            time.sleep(0.05)
        paid = len(paid_at)
        # The bare handler runs after the portal has finished its queue, on a quiet machine.
        bare_s, _, bare_statuses = asyncio.run(fire(bare_requests, args.concurrency))
        delays = [paid_at[oid] - sent_at[i] for i, oid in enumerate(orders) if oid in paid_at]
        ours_rate, bare_rate = args.payments / ours_s, args.payments / bare_s
        p99 = statistics.quantiles(delays, n=100)[98] * 1000
        print(f"{args.payments} webhooks, concurrency {args.concurrency}: "
              f"portal {ours_rate:,.0f}/s ({statuses.count(200)} x 200), bare aiohttp "
              f"{bare_rate:,.0f}/s ({bare_statuses.count(200)} x 200); {paid} orders paid")
        print(f"RESULT webhook_vs_bare {ours_rate / bare_rate:.2f} target>=0.5")
        print(f"RESULT webhook_to_paid_p99_ms {p99:.1f}")
    finally:
        for proc in (server, bare):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        fake.stop()
        c.store().close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
