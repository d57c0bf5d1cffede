"""The Docker runtime against a real engine (`bash scripts/docker-engine.sh start`), with an
image built here from this checkout (tests/runtime_image.py): the port's contract, the least
privilege a tenant container gets, and a clear error without an engine.

Without an engine the engine tests are skipped, unless CI is set: there they fail.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from astra.adapters.runtime.docker import (
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_SCOPE,
    LABEL_SPEC,
    DockerRuntime,
    container_name,
)
from astra.ports.runtime import (
    ProcessState,
    RuntimeFailure,
    RuntimeSpec,
    RuntimeUnavailable,
)
from tests.integration.runtime_contract import (
    INVALID_TOKEN,
    START_TIMEOUT,
    RuntimeContract,
    RuntimeFixtures,
    wait_for,
)
from tests.runtime_image import build_test_image

RESTART_LIMIT = 2
# A developer's `astra serve` on the same engine removes unscoped containers it does not know.
SCOPE = "astra-tests"
# The tests' own runtime network (never the platform's default `astra-runtimes`), removed after.
TEST_NETWORK = "astra-tests-runtimes"
OWNER = "usr_contract"
PLATFORM_SECRETS = {
    "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-platform-secret",
    "MERCADOPAGO_WEBHOOK_SECRET": "platform-webhook-secret",
    "PORTAL_SESSION_SECRET": "platform-session-secret",
    "ADMIN_PANEL_TOKEN": "platform-admin-token",
    "ASTRA_MASTER_KEY": "platform-master-key",
}


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure means "no engine here"
        reason = f"no Docker engine answers ({type(exc).__name__}: {exc})"
        if _ci():
            pytest.fail(f"{reason}; CI must run the Docker tests (scripts/docker-engine.sh start)")
        pytest.skip(f"{reason}; as root, run `bash scripts/docker-engine.sh start`")
    yield client
    client.close()


@pytest.fixture(scope="module")
def runtime_image(docker_client: docker.DockerClient) -> str:
    try:
        build_test_image(client=docker_client)
    except RuntimeError as exc:  # busybox missing, say
        if _ci():
            raise
        pytest.skip(f"cannot build the runtime image here: {exc}")
    return "astra-runtime:test"


def remove_test_network(client: docker.DockerClient, name: str, scope: str) -> None:
    """Remove a network a test's runtime made, and only if it carries that test's scope."""
    try:
        network = client.networks.get(name)
    except docker.errors.NotFound:
        return
    if (network.attrs.get("Labels") or {}).get(LABEL_SCOPE) == scope:
        network.remove()


@pytest.fixture(scope="module")
def runtime_gateway(docker_client: docker.DockerClient, runtime_image: str) -> Iterator[str]:
    """The tests' runtime network's gateway: the host address a bot container reaches, where
    servers its bots must reach bind (the platform's internal API does the same)."""
    gateway = DockerRuntime(runtime_image, network=TEST_NETWORK, scope=SCOPE).network_gateway()
    yield gateway
    for container in docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_SCOPE}={SCOPE}", "network": TEST_NETWORK}
    ):
        container.remove(force=True)
    remove_test_network(docker_client, TEST_NETWORK, SCOPE)


@pytest.fixture
def docker_runtime(runtime_image: str, runtime_gateway: str) -> DockerRuntime:
    return DockerRuntime(
        runtime_image, network=TEST_NETWORK, restart_limit=RESTART_LIMIT, stop_timeout=3,
        scope=SCOPE,
    )


