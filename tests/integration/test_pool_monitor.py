"""The runtime monitor with pooled placement, on the process runtime with real bots: instances
are packed into pools of ASTRA_POOL_SIZE in one pass, each instance's record says which pool
runs it, an instance set to `isolated` runs alone, and a pool that dies for good hands its
instances to another pool, where they come back online."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from dependency_injector import providers

from astra.adapters.runtime.pooled import PooledRuntime
from astra.adapters.runtime.process import ProcessRuntime
from astra.domain.services.runtime_placement import set_instance_mode
from astra.domain.timestamps import iso
from astra.ports.runtime import ProcessState, is_pool_id
from tests.pool_world import OWNER, pool_world

pytestmark = pytest.mark.slow


async def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def test_the_monitor_packs_pools_records_them_and_rebalances_a_dead_one(
    tmp_path: Path,
) -> None:
    world = await pool_world(tmp_path / "data", instances=5, prefix="mon")
    c = world.container
    with c.store().portal() as uow:
        until = iso(c.clock().now().replace(year=c.clock().now().year + 1))
        uow.users.put({"id": OWNER, "plan": {"kind": "paid", "until": until}})
        uow.commit()
    # The last one's seller wants it alone.
    isolated = world.shops[-1].instance_id
    set_instance_mode(c.store(), c.clock(), isolated, "isolated", actor="test")
    units = ProcessRuntime(tmp_path / "runtimes", restart_limit=0)
    runtime = PooledRuntime(units, pool_size=2, mode="pooled", handoff_timeout=30)
    c.runtime.override(providers.Object(runtime))
    c.internal_endpoint().url = world.internal_url
    monitor = c.monitor()
    ids = [s.instance_id for s in world.shops]
    pooled = ids[:-1]
    try:
        def all_online(extra=lambda: True):
            def check():
                found = monitor.reconcile_once()
                ok = all(x.status == "online" for x in found.values()) and extra()
                return found if ok else None
            return check

        statuses = await _until(all_online(), 120, "every instance online")
        assert set(statuses) == set(ids)
        with c.store().portal(write=False) as uow:
            docs = {i: uow.instances.require(i) for i in ids}
        pools = {i: docs[i].get("runtime_pool") for i in pooled}
        assert all(p and is_pool_id(p) for p in pools.values())
        assert len(set(pools.values())) == 2  # four instances, pools of two, packed
        assert docs[isolated].get("runtime_pool") is None
        assert units.status(isolated).state is ProcessState.RUNNING  # alone, as asked
        assert all(units.status(p).state is ProcessState.RUNNING for p in set(pools.values()))

        # One pool's process dies for good (no restarts left): its instances move.
        dead = pools[pooled[0]]
        victims = [i for i in pooled if pools[i] == dead]
        pid = units._runtimes[dead].proc.pid  # the pool process, as the OS sees it
        os.kill(pid, signal.SIGKILL)
        await _until(lambda: units.status(dead).error == "crash_loop", 30, "the pool to die")
        await _until(all_online(lambda: all(runtime.placement_of(i) != dead for i in victims)),
                     120, "the dead pool's instances online elsewhere")
        with c.store().portal(write=False) as uow:
            moved = {i: uow.instances.require(i).get("runtime_pool") for i in victims}
        assert all(p and p != dead for p in moved.values()), moved
        # The other pool was not touched.
        others = [i for i in pooled if i not in victims]
        assert all(runtime.placement_of(i) == pools[i] for i in others)
    finally:
        await asyncio.to_thread(runtime.shutdown)
        await world.close()
