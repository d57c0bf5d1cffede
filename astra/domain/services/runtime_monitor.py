"""Keeping what runs in line with what should run, and telling everyone how each bot is.

What should run: an instance with a bot token, whose owner's plan is active, that the seller
has not stopped. Its status is then `online` (its heartbeat is fresh), `offline` (starting, or
stopped), `error` with a reason (`docker_unavailable`, `image_missing`, `crash_loop`,
`invalid_token`, `no_heartbeat`...), or `suspended` (plan expired: removed, and started again
when the plan is renewed). Changes are written to the instance's record and the audit log.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from astra.domain.instance_backoff import InstanceBackoff
from astra.domain.services.audit_log import record
from astra.domain.services.instances import InstanceService
from astra.domain.services.plans import plan_state
from astra.domain.services.runtime_placement import MODES, runtime_image
from astra.domain.timestamps import iso
from astra.ports.clock import Clock
from astra.ports.runtime import (
    ContainerRuntime,
    ProcessState,
    RuntimeFailure,
    RuntimeSpec,
    RuntimeUnavailable,
)
from astra.ports.store import Store, StoreCorrupt

log = logging.getLogger("astra.runtime")

HEARTBEAT_MAX_AGE = 45.0  # the bot beats every 10 s
STARTING_GRACE = 60.0  # a runtime may take this long to reach READY before it is an error


@dataclass(frozen=True)
class Status:
    status: str  # online | offline | error | suspended
    reason: str | None = None


class RuntimeMonitor:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        runtime: ContainerRuntime,
        instances: InstanceService,
        heartbeats: Callable[[str], dict[str, Any] | None],
        environment: Callable[[], dict[str, str]] | dict[str, str],
    ) -> None:
        self.store = store
        self.clock = clock
        self.runtime = runtime
        self.instances = instances
        # The bot's last heartbeat (ready since, last beat, or why it stopped), as the internal
        # API received it.
        self.heartbeats = heartbeats
        # Public endpoints every runtime gets (Discord API base, the platform's URL, ...); a
        # callable is read for every spec, since the platform's URL is known only once the
        # internal API's listener is bound.
        self.environment = environment
        self.backoff = InstanceBackoff()

    def spec(self, doc: dict[str, Any], token: str) -> RuntimeSpec:
        instance_id = doc["id"]
        return RuntimeSpec(
            instance_id=instance_id,
            owner_id=doc.get("owner_id") or "",
            bot_token=token,
            instance_key=self.instances.runtime_credential(instance_id),
            environment=dict(
                self.environment() if callable(self.environment) else self.environment
            ),
            # pooled | isolated | None (the platform's ASTRA_RUNTIME_MODE)
            placement=doc.get("runtime_mode") if doc.get("runtime_mode") in MODES else None,
        )

    def desired(self, doc: dict[str, Any], owner: dict[str, Any] | None, now: datetime) -> str:
        """run | stop | suspend, and why not run."""
        if owner is None or owner.get("blocked"):
            return "suspend"
        if not plan_state(owner, now)["active"]:
            return "suspend"
        if doc.get("desired_state") == "stopped" or not doc.get("token_encrypted"):
            return "stop"
        return "run"

    def _status_of_running(
        self, instance_id: str, started_at: float | None, now_ts: float
    ) -> Status:
        beat = self.heartbeats(instance_id)
        if beat and beat.get("error"):
            return Status("error", beat["error"])
        fresh = (
            beat is not None
            and beat.get("ready_at")
            and now_ts - float(beat.get("at") or 0) <= HEARTBEAT_MAX_AGE
            and (started_at is None or float(beat.get("at") or 0) >= started_at - 1)
        )
        if fresh:
            return Status("online")
        if started_at is not None and now_ts - started_at < STARTING_GRACE:
            return Status("offline", "starting")
        return Status("error", "no_heartbeat")

    def check(self, instance_id: str) -> Status:
        """Bring one instance in line and say how it is."""
        now = self.clock.now()
        with self.store.portal(write=False) as uow:
            doc = uow.instances.get(instance_id)
            owner = uow.users.get(doc["owner_id"]) if doc and doc.get("owner_id") else None
        if doc is None:
            return Status("offline", "unknown_instance")
        try:
            with self.store.instance(instance_id, write=False):
                pass
        except StoreCorrupt:
            # Quarantined: its data is damaged (and left as it is for the operator). Its bot
            # would only fail its buyers: it stays stopped until the data is repaired.
            try:
                self.runtime.remove(instance_id)
            except RuntimeUnavailable:
                pass
            return Status("error", "damaged")
        desired = self.desired(doc, owner, now)
        try:
            if desired == "suspend":
                self.runtime.remove(instance_id)
                return Status("suspended", "plan_expired" if owner else "owner_missing")
            if desired == "stop":
                self.runtime.remove(instance_id)
                return Status("offline", "stopped" if doc.get("token_encrypted") else "no_token")
            token = self.instances.bot_token(instance_id) or ""
            if doc.get("restart_requested_at") and doc.get("restart_requested_at") != doc.get(
                "restarted_at"
            ):
                self.runtime.restart(instance_id)
                self._mark_restarted(instance_id, doc["restart_requested_at"])
            state = self.runtime.ensure(self.spec(doc, token))
        except RuntimeUnavailable as exc:
            log.warning("runtime.unavailable: %s", exc)
            return Status("error", "docker_unavailable")
        except RuntimeFailure as exc:
            return Status("error", exc.reason)
        if state.error:
            return Status("error", state.error)
        if state.state is ProcessState.RUNNING:
            return self._status_of_running(instance_id, state.started_at, now.timestamp())
        if state.state is ProcessState.RESTARTING:
            return Status("offline", "restarting")
        return Status("error", "exited")

    def _mark_restarted(self, instance_id: str, stamp: str) -> None:
        with self.store.portal() as uow:
            doc = uow.instances.get(instance_id)
            if doc is not None:
                doc["restarted_at"] = stamp
                uow.instances.put(doc)
                uow.commit()

    def reconcile_once(self) -> dict[str, Status]:
        """Every instance, once; returns the statuses and records the changes."""
        with self.store.portal(write=False) as uow:
            ids = [d["id"] for d in uow.instances.all()]
        self._follow_image()
        # A pooled runtime applies a whole pass's changes at once (one new generation of a
        # pool for fifty new instances, not fifty).
        batch = getattr(self.runtime, "batch", None)
        with batch() if batch is not None else contextlib.nullcontext():
            checked = {i: self._check_alone(i) for i in self.backoff.select(ids)}
        statuses = {i: status for i, status in checked.items() if status is not None}
        placement_of = getattr(self.runtime, "placement_of", None)
        pools = {i: placement_of(i) for i in ids} if placement_of is not None else {}
        self._record(statuses, pools)
        # Runtimes left over from deleted instances.
        try:
            for orphan in set(self.runtime.instances()) - set(ids):
                self.runtime.remove(orphan)
        except RuntimeUnavailable:
            pass
        return statuses

    def _check_alone(self, instance_id: str) -> Status | None:
        """check(), with one instance's failure (its store busy under a stock import, say)
        kept its own: None, its status left as it was, and it rests (self.backoff) before the
        next try, while the pass goes on with the others."""
        try:
            status = self.check(instance_id)
        except Exception as exc:
            if self.backoff.failed(instance_id) == 1:
                log.warning("runtime.check_failed instance=%s error=%s", instance_id, exc)
            return None
        self.backoff.succeeded(instance_id)
        return status

    def _follow_image(self) -> None:
        """`astra runtime upgrade IMAGE` recorded a new image: the runtime moves to it (every
        runtime's spec changes, so each is replaced; a Swarm service by rolling update)."""
        set_image = getattr(self.runtime, "set_image", None)
        if set_image is None:
            return
        image = runtime_image(self.store)
        if image:
            set_image(image)

    def _record(
        self, statuses: dict[str, Status], pools: dict[str, str | None] | None = None
    ) -> None:
        now = self.clock.now()
        pools = pools or {}
        with self.store.portal() as uow:
            changed = False
            for instance_id, status in statuses.items():
                doc = uow.instances.get(instance_id)
                if doc is None:
                    continue
                pool = pools.get(instance_id)
                if doc.get("runtime_pool") != pool and instance_id in pools:
                    # Which pool runs it (the admin panel shows it); not an audited change.
                    doc["runtime_pool"] = pool
                    uow.instances.put(doc)
                    changed = True
                if doc.get("status") == status.status and doc.get("status_reason") == status.reason:
                    continue
                previous = (doc.get("status"), doc.get("status_reason"))
                doc.update(status=status.status, status_reason=status.reason, status_at=iso(now))
                uow.instances.put(doc)
                record(
                    uow,
                    at=now,
                    actor="system",
                    action="runtime.status_changed",
                    target=f"instance:{instance_id}",
                    status=status.status,
                    reason=status.reason,
                    previous=list(previous),
                )
                changed = True
            if changed:
                uow.commit()
