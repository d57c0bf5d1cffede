"""Instance runtimes as Docker Swarm services: one service per instance or pool, placed across
the swarm's nodes.

A service `astra-instance-<id>` (or `astra-pool-<name>`) runs one replica of the runtime image
with the same walls as the container runtime (`adapters/runtime/docker.py`): the image's
non-root user (never root), a read-only root filesystem with a private tmpfs /tmp and no other
mount, every capability dropped, init, memory/CPU/PID limits, its bot token(s), runtime
credential(s) and public endpoints as its whole environment (never a platform secret), no
published port. Swarm restarts a failed task up to `restart_limit` times (`on-failure`); past it
the service has no task left and `status()` says `crash_loop` (`invalid_token` when the bot
exited with 3). Engine API 1.41 has no no-new-privileges for services: with no capability and a
non-root user there is nothing for it to guard in our image.

Network: every service joins one overlay network (`network`, made when missing, labelled with
the scope), and nothing else; the platform's internal API is where runtimes reach it
(ASTRA_PLATFORM_URL: a platform service on the same overlay, or the host through the node's
docker_gwbridge). Docker offers no inter-container switch for overlays: bots could open
connections to each other, but none listens on any port.

Placement: spread over the nodes (`node.id`), with optional constraints (say
`node.labels.astra.bots==true`). A changed spec (a new token, a new image: `set_image`) is a
rolling update, start-first: the new task runs before the old one is stopped, and the old one's
stop drains its clicks and deliveries (`stop_grace_period` covers the bot's drain). Statuses and
logs come from the service's tasks.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import docker.utils
from docker.types import (
    Mount,
    Resources,
    RestartPolicy,
    ServiceMode,
    UpdateConfig,
)

from astra.adapters.runtime.docker import (
    EXIT_INVALID_TOKEN,
    FALLBACK_USER,
    LABEL_INSTANCE,
    LABEL_NETWORK,
    LABEL_OWNER,
    LABEL_SCOPE,
    LABEL_SPEC,
    _parse_docker_time,
    _runs_as_root,
    container_name,
    memory_limit,
    runtime_environment,
)
from astra.adapters.runtime.engine import EngineRuntime, check_unit_id, create_network, explain
from astra.adapters.runtime.units import spec_document, unit_command
from astra.ports.runtime import (
    ProcessState,
    RuntimeFailure,
    RuntimeSpec,
    RuntimeState,
    RuntimeUnavailable,
)

DEFAULT_NETWORK = "astra-runtimes-swarm"
# Task states on their way to running, and the ones that ended.
_STARTING = frozenset({"new", "allocated", "pending", "assigned", "accepted", "preparing",
                       "ready", "starting"})
_FAILED = frozenset({"failed", "rejected"})
_NANO = 1_000_000_000


class SwarmRuntime(EngineRuntime):
    name = "swarm"

    def __init__(
        self,
        image: str,
        *,
        network: str = DEFAULT_NETWORK,
        mem_limit: str | int = "256m",
        nano_cpus: int = 500_000_000,
        pids_limit: int = 128,
        restart_limit: int = 3,
        restart_delay: float = 1.0,
        stop_grace_period: float = 10.0,
        tmp_size: str = "64m",
        constraints: list[str] | None = None,
        scope: str | None = None,
        client_factory: Callable[[], docker.DockerClient] = docker.from_env,
    ) -> None:
        if network in ("host", "none", "bridge", "ingress", "docker_gwbridge"):
            raise ValueError(f"instance services need their own overlay network, not {network!r}")
        self.image = image
        self.network = network
        self.mem_limit = mem_limit
        self.nano_cpus = nano_cpus
        self.pids_limit = pids_limit
        self.restart_limit = restart_limit
        self.restart_delay = restart_delay
        self.stop_grace_period = stop_grace_period
        self.tmp_size = tmp_size
        self.constraints = list(constraints or [])
        self.scope = scope
        self._init_engine(client_factory)
        self._network_ready = False
        self._specs: dict[str, RuntimeSpec] = {}  # what each service was last given

    # -- the engine ------------------------------------------------------------------------------

    def _refused(self, exc: docker.errors.APIError) -> Exception:
        text = explain(exc).lower()
        if exc.status_code == 503 or "not part of a swarm" in text or (
            "swarm" in text and "manager" in text
        ):
            # An engine that is not (or no longer) a swarm manager: no swarm to run on.
            return RuntimeUnavailable(f"swarm unavailable: {explain(exc)}")
        return super()._refused(exc)

    def available(self) -> bool:
        """Whether an engine answers and is a swarm manager."""
        try:
            with self._engine():
                info = self._docker().info()
        except (RuntimeUnavailable, RuntimeFailure):
            return False
        swarm = info.get("Swarm") or {}
        return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))

    def set_image(self, image: str) -> bool:
        """`astra runtime upgrade`: every isolated instance's service rolls over to `image`
        (start-first). Pools are not rolled here: the pooled runtime gives each a new
        generation on the new image, and stops the old one only once the new one's bots are
        READY (Swarm counts a task as running when its container starts, seconds before its
        bots can answer a click)."""
        with self._lock:
            if image == self.image:
                return False
            self.image = image
        for spec in [s for s in self._specs.values() if not s.is_pool]:
            try:
                self.ensure(spec)
            except (RuntimeFailure, RuntimeUnavailable):
                pass  # the monitor's next pass tries again
        return True

    def _prepare_network(self, client: docker.DockerClient) -> None:
        if self._network_ready:
            return
        try:
            network = client.networks.get(self.network)
        except docker.errors.NotFound:
            network = create_network(client, self.network, driver="overlay", attachable=False,
                                     labels=self._network_labels(LABEL_NETWORK))
        attrs = network.attrs
        for _ in range(20):
            if attrs.get("Driver"):
                break
            # A network the manager has just made may not say its driver yet.
            time.sleep(0.1)
            attrs = client.networks.get(network.id).attrs
        if attrs.get("Driver") != "overlay" or attrs.get("Attachable"):
            # An attachable overlay lets any container on any node join the bots' network.
            raise RuntimeFailure(
                "runtime_error",
                f"docker network {self.network} is not a non-attachable overlay: remove it or "
                "set ASTRA_SWARM_NETWORK",
            )
        if attrs.get("Internal"):
            raise RuntimeFailure(
                "runtime_error",
                f"docker network {self.network} is internal: bots could not reach Discord",
            )
        self._network_ready = True

    def _get(self, unit_id: str) -> Any | None:
        try:
            service = self._docker().services.get(container_name(unit_id))
        except docker.errors.NotFound:
            return None
        labels = (service.attrs.get("Spec") or {}).get("Labels") or {}
        self._check_ours(labels, unit_id, "service", container_name(unit_id))
        return service

    # -- the port --------------------------------------------------------------------------------

    def ensure(self, spec: RuntimeSpec) -> RuntimeState:
        check_unit_id(spec.instance_id)
        environment = runtime_environment(spec)
        with self._engine():
            client = self._docker()
            image = self._runtime_image(
                client, " on this manager: build or load it (on every node), or set "
                "ASTRA_RUNTIME_IMAGE",
            )
            self._prepare_network(client)
            digest = self._spec_hash(spec)
            options = self._service_options(spec, image, environment, digest)
            service = self._get(spec.instance_id)
            self._specs[spec.instance_id] = spec
            if service is None:
                try:
                    client.services.create(**options)
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
            else:
                labels = service.attrs["Spec"].get("Labels") or {}
                replicas = _replicas(service)
                if labels.get(LABEL_SPEC) != digest:
                    # A rolling update (start-first): the old task serves until the new one runs.
                    service.update(**options)
                elif replicas == 0:
                    service.update(**options)  # stopped: scale it back to one
                else:
                    state = self._state(service)
                    # A crash loop stays down until restart() or a new spec: a monitor calling
                    # ensure() every tick must not turn it into an endless one.
                    return state
            return self._state(self._get(spec.instance_id))

    def stop(self, instance_id: str) -> RuntimeState:
        check_unit_id(instance_id)
        with self._engine():
            service = self._get(instance_id)
            if service is None:
                return RuntimeState(ProcessState.MISSING)
            if _replicas(service) != 0:
                service.scale(0)
            deadline = time.monotonic() + self.stop_grace_period + 15
            while time.monotonic() < deadline:
                service = self._get(instance_id)
                if service is None or not any(
                    t["Status"]["State"] in _STARTING | {"running"} for t in service.tasks()
                ):
                    break
                time.sleep(0.2)
            return self._state(service)

    def restart(self, instance_id: str) -> RuntimeState:
        check_unit_id(instance_id)
        with self._engine():
            service = self._get(instance_id)
            if service is None:
                return RuntimeState(ProcessState.MISSING)
            spec = self._specs.get(instance_id)
            if spec is not None and _replicas(service) == 0:
                return self.ensure(spec)
            service.force_update()
            return self._state(self._get(instance_id))

    def remove(self, instance_id: str) -> None:
        check_unit_id(instance_id)
        with self._engine():
            service = self._get(instance_id)
            self._specs.pop(instance_id, None)
            if service is None:
                return
            try:
                service.remove()
            except docker.errors.NotFound:
                return
            # Removing a service stops its task with the grace period: wait for it to be gone,
            # so no second bot on the same token overlaps a new one for long.
            deadline = time.monotonic() + self.stop_grace_period + 15
            client = self._docker()
            while time.monotonic() < deadline:
                if not client.containers.list(
                    all=False, filters={"label": f"com.docker.swarm.service.id={service.id}"}
                ):
                    return
                time.sleep(0.2)

    def status(self, instance_id: str) -> RuntimeState:
        check_unit_id(instance_id)
        with self._engine():
            return self._state(self._get(instance_id))

    def logs(self, instance_id: str, lines: int = 100) -> list[str]:
        check_unit_id(instance_id)
        if lines <= 0:
            return []
        with self._engine():
            service = self._get(instance_id)
            if service is None:
                return []
            try:
                chunks = service.logs(stdout=True, stderr=True, tail=lines, timestamps=False,
                                      follow=False)
                raw = b"".join(chunks)
            except docker.errors.APIError:
                return []
        return raw.decode("utf-8", "replace").splitlines()[-lines:]

    def instances(self) -> list[str]:
        labels = [LABEL_INSTANCE] + ([f"{LABEL_SCOPE}={self.scope}"] if self.scope else [])
        with self._engine():
            services = self._docker().services.list(filters={"label": labels})
        found = set()
        for service in services:
            svc_labels = (service.attrs.get("Spec") or {}).get("Labels") or {}
            unit_id = svc_labels.get(LABEL_INSTANCE, "")
            if service.name == container_name(unit_id) and svc_labels.get(LABEL_SCOPE) == \
                    self.scope:
                found.add(unit_id)
        return sorted(found)

    # -- inside ----------------------------------------------------------------------------------

    def _spec_hash(self, spec: RuntimeSpec) -> str:
        doc = {
            **spec_document(spec),
            "image": self.image,
            "network": self.network,
            "limits": [str(self.mem_limit), self.nano_cpus, self.pids_limit, self.restart_limit],
            "constraints": self.constraints,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def _service_options(
        self, spec: RuntimeSpec, image: Any, environment: dict[str, str], digest: str
    ) -> dict[str, Any]:
        user = (image.attrs.get("Config") or {}).get("User") or ""
        if _runs_as_root(user):
            user = FALLBACK_USER
        resources = Resources(cpu_limit=self.nano_cpus,
                              mem_limit=memory_limit(self.mem_limit, spec))
        resources["Limits"]["Pids"] = self.pids_limit  # API 1.41; the SDK has no argument
        labels = {
            LABEL_INSTANCE: spec.instance_id,
            LABEL_OWNER: spec.owner_id,
            LABEL_SPEC: digest,
            **({LABEL_SCOPE: self.scope} if self.scope else {}),
        }
        return {
            # The reference as the operator gave it, resolved by each node (no registry here:
            # the image is loaded on every node; DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1).
            "image": self.image,
            "name": container_name(spec.instance_id),
            "args": unit_command(spec),
            "env": [f"{k}={v}" for k, v in sorted(environment.items())],
            "labels": labels,
            # The digest rides on each task too, so status() can tell the task of an older spec
            # from the one the service now asks for.
            "container_labels": {LABEL_INSTANCE: spec.instance_id, LABEL_SPEC: digest,
                                 **({LABEL_SCOPE: self.scope} if self.scope else {})},
            "user": user,
            "workdir": "/tmp",
            "init": True,
            "read_only": True,
            "cap_drop": ["ALL"],
            "mounts": [Mount(target="/tmp", source=None, type="tmpfs",
                             tmpfs_size=_bytes(self.tmp_size), tmpfs_mode=0o1777)],
            "stop_grace_period": int(self.stop_grace_period * _NANO),
            "resources": resources,
            "restart_policy": RestartPolicy(
                condition="on-failure" if self.restart_limit > 0 else "none",
                delay=int(self.restart_delay * _NANO),
                max_attempts=self.restart_limit,
            ),
            "mode": ServiceMode("replicated", replicas=1),
            "update_config": UpdateConfig(parallelism=1, order="start-first",
                                          failure_action="rollback", monitor=5 * _NANO),
            "networks": [self.network],
            "constraints": self.constraints,
            "preferences": [("spread", "node.id")],
            "log_driver": "json-file",
            "log_driver_options": {"max-size": "10m", "max-file": "3"},
        }

    def _state(self, service: Any | None) -> RuntimeState:
        if service is None:
            return RuntimeState(ProcessState.MISSING)
        try:
            tasks = service.tasks()
        except docker.errors.NotFound:
            return RuntimeState(ProcessState.MISSING)
        updated = _parse_docker_time(service.attrs.get("UpdatedAt")) or 0.0
        tasks.sort(key=lambda t: _parse_docker_time(t.get("CreatedAt")) or 0.0)
        # Failures of this spec (an update starts the count again).
        failed = [t for t in tasks if t["Status"]["State"] in _FAILED
                  and (_parse_docker_time(t.get("CreatedAt")) or 0.0) >= updated - 1]
        restarts = len(failed)
        running = [t for t in tasks if t["Status"]["State"] == "running"
                   and t.get("DesiredState") == "running"]
        coming = [t for t in tasks if t["Status"]["State"] in _STARTING
                  and t.get("DesiredState") == "running"]
        if running:
            task = running[-1]
            created = _parse_docker_time(task.get("CreatedAt")) or 0.0
            updating = (service.attrs.get("UpdateStatus") or {}).get("State") in (
                "updating", "rollback_started")
            if updating or _older_spec(task, service) or any(
                (_parse_docker_time(t.get("CreatedAt")) or 0.0) > created for t in coming
            ):
                # A rolling update or restart, start-first: the old task still serves while
                # its successor starts. Right after service.update() the orchestrator may not
                # have marked the update or made the new task yet: the running task's spec
                # digest is the only sign that it is on its way out.
                return RuntimeState(ProcessState.RESTARTING, restarts=restarts)
            return RuntimeState(ProcessState.RUNNING, restarts=max(0, restarts),
                                started_at=_parse_docker_time(task["Status"].get("Timestamp")))
        if _replicas(service) == 0:
            last = tasks[-1] if tasks else None
            code = ((last or {}).get("Status", {}).get("ContainerStatus") or {}).get("ExitCode")
            return RuntimeState(ProcessState.EXITED, restarts=restarts,
                                exit_code=code if code not in (None, 0) else None)
        if coming or not tasks:
            return RuntimeState(ProcessState.RESTARTING, restarts=restarts)
        last = tasks[-1]
        if (_parse_docker_time(last.get("CreatedAt")) or 0.0) < updated:
            # Scaled back up or updated a moment ago: the orchestrator has not made the new
            # task yet, and the newest one is the stopped one from before. It is on its way.
            return RuntimeState(ProcessState.RESTARTING, restarts=restarts)
        code = (last["Status"].get("ContainerStatus") or {}).get("ExitCode")
        if code == EXIT_INVALID_TOKEN:
            return RuntimeState(ProcessState.EXITED, restarts=max(0, restarts - 1),
                                exit_code=code, error="invalid_token")
        if restarts > self.restart_limit:
            # on-failure with max_attempts=N: 1 + N failed tasks, then none.
            return RuntimeState(ProcessState.EXITED, restarts=restarts - 1, exit_code=code,
                                error="crash_loop")
        if restarts:
            return RuntimeState(ProcessState.RESTARTING, restarts=restarts, exit_code=code)
        return RuntimeState(ProcessState.EXITED, exit_code=code)


def _older_spec(task: dict, service: Any) -> bool:
    """Whether a task runs a spec other than the service's current one.

    A task made before the digest rode on container labels carries none: it is not judged.
    """
    wanted = ((service.attrs.get("Spec") or {}).get("Labels") or {}).get(LABEL_SPEC)
    container = ((task.get("Spec") or {}).get("ContainerSpec") or {})
    running = (container.get("Labels") or {}).get(LABEL_SPEC)
    return bool(wanted and running and running != wanted)


def _replicas(service: Any) -> int:
    mode = (service.attrs.get("Spec") or {}).get("Mode") or {}
    return int((mode.get("Replicated") or {}).get("Replicas") or 0)


def _bytes(size: str | int) -> int:
    return docker.utils.parse_bytes(size) if isinstance(size, str) else int(size)
