"""Both stores under SIGKILL and under two processes writing one record."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.store_child import open_store

ROOT = Path(__file__).resolve().parents[2]


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.store_child", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _target(backend) -> str:
    return backend.dsn or str(backend.data_dir)


def _check_consistent(data: str) -> int:
    """Every order has its sold key and every key its order; returns the number of orders."""
    store = open_store(data)
    try:
        with store.instance("shop-1", write=False) as uow:
            orders = {o["id"]: o for o in uow.orders.all()}
            keys = {k["id"]: k for k in uow.stock.all()}
    finally:
        store.close()
    assert len(orders) == len(keys)
    for oid, order in orders.items():
        assert keys[order["key_id"]]["order_id"] == oid
        assert order["pad"] == "x" * (order["n"] % 700)
    numbers = sorted(o["n"] for o in orders.values())
    assert numbers == list(range(1, len(numbers) + 1)), "a gap: a commit vanished"
    return len(orders)


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_commit(store_backend) -> None:
    data_dir = _target(store_backend)
    rng = random.Random(1234)
    acknowledged = 0
    kills = 0
    for _ in range(55):
        proc = _child("crash", data_dir)
        lines: list[str] = []
        reader = threading.Thread(target=lambda p=proc, out=lines: out.extend(p.stdout))
        reader.start()
        # Wait until it is committing, then kill it at a random moment.
        deadline = time.monotonic() + 20
        while not lines and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        assert lines, "child never committed"
        time.sleep(rng.uniform(0.0, 0.12))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join()
        kills += 1
        acked = [int(x) for x in lines if x.strip()]
        acknowledged = max(acknowledged, *acked)
        stored = _check_consistent(data_dir)
        assert stored >= acknowledged, f"acknowledged {acknowledged}, only {stored} stored"
    assert kills >= 50
    assert acknowledged > 200


@pytest.mark.slow
def test_two_processes_increment_one_record_exactly(store_backend) -> None:
    procs = [_child("increment", _target(store_backend), "2000") for _ in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0 and "done" in out
    store = open_store(_target(store_backend))
    with store.portal(write=False) as uow:
        assert uow.meta.require("counter")["value"] == 4000
