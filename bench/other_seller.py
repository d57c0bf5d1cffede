"""Another seller's sales while one instance is held: `astra serve` (in this process) with two
sellers, side by side in one run: first idle, then while another process holds seller A's store
lock (as a long stock import does) and a flood of A's own requests hits its portal routes.

    python bench/other_seller.py [--sales 100] [--hold 60] [--store json|postgresql]

Each of seller B's sales: a cart, a PIX on the Mercado Pago fake (tests/fakes/mercadopago.py,
real SDK), approved (its signed webhook to the portal), then timed from the approval to its
outgoing `order.paid` webhook arriving at B's endpoint (tests/held_instance.py). Prints, as its
last lines:
    RESULT other_seller_paid_to_webhook_idle_p99_ms <x>
    RESULT other_seller_paid_to_webhook_p99_ms <x>          (A's lock held, A flooded)
    RESULT other_seller_paid_to_webhook_ratio <x> target<=2
    RESULT other_seller_login_p99_ms <x> target<1000        (B's sign-in + /api/me, A held)
and exits 0. On PostgreSQL the server is ASTRA_TEST_DATABASE_URL's or a throwaway cluster
(tests/pg.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.held_instance import held_world  # noqa: E402

GAP_SECONDS = 0.2  # between two sales: a steady trickle, not a burst


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


@contextlib.contextmanager
def database(store: str) -> Iterator[str]:
    if store != "postgresql":
        yield ""
        return
    from tests.pg import start_server

    server = start_server()
    try:
        with server.database() as dsn:
            yield dsn
    finally:
        server.stop()


async def run(sales: int, hold: float, dsn: str, data_dir: Path) -> dict[str, float]:
    world = await held_world(data_dir, dsn)
    try:
        await world.sale()  # warm-up
        idle, idle_paid = [], []
        for _ in range(sales):
            sale = await world.sale()
            idle.append(sale.webhook)
            idle_paid.append(sale.paid)
            await asyncio.sleep(GAP_SECONDS)
        busy: list[float] = []
        busy_paid: list[float] = []
        sign_in: list[float] = []
        with world.holding():
            started = time.monotonic()
            async with world.flooding():
                await asyncio.sleep(2.0)  # the flood at full strength
                while time.monotonic() - started < hold - 2:
                    sale = await world.sale()
                    busy.append(sale.webhook)
                    busy_paid.append(sale.paid)
                    if len(busy) % 5 == 0:
                        login, me = await world.login_and_me()
                        sign_in.append(login + me)
                    await asyncio.sleep(GAP_SECONDS)
        flood = dict(world.flood_statuses)
    finally:
        await world.close()
    print(f"sales idle={len(idle)} held={len(busy)} flood answers={flood}")
    for name, values in (("idle webhook", idle), ("idle paid", idle_paid),
                         ("held webhook", busy), ("held paid", busy_paid)):
        print(f"{name}: p50 {statistics.median(values) * 1000:.1f} ms, "
              f"p99 {p99(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms")
    return {"idle": p99(idle) * 1000, "held": p99(busy) * 1000,
            "login": p99(sign_in) * 1000 if sign_in else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=100, help="idle sales (the baseline)")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds A's lock is held")
    parser.add_argument("--store", choices=("json", "postgresql"), default="json")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp, database(args.store) as dsn:
        result = asyncio.run(run(args.sales, args.hold, dsn, Path(tmp) / "data"))
    ratio = result["held"] / result["idle"] if result["idle"] else float("nan")
    print(f"RESULT other_seller_paid_to_webhook_idle_p99_ms {result['idle']:.1f}")
    print(f"RESULT other_seller_paid_to_webhook_p99_ms {result['held']:.1f}")
    print(f"RESULT other_seller_paid_to_webhook_ratio {ratio:.2f} target<=2")
    print(f"RESULT other_seller_login_p99_ms {result['login']:.0f} target<1000")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
