"""The container runtime port: where one instance's bot runs (a Docker container, a process,
a Swarm service), alone or in a pool with other instances' bots.

The platform describes what should run (`RuntimeSpec`) and asks what does run
(`RuntimeState`); the runtime monitor turns the two into the instance's status.

A *pool unit* is a spec whose `members` are the specs of the instances it runs (one
interactions.py client per bot token in one process, `astra runtime pool`); its id is a pool id
(`pool.<name>`, which no instance id can be). The adapters run a pool unit like an instance,
with `runtime pool --pool <name>` as its command and its members' tokens and credentials in its
environment; `adapters/runtime/pooled.py` assigns instances to pools on top of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class RuntimeUnavailable(Exception):
    """The runtime itself cannot be used (no Docker engine answering, say)."""


class RuntimeFailure(Exception):
    """The runtime refused an operation; `reason` is one of the status reason codes."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProcessState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    EXITED = "exited"  # stopped, or crashed past its restart limit
    MISSING = "missing"  # nothing exists for this instance


@dataclass(frozen=True)
class RuntimeSpec:
    """Everything an instance's runtime receives. Deliberately small: its bot token, its id and
    runtime credential (for the platform's internal API), and the public endpoints — never a
    platform secret, a store path or a key to its stock."""

    instance_id: str
    owner_id: str
    bot_token: str
    instance_key: str  # the runtime credential (rt_...), not the seller's instance key
    environment: dict[str, str] = field(default_factory=dict)  # public endpoints, log level
    # For a pool unit: the instances it runs (their own specs; their environment is the pool's).
    members: tuple[RuntimeSpec, ...] = ()
    # Where the platform last placed this instance (a pool id), or "isolated" when the instance
    # must run alone; a hint the pooled runtime follows when it can.
    placement: str | None = None

    @property
    def is_pool(self) -> bool:
        return is_pool_id(self.instance_id)


@dataclass(frozen=True)
class RuntimeState:
    state: ProcessState
    restarts: int = 0
    exit_code: int | None = None
    started_at: float | None = None  # unix time
    error: str | None = None  # reason code when the runtime knows why it failed


POOL_PREFIX = "pool."
POOL_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def is_pool_id(unit_id: str) -> bool:
    return unit_id.startswith(POOL_PREFIX) and bool(
        POOL_NAME_PATTERN.fullmatch(unit_id[len(POOL_PREFIX):])
    )


def pool_name(unit_id: str) -> str:
    """`pool.a1` -> `a1`: what names the pool's container, service and files."""
    return unit_id[len(POOL_PREFIX):]


class ContainerRuntime(Protocol):
    name: str

    def ensure(self, spec: RuntimeSpec) -> RuntimeState:
        """Create (if needed) and start the instance's runtime with this spec; a spec that
        changed (a new token) replaces the old runtime."""
        ...

    def stop(self, instance_id: str) -> RuntimeState: ...

    def restart(self, instance_id: str) -> RuntimeState: ...

    def remove(self, instance_id: str) -> None:
        """Stop and delete the runtime (its data stays)."""
        ...

    def status(self, instance_id: str) -> RuntimeState: ...

    def logs(self, instance_id: str, lines: int = 100) -> list[str]:
        """The last lines the runtime wrote (secrets are redacted by the bot's logger)."""
        ...

    def instances(self) -> list[str]:
        """Instances this runtime currently has something for."""
        ...
