"""The per-instance backoff of the platform's loops, and the per-instance turns of its faces."""

from __future__ import annotations

import asyncio

from astra.domain.instance_backoff import InstanceBackoff
from astra.entrypoints.instance_turns import InstanceTurns


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_instance_rests_longer_each_time_and_alone() -> None:
    clock = Clock()
    backoff = InstanceBackoff((5.0, 10.0), clock=clock)
    assert backoff.failed("a") == 1
    assert backoff.select(["a", "b"]) == ["b"] and backoff.resting() == {"a"}
    assert backoff.next_retry() == 5.0
    clock.now += 5.0
    assert backoff.ready("a")
    assert backoff.failed("a") == 2
    clock.now += 9.9
    assert not backoff.ready("a")
    clock.now += 0.1
    assert backoff.failed("a") == 3  # the last delay repeats
    clock.now += 10.0
    assert backoff.ready("a")
    assert backoff.succeeded("a") and not backoff.succeeded("a")
    assert backoff.failed("a") == 1  # a success starts the count again


async def test_an_instance_gets_its_turns_and_no_more_and_others_theirs() -> None:
    turns = InstanceTurns(2, wait=0.05)
    assert await turns.take("a") and await turns.take("a")
    assert not await turns.take("a")  # its third waits, then is refused
    assert await turns.take("b")  # nobody else waits on it
    waiter = asyncio.create_task(InstanceTurns.take(turns, "a"))
    await asyncio.sleep(0)
    turns.give_back("a")
    assert await waiter
    for instance_id in ("a", "a", "b"):
        turns.give_back(instance_id)
    assert turns._turns == {}  # nothing kept for instances with no request in progress


def test_a_request_past_its_instances_turns_gets_503_with_retry_after() -> None:
    from astra.entrypoints.instance_turns import busy_response

    response = busy_response()
    assert response.status == 503 and response.headers["Retry-After"] == "2"
    assert b'"busy"' in response.body
