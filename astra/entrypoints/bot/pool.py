"""Many sellers' bots in one process (`astra runtime pool`): the pooled runtime.

Each member is one instance: its own interactions.py client (minimal intents, bounded caches),
extensions, heartbeat and log forwarder, run by its own supervising task. They share the
interpreter, the libraries and one keep-alive session to the platform's internal API, where
each still authenticates with its own runtime credential (the platform scopes every call to the
instance that credential belongs to, exactly as for a bot alone).

One member's trouble stays its own: a crash restarts that client alone, after a backoff that
grows with its restarts; past `restart_limit` it stays down and reports `crash_loop`; a token
Discord refuses reports `invalid_token` and is not retried; Discord's rate limits are per
token, so they are per client too. A stop (SIGTERM) drains every member at once, as a single
bot does: gateways closed first, then the clicks and deliveries in hand are finished.

What the pool's runtime adapter reads back is one `pool.members` line on stderr (JSON, no
secrets: ids, states, restart counts, start times), written at every change and every
`SUMMARY_INTERVAL` seconds; `adapters/runtime/pooled.py` turns it into per-instance states.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import structlog

from astra.entrypoints.bot import log_forwarder
from astra.entrypoints.bot.runtime import InstanceBot, InvalidToken, wants_member_events
from astra.logs import get_logger
from astra.ports.instance_api import Heartbeat, InstanceAPI

log = get_logger("astra.pool")

SUMMARY_EVENT = "pool.members"
HEALTH_FILE = "astra-heartbeat-pool"
SUMMARY_INTERVAL = 15.0
RESTART_LIMIT = 3
BACKOFF = 1.0
MAX_BACKOFF = 60.0


@dataclass(frozen=True)
class Member:
    instance_id: str
    token: str
    credential: str

    def __repr__(self) -> str:  # never the token or the credential
        return f"Member({self.instance_id!r})"


@dataclass
class MemberState:
    # starting | running | restarting | stopped | crash_loop | invalid_token
    state: str = "starting"
    restarts: int = 0
    started_at: float | None = None
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "exit_code": self.exit_code,
        }


class BotPool:
    def __init__(
        self,
        pool_id: str,
        members: list[Member],
        *,
        make_api: Callable[[Member], InstanceAPI],
        discord_api_base: str,
        restart_limit: int = RESTART_LIMIT,
        backoff: float = BACKOFF,
        summary: TextIO | None = None,
        **bot_options: Any,
    ) -> None:
        self.pool_id = pool_id
        self.members = members
        self.make_api = make_api
        self.discord_api_base = discord_api_base
        self.restart_limit = restart_limit
        self.backoff = backoff
        self.summary_stream = summary
        self.bot_options = bot_options
        self.states = {m.instance_id: MemberState() for m in members}
        self.bots: dict[str, InstanceBot] = {}
        self.ready = asyncio.Event()  # every member READY (or given up)
        self._summary_due = False

    # -- what the adapter reads ------------------------------------------------------------------

    def write_summary(self) -> None:
        stream = self.summary_stream or sys.stderr
        line = json.dumps(
            {
                "event": SUMMARY_EVENT,
                "pool": self.pool_id,
                "at": time.time(),
                "members": {i: s.to_json() for i, s in self.states.items()},
            },
            separators=(",", ":"),
        )
        with contextlib.suppress(OSError, ValueError):
            stream.write(line + "\n")
            stream.flush()

    def _flush_summary(self) -> None:
        self._summary_due = False
        self.write_summary()

    def touch_health(self) -> None:
        """The pool's health file in its own scratch space (`/tmp/astra-heartbeat-pool`): made
        once every bot is READY or given up, refreshed with every summary. A container's
        HEALTHCHECK reads it, and a Swarm rolling update waits for it before it stops the
        previous task (so clicks always find a bot). The platform never reads it."""
        if self.ready.is_set():
            with contextlib.suppress(OSError):
                Path(tempfile.gettempdir(), HEALTH_FILE).touch()

    def _set(self, instance_id: str, **changes: Any) -> None:
        state = self.states[instance_id]
        for name, value in changes.items():
            setattr(state, name, value)
        # One line for all the changes of one turn of the loop (fifty bots stopping at once
        # write one line, not fifty).
        if not self._summary_due:
            self._summary_due = True
            asyncio.get_running_loop().call_soon(self._flush_summary)
        if all(s.state != "starting" and s.state != "restarting" for s in self.states.values()):
            self.ready.set()
            self.touch_health()

    # -- running ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Every member until `stop`; then every member drained at once."""
        self.write_summary()
        tasks = [
            asyncio.create_task(self._supervise(m, stop), name=f"pool-member-{m.instance_id}")
            for m in self.members
        ]
        ticker = asyncio.create_task(self._tick(stop), name="pool-summary")
        try:
            await asyncio.gather(*tasks)
        finally:
            ticker.cancel()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, ticker, return_exceptions=True)
            self.write_summary()

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SUMMARY_INTERVAL)
            self.write_summary()
            if not stop.is_set():
                self.touch_health()

    async def _supervise(self, member: Member, stop: asyncio.Event) -> None:
        instance_id = member.instance_id
        # Everything this task and the client's tasks log is this instance's: its lines carry
        # its id, and only its own forwarder sends them to the platform.
        log_forwarder.current_instance.set(instance_id)
        structlog.contextvars.bind_contextvars(instance=instance_id)
        api = self.make_api(member)
        forwarder, detach = log_forwarder.install(api, own_only=True)
        flusher = asyncio.create_task(forwarder.run(stop), name=f"log-forwarder-{instance_id}")
        try:
            await self._run_member(member, api, stop)
        finally:
            detach()
            with contextlib.suppress(Exception):
                await forwarder.flush_once()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher

    async def _run_member(self, member: Member, api: InstanceAPI, stop: asyncio.Event) -> None:
        instance_id = member.instance_id
        restarts = 0
        while not stop.is_set():
            self._set(instance_id, state="starting", started_at=time.time(), exit_code=None)
            try:
                if not member.token:
                    raise RuntimeError("no bot token was given for this instance")
                member_events = await wants_member_events(api)
                bot = InstanceBot(
                    api,
                    member.token,
                    discord_api_base=self.discord_api_base,
                    bounded_caches=True,
                    member_events=member_events,
                    **self.bot_options,
                )
                self.bots[instance_id] = bot
                log.info("bot.starting", instance=instance_id, pool=self.pool_id)
                await bot.run(stop, on_ready=lambda _bot: self._set(instance_id, state="running"))
                if stop.is_set():
                    self._set(instance_id, state="stopped", exit_code=0)
                    return
                raise RuntimeError("the client ended by itself")
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                # bot.run reported it to the platform already; retrying cannot help.
                log.error("pool.invalid_token", instance=instance_id)
                self._set(instance_id, state="invalid_token", exit_code=3)
                return
            except Exception as exc:
                log.error("pool.member_crashed", instance=instance_id, error=repr(exc)[:300])
                if stop.is_set():
                    self._set(instance_id, state="stopped", exit_code=0)
                    return
                if restarts >= self.restart_limit:
                    # The platform hears it first: whoever reads the state finds it reported.
                    with contextlib.suppress(Exception):
                        await api.heartbeat(Heartbeat(error="crash_loop"))
                    self._set(instance_id, state="crash_loop", exit_code=1)
                    return
                restarts += 1
                self._set(instance_id, state="restarting", restarts=restarts, exit_code=1)
                pause = min(self.backoff * 2 ** (restarts - 1), MAX_BACKOFF)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
            finally:
                self.bots.pop(instance_id, None)
        self._set(instance_id, state="stopped", exit_code=0)


def members_from_environment(raw: str) -> list[Member]:
    """ASTRA_POOL_MEMBERS: a JSON list of {"id", "token", "key"}, as the runtime adapter
    wrote it."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ValueError("ASTRA_POOL_MEMBERS is not JSON") from None
    if not isinstance(doc, list):
        raise ValueError("ASTRA_POOL_MEMBERS must be a list")
    members: list[Member] = []
    for item in doc:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ValueError("every pool member needs an id")
        members.append(
            Member(str(item["id"]), str(item.get("token") or ""), str(item.get("key") or ""))
        )
    return members
