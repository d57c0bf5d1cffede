"""The Swarm runtime against a real engine made a one-node swarm (scripts/test.sh does
`docker swarm init` around the suite; run alone, the module does it and leaves the swarm after),
with the locally built runtime image (no registry): the port's contract, alone and pooled, and
the least privilege of a tenant service.

Without an engine the tests are skipped, unless CI is set: there they fail.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from astra.adapters.runtime.docker import LABEL_INSTANCE, LABEL_SCOPE, container_name
from astra.adapters.runtime.pooled import PooledRuntime
from astra.adapters.runtime.swarm import SwarmRuntime
from astra.ports.runtime import ProcessState, RuntimeFailure, RuntimeSpec
from tests.integration.runtime_contract import RuntimeContract, RuntimeFixtures, wait_for
from tests.runtime_image import build_test_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SCOPE = "astra-swarm-tests"
TEST_NETWORK = "astra-tests-swarm"
OWNER = "usr_contract"
PLATFORM_SECRETS = {
    "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-platform-secret",
    "PORTAL_SESSION_SECRET": "platform-session-secret",
    "ASTRA_MASTER_KEY": "platform-master-key",
}


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _ci():
        pytest.fail(f"{reason}; CI must run the Swarm tests (scripts/test.sh, as root)")
    pytest.skip(f"{reason}; as root, run `bash scripts/docker-engine.sh start`")


@pytest.fixture(scope="module")
def swarm_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        _unavailable(f"no Docker engine answers ({type(exc).__name__}: {exc})")
    joined_here = False
    state = (client.info().get("Swarm") or {}).get("LocalNodeState")
    if state != "active":
        try:
            client.swarm.init(advertise_addr="127.0.0.1")
        except docker.errors.APIError as exc:
            _unavailable(f"cannot make this engine a swarm: {exc}")
        joined_here = True
    yield client
    for service in client.services.list(filters={"label": f"{LABEL_SCOPE}={SCOPE}"}):
        try:
            service.remove()
        except docker.errors.NotFound:
            pass  # a pool's service its runtime was removing when the list was made
    if joined_here:
        client.swarm.leave(force=True)
        try:
            client.networks.get("docker_gwbridge").remove()
        except docker.errors.APIError:
            pass
    else:
        try:
            client.networks.get(TEST_NETWORK).remove()
        except docker.errors.APIError:
            pass  # still in use by a task being removed: the swarm's leave takes it
    client.close()


@pytest.fixture(scope="module")
def swarm_image(swarm_client: docker.DockerClient) -> str:
    try:
        build_test_image(client=swarm_client)
    except RuntimeError as exc:
        if _ci():
            raise
        pytest.skip(f"cannot build the runtime image here: {exc}")
    return "astra-runtime:test"


@pytest.fixture(scope="module")
def host_from_tasks(swarm_client: docker.DockerClient, swarm_image: str) -> str:
    """The host address a task reaches: the node's docker_gwbridge gateway (made by the swarm
    init), where servers the bots must reach bind (the platform's internal API would)."""
    SwarmRuntime(swarm_image, network=TEST_NETWORK, scope=SCOPE)._prepare_network(swarm_client)
    attrs = swarm_client.networks.get("docker_gwbridge").attrs
    for config in (attrs.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway") and ":" not in config["Gateway"]:
            return str(config["Gateway"]).split("/")[0]
    pytest.fail("docker_gwbridge has no IPv4 gateway")


@pytest.fixture(scope="class")
def gateway_silent_discord(host_from_tasks: str) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host_from_tasks, 0))
    sock.listen(64)
    try:
        yield f"http://{host_from_tasks}:{sock.getsockname()[1]}/api/v10"
    finally:
        sock.close()


def _swarm_runtime(image: str) -> SwarmRuntime:
    return SwarmRuntime(image, network=TEST_NETWORK, restart_limit=2, restart_delay=0.2,
                        stop_grace_period=3, scope=SCOPE)


