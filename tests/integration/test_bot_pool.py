"""A pool of real bots (interactions.py) in one event loop, against a fleet of fake Discord
bots and the platform's internal API over HTTP with one shared session: each bot answers its
own buyers, and one bot's crash, refused token or missing token never disturbs the others."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from astra.adapters.instance_api.http import HttpInstanceAPI, shared_session
from astra.entrypoints.bot.pool import SUMMARY_EVENT, BotPool, Member
from tests.pool_world import pool_world

pytestmark = pytest.mark.slow


async def _eventually(check, timeout: float = 30.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_one_bots_trouble_stays_its_own(tmp_path: Path) -> None:
    world = await pool_world(tmp_path / "data", instances=3, buyers=2)
    c = world.container
    # Two more instances of the platform: one whose token Discord refuses, one given no token.
    for instance_id in ("pool-refused", "pool-tokenless"):
        c.instances().create(instance_id, owner_id="usr_pool_owner", name=instance_id,
                             actor="test")
    members = [Member(m["id"], m["token"], m["key"]) for m in world.members()]
    members += [
        Member("pool-refused", "MTIzNDU2Nzg5MDEyMzQ1Njc4.Refused.not-a-token-of-the-fleet",
               c.instances().runtime_credential("pool-refused")),
        Member("pool-tokenless", "", c.instances().runtime_credential("pool-tokenless")),
    ]
    session = shared_session()
    apis: list[HttpInstanceAPI] = []

    def make_api(member: Member) -> HttpInstanceAPI:
        apis.append(HttpInstanceAPI(world.internal_url, member.instance_id, member.credential,
                                    session=session))
        return apis[-1]

    summary = io.StringIO()
    pool = BotPool("pool.test", members, make_api=make_api,
                   discord_api_base=world.fleet.api_url, restart_limit=2, backoff=0.1,
                   summary=summary)
    stop = asyncio.Event()
    runner = asyncio.create_task(pool.run(stop))
    healthy = [s.instance_id for s in world.shops]
    try:
        await world.wait_ready(healthy, timeout=60)
        # One session for everyone, each call with its own credential (the platform scoped
        # the heartbeats to the right instances: every one of them is on the board).
        assert all(api._session is session for api in apis)
        await _eventually(lambda: pool.states["pool-refused"].state == "invalid_token",
                          what="the refused token to be reported")
        assert world.beat("pool-refused").get("error") == "invalid_token"
        await _eventually(lambda: pool.states["pool-tokenless"].state == "crash_loop",
                          what="the tokenless bot to give up")
        assert pool.states["pool-tokenless"].restarts == 2
        assert world.beat("pool-tokenless").get("error") == "crash_loop"

        # Every healthy bot answers its own buyers, all at once.
        answers = await asyncio.gather(*(s.pick(s.buyers[0]) for s in world.shops))
        assert all(ms < 15_000 for ms in answers)
        for shop in world.shops:  # each pick reached its own shop's platform data
            await _eventually(lambda shop=shop: (view := c.sales().get_cart(
                shop.instance_id, shop.buyers[0])) is not None and view.cart.lines,
                what=f"{shop.instance_id}'s cart")

        # One bot crashes (Discord closes its gateway for good): that client alone restarts.
        crashed, others = world.shops[0], world.shops[1:]
        sessions_before = [s.discord.ready_count for s in others]
        await crashed.discord.drop_gateway(4013)
        await _eventually(lambda: pool.states[crashed.instance_id].restarts == 1
                          and pool.states[crashed.instance_id].state == "running",
                          what="the crashed bot to be restarted and READY again")
        assert [s.discord.ready_count for s in others] == sessions_before
        assert all(s.discord.connected for s in others)
        # ...and it serves again, as the others never stopped doing.
        answers = await asyncio.gather(*(s.pick(s.buyers[1]) for s in world.shops))
        assert all(ms < 15_000 for ms in answers)

        # What the runtime adapter reads: one line per change, no secret in it.
        lines = [json.loads(x) for x in summary.getvalue().splitlines()]
        last = lines[-1]
        assert last["event"] == SUMMARY_EVENT and last["pool"] == "pool.test"
        assert last["members"]["pool-refused"]["state"] == "invalid_token"
        assert last["members"][crashed.instance_id]["restarts"] == 1
        text = summary.getvalue()
        assert not any((m.token and m.token in text) or m.credential in text for m in members)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)
        await session.close()
        await world.close()
    assert all(s.state in ("stopped", "invalid_token", "crash_loop")
               for s in pool.states.values())
