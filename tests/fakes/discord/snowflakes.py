"""Discord snowflake ids and ISO timestamps, so ids sort by creation time like real ones."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1_420_070_400_000


class Snowflakes:
    """Monotonic snowflake generator: (ms since 2015) << 22 | worker << 17 | process << 12 | n."""

    def __init__(self, worker: int = 1, process: int = 0) -> None:
        self._worker = worker & 0x1F
        self._process = process & 0x1F
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            now = int(time.time() * 1000) - DISCORD_EPOCH_MS
            candidate = (now << 22) | (self._worker << 17) | (self._process << 12)
            # Several ids in one millisecond (or a clock step back) still come out increasing.
            value = max(candidate, self._last + 1)
            self._last = value
            return str(value)


def created_at(snowflake: str | int) -> datetime:
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso(when: datetime | None = None) -> str:
    """Discord's timestamp format: 2017-07-11T17:27:07.299000+00:00."""
    return (when or datetime.now(tz=UTC)).astimezone(UTC).isoformat(timespec="microseconds")