def _make_spec(instance_id: str, *, bot_token: str, environment: dict[str, str]) -> RuntimeSpec:
    return RuntimeSpec(instance_id, OWNER, bot_token, f"rt_{instance_id}", dict(environment))


class _OnSwarm:
    @pytest.fixture(scope="class")
    @classmethod
    def silent_discord(cls, gateway_silent_discord: str) -> str:
        return gateway_silent_discord

    @pytest.fixture
    def spec_factory(self) -> Callable[..., RuntimeSpec]:
        return _make_spec


class TestSwarmRuntimeContract(_OnSwarm, RuntimeContract):
    @pytest.fixture
    def runtime(self, swarm_image: str, host_from_tasks: str) -> SwarmRuntime:
        return _swarm_runtime(swarm_image)


class TestPooledSwarmRuntimeContract(_OnSwarm, RuntimeContract):
    @pytest.fixture
    def runtime(self, swarm_image: str, host_from_tasks: str) -> Iterator[PooledRuntime]:
        rt = PooledRuntime(_swarm_runtime(swarm_image), pool_size=50, handoff_timeout=5)
        yield rt
        rt.shutdown()


class TestSwarmSpecifics(_OnSwarm, RuntimeFixtures):
    @pytest.fixture
    def runtime(self, swarm_image: str, host_from_tasks: str) -> SwarmRuntime:
        return _swarm_runtime(swarm_image)

    def test_a_tenant_service_gets_least_privilege(
        self, runtime, instance_ids, running_spec, swarm_client, monkeypatch
    ):
        for name, value in PLATFORM_SECRETS.items():
            monkeypatch.setenv(name, value)
        instance_id = instance_ids()
        runtime.ensure(running_spec(instance_id))
        self.wait_running(runtime, instance_id)
        service = swarm_client.services.get(container_name(instance_id))
        spec = service.attrs["Spec"]
        template = spec["TaskTemplate"]
        container = template["ContainerSpec"]
        assert spec["Labels"][LABEL_INSTANCE] == instance_id
        assert container["Args"] == ["instance", "run", instance_id]
        assert container["User"] not in ("", "root", "0") and not container["User"].startswith("0:")
        assert container["ReadOnly"] is True
        assert container["CapabilityDrop"] == ["ALL"]
        assert container["Init"] is True
        assert [m["Type"] for m in container.get("Mounts") or []] == ["tmpfs"]  # no host path
        env = dict(e.split("=", 1) for e in container["Env"])
        assert not set(PLATFORM_SECRETS) & set(env)
        assert env["ASTRA_INSTANCE_ID"] == instance_id and env["ASTRA_TENANT"] == "1"
        limits = template["Resources"]["Limits"]
        assert limits["MemoryBytes"] == 256 * 1024 * 1024
        assert limits["NanoCPUs"] == 500_000_000 and limits["Pids"] == 128
        assert template["RestartPolicy"]["Condition"] == "on-failure"
        assert template["RestartPolicy"]["MaxAttempts"] == 2
        assert spec["UpdateConfig"]["Order"] == "start-first"
        assert template["Placement"]["Preferences"] == [{"Spread": {"SpreadDescriptor":
                                                                    "node.id"}}]
        assert not (spec.get("EndpointSpec") or {}).get("Ports")  # nothing published
        networks = [swarm_client.networks.get(n["Target"]).name for n in template["Networks"]]
        assert networks == [TEST_NETWORK]
        assert swarm_client.networks.get(TEST_NETWORK).attrs["Attachable"] is False

        # And what the running task itself sees.
        task_container = swarm_client.containers.list(
            filters={"label": f"com.docker.swarm.service.id={service.id}"})[0]
        host = task_container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        assert not host.get("Binds") and host["Privileged"] is False
        code, out = task_container.exec_run(["sh", "-c", "id -u; cat /proc/self/status"])
        uid, status = out.decode().split("\n", 1)
        assert code == 0 and uid.strip() != "0"
        cap_eff = next(line for line in status.splitlines() if line.startswith("CapEff"))
        assert cap_eff.split()[1] == "0000000000000000"

    def test_a_new_image_is_a_rolling_update_start_first(
        self, runtime, instance_ids, running_spec, swarm_client, swarm_image
    ):
        instance_id = instance_ids()
        spec = running_spec(instance_id)
        runtime.ensure(spec)
        first = self.wait_running(runtime, instance_id)
        # Another tag of the same image is enough for the service to roll over.
        swarm_client.images.get(swarm_image).tag("astra-runtime", "test-upgrade")
        try:
            assert runtime.set_image("astra-runtime:test-upgrade") is True
            assert runtime.set_image("astra-runtime:test-upgrade") is False
            service = swarm_client.services.get(container_name(instance_id))
            assert service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith(
                "astra-runtime:test-upgrade")
            second = wait_for(lambda: runtime.status(instance_id),
                              lambda s: s.state is ProcessState.RUNNING
                              and s.started_at != first.started_at, 60, "the rolled task")
            assert second.restarts == 0
        finally:
            runtime.remove(instance_id)
            swarm_client.images.remove("astra-runtime:test-upgrade")

    def test_a_platform_secret_in_the_spec_is_refused(self, runtime, instance_ids):
        spec = _make_spec(instance_ids(), bot_token="x",
                          environment={"MERCADOPAGO_ACCESS_TOKEN": "APP_USR-1"})
        with pytest.raises(RuntimeFailure) as info:
            runtime.ensure(spec)
        assert info.value.reason == "invalid_spec"

    def test_available(self, runtime):
        assert runtime.available() is True


