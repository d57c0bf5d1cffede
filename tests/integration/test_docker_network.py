"""The runtime network, attacked from inside a bot container.

A real `astra serve` (portal, admin panel, internal API, workers) runs here with the Docker
runtime on its own test network, and real bot containers made by that runtime are the attacker
and the victim. From inside the attacker (the image's own Python for requests: busybox-static's
`wget` segfaults here; busybox `httpd` for servers), the admin panel, the portal, a service on
the host's loopback and the other bot must all be out of reach, on every address
the attacker might try; the internal API must answer. Each "out of reach" has its control: the
same server answers from where it should (the host, the victim itself), so a failure is the
network's doing, not a server that was never up.

Outbound internet (Discord) cannot be shown here (this machine reaches none); the network is
checked to masquerade, which is what gives the bridge its way out.
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest
from dependency_injector import providers

from astra.adapters.runtime.docker import (
    ICC_OPTION,
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_SCOPE,
    LABEL_SPEC,
    DockerRuntime,
    container_name,
)
from astra.container import Container, build_container
from astra.entrypoints.serve import serve
from astra.ports.runtime import ProcessState, RuntimeFailure, RuntimeSpec
from astra.settings import Settings, SettingsError, ensure_dev_secrets
from tests.integration.runtime_contract import INVALID_TOKEN, START_TIMEOUT, wait_for
from tests.integration.test_docker_runtime import (  # noqa: F401
    docker_client,
    remove_test_network,
    runtime_image,
)
from tests.platform_thread import free_port

pytestmark = [pytest.mark.docker]
SCOPE = "astra-tests-network"
# The bots' containers carry a scope of their own: the running platform's monitor would remove
# containers of its scope that its (empty) store knows nothing about.
BOTS_SCOPE = "astra-tests-network-bots"
NETWORK = "astra-tests-net-attack"
FETCH_TIMEOUT = 3  # seconds; a dropped packet must not hang the test


class ServeThread:
    """`astra serve` on its own loop in a thread, as the platform runs it."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.ports: dict[str, int] = {}
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()

            def on_ready(ports: dict[str, int]) -> None:
                self.ports = dict(ports)
                self.ready.set()

            await serve(self.container, stop=self.stop_event, on_ready=on_ready)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # reported to the test that waits for it
            self.error = exc
            self.ready.set()

    def start(self) -> dict[str, int]:
        self.thread.start()
        assert self.ready.wait(60), "serve did not start"
        if self.error is not None:
            raise self.error
        return self.ports

    def stop(self) -> None:
        if self.stop_event is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)


