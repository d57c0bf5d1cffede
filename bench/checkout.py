"""Checkout race (DESIGN.md "Performance" 2): many buyers, few keys, several processes.

    python bench/checkout.py [--buyers 1000] [--keys 100] [--processes 2]

Every buyer runs as an asyncio task in one of the worker processes, all on one data directory,
through the real services: add to cart, check out, payment confirmed. Prints, as its last lines:
    RESULT checkout_race sold=<n> duplicates=<n> lost=<n> seconds=<s>
    RESULT checkouts_per_s <x>
and exits 0. `run_race` is also what the test suite uses to assert the same numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

INSTANCE = "race-shop"
OWNER = "usr_race_owner"


def _container(data_dir: Path):
    from astra.container import build_container
    from astra.settings import Settings, ensure_dev_secrets

    # ASTRA_DATABASE_URL set: the race runs on PostgreSQL (worker processes inherit it).
    database_url = os.environ.get("ASTRA_DATABASE_URL", "")
    return build_container(
        ensure_dev_secrets(Settings(data_dir=data_dir, database_url=database_url))
    )


def prepare(data_dir: Path, keys: int) -> tuple[str, str]:
    c = _container(data_dir)
    c.instances().create(INSTANCE, owner_id=OWNER, name="Race", actor="bench")
    product = c.catalog().create_product(
        INSTANCE,
        {"name": "Chave", "variants": [{"name": "Única", "price_cents": 1000, "max_per_order": 1}]},
        actor="bench",
    )
    variant = product.variants[0].id
    c.catalog().import_stock(
        INSTANCE,
        product.id,
        variant,
        "\n".join(f"RACE-{i:06d}" for i in range(keys)),
        actor="bench",
    )
    c.store().close()
    return product.id, variant


async def _buyers(data_dir: Path, product_id: str, variant_id: str, first: int, count: int) -> dict:
    from astra.domain.errors import DomainError, OutOfStock

    c = _container(data_dir)
    sales, settlement = c.sales(), c.settlement()
    result: dict = {"bought": [], "refused": [], "errors": []}

    async def buyer(n: int) -> None:
        buyer_id = str(100_000_000_000_000_000 + n)
        try:
            await asyncio.to_thread(sales.add_item, INSTANCE, buyer_id, product_id, variant_id, 1)
            order = await asyncio.to_thread(sales.checkout, INSTANCE, buyer_id)
            paid = await asyncio.to_thread(
                settlement.confirm_payment,
                INSTANCE,
                order.id,
                amount_cents=order.total_cents,
                payment_id=f"pay-{n}",
            )
            result["bought"].append([buyer_id, paid.id, paid.status.value])
        except OutOfStock as exc:
            result["refused"].append([buyer_id, exc.message()])
        except DomainError as exc:
            result["errors"].append([buyer_id, exc.code])

    await asyncio.gather(*(buyer(n) for n in range(first, first + count)))
    c.store().close()
    return result


@dataclass
class RaceResult:
    buyers: int
    keys: int
    sold: int
    duplicates: int
    lost: int
    refused: list[list[str]] = field(default_factory=list)
    errors: list[list[str]] = field(default_factory=list)
    paid_orders: int = 0
    seconds: float = 0.0


def audit(data_dir: Path, keys: int) -> tuple[int, int, int, int]:
    """(sold, duplicates, lost, paid orders): every key in exactly one consistent state."""
    c = _container(data_dir)
    with c.store().instance(INSTANCE, write=False) as uow:
        stock = uow.stock.all()
        orders = uow.orders.all()
    owners: dict[str, list[str]] = {}
    paid = [o for o in orders if o["status"] in ("paid", "delivered")]
    for o in paid:
        for line in o["lines"]:
            for kid in line["key_ids"]:
                owners.setdefault(kid, []).append(o["id"])
    duplicates = sum(len(v) - 1 for v in owners.values() if len(v) > 1)
    sold = sum(1 for k in stock if k["state"] == "sold")
    consistent = sum(
        1
        for k in stock
        if (k["state"] == "sold" and owners.get(k["id"]) == [k["order_id"]])
        or (k["state"] == "available" and k["id"] not in owners and not k["cart_id"])
    )
    lost = keys - consistent
    return sold, duplicates, lost, len(paid)


def run_race(
    data_dir: Path, *, buyers: int = 1000, keys: int = 100, processes: int = 2
) -> RaceResult:
    product_id, variant_id = prepare(data_dir, keys)
    per = -(-buyers // processes)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                str(data_dir),
                product_id,
                variant_id,
                str(i * per),
                str(min(per, buyers - i * per)),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    merged: dict = {"bought": [], "refused": [], "errors": []}
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"worker failed: {err[-2000:]}")
        part = json.loads(out.strip().splitlines()[-1])
        for k in merged:
            merged[k] += part[k]
    seconds = time.perf_counter() - started
    sold, duplicates, lost, paid = audit(data_dir, keys)
    return RaceResult(
        buyers=buyers,
        keys=keys,
        sold=sold,
        duplicates=duplicates,
        lost=lost,
        refused=merged["refused"],
        errors=merged["errors"],
        paid_orders=paid,
        seconds=seconds,
    )


def main() -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        data_dir, product_id, variant_id, first, count = sys.argv[2:7]
        result = asyncio.run(
            _buyers(Path(data_dir), product_id, variant_id, int(first), int(count))
        )
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="astra-race-", dir=args.dir) as tmp:
        r = run_race(
            Path(tmp) / "data", buyers=args.buyers, keys=args.keys, processes=args.processes
        )
    print(
        f"{r.buyers} buyers, {r.keys} keys, {args.processes} processes: {r.sold} sold, "
        f"{len(r.refused)} told out of stock, {len(r.errors)} other errors"
    )
    print(
        f"RESULT checkout_race sold={r.sold} duplicates={r.duplicates} lost={r.lost} "
        f"seconds={r.seconds:.2f}"
    )
    print(f"RESULT checkouts_per_s {r.buyers / r.seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
