"""A lost webhook's cost (DESIGN.md "Performance" 5): PIX approvals that no webhook announces,
found by `astra serve`'s reconcile loop alone, with 200 charges open at once.

    python bench/reconcile.py [--charges 200] [--spread 30] [--quiet 20]

`astra serve` runs in its own process on the Mercado Pago adapter (real SDK) pointed at the
local fake (tests/fakes/mercadopago.py), with no public URL and no dashboard webhook: the fake
sends no notification at all. After `--charges` orders are checked out (all their PIX open),
the bench watches `--quiet` seconds of passes with nothing changing, then approves every charge
at a random moment over `--spread` seconds, and times each approval to its order paid and its
delivery queued (one commit; the bot's delivery worker takes it from there, which
bench/bot.py measures). The fake's request log gives the gateway calls each pass made (a pass
starts with a search at offset 0). Prints, as its last lines:
    RESULT lost_webhook_to_dm_max_s <x> target<=15 (approval to order paid and delivery queued)
    RESULT lost_webhook_to_dm_p50_s <x>
    RESULT reconcile_calls_per_pass max=<n> mean=<x> open_charges=<n> target=O(1)
and exits 0.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.webhook import wait_port  # noqa: E402
from tests.ports import free_ports  # noqa: E402

INSTANCE = "bench-shop"


def passes(requests: list) -> list[list[str]]:
    """The server's gateway requests, one list per reconcile pass."""
    grouped: list[list[str]] = []
    for r in requests:
        if r.path == "/v1/payments/search" and r.query.get("offset", "0") == "0":
            grouped.append([])
        if grouped:
            grouped[-1].append(f"{r.method} {r.path}")
    return grouped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=200)
    parser.add_argument("--spread", type=float, default=30.0)
    parser.add_argument("--quiet", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    rng = random.Random(args.seed)

    from astra.container import build_container
    from astra.settings import Settings, ensure_dev_secrets
    from tests.fakes.mercadopago import FakeMercadoPagoThread

    fake = FakeMercadoPagoThread()
    base = fake.start()
    tmp = tempfile.TemporaryDirectory(prefix="astra-reconcile-bench-")
    data = Path(tmp.name) / "data"
    portal_port, admin_port = free_ports(2)
    settings = ensure_dev_secrets(Settings(
        data_dir=data, mercadopago_access_token=fake.access_token, mercadopago_api_base=base))
    c = build_container(settings)
    c.instances().create(INSTANCE, owner_id="usr_bench", name="Bench", actor="bench")
    product = c.catalog().create_product(INSTANCE, {
        "name": "Chave", "variants": [{"name": "Única", "price_cents": 1990,
                                       "max_per_order": 1}]}, actor="bench")
    variant = product.variants[0].id
    c.catalog().import_stock(INSTANCE, product.id, variant,
                             "\n".join(f"BENCH-{i:06d}" for i in range(args.charges)),
                             actor="bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRA_", "MERCADOPAGO_"))}
    env.update({
        "ASTRA_DATA_DIR": str(data), "ASTRA_PORTAL_PORT": str(portal_port),
        "ASTRA_ADMIN_PORT": str(admin_port), "ASTRA_LOG_LEVEL": "warning",
        "MERCADOPAGO_ACCESS_TOKEN": fake.access_token, "MERCADOPAGO_API_BASE": base,
        "ASTRA_RUNTIME": "process",
        # The reconcile intervals are left at their defaults: that is what is measured.
    })
    server = subprocess.Popen([sys.executable, "-m", "astra.entrypoints.cli", "serve"],
                              cwd=Path(tmp.name), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_port(portal_port, server)
        orders: list[str] = []
        charges: list[str] = []
        for n in range(args.charges):
            buyer = str(300_000_000_000_000_000 + n)
            c.sales().add_item(INSTANCE, buyer, product.id, variant, 1)
            order, charge = c.payments().pay_cart(INSTANCE, buyer)
            assert charge is not None and not fake.payment(charge.id).get("notification_url")
            orders.append(order.id)
            charges.append(charge.id)
        # Passes over 200 open charges with nothing new.
        quiet_from = len(fake.requests)
        time.sleep(args.quiet)
        quiet = passes(fake.requests[quiet_from:])
        # Approvals at random moments, announced by nobody.
        plan = sorted((rng.uniform(0, args.spread), i) for i in range(args.charges))
        approved_at: dict[str, float] = {}
        started = time.monotonic()
        busy_from = len(fake.requests)
        for offset, i in plan:
            time.sleep(max(0.0, started + offset - time.monotonic()))
            approved_at[orders[i]] = time.time()
            fake.approve(charges[i])
        queued_at: dict[str, float] = {}
        deadline = time.monotonic() + 120
        while len(queued_at) < len(orders) and time.monotonic() < deadline:
            with c.store().instance(INSTANCE, write=False) as uow:
                for d in uow.deliveries.all():
                    if d["order_id"] in approved_at and d["order_id"] not in queued_at:
                        queued_at[d["order_id"]] = datetime.fromisoformat(
                            d["created_at"]).timestamp()
            time.sleep(0.2)
        busy = passes(fake.requests[busy_from:])
        statuses = {c.sales().get_order(INSTANCE, oid).status for oid in orders}
        delays = [queued_at[oid] - approved_at[oid] for oid in orders if oid in queued_at]
        calls = [len(p) for p in quiet + busy]
        per_charge_reads = sum(1 for p in quiet + busy for r in p if r != "GET /v1/payments/search"
                               and r.startswith("GET /v1/payments/"))
        print(f"{args.charges} open charges, approvals over {args.spread:.0f} s, no webhooks: "
              f"{len(queued_at)} delivered to the queue (orders now {sorted(statuses)}); "
              f"{len(quiet)} quiet passes ({[len(p) for p in quiet]} calls), {len(busy)} busy "
              f"passes ({sum(len(p) for p in busy)} calls, {per_charge_reads} per-charge reads)")
        if len(delays) < len(orders):
            print(f"MISSING {len(orders) - len(delays)} orders never paid", file=sys.stderr)
            server.send_signal(signal.SIGTERM)
            print(server.communicate(timeout=20)[1][-3000:], file=sys.stderr)
            return 1
        print(f"RESULT lost_webhook_to_dm_max_s {max(delays):.2f} target<=15 "
              "(approval to order paid and delivery queued)")
        print(f"RESULT lost_webhook_to_dm_p50_s {statistics.median(delays):.2f}")
        print(f"RESULT reconcile_calls_per_pass max={max(calls)} "
              f"mean={statistics.mean(calls):.2f} open_charges={args.charges} target=O(1)")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        fake.stop()
        c.store().close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