async def test_no_click_goes_unanswered_while_pools_roll_to_a_new_image(
    tmp_path, swarm_client, swarm_image, host_from_tasks
):
    """`astra runtime upgrade` on Swarm: every pool gets a new generation (a new service on the
    new image), the old service is removed once the new one's bots are READY, and buyers who
    click all along are all answered."""
    import asyncio

    from tests.integration.test_pool_handoff import _clicker, _spec, _wait
    from tests.pool_world import pool_world

    world = await pool_world(tmp_path / "data", instances=2, buyers=30, host=host_from_tasks)
    runtime = PooledRuntime(_swarm_runtime(swarm_image), pool_size=10, handoff_timeout=90)
    specs = [_spec(world, shop) for shop in world.shops]
    stop = asyncio.Event()
    results: list = []
    failures: list[str] = []
    clicker = None
    swarm_client.images.get(swarm_image).tag("astra-runtime", "test-rolled")
    try:
        with runtime.batch():
            for spec in specs:
                await asyncio.to_thread(runtime.ensure, spec)
        first = runtime.placement_of(specs[0].instance_id)
        await world.wait_ready([s.instance_id for s in specs], timeout=120)
        clicker = asyncio.create_task(_clicker(world, stop, results, failures))
        await asyncio.sleep(1.0)
        assert await asyncio.to_thread(runtime.set_image, "astra-runtime:test-rolled")
        second = runtime.placement_of(specs[0].instance_id)
        assert second != first
        service = swarm_client.services.get(container_name(second))
        assert service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith(
            "astra-runtime:test-rolled")
        await _wait(lambda: first not in runtime.units.instances(), 120,
                    "the old generation's service to be drained and removed")
        await asyncio.sleep(2.0)
    finally:
        stop.set()
        if clicker is not None:
            await clicker
        for unit in await asyncio.to_thread(runtime.units.instances):
            await asyncio.to_thread(runtime.units.remove, unit)
        await world.close()
        swarm_client.images.remove("astra-runtime:test-rolled")
    assert not failures, "\n".join(failures)
    assert len(results) >= 10
