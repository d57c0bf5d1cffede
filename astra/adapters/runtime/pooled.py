"""Instances placed in pools: many sellers' bots per runtime unit, on any unit runtime.

`PooledRuntime` is the ContainerRuntime port per instance, on top of a runtime that runs units
(`ProcessRuntime`, `DockerRuntime`, `SwarmRuntime`): it assigns each instance to a pool of at
most `pool_size` instances with the same environment, and runs each pool as one unit
(`RuntimeSpec.members`, `astra runtime pool`). An instance whose placement is `isolated` (its
own setting, or the platform's mode) runs alone as before, on the same runtime.

Pools are immutable: a change of membership (an instance added, stopped, removed, restarted, or
given a new token) makes a new generation of the pool under a new id, started first; the old
unit is retired once the new one's bots that were serving are READY again (or after
`handoff_timeout`), and its stop drains it (gateways closed, clicks and deliveries in hand
finished). Meanwhile both sessions receive the same interactions, and Discord accepts one
answer per interaction: every handler acknowledges (defers or answers) before it changes
anything, so the loser of that race changes nothing. A monitor pass makes all its changes in
one `batch()`, so fifty new instances make one generation, not fifty.

A pool whose unit dies for good (its own crash loop, not one of its members') is rebalanced: its
members move to other pools. Per-instance states come from the pool's `pool.members` lines (see
`entrypoints/bot/pool.py`), and per-instance logs from the pool's lines that carry the
instance's id.

Trust: a pool is one process for several tenants. A bot that is compromised through its own
code paths holds its pool-mates' tokens and runtime credentials, and receives their gateway
events (their buyers' and staff's interactions). Operators who cannot accept that between
sellers group pools by owner (`grouping="owner"`, ASTRA_POOL_GROUPING=owner: a pool holds one
seller's instances only) or run those instances (or every instance) isolated.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from astra.adapters.runtime.units import spec_digest
from astra.ports.runtime import (
    POOL_PREFIX,
    ContainerRuntime,
    ProcessState,
    RuntimeSpec,
    RuntimeState,
    is_pool_id,
)

log = logging.getLogger("astra.runtime")

Mode = Literal["pooled", "isolated"]
Grouping = Literal["environment", "owner"]
SUMMARY_EVENT = "pool.members"
SUMMARY_TAIL = 400  # log lines searched for the newest summary (it is rewritten every 15 s)
HANDOFF_TIMEOUT = 60.0
CACHE_SECONDS = 0.3
HISTORY = 3  # pool units whose logs an instance's logs are read from


@dataclass
class _Pool:
    unit_id: str
    group: str
    environment: dict[str, str]
    members: dict[str, RuntimeSpec] = field(default_factory=dict)
    started: bool = False


class PooledRuntime:
    def __init__(
        self,
        units: Any,
        *,
        pool_size: int = 50,
        mode: Mode = "pooled",
        handoff_timeout: float = HANDOFF_TIMEOUT,
        grouping: Grouping = "environment",
    ) -> None:
        self.units: ContainerRuntime = units
        self.grouping: Grouping = grouping
        self.name = units.name
        self.pool_size = max(1, pool_size)
        self.mode = mode
        self.handoff_timeout = handoff_timeout
        self._lock = threading.RLock()
        self._pools: dict[str, _Pool] = {}
        self._where: dict[str, str] = {}  # instance -> its pool's unit id
        self._stopped: dict[str, RuntimeSpec] = {}  # pooled instances stopped on purpose
        self._history: dict[str, list[str]] = {}
        self._dirty: set[str] = set()  # pools whose unit must be made again
        self._batching = 0
        self._summaries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._retiring: list[threading.Thread] = []
        self._swept = False
        self._leftovers: list[str] = []

    # -- what the platform asks about placement --------------------------------------------------

    def available(self) -> bool:
        check = getattr(self.units, "available", None)
        return bool(check()) if check else True

    def placement_of(self, instance_id: str) -> str | None:
        """The pool that runs the instance ("pool.<name>"), "isolated", or None."""
        with self._lock:
            if instance_id in self._where:
                return self._where[instance_id]
        return None

    def pools(self) -> dict[str, list[str]]:
        with self._lock:
            return {p.unit_id: sorted(p.members) for p in self._pools.values() if p.members}

    def _pooled(self, spec: RuntimeSpec) -> bool:
        if spec.placement in ("pooled", "isolated"):
            return spec.placement == "pooled"
        return self.mode == "pooled"

    def set_image(self, image: str) -> bool:
        """Move every runtime to `image` (`astra runtime upgrade`): each pool gets a new
        generation on the new image, started first, the old one stopped once the new one's
        bots are READY; isolated runtimes are moved by the unit runtime (a Swarm service by a
        rolling update; a container when the monitor next ensures it: its spec names the
        image)."""
        set_image = getattr(self.units, "set_image", None)
        if set_image is None or not set_image(image):
            return False
        with self._lock:
            self._dirty |= {p.unit_id for p in self._pools.values() if p.started}
        self._apply()
        return True

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Changes made inside are applied once, at the end (a monitor pass)."""
        with self._lock:
            self._batching += 1
        try:
            yield
        finally:
            with self._lock:
                self._batching -= 1
                last = self._batching == 0
            if last:
                self._apply()

    # -- the port --------------------------------------------------------------------------------

    def ensure(self, spec: RuntimeSpec) -> RuntimeState:
        self._sweep_leftovers()
        instance_id = spec.instance_id
        if not self._pooled(spec):
            with self._lock:
                was_pooled = instance_id in self._where or instance_id in self._stopped
            if was_pooled:
                self._leave(instance_id, forget=True)
                self._apply()
            return self.units.ensure(replace(spec, placement=None))
        if instance_id not in self._where:
            # It may have run alone before: one bot per token, never two.
            with contextlib.suppress(Exception):
                if self.units.status(instance_id).state is not ProcessState.MISSING:
                    self.units.remove(instance_id)
        with self._lock:
            self._stopped.pop(instance_id, None)
            spec = replace(spec, placement=None)
            unit_id = self._where.get(instance_id)
            pool = self._pools.get(unit_id) if unit_id else None
            current = pool.members.get(instance_id) if pool else None
            if current is not None and spec_digest(current) == spec_digest(spec):
                if self._unit_dead(pool):
                    self._rebalance(pool)
            else:
                if pool is not None:
                    pool.members.pop(instance_id, None)
                    self._dirty.add(pool.unit_id)
                self._place(spec)
            batching = self._batching > 0
        if not batching:
            self._apply()
        return self.status(instance_id)

    def stop(self, instance_id: str) -> RuntimeState:
        with self._lock:
            pooled = instance_id in self._where
        if not pooled:
            if instance_id in self._stopped:
                return self.status(instance_id)
            return self.units.stop(instance_id)
        self._leave(instance_id, forget=False)
        self._apply()
        return self.status(instance_id)

    def restart(self, instance_id: str) -> RuntimeState:
        with self._lock:
            unit_id = self._where.get(instance_id)
            pool = self._pools.get(unit_id) if unit_id else None
            spec = pool.members.get(instance_id) if pool else self._stopped.get(instance_id)
        if spec is None:
            return self.units.restart(instance_id)
        with self._lock:
            if pool is not None:
                pool.members.pop(instance_id, None)
                self._dirty.add(pool.unit_id)
                self._where.pop(instance_id, None)
            self._stopped.pop(instance_id, None)
            self._place(spec)
        self._apply()
        return self.status(instance_id)

    def remove(self, instance_id: str) -> None:
        with self._lock:
            pooled = instance_id in self._where or instance_id in self._stopped
        if pooled:
            self._leave(instance_id, forget=True)
            self._apply()
        self.units.remove(instance_id)

    def status(self, instance_id: str) -> RuntimeState:
        with self._lock:
            unit_id = self._where.get(instance_id)
            stopped = instance_id in self._stopped
        if unit_id is None:
            if stopped:
                return RuntimeState(ProcessState.EXITED)
            return self.units.status(instance_id)
        return self._member_state(unit_id, instance_id)

    def logs(self, instance_id: str, lines: int = 100) -> list[str]:
        if lines <= 0:
            return []
        with self._lock:
            units = list(self._history.get(instance_id, []))
        if not units:
            return self.units.logs(instance_id, lines)
        own: list[str] = []
        for unit_id in units:  # oldest first
            own.extend(_lines_of(self.units.logs(unit_id, max(lines * 20, 400)), instance_id))
        return own[-lines:]

    def instances(self) -> list[str]:
        with self._lock:
            pooled = set(self._where) | set(self._stopped)
        alone = {i for i in self.units.instances() if not is_pool_id(i)}
        return sorted(pooled | alone)

    def shutdown(self) -> None:
        """When `astra serve` stops: a runtime whose units die with the platform (processes)
        stops them, pools included; containers and services live on their own."""
        shutdown = getattr(self.units, "shutdown", None)
        if shutdown is None:
            return
        for thread in list(self._retiring):
            thread.join(self.handoff_timeout + 30)
        with self._lock:
            units = [p.unit_id for p in self._pools.values()]
            self._pools.clear()
            self._where.clear()
        for unit_id in units:
            with contextlib.suppress(Exception):
                self.units.remove(unit_id)
        shutdown()

    def __getattr__(self, name: str) -> Any:
        # What only the unit runtime has (the Docker network's gateway, say).
        if name.startswith("_") or name == "units":
            raise AttributeError(name)
        return getattr(self.units, name)

    # -- placing ---------------------------------------------------------------------------------

    def _place(self, spec: RuntimeSpec) -> None:
        """Into the fullest pool of its group that has room (packed: fewer processes), or a
        new one. Caller holds the lock."""
        group = _group(spec.environment, spec.owner_id if self.grouping == "owner" else None)
        candidates = [
            p for p in self._pools.values()
            if p.group == group and len(p.members) < self.pool_size and not self._unit_dead(p)
        ]
        if candidates:
            pool = max(candidates, key=lambda p: len(p.members))
        else:
            unit_id = f"{POOL_PREFIX}{group[:6]}-{secrets.token_hex(3)}"
            pool = _Pool(unit_id, group, dict(spec.environment))
            self._pools[unit_id] = pool
        pool.members[spec.instance_id] = spec
        self._where[spec.instance_id] = pool.unit_id
        self._dirty.add(pool.unit_id)

    def _leave(self, instance_id: str, *, forget: bool) -> None:
        with self._lock:
            unit_id = self._where.pop(instance_id, None)
            pool = self._pools.get(unit_id) if unit_id else None
            spec = pool.members.pop(instance_id, None) if pool else None
            if pool is not None:
                self._dirty.add(pool.unit_id)
            if forget:
                self._stopped.pop(instance_id, None)
                self._history.pop(instance_id, None)
            elif spec is not None:
                self._stopped[instance_id] = spec

    def _unit_dead(self, pool: _Pool | None) -> bool:
        if pool is None or not pool.started:
            return False
        try:
            state = self.units.status(pool.unit_id)
        except Exception:
            return False
        return state.state is ProcessState.EXITED and state.error is not None

    def _rebalance(self, pool: _Pool) -> None:
        """A pool that died for good hands the members that were serving to other pools; the
        ones that never served stay (they are why it died, most likely). Caller holds the lock."""
        summary = self._summary(pool.unit_id)
        serving = [
            i for i, s in (summary.get("members") or {}).items()
            if isinstance(s, dict) and s.get("state") == "running" and i in pool.members
        ]
        for instance_id in serving:
            # The dead unit is left as it is (not made again) for the ones that stay.
            spec = pool.members.pop(instance_id)
            self._where.pop(instance_id, None)
            self._place(spec)

    # -- making units ----------------------------------------------------------------------------

    def _apply(self) -> None:
        """Make a new generation of every pool that changed; retire the old ones."""
        with self._lock:
            if self._batching:
                return
            dirty, self._dirty = self._dirty, set()
            plans: list[tuple[_Pool | None, _Pool]] = []
            for unit_id in dirty:
                old = self._pools.get(unit_id)
                if old is None:
                    continue
                if not old.started:
                    plans.append((None, old))  # never made: made now, under its own id
                    continue
                new = _Pool(
                    f"{POOL_PREFIX}{old.group[:6]}-{secrets.token_hex(3)}",
                    old.group, old.environment, dict(old.members),
                )
                del self._pools[unit_id]
                if new.members:
                    self._pools[new.unit_id] = new
                    for instance_id in new.members:
                        self._where[instance_id] = new.unit_id
                plans.append((old, new))
        with self._lock:
            leftovers, self._leftovers = self._leftovers, []
        for old, new in plans:
            if new.members:
                self._start(new)
            if old is not None:
                serving = self._serving(old) & set(new.members)
                thread = threading.Thread(
                    target=self._retire, args=(old, new if new.members else None, serving),
                    daemon=True, name=f"retire-{old.unit_id}",
                )
                self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]
                thread.start()
        if leftovers:
            thread = threading.Thread(
                target=self._retire_leftovers,
                args=(leftovers, [new for _, new in plans if new.members]),
                daemon=True, name="retire-leftover-pools",
            )
            self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]
            thread.start()

    def _start(self, pool: _Pool) -> None:
        members = tuple(sorted(pool.members.values(), key=lambda s: s.instance_id))
        spec = RuntimeSpec(
            instance_id=pool.unit_id,
            owner_id="",
            bot_token="",
            instance_key="",
            environment=dict(pool.environment),
            members=members,
        )
        log.info("runtime.pool_started pool=%s members=%d", pool.unit_id, len(members))
        with self._lock:
            pool.started = True
            for member in members:
                units = self._history.setdefault(member.instance_id, [])
                units.append(pool.unit_id)
                del units[:-HISTORY]
        self.units.ensure(spec)

    def _serving(self, pool: _Pool) -> set[str]:
        members = self._summary(pool.unit_id, fresh=True).get("members") or {}
        return {
            i for i, s in members.items() if isinstance(s, dict) and s.get("state") == "running"
        }

    def _retire(self, old: _Pool, new: _Pool | None, serving: set[str]) -> None:
        """Start-first hand-off: wait until the new generation serves what the old one served,
        then stop the old one (its stop drains the clicks and deliveries in hand)."""
        deadline = time.monotonic() + self.handoff_timeout
        while new is not None and serving and time.monotonic() < deadline:
            members = self._summary(new.unit_id, fresh=True).get("members") or {}
            waiting = [
                i for i in serving
                if (members.get(i) or {}).get("state") in (None, "starting", "restarting")
            ]
            if not waiting:
                break
            state = self.units.status(new.unit_id).state
            if state is ProcessState.EXITED or state is ProcessState.MISSING:
                break
            time.sleep(0.2)
        log.info("runtime.pool_retiring pool=%s successor=%s serving=%d", old.unit_id,
                 new.unit_id if new is not None else None, len(serving))
        with contextlib.suppress(Exception):
            self.units.remove(old.unit_id)
        log.info("runtime.pool_retired pool=%s", old.unit_id)

    def _sweep_leftovers(self) -> None:
        """Pool units left by an earlier run of the platform (containers and services outlive
        it, and its assignments are gone): noted before the first placement, and retired once
        the first generation of pools serves (start-first, like any hand-off)."""
        with self._lock:
            if self._swept:
                return
            self._swept = True
        try:
            leftovers = [u for u in self.units.instances() if is_pool_id(u)]
        except Exception:
            with self._lock:
                self._swept = False
            return
        with self._lock:
            self._leftovers = leftovers

    def _retire_leftovers(self, leftovers: list[str], pools: list[_Pool]) -> None:
        deadline = time.monotonic() + self.handoff_timeout
        while time.monotonic() < deadline:
            waiting = False
            for pool in pools:
                members = self._summary(pool.unit_id, fresh=True).get("members") or {}
                if any((members.get(i) or {}).get("state") in (None, "starting", "restarting")
                       for i in pool.members):
                    waiting = True
            if not waiting:
                break
            time.sleep(0.5)
        for unit_id in leftovers:
            with contextlib.suppress(Exception):
                self.units.remove(unit_id)

    # -- reading what a pool says ----------------------------------------------------------------

    def _summary(self, unit_id: str, *, fresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._summaries.get(unit_id)
        if cached is not None and not fresh and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        summary: dict[str, Any] = {}
        try:
            lines = self.units.logs(unit_id, SUMMARY_TAIL)
        except Exception:
            lines = []
        for line in reversed(lines):
            if SUMMARY_EVENT not in line:
                continue
            doc = _json(line)
            if doc and doc.get("event") == SUMMARY_EVENT and doc.get("pool") == unit_id:
                summary = doc
                break
        self._summaries[unit_id] = (now, summary)
        return summary

    def _member_state(self, unit_id: str, instance_id: str) -> RuntimeState:
        unit = self.units.status(unit_id)
        if unit.state is ProcessState.MISSING:
            return RuntimeState(ProcessState.RESTARTING)  # being made
        if unit.state is not ProcessState.RUNNING:
            return unit
        member = (self._summary(unit_id).get("members") or {}).get(instance_id)
        if not isinstance(member, dict):
            # The pool has not said anything yet: it is starting its bots.
            return RuntimeState(ProcessState.RUNNING, started_at=unit.started_at)
        restarts = int(member.get("restarts") or 0)
        # The pool's own start until the bot restarted inside it: a bot's first start is the
        # pool's, so the time does not move when the pool's first report arrives.
        started_at = (_float(member.get("started_at")) if restarts else None) or unit.started_at
        exit_code = member.get("exit_code")
        state = member.get("state")
        if state in ("starting", "running"):
            return RuntimeState(ProcessState.RUNNING, restarts=restarts, started_at=started_at)
        if state == "restarting":
            return RuntimeState(ProcessState.RESTARTING, restarts=restarts, started_at=started_at)
        error = state if state in ("crash_loop", "invalid_token") else None
        return RuntimeState(
            ProcessState.EXITED,
            restarts=restarts,
            exit_code=exit_code if isinstance(exit_code, int) else None,
            started_at=started_at,
            error=error,
        )


def _group(environment: dict[str, str], owner: str | None = None) -> str:
    """Instances share a pool only when their runtimes would get the same environment (and,
    grouped by owner, belong to the same seller)."""
    doc = json.dumps(sorted(environment.items()))
    if owner is not None:
        doc = json.dumps({"environment": doc, "owner": owner})
    return hashlib.sha256(doc.encode()).hexdigest()


def _json(line: str) -> dict[str, Any] | None:
    start = line.find("{")
    if start < 0:
        return None
    try:
        doc = json.loads(line[start:])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _lines_of(lines: list[str], instance_id: str) -> list[str]:
    """A pool's lines that are this instance's: JSON lines whose `instance` is it (the pool's
    logger adds it to everything a member's tasks log), console lines saying so."""
    own = []
    for line in lines:
        if SUMMARY_EVENT in line:
            continue
        doc = _json(line) if line.lstrip().startswith("{") else None
        if doc is not None:
            if doc.get("instance") == instance_id:
                own.append(line)
        elif f"instance={instance_id}" in line:
            own.append(line)
    return own
