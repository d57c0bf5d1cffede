"""The process runtime passes the same contract as the Docker one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from astra.adapters.runtime.pooled import PooledRuntime
from astra.adapters.runtime.process import ProcessRuntime
from astra.ports.runtime import RuntimeSpec
from tests.integration.runtime_contract import RuntimeContract

pytestmark = pytest.mark.slow


class TestProcessRuntimeContract(RuntimeContract):
    @pytest.fixture
    def runtime(self, tmp_path: Path) -> Iterator[ProcessRuntime]:
        rt = ProcessRuntime(tmp_path / "data", restart_limit=2, backoff=0.2)
        yield rt
        rt.shutdown()

    @pytest.fixture
    def spec_factory(self, tmp_path: Path) -> Callable[..., RuntimeSpec]:
        def make(instance_id: str, *, bot_token: str, environment: dict[str, str]
                 ) -> RuntimeSpec:
            return RuntimeSpec(instance_id, "usr_contract", bot_token, "rt_credential",
                               environment)

        return make


def test_a_runtime_left_by_a_dead_platform_is_replaced_not_doubled(tmp_path: Path) -> None:
    spec = RuntimeSpec("ct-orphan", "usr", "", "rt",
                       {"DISCORD_API_BASE": "http://127.0.0.1:9/api/v10"})
    first = ProcessRuntime(tmp_path / "data", restart_limit=0)
    # A spec without a token exits at once; keep a long-lived one instead: a sleeping stand-in
    # started the way the runtime starts bots, recorded in the pid file.
    import subprocess
    import sys

    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "instance",
                               "run", "ct-orphan"], start_new_session=True)
    # Popen returns after fork, maybe before exec: until then /proc/<pid>/cmdline is the
    # test's own (or empty), and the runtime rightly does not take it for its bot.
    cmdline = Path(f"/proc/{orphan.pid}/cmdline")
    deadline = time.monotonic() + 10
    while b"ct-orphan" not in cmdline.read_bytes():
        assert time.monotonic() < deadline, "the stand-in never exec'd"
        time.sleep(0.01)
    pid_file = tmp_path / "data" / "instances" / "ct-orphan" / "runtime.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(str(orphan.pid))
    try:
        first.ensure(spec)
        assert orphan.wait(timeout=10) is not None  # the orphan was ended before the start
        assert pid_file.read_text() != str(orphan.pid)
    finally:
        first.shutdown()
        if orphan.poll() is None:
            orphan.kill()


class TestPooledProcessRuntimeContract(RuntimeContract):
    """The same contract with every instance in a pool (`astra runtime pool`): one process runs
    the bots of the instances that share an environment."""

    @pytest.fixture
    def runtime(self, tmp_path: Path) -> Iterator[PooledRuntime]:
        rt = PooledRuntime(ProcessRuntime(tmp_path / "data", restart_limit=2, backoff=0.2),
                           pool_size=50, handoff_timeout=5)
        yield rt
        rt.shutdown()

    @pytest.fixture
    def spec_factory(self, tmp_path: Path) -> Callable[..., RuntimeSpec]:
        def make(instance_id: str, *, bot_token: str, environment: dict[str, str]
                 ) -> RuntimeSpec:
            return RuntimeSpec(instance_id, "usr_contract", bot_token, "rt_credential",
                               environment)

        return make