class LoopbackSecret:
    """Some other service of the host's, on 127.0.0.1 only (a database, a metrics page...)."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"host-loopback-secret"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Platform:
    container: Container
    runtime: DockerRuntime
    ports: dict[str, int]
    gateway: str
    silent_discord: str
    made: list[str]

    def bot(self, label: str) -> tuple[str, object]:
        """A bot container made by the platform's runtime, with the environment the platform
        gives every runtime (its internal API's URL included), running and waiting on Discord."""
        instance_id = f"nt-{label}-{uuid.uuid4().hex[:6]}"
        self.made.append(instance_id)
        environment = self.container.monitor().environment()  # type: ignore[operator]
        environment["DISCORD_API_BASE"] = self.silent_discord
        spec = RuntimeSpec(instance_id, "usr_net", INVALID_TOKEN, f"rt_{instance_id}",
                           environment)
        self.runtime.ensure(spec)
        wait_for(lambda: self.runtime.status(instance_id),
                 lambda s: s.state is ProcessState.RUNNING, START_TIMEOUT, f"{instance_id} up")
        box = docker.from_env().containers.get(container_name(instance_id))
        return instance_id, box


def sh(box: object, script: str) -> tuple[int, str]:
    code, out = box.exec_run(["sh", "-c", script])  # type: ignore[attr-defined]
    return code, out.decode("utf-8", "replace").strip()


_FETCH = f"""
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout={FETCH_TIMEOUT}) as answer:
        print(answer.status, answer.read().decode("utf-8", "replace"))
except Exception as exc:
    print(type(exc).__name__, exc)
    sys.exit(1)
"""


def fetch(box: object, url: str) -> tuple[int, str]:
    """What the bot gets from `url`: 0 and the status and body, or 1 and why not."""
    code, out = box.exec_run(["python", "-c", _FETCH, url])  # type: ignore[attr-defined]
    return code, out.decode("utf-8", "replace").strip()


def host_addresses() -> list[str]:
    """Every IPv4 address of the host but loopback: all of them route from a bridge."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    found = [line.split()[3].split("/")[0] for line in out.splitlines()]
    return [a for a in found if not a.startswith("127.")]


@pytest.fixture(scope="module")
def platform(
    docker_client: docker.DockerClient,  # noqa: F811
    runtime_image: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    platform_runtime = DockerRuntime(runtime_image, network=NETWORK, scope=SCOPE)
    # Made like the platform's runtime (same network, same container settings).
    runtime = DockerRuntime(runtime_image, network=NETWORK, scope=BOTS_SCOPE, restart_limit=0,
                            stop_timeout=2)
    settings = ensure_dev_secrets(Settings(
        data_dir=tmp_path_factory.mktemp("net") / "data", runtime="docker",
        portal_port=0, admin_port=0, internal_port=0,
    ))
    container = build_container(settings)
    container.runtime.override(providers.Object(platform_runtime))
    server = ServeThread(container)
    made: list[str] = []
    try:
        ports = server.start()
        gateway = platform_runtime.network_gateway()
        # The bots' Discord: silent (they wait on it, alive), and on the gateway, since the
        # host's loopback does not exist for them.
        silent = socket.socket()
        silent.bind((gateway, 0))
        silent.listen(16)
        try:
            yield Platform(container, runtime, ports, gateway,
                           f"http://{gateway}:{silent.getsockname()[1]}/api/v10", made)
        finally:
            silent.close()
    finally:
        for instance_id in made:
            try:
                runtime.remove(instance_id)
            except Exception:  # cleanup must not hide the failure
                pass
        server.stop()
        remove_test_network(docker_client, NETWORK, SCOPE)


def test_from_a_bot_only_the_internal_api_is_reachable(platform: Platform) -> None:
    ports, gateway = platform.ports, platform.gateway
    secret = LoopbackSecret()
    try:
        _, attacker = platform.bot("attacker")
        # The platform pointed its runtimes at its internal listener on the gateway.
        env = dict(item.split("=", 1) for item in attacker.attrs["Config"]["Env"])
        assert env["ASTRA_PLATFORM_URL"] == f"http://{gateway}:{ports['internal']}"

        # It answers the bot, and holds nothing of the portal's or the admin's.
        code, body = fetch(attacker, f"http://{gateway}:{ports['internal']}/health")
        assert code == 0 and '"service":"internal"' in body.replace(" ", ""), body
        for path in ("/api/status", "/admin", "/api/me", "/metrics"):
            code, body = fetch(attacker, f"http://{gateway}:{ports['internal']}{path}")
            assert code != 0 and "404" in body, (path, body)

        # Controls: the panels and the host's loopback service are up, for the host.
        for port in (ports["admin"], ports["portal"], secret.port):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                assert resp.status == 200
        # The attacker tries every address it could aim at: its own loopback (host mode
        # would make it the host's), the gateway, and every other address of the host.
        targets = ["127.0.0.1", gateway, *host_addresses()]
        for address in targets:
            for name, port in (("admin", ports["admin"]), ("portal", ports["portal"]),
                               ("loopback service", secret.port)):
                code, body = fetch(attacker, f"http://{address}:{port}/health")
                assert code != 0, f"{name} reached from a bot at {address}:{port}: {body}"
                assert "host-loopback-secret" not in body and '"service"' not in body
    finally:
        secret.close()


def test_a_bot_cannot_reach_another_bot(platform: Platform) -> None:
    _, victim = platform.bot("victim")
    _, attacker = platform.bot("attacker")
    # The victim serves something on its bridge address (busybox httpd, in its tmpfs).
    assert sh(victim, "echo victim-data > /tmp/index.html && httpd -p 8080 -h /tmp && echo ok"
              ) == (0, "ok")
    victim.reload()
    victim_ip = victim.attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    assert victim_ip
    # Controls: the victim's server answers, to itself and to the host (the platform may reach
    # containers; containers may not reach each other).
    wait_for(lambda: fetch(victim, "http://127.0.0.1:8080/"), lambda r: r[0] == 0, 10,
             "the victim's server")
    with urllib.request.urlopen(f"http://{victim_ip}:8080/", timeout=5) as resp:
        assert resp.read().strip() == b"victim-data"
    for target in (victim_ip, victim.name):  # by address, and by the name Docker's DNS knows
        code, body = fetch(attacker, f"http://{target}:8080/")
        assert code != 0 and "victim-data" not in body, (target, body)


def test_a_bot_cannot_bind_a_host_port(platform: Platform) -> None:
    _, attacker = platform.bot("binder")
    port = free_port()  # free on the host now
    assert sh(attacker, f"echo bound > /tmp/index.html && httpd -p {port} -h /tmp && echo ok"
              ) == (0, "ok")
    # It listens, in its own namespace only.
    wait_for(lambda: fetch(attacker, f"http://127.0.0.1:{port}/"), lambda r: r[0] == 0, 10,
             "the bot's own server")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3)


def test_the_network_is_ours_isolated_and_the_container_is_on_it_alone(
    platform: Platform, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    _, bot = platform.bot("inspect")
    host = bot.attrs["HostConfig"]
    assert host["NetworkMode"] == NETWORK != "host"
    assert set(bot.attrs["NetworkSettings"]["Networks"]) == {NETWORK}
    assert not host.get("PortBindings")
    network = docker_client.networks.get(NETWORK)
    assert network.attrs["Driver"] == "bridge"
    assert network.attrs["Options"][ICC_OPTION] == "false"
    assert network.attrs["Internal"] is False  # the bots' way out to Discord
    assert network.attrs["Options"].get("com.docker.network.bridge.enable_ip_masquerade",
                                        "true") == "true"
    assert network.attrs["Labels"][LABEL_SCOPE] == SCOPE
    # Idempotent: a second runtime (a platform restart) uses it as it is.
    again = DockerRuntime(platform.runtime.image, network=NETWORK, scope=SCOPE)
    assert again.network_gateway() == platform.gateway
    assert docker_client.networks.get(NETWORK).id == network.id


def test_ensure_replaces_an_old_host_mode_container(
    platform: Platform, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    runtime = platform.runtime
    instance_id = f"nt-old-{uuid.uuid4().hex[:6]}"
    platform.made.append(instance_id)
    spec = RuntimeSpec(instance_id, "usr_net", INVALID_TOKEN, f"rt_{instance_id}",
                       {"DISCORD_API_BASE": platform.silent_discord})
    image = docker_client.images.get(runtime.image)
    # As an older platform left it: host networking, and labels that even match today's spec
    # (so only the network tells it apart).
    old = docker_client.containers.create(
        image.id, command=["instance", "run", instance_id], name=container_name(instance_id),
        network_mode="host",
        labels={LABEL_INSTANCE: instance_id, LABEL_OWNER: "usr_net",
                LABEL_SPEC: runtime._spec_hash(spec, image.id), LABEL_SCOPE: BOTS_SCOPE},
    )
    runtime.ensure(spec)
    new = docker_client.containers.get(container_name(instance_id))
    assert new.id != old.id
    assert new.attrs["HostConfig"]["NetworkMode"] == NETWORK
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(old.id)


def test_a_network_that_lets_containers_talk_is_refused(
    runtime_image: str, docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    name = f"astra-tests-icc-{uuid.uuid4().hex[:6]}"
    # Someone's ordinary bridge under the name the platform was told to use.
    docker_client.networks.create(name, driver="bridge", labels={LABEL_SCOPE: SCOPE})
    try:
        runtime = DockerRuntime(runtime_image, network=name, scope=SCOPE)
        spec = RuntimeSpec("nt-icc-refused", "usr_net", INVALID_TOKEN, "rt_x", {})
        with pytest.raises(RuntimeFailure, match=ICC_OPTION):
            runtime.ensure(spec)
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(container_name("nt-icc-refused"))
        # Left as it was: the platform never loosens or takes over a network.
        assert ICC_OPTION not in (docker_client.networks.get(name).attrs["Options"] or {})
    finally:
        remove_test_network(docker_client, name, SCOPE)


def test_serve_refuses_panels_on_an_address_bots_reach(
    runtime_image: str, tmp_path: Path,  # noqa: F811
) -> None:
    runtime = DockerRuntime(runtime_image, network=NETWORK, scope=SCOPE)
    container = build_container(ensure_dev_secrets(Settings(
        data_dir=tmp_path / "data", host="0.0.0.0", runtime="docker",
        portal_port=0, admin_port=0, internal_port=0)))
    container.runtime.override(providers.Object(runtime))
    with pytest.raises(SettingsError, match=r"ASTRA_HOST=0\.0\.0\.0"):
        asyncio.run(serve(container, stop=asyncio.Event()))


@pytest.mark.parametrize("network", ["host", "none", "bridge", "container:abc"])
def test_host_networking_is_refused_before_any_engine_call(network: str) -> None:
    def no_engine() -> docker.DockerClient:
        raise AssertionError("docker must not be called")

    with pytest.raises(ValueError, match="bridge network"):
        DockerRuntime("astra-runtime:test", network=network, client_factory=no_engine)

