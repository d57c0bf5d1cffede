"""Instance runtimes as Docker containers: one locked-down container per instance.

A container `astra-instance-<id>` runs `astra instance run <id>` from the runtime image. It gets
its bot token, its id and runtime credential, the platform's internal API URL and the public
endpoints, and nothing else: no data mount at all (its data is reached through the internal
API), never the Docker socket, a platform secret or anything from the platform's environment.
It runs as the image's non-root user, with a
read-only root filesystem (a tmpfs /tmp), every capability dropped, no-new-privileges, memory,
CPU and PID limits, and Docker's `on-failure` restart policy up to `restart_limit` times; past it
the container stays exited and `status()` says `crash_loop`.

Network: every container joins one user-defined bridge (`network`, default `astra-runtimes`),
which `ensure` creates when missing (labelled with the scope) with inter-container traffic off,
so a bot reaches neither another bot nor anything else on that bridge; it keeps outbound
internet (Discord) through the bridge's masquerading. The only host address it can route to is
the bridge's gateway, where the platform binds its internal API alone (`network_gateway()` says
which address; see `entrypoints/serve.py`); the host's loopback, where the portal and the admin
panel listen, is not reachable from a bridge at all. Host networking is refused, and a container
found on any other network (one made before this rule) is replaced.

Labels carry the instance, its owner, a hash of the spec (so `ensure` replaces a container whose
spec, image or limits changed: a new token, an upgrade) and an optional scope (so `instances()`
lists only this platform's containers). Without an engine every method
raises RuntimeUnavailable("docker unavailable: ..."); `available()` is a cheap ping.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import docker
import docker.errors
import docker.utils
from docker.types import LogConfig

from astra.adapters.runtime.engine import (
    LABEL_INSTANCE,
    LABEL_SCOPE,
    EngineRuntime,
    check_unit_id,
    create_network,
)
from astra.adapters.runtime.units import spec_document, tenant_variables, unit_command
from astra.ports.runtime import (
    ProcessState,
    RuntimeFailure,
    RuntimeSpec,
    RuntimeState,
    RuntimeUnavailable,
    is_pool_id,
    pool_name,
)

NAME_PREFIX = "astra-instance-"
POOL_NAME_PREFIX = "astra-pool-"
LABEL_OWNER = "astra.owner"
LABEL_SPEC = "astra.spec"
LABEL_NETWORK = "astra.network"
DEFAULT_NETWORK = "astra-runtimes"
# Docker's bridge driver option: "false" drops traffic between containers of the bridge.
ICC_OPTION = "com.docker.network.bridge.enable_icc"
# Whom the container runs as when its image names no user, or root: never root.
FALLBACK_USER = "10001:10001"
EXIT_INVALID_TOKEN = 3  # `astra instance run` exits with it when Discord refuses the token

# Never handed to a tenant, even if a caller put it in spec.environment by mistake.
_FORBIDDEN_ENV_PREFIXES = ("MERCADOPAGO_", "DOCKER_")
_FORBIDDEN_ENV_NAMES = frozenset(
    {
        "PORTAL_SESSION_SECRET",
        "ADMIN_PANEL_TOKEN",
        "ADMIN_PANEL_PASSWORD",
        "ASTRA_MASTER_KEY",
        "DISCORD_CLIENT_SECRET",
    }
)

_NEVER_STARTED = "0001-01-01T00:00:00Z"
# Exit reasons that ensure() does not undo by starting the container again.
_STAYS_DOWN = frozenset({"crash_loop", "invalid_token"})


def container_name(instance_id: str) -> str:
    if is_pool_id(instance_id):
        return f"{POOL_NAME_PREFIX}{pool_name(instance_id)}"
    return f"{NAME_PREFIX}{instance_id}"


def runtime_environment(spec: RuntimeSpec) -> dict[str, str]:
    """The whole environment of an instance's container, built from the spec alone."""
    for name in spec.environment:
        if name in _FORBIDDEN_ENV_NAMES or name.startswith(_FORBIDDEN_ENV_PREFIXES):
            raise RuntimeFailure(
                "invalid_spec", f"{name} is a platform secret and never goes to an instance"
            )
    # The tenant's own variables win over anything spec.environment says.
    return {**spec.environment, **tenant_variables(spec)}


