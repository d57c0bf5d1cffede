"""How the Swarm runtime reads a service's tasks, on the windows the orchestrator leaves open.

The contract tests meet these windows only by chance (CI met "just updated, no new task yet"
once in a few runs); here each is built as Docker's API describes it."""

from __future__ import annotations

from typing import Any

from astra.adapters.runtime.docker import LABEL_SPEC
from astra.adapters.runtime.swarm import SwarmRuntime
from astra.ports.runtime import ProcessState

OLD, NEW = "a" * 64, "b" * 64


class FakeService:
    """What `client.services.get()` returns, as far as `_state` reads it."""

    def __init__(self, spec_digest: str, updated_at: str, tasks: list[dict[str, Any]],
                 replicas: int = 1, update_state: str | None = None) -> None:
        self.attrs: dict[str, Any] = {
            "UpdatedAt": updated_at,
            "Spec": {"Labels": {LABEL_SPEC: spec_digest},
                     "Mode": {"Replicated": {"Replicas": replicas}}},
        }
        if update_state:
            self.attrs["UpdateStatus"] = {"State": update_state}
        self._tasks = tasks

    def tasks(self) -> list[dict[str, Any]]:
        return [dict(t) for t in self._tasks]


def task(state: str, created: str, digest: str | None, desired: str = "running",
         exit_code: int | None = None) -> dict[str, Any]:
    labels = {LABEL_SPEC: digest} if digest else {}
    return {
        "CreatedAt": created,
        "DesiredState": desired,
        "Spec": {"ContainerSpec": {"Labels": labels}},
        "Status": {"State": state, "Timestamp": created,
                   "ContainerStatus": {"ExitCode": exit_code}},
    }


def runtime() -> SwarmRuntime:
    return SwarmRuntime("astra-runtime:test", client_factory=lambda: None)  # type: ignore[arg-type]


def test_a_task_of_the_previous_spec_is_restarting_until_its_successor_runs() -> None:
    # service.update() has returned; the orchestrator has neither marked an update nor made the
    # new task: only the task's digest says it is on its way out.
    service = FakeService(NEW, "2026-12-03T10:00:05.000000000Z",
                          [task("running", "2026-12-03T10:00:00.000000000Z", OLD)])
    assert runtime()._state(service).state is ProcessState.RESTARTING


def test_a_task_of_the_current_spec_is_running() -> None:
    service = FakeService(NEW, "2026-12-03T10:00:05.000000000Z", [
        task("shutdown", "2026-12-03T10:00:00.000000000Z", OLD, desired="shutdown"),
        task("running", "2026-12-03T10:00:06.000000000Z", NEW),
    ])
    state = runtime()._state(service)
    assert state.state is ProcessState.RUNNING and state.started_at is not None


def test_a_rolled_back_update_runs_the_old_spec_again() -> None:
    # failure_action=rollback puts the previous spec (and its digest) back on the service.
    service = FakeService(OLD, "2026-12-03T10:01:00.000000000Z", [
        task("running", "2026-12-03T10:00:00.000000000Z", OLD),
        task("failed", "2026-12-03T10:00:06.000000000Z", NEW, desired="shutdown", exit_code=1),
    ], update_state="rollback_completed")
    assert runtime()._state(service).state is ProcessState.RUNNING


def test_a_task_made_before_digests_rode_on_tasks_is_not_judged() -> None:
    service = FakeService(NEW, "2026-12-03T10:00:05.000000000Z",
                          [task("running", "2026-12-03T10:00:00.000000000Z", None)])
    assert runtime()._state(service).state is ProcessState.RUNNING


def test_scaled_up_a_moment_ago_with_only_the_stopped_task_is_restarting() -> None:
    service = FakeService(NEW, "2026-12-03T10:00:05.000000000Z", [
        task("shutdown", "2026-12-03T10:00:00.000000000Z", NEW, desired="shutdown"),
    ])
    assert runtime()._state(service).state is ProcessState.RESTARTING
