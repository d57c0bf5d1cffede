"""Faults stay in their instance: one instance's data held or damaged costs that instance, and
only that instance, its service."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from astra.entrypoints.internal.app import create_internal_app
from tests.e2e.bot_world import free_port
from tests.integration.sales_world import INSTANCE, Shop, make_shop

OTHER = "loja-vizinha"


@pytest.fixture
async def platform(data_dir: Path) -> AsyncIterator[tuple[Shop, str]]:
    shop = make_shop(data_dir, keys=1)
    shop.instances.create(OTHER, owner_id="usr_other", name="Vizinha", actor="test")
    runner = web.AppRunner(create_internal_app(shop.container))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield shop, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        shop.store.close()


async def _settings(http: aiohttp.ClientSession, base: str, shop: Shop, instance: str
                    ) -> tuple[int, float]:
    credential = shop.instances.runtime_credential(instance)
    started = time.monotonic()
    async with http.get(f"{base}/internal/instances/{instance}/settings",
                        headers={"Authorization": f"Bearer {credential}"}) as resp:
        await resp.read()
        return resp.status, time.monotonic() - started


def _hold(lock: Path) -> subprocess.Popen[str]:
    """Another process holds an instance's lock (a hung process, a tenant that reached the
    file): flock, until killed. Returns once it is held."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)",
         str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    if holder.stdout is None or holder.stdout.readline().strip() != "held":
        holder.kill()
        raise AssertionError("the lock holder did not take the lock")
    return holder


@pytest.mark.slow
async def test_a_held_instance_lock_costs_only_that_instance(
    platform: tuple[Shop, str], data_dir: Path
) -> None:
    shop, base = platform
    lock = data_dir / "instances" / INSTANCE / ".lock"
    holder = _hold(lock)
    try:
        shop.store.close()  # drop cached state: the next read must take the lock
        async with aiohttp.ClientSession() as http:
            stuck = asyncio.create_task(_settings(http, base, shop, INSTANCE))
            # Meanwhile the neighbour is served at once, again and again.
            for _ in range(10):
                status, took = await _settings(http, base, shop, OTHER)
                assert status == 200 and took < 1.0
            status, took = await stuck
            assert status == 503 and took < 15
            # Known stuck: the next request for it fails fast instead of holding a thread.
            status, took = await _settings(http, base, shop, INSTANCE)
            assert status == 503 and took < 1.0
            status, _ = await _settings(http, base, shop, OTHER)
            assert status == 200
    finally:
        holder.kill()
        holder.wait()


async def test_a_damaged_instance_is_quarantined_and_everyone_else_is_served(
    data_dir: Path,
) -> None:
    from astra.entrypoints.serve import serve
    from astra.settings import Settings

    shop = make_shop(data_dir, keys=1)
    shop.instances.create(OTHER, owner_id="usr_other", name="Vizinha", actor="test")
    # A neighbour with a paying owner: without one, serve's runtime monitor suspends it and
    # the internal API refuses its credential.
    with shop.store.portal() as uow:
        until = shop.clock.now() + timedelta(days=30)
        uow.users.put({"id": "usr_other", "email": "vizinha@example.com",
                       "plan": {"kind": "paid", "until": until.isoformat()}})
        uow.commit()
    shop.store.close()
    damaged = data_dir / "instances" / INSTANCE / "journal.log"
    garbage = b"\x00not a journal\n" * 3
    damaged.write_bytes(garbage)
    settings = shop.container.settings()
    shop.container.settings.override(
        Settings(**{**settings.__dict__, "portal_port": 0, "admin_port": 0, "internal_port": 0,
                    "runtime": "process"})
    )
    stop = asyncio.Event()
    ready: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve(shop.container, stop=stop, on_ready=ready.set_result))
    try:
        ports = await asyncio.wait_for(ready, 30)  # started, despite the damaged instance
        internal = f"http://127.0.0.1:{ports['internal']}"
        async with aiohttp.ClientSession() as http:
            assert (await _settings(http, internal, shop, OTHER))[0] == 200
            assert (await _settings(http, internal, shop, INSTANCE))[0] == 503
            async with http.get(f"http://127.0.0.1:{ports['portal']}/health") as resp:
                assert resp.status == 200
        status = await asyncio.to_thread(shop.monitor.check, INSTANCE)
        assert (status.status, status.reason) == ("error", "damaged")
        problems = await asyncio.to_thread(shop.store.check)
        assert any(INSTANCE in str(p) for p in problems)
        assert damaged.read_bytes() == garbage  # left for the operator, never overwritten
    finally:
        stop.set()
        await asyncio.wait_for(server, 30)


