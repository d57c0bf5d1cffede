"""The container runtime port: where one instance's bot runs (a Docker container, a process).

The platform describes what should run (`RuntimeSpec`) and asks what does run
(`RuntimeState`); the runtime monitor turns the two into the instance's status.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class RuntimeState:
    state: ProcessState
    restarts: int = 0
    exit_code: int | None = None
    started_at: float | None = None  # unix time
    error: str | None = None  # reason code when the runtime knows why it failed


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