# What each bot of a pool adds to the pool's memory limit (measured: about 6 MB; room to grow).
POOL_MEMBER_MEMORY = 24 * 1024 * 1024


def memory_limit(base: str | int, spec: RuntimeSpec) -> int:
    """An instance gets `base`; a pool `base` plus room for each of its bots."""
    limit = docker.utils.parse_bytes(base) if isinstance(base, str) else int(base)
    return limit + POOL_MEMBER_MEMORY * len(spec.members)


def _parse_docker_time(value: str | None) -> float | None:
    """Docker's RFC 3339 times carry nanoseconds, which fromisoformat refuses before 3.11's
    microsecond limit: cut the fraction to microseconds."""
    if not value or value.startswith(_NEVER_STARTED[:10]):
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _runs_as_root(user: str) -> bool:
    name = user.partition(":")[0].strip()
    return name in ("", "0", "root")


class DockerRuntime(EngineRuntime):
    name = "docker"

    def __init__(
        self,
        image: str,
        *,
        network: str = DEFAULT_NETWORK,
        mem_limit: str | int = "256m",
        nano_cpus: int = 500_000_000,
        pids_limit: int = 128,
        restart_limit: int = 3,
        client_factory: Callable[[], docker.DockerClient] = docker.from_env,
        stop_timeout: int = 10,
        tmp_size: str = "64m",
        scope: str | None = None,
    ) -> None:
        """`scope` (say, a hash of the platform's data directory) labels the containers this
        runtime makes, and `instances()` then lists only those: two platforms, or a test suite
        and a developer's `astra serve`, can share one engine without either taking the other's
        containers for orphans. Container names stay global: one instance id per engine."""
        if network in ("host", "none", "bridge", "default") or network.startswith("container:"):
            # host: the bot shares the host's loopback (admin panel included) and can bind host
            # ports; bridge/default: Docker's default bridge lets containers reach each other;
            # none/container: no way to the platform, or another container's walls.
            raise ValueError(f"instance runtimes need their own bridge network, not {network!r}")
        self.image = image
        self.network = network
        self.mem_limit = mem_limit
        self.nano_cpus = nano_cpus
        self.pids_limit = pids_limit
        self.restart_limit = restart_limit
        self.stop_timeout = stop_timeout
        self.tmp_size = tmp_size
        self.scope = scope
        self._init_engine(client_factory)
        self._network_lock = threading.Lock()
        self._network_id: str | None = None
        self._gateway: str | None = None

    def set_image(self, image: str) -> bool:
        """A new runtime image (`astra runtime upgrade`): each container is replaced by the next
        `ensure` (its spec label names the image). True when it changed."""
        with self._lock:
            if image == self.image:
                return False
            self.image = image
            return True

    # -- the engine ------------------------------------------------------------------------------

    def available(self) -> bool:
        """Whether an engine answers (cheap: one ping)."""
        try:
            with self._engine():
                return bool(self._docker().ping())
        except (RuntimeUnavailable, RuntimeFailure):
            return False

    def network_gateway(self) -> str:
        """The runtime network's gateway address on the host (creating the network when
        missing): where the platform binds its internal API for containers to reach."""
        with self._engine():
            self._prepare_network(self._docker())
        assert self._gateway is not None
        return self._gateway

    def _prepare_network(self, client: docker.DockerClient, *, again: bool = False) -> str:
        """The network's id, made (idempotently) or checked; remembered until a create finds
        it gone."""
        with self._network_lock:
            if self._network_id is not None and not again:
                return self._network_id
            try:
                network = client.networks.get(self.network)
            except docker.errors.NotFound:
                network = create_network(
                    client, self.network, driver="bridge", options={ICC_OPTION: "false"},
                    labels=self._network_labels(LABEL_NETWORK),
                )
            attrs = network.attrs
            options = attrs.get("Options") or {}
            if attrs.get("Driver") != "bridge" or options.get(ICC_OPTION) != "false":
                # Someone else's network, or an old one: putting bots on it would let them
                # reach each other (or worse). Never loosen it, never take it over: say so.
                raise RuntimeFailure(
                    "runtime_error",
                    f"docker network {self.network} is not a bridge with inter-container "
                    f"traffic off ({ICC_OPTION}=false): remove it or set ASTRA_DOCKER_NETWORK",
                )
            if attrs.get("Internal"):
                raise RuntimeFailure(
                    "runtime_error",
                    f"docker network {self.network} is internal: bots could not reach Discord",
                )
            self._gateway = _gateway_of(attrs, self.network)
            self._network_id = network.id
            return network.id

    def _get(self, instance_id: str) -> Any | None:
        """Our container for this instance, or None."""
        try:
            container = self._docker().containers.get(container_name(instance_id))
        except docker.errors.NotFound:
            return None
        self._check_ours(container.labels, instance_id, "container", container_name(instance_id))
        return container

    # -- the port --------------------------------------------------------------------------------

    def ensure(self, spec: RuntimeSpec) -> RuntimeState:
        check_unit_id(spec.instance_id)
        environment = runtime_environment(spec)
        with self._engine():
            client = self._docker()
            image = self._runtime_image(
                client, f": build it (docker build -t {self.image} .) or set ASTRA_RUNTIME_IMAGE"
            )
            digest = self._spec_hash(spec, image.id)
            self._prepare_network(client)
            container = self._get(spec.instance_id)
            if container is not None and (
                container.labels.get(LABEL_SPEC) != digest or not self._on_our_network(container)
            ):
                # A new spec, or a container from before the runtime network (host mode): it
                # never keeps running as it is.
                container.remove(force=True)
                container = None
            if container is None:
                try:
                    container = self._create(client, spec, image, environment, digest)
                except docker.errors.NotFound:
                    # The network went away under us (removed by hand): make it again, once.
                    self._prepare_network(client, again=True)
                    container = self._create(client, spec, image, environment, digest)
            state = self._state(container)
            # A container that crashed past its limit stays down until restart() or a new spec:
            # a monitor calling ensure() every tick must not turn a crash loop into an endless one.
            if state.state is ProcessState.EXITED and state.error not in _STAYS_DOWN:
                container.start()
            return self._state(self._reload(container))

    def stop(self, instance_id: str) -> RuntimeState:
        check_unit_id(instance_id)
        with self._engine():
            container = self._get(instance_id)
            if container is None:
                return RuntimeState(ProcessState.MISSING)
            container.stop(timeout=self.stop_timeout)
            return self._state(self._reload(container))

    def restart(self, instance_id: str) -> RuntimeState:
        check_unit_id(instance_id)
        with self._engine():
            container = self._get(instance_id)
            if container is None:
                return RuntimeState(ProcessState.MISSING)
            container.restart(timeout=self.stop_timeout)
            return self._state(self._reload(container))

    def remove(self, instance_id: str) -> None:
        check_unit_id(instance_id)
        with self._engine():
            container = self._get(instance_id)
            if container is None:
                return
            try:
                container.remove(force=True)  # the data stays: it is a bind mount
            except docker.errors.NotFound:
                pass

    def status(self, instance_id: str) -> RuntimeState:
        check_unit_id(instance_id)
        with self._engine():
            container = self._get(instance_id)
            if container is None:
                return RuntimeState(ProcessState.MISSING)
            return self._state(container)

    def logs(self, instance_id: str, lines: int = 100) -> list[str]:
        check_unit_id(instance_id)
        if lines <= 0:
            return []
        with self._engine():
            container = self._get(instance_id)
            if container is None:
                return []
            raw = container.logs(stdout=True, stderr=True, tail=lines, timestamps=False)
        text = raw.decode("utf-8", "replace")
        return text.splitlines()[-lines:]

    def instances(self) -> list[str]:
        labels = [LABEL_INSTANCE] + ([f"{LABEL_SCOPE}={self.scope}"] if self.scope else [])
        with self._engine():
            containers = self._docker().containers.list(all=True, filters={"label": labels})
        return sorted(
            {
                c.labels[LABEL_INSTANCE]
                for c in containers
                if c.name == container_name(c.labels.get(LABEL_INSTANCE, ""))
                and c.labels.get(LABEL_SCOPE) == self.scope
            }
        )

    # -- inside ----------------------------------------------------------------------------------

    def _spec_hash(self, spec: RuntimeSpec, image_id: str) -> str:
        """A label that changes whenever the container would be made differently. Secrets go in
        as their own hashes, and the label holds only the digest of the whole."""

        doc = {
            **spec_document(spec),
            "image": image_id,
            "network": self.network,
            "limits": [str(self.mem_limit), self.nano_cpus, self.pids_limit, self.restart_limit],
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def _create(
        self,
        client: docker.DockerClient,
        spec: RuntimeSpec,
        image: Any,
        environment: dict[str, str],
        digest: str,
    ) -> Any:
        user = (image.attrs.get("Config") or {}).get("User") or ""
        if _runs_as_root(user):
            user = FALLBACK_USER
        try:
            return client.containers.create(
                image.id,
                command=unit_command(spec),
                name=container_name(spec.instance_id),
                labels={
                    LABEL_INSTANCE: spec.instance_id,
                    LABEL_OWNER: spec.owner_id,
                    LABEL_SPEC: digest,
                    **({LABEL_SCOPE: self.scope} if self.scope else {}),
                },
                environment=environment,
                # The SDK would otherwise copy proxy settings from the host's docker config.
                use_config_proxy=False,
                user=user,
                # Its only writable place: a private tmpfs for scratch.
                working_dir="/tmp",
                init=True,
                # Docker reads a count of 0 as "retry forever": no restarts is policy "no".
                restart_policy=(
                    {"Name": "on-failure", "MaximumRetryCount": self.restart_limit}
                    if self.restart_limit > 0
                    else {"Name": "no"}
                ),
                mem_limit=memory_limit(self.mem_limit, spec),
                memswap_limit=memory_limit(self.mem_limit, spec),
                nano_cpus=self.nano_cpus,
                pids_limit=self.pids_limit,
                read_only=True,
                tmpfs={"/tmp": f"rw,noexec,nosuid,nodev,size={self.tmp_size}"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                log_config=LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"}),
                # Its only network: the runtime bridge (no published ports, no host mode).
                network=self.network,
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            # Another ensure() made it first: use theirs.
            container = self._get(spec.instance_id)
            if container is None:
                raise
            return container

    def _on_our_network(self, container: Any) -> bool:
        host = container.attrs.get("HostConfig") or {}
        networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return host.get("NetworkMode") == self.network and set(networks) <= {self.network}

    def _reload(self, container: Any) -> Any:
        try:
            container.reload()
        except docker.errors.NotFound:
            return None
        return container

    def _state(self, container: Any | None) -> RuntimeState:
        if container is None:
            return RuntimeState(ProcessState.MISSING)
        attrs = container.attrs
        st = attrs.get("State") or {}
        status = st.get("Status", "")
        restarts = int(attrs.get("RestartCount") or 0)
        started_at = _parse_docker_time(st.get("StartedAt"))
        if st.get("Restarting") or status == "restarting":
            return RuntimeState(ProcessState.RESTARTING, restarts=restarts, started_at=started_at)
        if st.get("Running") and status == "running":
            return RuntimeState(ProcessState.RUNNING, restarts=restarts, started_at=started_at)
        # created, exited, dead, paused, removing: not serving.
        exit_code = st.get("ExitCode") if status != "created" else None
        oom = bool(st.get("OOMKilled"))
        # SIGTERM/SIGKILL without an OOM kill is how `stop` ends a bot that ignores SIGTERM or
        # outlives the timeout: a stop, not a crash.
        stopped = exit_code in (128 + 15, 128 + 9) and not oom
        error = None
        if exit_code == EXIT_INVALID_TOKEN:
            error = "invalid_token"
        elif exit_code and not stopped and restarts >= self.restart_limit:
            error = "crash_loop"
        elif oom:
            error = "oom_killed"
        elif st.get("Error"):
            error = "runtime_error"
        return RuntimeState(
            ProcessState.EXITED,
            restarts=restarts,
            exit_code=exit_code,
            started_at=started_at,
            error=error,
        )


def _gateway_of(attrs: dict[str, Any], name: str) -> str:
    for config in (attrs.get("IPAM") or {}).get("Config") or []:
        subnet = config.get("Subnet") or ""
        if ":" in subnet:
            continue  # IPv6: the platform binds the IPv4 gateway
        if config.get("Gateway"):
            return str(config["Gateway"]).split("/")[0]
        if subnet:
            # Docker's default when IPAM names none: the subnet's first host.
            return str(next(ipaddress.ip_network(subnet, strict=False).hosts()))
    raise RuntimeFailure("runtime_error", f"docker network {name} has no IPv4 gateway")