@pytest.mark.parametrize("trap", ["fifo", "dev_zero", "huge"])
def test_what_the_platform_reads_back_from_a_runtime_is_bounded(tmp_path: Path, trap: str) -> None:
    """A process runtime's log is the one file of a bot's the platform reads. Swapped for a
    FIFO (a read that never returns), a symlink to /dev/zero (one that never ends) or grown
    huge, it costs a bounded read, never a hang or a MemoryError."""
    import os

    from astra.adapters.runtime.process import ProcessRuntime

    runtime = ProcessRuntime(tmp_path / "data")
    log = tmp_path / "data" / "instances" / "loja-x" / "runtime.log"
    log.parent.mkdir(parents=True)
    if trap == "fifo":
        os.mkfifo(log)
    elif trap == "dev_zero":
        log.symlink_to("/dev/zero")
    else:
        with open(log, "wb") as f:
            f.write((b"x" * 1023 + b"\n") * 20_000)  # 20 MB of log
    started = time.monotonic()
    lines = runtime.logs("loja-x", 100)
    assert time.monotonic() - started < 2
    if trap == "huge":
        assert len(lines) == 100 and all(len(line) == 1023 for line in lines)
    else:
        assert lines == []


@pytest.mark.slow
def test_the_reconcile_and_housekeeping_passes_go_on_without_a_held_instance(
    data_dir: Path,
) -> None:
    """A held instance is left out of a pass (after one wait for its lock, at most) and rests
    before it is tried again; the others' payments are found all the same."""
    from astra.domain.instance_backoff import InstanceBackoff
    from astra.entrypoints.workers import Reconciler, housekeeping_pass

    shop = make_shop(data_dir, keys=2)
    shop.instances.create(OTHER, owner_id="usr_other", name="Vizinha", actor="test")
    product = shop.catalog.create_product(OTHER, {
        "name": "Chave", "variants": [{"name": "Mensal", "price_cents": 990}]}, actor="test")
    shop.catalog.import_stock(OTHER, product.id, product.variants[0].id, "K-1\nK-2",
                              actor="test")
    shop.sales.add_item(INSTANCE, "111", shop.product_id, shop.variant_id, 1)
    held_order, held_charge = shop.payments.pay_cart(INSTANCE, "111")
    shop.sales.add_item(OTHER, "222", product.id, product.variants[0].id, 1)
    order, charge = shop.payments.pay_cart(OTHER, "222")
    reconciler = Reconciler(shop.container)
    reconciler.backoff = InstanceBackoff((1.0,))
    backoff = InstanceBackoff((1.0,))
    assert reconciler.pass_once() == {}
    shop.clock.advance(timedelta(seconds=1))
    shop.gateway.approve(held_charge.id)
    shop.gateway.approve(charge.id)
    lock = data_dir / "instances" / INSTANCE / ".lock"
    holder = _hold(lock)
    try:
        shop.store.close()
        assert reconciler.pass_once() == {"paid": 1}  # the neighbour's, despite the held one
        assert shop.sales.get_order(OTHER, order.id).status.value == "paid"
        housekeeping_pass(shop.container, backoff)  # does not raise: the held one is skipped
        # Resting now: the next passes do not wait for its lock again.
        started = time.monotonic()
        reconciler.pass_once()
        housekeeping_pass(shop.container, backoff)
        assert time.monotonic() - started < 1.0
    finally:
        holder.kill()
        holder.wait()
    time.sleep(1.1)  # its rest is over
    assert reconciler.pass_once() == {"paid": 1}  # tried again on its own, and found
    assert shop.sales.get_order(INSTANCE, held_order.id).status.value == "paid"
    shop.store.close()
