"""Clock adapters: the real one, and a frozen one that tests move by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FrozenClock:
    """Stands still until told to move, so cart expiry or plan ends are tested without sleeping."""

    def __init__(self, start: datetime | None = None, *, monotonic: float = 0.0) -> None:
        self._now = _utc(start) if start is not None else datetime(2025, 1, 1, tzinfo=UTC)
        self._monotonic = monotonic

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def set(self, when: datetime) -> None:
        """Jump the wall clock (backwards too, as an NTP step can); the monotonic clock stays."""
        self._now = _utc(when)

    def advance(self, delta: timedelta | float) -> None:
        """Move both clocks forward by `delta` (seconds when a number)."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a clock only advances; use set() to move the wall clock back")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        # A naive datetime has no defined instant; accepting it would hide a bug in the caller.
        raise ValueError("FrozenClock needs a timezone-aware datetime")
    return when.astimezone(UTC)
