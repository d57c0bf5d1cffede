"""The process runtime passes the same contract as the Docker one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
                               "k" * 43, str(tmp_path / "data" / "instances" / instance_id),
                               environment)

        return make
