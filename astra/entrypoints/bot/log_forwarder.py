"""A runtime's warnings and errors, sent to its platform through the instance API.

A runtime's stdout is captured by its runtime adapter where there is one to read (a process's
log file, a container's json-file log), but the operator should not depend on that: a bot in a
pool or a Swarm task writes where the platform may not look. So warnings and errors also go to
the platform, which logs them under the instance's name (as text: never data it acts on).

Bounded on both sides: at most `CAPACITY` lines wait here (the oldest are dropped first, and
how many were dropped is said), a flush sends at most `BATCH` lines, each redacted and cut to
`MAX_TEXT` characters, and the platform rate-limits the calls like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from typing import Any

from astra.logs import redact_text
from astra.ports.instance_api import InstanceAPI

CAPACITY = 500
BATCH = 50
MAX_TEXT = 2000
FLUSH_INTERVAL = 2.0

# Set while flushing: what the HTTP client logs about its own call must not queue more lines.
_flushing: contextvars.ContextVar[bool] = contextvars.ContextVar("flushing", default=False)
# In a pool, the instance whose bot is running the current task (its tasks inherit it): each
# instance's forwarder takes only its own bot's lines, so no seller reads another's.
current_instance: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_instance", default=None
)


class PlatformLogForwarder(logging.Handler):
    def __init__(
        self, api: InstanceAPI, loop: asyncio.AbstractEventLoop, *, own_only: bool = False
    ) -> None:
        super().__init__(level=logging.WARNING)
        self.api = api
        self.own_only = own_only
        self.loop = loop
        self.lines: deque[dict[str, str]] = deque(maxlen=CAPACITY)
        self.dropped = 0
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if _flushing.get():
            return
        if self.own_only and current_instance.get() != self.api.instance_id:
            return  # another bot's line, or the pool's own
        try:
            text = redact_text(self.format(record))[:MAX_TEXT]
        except Exception:  # a record that cannot be formatted is not worth a crash
            return
        line = {
            "level": "error" if record.levelno >= logging.ERROR else "warning",
            "logger": record.name[:80],
            "text": text,
        }
        with contextlib.suppress(RuntimeError):  # the loop is closed: the bot is gone anyway
            self.loop.call_soon_threadsafe(self._keep, line)

    def _keep(self, line: dict[str, str]) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        self.lines.append(line)

    async def flush_once(self) -> int:
        """Send what waits (one batch); returns how many lines went."""
        if not self.lines and not self.dropped:
            return 0
        batch = [self.lines.popleft() for _ in range(min(BATCH, len(self.lines)))]
        if self.dropped:
            batch = [*batch[: BATCH - 1], {"level": "warning", "logger": "astra.bot",
                                           "text": f"{self.dropped} log lines dropped"}]
            self.dropped = 0
        token = _flushing.set(True)
        try:
            await self.api.log(batch)
        except Exception:
            return 0  # the platform is away; these lines are in the runtime's own output too
        finally:
            _flushing.reset(token)
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_INTERVAL)
            await self.flush_once()


def install(api: InstanceAPI, *, own_only: bool = False) -> tuple[PlatformLogForwarder, Any]:
    """Attach a forwarder to the root logger; returns it and a function that detaches it.
    `own_only` (in a pool): only lines logged while `current_instance` is this instance."""
    forwarder = PlatformLogForwarder(api, asyncio.get_running_loop(), own_only=own_only)
    root = logging.getLogger()
    root.addHandler(forwarder)
    return forwarder, lambda: root.removeHandler(forwarder)