@pytest.fixture(scope="class")
def gateway_silent_discord(runtime_gateway: str) -> Iterator[str]:
    """The contract's silent Discord, bound on the runtime network's gateway (a host address):
    a container cannot reach the host's loopback, and a refused connection would end the bot
    instead of leaving it waiting."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((runtime_gateway, 0))
    sock.listen(64)
    try:
        yield f"http://{runtime_gateway}:{sock.getsockname()[1]}/api/v10"
    finally:
        sock.close()


@pytest.fixture
def make_spec(tmp_path: Path) -> Callable[..., RuntimeSpec]:
    def make(
        instance_id: str, *, bot_token: str, environment: dict[str, str] | None = None
    ) -> RuntimeSpec:
        return RuntimeSpec(
            instance_id=instance_id,
            owner_id=OWNER,
            bot_token=bot_token,
            instance_key=f"rt_{instance_id}",
            environment=dict(environment or {}),
        )

    return make


@pytest.mark.docker
class TestDockerRuntimeContract(RuntimeContract):
    @pytest.fixture
    def runtime(self, docker_runtime: DockerRuntime) -> DockerRuntime:
        return docker_runtime

    @pytest.fixture(scope="class")
    @classmethod
    def silent_discord(cls, gateway_silent_discord: str) -> str:
        return gateway_silent_discord

    @pytest.fixture
    def spec_factory(self, make_spec: Callable[..., RuntimeSpec]) -> Callable[..., RuntimeSpec]:
        return make_spec


@pytest.mark.docker
class TestDockerSpecifics(RuntimeFixtures):
    """What only a container shows: its isolation, as `docker inspect` and the container see it."""

    @pytest.fixture
    def runtime(self, docker_runtime: DockerRuntime) -> DockerRuntime:
        return docker_runtime

    @pytest.fixture(scope="class")
    @classmethod
    def silent_discord(cls, gateway_silent_discord: str) -> str:
        return gateway_silent_discord

    @pytest.fixture
    def spec_factory(self, make_spec: Callable[..., RuntimeSpec]) -> Callable[..., RuntimeSpec]:
        return make_spec

    def test_a_tenant_container_gets_least_privilege(
        self, runtime, instance_ids, running_spec, docker_client, monkeypatch
    ):
        # The platform's own secrets are in its environment: none may reach the container.
        for name, value in PLATFORM_SECRETS.items():
            monkeypatch.setenv(name, value)
        instance_id = instance_ids()
        spec = running_spec(instance_id)
        runtime.ensure(spec)
        self.wait_running(runtime, instance_id)
        container = docker_client.containers.get(container_name(instance_id))
        attrs = container.attrs
        host, config = attrs["HostConfig"], attrs["Config"]

        assert container.labels[LABEL_INSTANCE] == instance_id
        assert container.labels[LABEL_OWNER] == OWNER
        assert len(container.labels[LABEL_SPEC]) == 64
        assert config["Cmd"] == ["instance", "run", instance_id]

        assert host["Memory"] == 256 * 1024 * 1024
        assert host["MemorySwap"] == host["Memory"]
        assert host["NanoCpus"] == 500_000_000
        assert host["PidsLimit"] == 128
        assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": RESTART_LIMIT}
        assert host["Init"] is True
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert not host.get("CapAdd")
        assert host["Privileged"] is False
        assert "no-new-privileges" in host["SecurityOpt"]
        assert set(host["Tmpfs"]) == {"/tmp"}
        # Its own bridge, nothing else: never the host's network namespace.
        assert host["NetworkMode"] == TEST_NETWORK
        assert set(attrs["NetworkSettings"]["Networks"]) == {TEST_NETWORK}
        assert not host.get("PortBindings")

        # No data at all: the bot reaches its data through the platform's internal API.
        mounts = attrs["Mounts"]
        assert mounts == []
        assert not host.get("Binds") or all("docker.sock" not in b for b in host["Binds"])
        assert not host.get("VolumesFrom")

        env = dict(item.split("=", 1) for item in config["Env"])
        assert env["ASTRA_INSTANCE_ID"] == instance_id
        assert env["ASTRA_BOT_TOKEN"] == INVALID_TOKEN
        assert env["ASTRA_INSTANCE_KEY"] == spec.instance_key
        assert "ASTRA_VAULT_KEY" not in env and "ASTRA_DATA_DIR" not in env
        assert env["ASTRA_TENANT"] == "1"
        assert env["DISCORD_API_BASE"] == spec.environment["DISCORD_API_BASE"]
        for name in env:
            assert not name.startswith("MERCADOPAGO_"), name
            assert name not in ("PORTAL_SESSION_SECRET", "ADMIN_PANEL_TOKEN", "ASTRA_MASTER_KEY")
        assert not set(PLATFORM_SECRETS.values()) & set(env.values())
        # Only what the image sets and what the spec gives: nothing else of the host's.
        image_env = {
            item.split("=", 1)[0]
            for item in docker_client.images.get(runtime.image).attrs["Config"]["Env"]
        }
        expected = (
            image_env
            | set(spec.environment)
            | {
                "ASTRA_TENANT",
                "ASTRA_INSTANCE_ID",
                "ASTRA_BOT_TOKEN",
                "ASTRA_INSTANCE_KEY",
            }
        )
        assert set(env) == expected
        # The bot's redacting logger keeps the token out of what `docker logs` shows.
        assert not any(INVALID_TOKEN in line for line in runtime.logs(instance_id, 500))

        # As the container sees itself: not root, a read-only root, only a tmpfs writable.
        user = config["User"]
        assert user and user.split(":")[0] not in ("", "0", "root")

        def sh(script: str) -> tuple[int, str]:
            code, out = container.exec_run(["sh", "-c", script])
            return code, out.decode("utf-8", "replace").strip()

        assert sh("id -u") == (0, "10001")
        code, _ = sh("touch /probe")
        assert code != 0
        assert sh("touch /tmp/probe && echo ok") == (0, "ok")
        # No data directory of any tenant's: not its own, not another's.
        assert sh("test -e /data; echo $?")[1] == "1"
        assert sh("test -e /var/run/docker.sock || test -e /run/docker.sock; echo $?")[1] == "1"

    def test_same_spec_keeps_the_container_a_new_one_replaces_it(
        self, runtime, instance_ids, running_spec, docker_client
    ):
        instance_id = instance_ids()
        spec = running_spec(instance_id)
        runtime.ensure(spec)
        first = docker_client.containers.get(container_name(instance_id))
        runtime.ensure(spec)
        assert docker_client.containers.get(container_name(instance_id)).id == first.id
        runtime.ensure(running_spec(instance_id, bot_token=INVALID_TOKEN + "-new"))
        second = docker_client.containers.get(container_name(instance_id))
        assert second.id != first.id
        assert second.labels[LABEL_SPEC] != first.labels[LABEL_SPEC]
        # The label is a digest: the token is nowhere in the container's metadata but its env.
        assert INVALID_TOKEN not in str(second.labels)
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(first.id)

    def test_a_crash_loop_restarts_then_gives_up(self, runtime, instance_ids, crashing_spec):
        instance_id = instance_ids()
        runtime.ensure(crashing_spec(instance_id))
        state = wait_for(
            lambda: runtime.status(instance_id),
            lambda s: s.error is not None,
            120,
            "the crash loop to end",
        )
        assert state.state is ProcessState.EXITED
        assert (state.error, state.restarts, state.exit_code) == ("crash_loop", RESTART_LIMIT, 1)
        # What the instance said before it gave up is there to read.
        assert any("astra" in line for line in runtime.logs(instance_id))
        # restart() gives it a fresh chance (Docker resets its restart count).
        state = runtime.restart(instance_id)
        assert state.error is None and state.restarts == 0

    def test_a_missing_image_is_a_clear_failure(self, runtime_image, instance_ids, make_spec):
        runtime = DockerRuntime(
            "astra-runtime:does-not-exist", network=TEST_NETWORK, restart_limit=1, scope=SCOPE
        )
        with pytest.raises(RuntimeFailure) as info:
            runtime.ensure(make_spec(instance_ids(), bot_token=INVALID_TOKEN))
        assert info.value.reason == "image_missing"
        assert "astra-runtime:does-not-exist" in str(info.value)

    def test_a_platform_secret_in_the_spec_is_refused(self, runtime, instance_ids, make_spec):
        instance_id = instance_ids()
        for name in ("MERCADOPAGO_ACCESS_TOKEN", "ASTRA_MASTER_KEY", "PORTAL_SESSION_SECRET"):
            spec = make_spec(instance_id, bot_token=INVALID_TOKEN, environment={name: "x"})
            with pytest.raises(RuntimeFailure) as info:
                runtime.ensure(spec)
            assert info.value.reason == "invalid_spec"
        assert runtime.status(instance_id).state is ProcessState.MISSING

    def test_a_scope_sees_only_its_own_containers(
        self, runtime, runtime_image, instance_ids, crashing_spec
    ):
        instance_id = instance_ids()
        runtime.ensure(crashing_spec(instance_id))
        other = DockerRuntime(runtime_image, scope="another-platform")
        unscoped = DockerRuntime(runtime_image)
        assert instance_id in runtime.instances()
        assert instance_id not in other.instances()
        assert instance_id not in unscoped.instances()
        for stranger in (other, unscoped):
            with pytest.raises(RuntimeFailure, match="did not make"):
                stranger.remove(instance_id)
        assert runtime.status(instance_id).state is not ProcessState.MISSING

    def test_available(self, runtime):
        assert runtime.available() is True

    def test_logs_tail(self, runtime, instance_ids, running_spec):
        instance_id = instance_ids()
        runtime.ensure(running_spec(instance_id))
        self.wait_logged(runtime, instance_id)
        # Our start-up line, then interactions.py's start-up warning as the client is made.
        wait_for(lambda: runtime.logs(instance_id, 200), lambda lines: len(lines) >= 2,
                 START_TIMEOUT, f"{instance_id}'s second log line")
        assert runtime.logs(instance_id, 0) == []
        assert len(runtime.logs(instance_id, 2)) == 2


# -- without an engine (no marker: these run everywhere) ---------------------------------------

NO_ENGINE = {
    "pinned API version": lambda: docker.DockerClient(
        base_url="unix:///tmp/astra-no-docker.sock", version="1.41"
    ),
    "from_env": lambda: docker.from_env(
        environment={"DOCKER_HOST": "unix:///tmp/astra-no-docker.sock"}
    ),
}


@pytest.mark.parametrize("factory", NO_ENGINE.values(), ids=NO_ENGINE.keys())
def test_without_an_engine_every_method_says_docker_is_unavailable(factory, tmp_path):
    runtime = DockerRuntime("astra-runtime:test", client_factory=factory)
    spec = RuntimeSpec("shop-1", OWNER, INVALID_TOKEN, "rt_ik")
    calls = {
        "ensure": lambda: runtime.ensure(spec),
        "stop": lambda: runtime.stop("shop-1"),
        "restart": lambda: runtime.restart("shop-1"),
        "remove": lambda: runtime.remove("shop-1"),
        "status": lambda: runtime.status("shop-1"),
        "logs": lambda: runtime.logs("shop-1"),
        "instances": runtime.instances,
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeUnavailable, match=r"^docker unavailable: ") as info:
            call()
        assert INVALID_TOKEN not in str(info.value), name
    assert runtime.available() is False
    assert not (tmp_path / "shop-1").exists()  # nothing done on the host either


@pytest.mark.parametrize("bad", ["", "../etc", "Shop", "a", "x" * 41, "shop/1"])
def test_an_invalid_instance_id_never_reaches_docker(bad, tmp_path):
    def no_engine() -> docker.DockerClient:
        raise AssertionError("docker must not be called")

    runtime = DockerRuntime("astra-runtime:test", client_factory=no_engine)
    with pytest.raises(RuntimeFailure) as info:
        runtime.status(bad)
    assert info.value.reason == "invalid_spec"
    spec = RuntimeSpec(bad, OWNER, INVALID_TOKEN, "rt_ik")
    with pytest.raises(RuntimeFailure):
        runtime.ensure(spec)
