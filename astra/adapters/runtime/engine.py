"""What the container runtime (`docker.py`) and the Swarm runtime (`swarm.py`) share: one
engine client made on first use, the engine's errors turned into the runtime port's, the runtime
image looked up by name, the check that a container or service with our name is ours, and a
network made once even when two platform processes make it at the same moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests

from astra.ports.runtime import RuntimeFailure, RuntimeUnavailable, is_pool_id
from astra.ports.store import INSTANCE_ID_PATTERN

LABEL_INSTANCE = "astra.instance"
LABEL_SCOPE = "astra.scope"


class EngineRuntime:
    """Base of the runtimes that drive a Docker engine. Subclasses set `image` and `scope` and
    call `_init_engine` from their constructor."""

    image: str
    scope: str | None

    def _init_engine(self, client_factory: Callable[[], docker.DockerClient]) -> None:
        self._client_factory = client_factory
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def _docker(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                # Made on first use, and again after a failure: an engine that comes up later
                # is picked up without restarting the platform.
                self._client = self._client_factory()
            return self._client

    def _refused(self, exc: docker.errors.APIError) -> Exception:
        """What an engine's refusal means for this runtime (Swarm tells "not a manager")."""
        return RuntimeFailure("runtime_error", f"docker refused: {explain(exc)}")

    @contextmanager
    def _engine(self) -> Iterator[None]:
        try:
            yield
        except (RuntimeFailure, RuntimeUnavailable):
            raise
        except docker.errors.APIError as exc:  # the engine answered, and refused
            raise self._refused(exc) from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            # from_env() without an engine raises DockerException; a client with a pinned API
            # version raises requests' ConnectionError on every call instead.
            with self._lock:
                self._client = None
            raise RuntimeUnavailable(f"docker unavailable: {exc}") from exc

    def _runtime_image(self, client: docker.DockerClient, remedy: str) -> Any:
        """The runtime image, or image_missing saying what to do (`remedy`)."""
        try:
            return client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise RuntimeFailure(
                "image_missing", f"runtime image {self.image} not found{remedy}"
            ) from None

    def _check_ours(self, labels: dict[str, str], unit_id: str, kind: str, name: str) -> None:
        """A `kind` named `name` that another platform (another scope) or someone by hand made
        is never driven, replaced or removed by this one."""
        if labels.get(LABEL_INSTANCE) != unit_id or labels.get(LABEL_SCOPE) != self.scope:
            raise RuntimeFailure(
                "runtime_error", f"a {kind} named {name} exists that this platform did not make"
            )

    def _network_labels(self, label: str) -> dict[str, str]:
        return {label: "runtimes", **({LABEL_SCOPE: self.scope} if self.scope else {})}


def create_network(client: docker.DockerClient, name: str, **options: Any) -> Any:
    """Make the network, or take the one another platform process made first (the caller
    checks it like any other)."""
    try:
        return client.networks.create(name, check_duplicate=True, **options)
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise
        return client.networks.get(name)


def check_unit_id(instance_id: str) -> None:
    # The id becomes a container or service name: never let anything else through.
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id or "") and not is_pool_id(instance_id or ""):
        raise RuntimeFailure("invalid_spec", f"invalid instance id {instance_id!r}")


def explain(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return str(explanation or exc)
