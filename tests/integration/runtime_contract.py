"""What every ContainerRuntime adapter must do, as one reusable test class.

Subclass `RuntimeContract` in an adapter's test module and give it two fixtures:

    class TestProcessRuntimeContract(RuntimeContract):
        @pytest.fixture
        def runtime(self, tmp_path):
            rt = ProcessRuntime(tmp_path / "data", restart_limit=2, backoff=0.2)
            yield rt
            rt.shutdown()

        @pytest.fixture
        def spec_factory(self, tmp_path):
            def make(instance_id, *, bot_token, environment):
                return RuntimeSpec(instance_id, "usr_contract", bot_token, "rt_key", environment)
            return make

`runtime` is the adapter under test, with a small restart limit (2 or 3) so a crash loop ends
within seconds. `spec_factory(instance_id, *, bot_token, environment)` makes the spec that
adapter gets from the platform. The contract runs `astra instance run` for real, with two specs:

- a *running* one: a well-formed but invalid token and DISCORD_API_BASE pointing at a local
  socket that accepts connections and never answers, so the bot logs `bot.starting` (with its
  instance id) and then waits on its first request: alive, printing, never READY. (Reaching
  READY against the fake Discord is covered by the bot's own tests.)
- a *crashing* one: no token and no data, so `astra instance run` exits non-zero at once.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from astra.ports.runtime import ContainerRuntime, ProcessState, RuntimeSpec, RuntimeState

SpecFactory = Callable[..., RuntimeSpec]

INVALID_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAw.contract.invalid-token-for-runtime-tests"
START_TIMEOUT = 60.0  # a cold container start on a loaded 2-core machine
CRASH_LOOP_TIMEOUT = 120.0


def wait_for(
    check: Callable[[], RuntimeState | list[str] | bool],
    accept: Callable[[object], bool],
    timeout: float,
    what: str,
) -> object:
    """Poll `check()` until `accept(result)`; fail with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if accept(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {result!r}")
        time.sleep(0.25)


class RuntimeFixtures:
    """The contract's fixtures and helpers, for an adapter's own extra tests too. Needs fixtures
    `runtime` and `spec_factory`."""

    @pytest.fixture(scope="class")
    @classmethod
    def silent_discord(cls) -> Iterator[str]:
        """An API base whose server takes connections and never answers a request (the kernel
        completes the handshakes; nobody accepts them)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/api/v10"
        finally:
            sock.close()

    @pytest.fixture
    def instance_ids(self, runtime: ContainerRuntime) -> Iterator[Callable[[], str]]:
        """Fresh instance ids, each removed from the runtime after the test."""
        made: list[str] = []

        def new() -> str:
            made.append(f"ct-{uuid.uuid4().hex[:10]}")
            return made[-1]

        yield new
        for instance_id in made:
            try:
                runtime.remove(instance_id)
            except Exception:  # cleanup must not hide the failure
                pass

    @pytest.fixture
    def running_spec(
        self, spec_factory: SpecFactory, silent_discord: str
    ) -> Callable[..., RuntimeSpec]:
        def make(instance_id: str, bot_token: str = INVALID_TOKEN) -> RuntimeSpec:
            return spec_factory(
                instance_id,
                bot_token=bot_token,
                environment={
                    "DISCORD_API_BASE": silent_discord,
                    # Never reached: the bot asks its platform nothing before READY.
                    "ASTRA_PLATFORM_URL": silent_discord.split("/api")[0],
                    "ASTRA_LOG_FORMAT": "json",
                },
            )

        return make

    @pytest.fixture
    def crashing_spec(self, spec_factory: SpecFactory) -> Callable[[str], RuntimeSpec]:
        return lambda instance_id: spec_factory(instance_id, bot_token="", environment={})

    @staticmethod
    def wait_running(runtime: ContainerRuntime, instance_id: str) -> RuntimeState:
        return wait_for(  # type: ignore[return-value]
            lambda: runtime.status(instance_id),
            lambda s: s.state is ProcessState.RUNNING,
            START_TIMEOUT,
            f"{instance_id} running",
        )

    @staticmethod
    def wait_logged(runtime: ContainerRuntime, instance_id: str) -> list[str]:
        """Until the instance printed its start-up line (it names the instance)."""
        return wait_for(  # type: ignore[return-value]
            lambda: runtime.logs(instance_id, 200),
            lambda lines: any("bot.starting" in line and instance_id in line for line in lines),
            START_TIMEOUT,
            f"{instance_id}'s start-up line in its logs",
        )


class RuntimeContract(RuntimeFixtures):
    """The ContainerRuntime port's contract. Needs fixtures `runtime` and `spec_factory`."""

    def test_ensure_starts_it(self, runtime, instance_ids, running_spec):
        instance_id = instance_ids()
        before = time.time()
        state = runtime.ensure(running_spec(instance_id))
        assert state.state in (ProcessState.RUNNING, ProcessState.RESTARTING)
        state = self.wait_running(runtime, instance_id)
        assert state.restarts == 0
        assert state.exit_code is None
        assert state.error is None
        assert state.started_at is not None and before - 5 <= state.started_at <= time.time() + 5
        assert instance_id in runtime.instances()
        # It stays up (the bot waits on the silent API; it does not crash and come back).
        self.wait_logged(runtime, instance_id)
        state = runtime.status(instance_id)
        assert state.state is ProcessState.RUNNING and state.restarts == 0

    def test_logs_hold_what_the_instance_printed(self, runtime, instance_ids, running_spec):
        instance_id = instance_ids()
        runtime.ensure(running_spec(instance_id))
        lines = self.wait_logged(runtime, instance_id)
        assert all(isinstance(line, str) and "\n" not in line for line in lines)
        # Redacted by the bot's logger: the token is never in its output.
        assert not any(INVALID_TOKEN in line for line in lines)
        assert len(runtime.logs(instance_id, 1)) == 1

    def test_restart(self, runtime, instance_ids, running_spec):
        instance_id = instance_ids()
        runtime.ensure(running_spec(instance_id))
        first = self.wait_running(runtime, instance_id)
        time.sleep(1.1)  # start times with a coarse clock must still differ
        state = runtime.restart(instance_id)
        assert state.state in (ProcessState.RUNNING, ProcessState.RESTARTING)
        second = self.wait_running(runtime, instance_id)
        assert second.started_at != first.started_at or second.restarts > first.restarts

    def test_stop_then_ensure_starts_it_again(self, runtime, instance_ids, running_spec):
        instance_id = instance_ids()
        spec = running_spec(instance_id)
        runtime.ensure(spec)
        self.wait_running(runtime, instance_id)
        state = runtime.stop(instance_id)
        assert state.state is ProcessState.EXITED
        assert state.error is None  # stopped on purpose: not a crash
        assert runtime.status(instance_id).state is ProcessState.EXITED
        state = runtime.ensure(spec)
        assert state.state in (ProcessState.RUNNING, ProcessState.RESTARTING)
        self.wait_running(runtime, instance_id)

    def test_remove(self, runtime, instance_ids, running_spec):
        instance_id = instance_ids()
        spec = running_spec(instance_id)
        runtime.ensure(spec)
        self.wait_running(runtime, instance_id)
        runtime.remove(instance_id)
        assert runtime.status(instance_id).state is ProcessState.MISSING
        assert instance_id not in runtime.instances()
        runtime.remove(instance_id)  # again: nothing to do, no error

    def test_ensure_with_a_changed_spec_replaces_it(self, runtime, instance_ids, running_spec):
        instance_id = instance_ids()
        spec = running_spec(instance_id)
        runtime.ensure(spec)
        first = self.wait_running(runtime, instance_id)
        time.sleep(1.1)
        # The same spec again: left alone.
        again = runtime.ensure(spec)
        assert again.state is ProcessState.RUNNING
        assert again.started_at == first.started_at
        # A new token: a new runtime.
        runtime.ensure(running_spec(instance_id, bot_token=INVALID_TOKEN + "-rotated"))
        second = self.wait_running(runtime, instance_id)
        assert second.started_at != first.started_at
        assert second.restarts == 0

    def test_crash_loop_ends_exited_with_a_reason(self, runtime, instance_ids, crashing_spec):
        instance_id = instance_ids()
        spec = crashing_spec(instance_id)
        runtime.ensure(spec)
        state = wait_for(
            lambda: runtime.status(instance_id),
            lambda s: s.state is ProcessState.EXITED and s.error is not None,
            CRASH_LOOP_TIMEOUT,
            f"{instance_id} to give up restarting",
        )
        assert state.error == "crash_loop"
        assert state.exit_code not in (None, 0)
        assert state.restarts >= 1
        # A monitor calling ensure() again with the same spec does not revive the loop.
        state = runtime.ensure(spec)
        assert state.state is ProcessState.EXITED and state.error == "crash_loop"
        assert instance_id in runtime.instances()

    def test_an_unknown_instance_is_missing(self, runtime, instance_ids):
        instance_id = instance_ids()
        assert runtime.status(instance_id).state is ProcessState.MISSING
        assert runtime.stop(instance_id).state is ProcessState.MISSING
        assert runtime.restart(instance_id).state is ProcessState.MISSING
        assert runtime.logs(instance_id) == []
        assert instance_id not in runtime.instances()
        runtime.remove(instance_id)
