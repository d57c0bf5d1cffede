"""Whether the database answers, as one process sees it, and what its pools do about it.

A PostgreSQL server that stops (a restart, a failover, an operator's `pg_ctl stop`) breaks every
pooled connection at once, and until it is back each new connection is refused. Left alone, a
psycopg pool then makes every caller wait its whole timeout for a connection that cannot come,
and its reconnection backoff doubles past the outage, so requests hang while the database is
down and keep failing for a while after it is back. Here instead:

- the first failure that shows the server gone (a broken connection, a refused connect, the
  pool's own attempt to connect included, no connection in time) marks the database down;
  while it is down a caller waits at most `DOWN_WAIT_SECONDS` for a connection (one already
  waiting when it goes down too), so a request answers 503 in well under a second;
- marking it down purges the pool's idle connections (all broken); a connection that sat idle
  a while, or any connection for a while after a failure, is checked (one empty round trip)
  before it is handed out, and a dead one is replaced at once, so no caller gets a connection
  the server closed while it waited (an idle replica's first request after a restart included);
- the pool gives up reconnecting in the background after `RECONNECT_SECONDS` and grows again
  on demand, so the first requests after the outage connect at once instead of waiting out a
  long backoff;
- the first connection that works again marks it up.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from astra.logs import get_logger
from astra.ports.store import StoreBusy, StoreError, StoreUnavailable

log = get_logger("astra.database")

# How long a caller waits for a pooled connection while the database answers: long enough for
# a busy pool to free one under load.
WAIT_SECONDS = 5.0
# ... and while it is known to be down: the answer is a 503 either way, and a quick one.
DOWN_WAIT_SECONDS = 0.5
# One connection attempt: on a working network the server accepts or refuses in milliseconds.
CONNECT_TIMEOUT_SECONDS = 2
# A pool's background reconnection gives up after this; demand starts a new attempt.
RECONNECT_SECONDS = 3.0
# A caller waiting for a connection looks this often whether the database went down meanwhile.
WAIT_SLICE_SECONDS = 0.1
# Connections are checked before use for this long after the last failure...
SUSPECT_SECONDS = 30.0
# ... and, at any time, when they sat in the pool longer than this (a busy pool reuses its
# connections within milliseconds and pays nothing).
IDLE_CHECK_SECONDS = 5.0
# A statement that runs longer is cancelled (no request waits on one forever).
STATEMENT_TIMEOUT_SECONDS = 30.0

# libpq: notice a dead peer within seconds (a vanished host sends no RST).
KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
}


class Availability:
    """Up or down, for the pools of one process on one database (thread-safe)."""

    def __init__(self, location: str, *, wait: float = WAIT_SECONDS,
                 down_wait: float = DOWN_WAIT_SECONDS) -> None:
        self.location = location
        self.wait = wait
        self.down_wait = down_wait
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_failure = float("-inf")
        self._pools: list[ConnectionPool[Any]] = []

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def watch(self, pool: ConnectionPool[Any]) -> None:
        """Purge `pool`'s idle connections whenever the database goes down."""
        self._pools.append(pool)

    def timeout(self) -> float:
        """How long to wait for a pooled connection now."""
        return self.down_wait if self.down else self.wait

    def connection_class(self) -> type[psycopg.Connection[Any]]:
        """For the pools' `connection_class`: connections whose failure to connect (the pool
        makes them in the background) marks the database down at once."""
        availability = self

        class WatchedConnection(psycopg.Connection):  # type: ignore[type-arg]
            @classmethod
            def connect(cls, *args: Any, **kwargs: Any) -> Any:
                try:
                    return super().connect(*args, **kwargs)
                except psycopg.OperationalError as exc:
                    availability.failed(first_line(exc))
                    raise

        return WatchedConnection

    def configure(self, conn: psycopg.Connection[Any]) -> None:
        """For the pools' `configure`: a new connection counts as just used."""
        conn._astra_used = time.monotonic()  # type: ignore[attr-defined]

    def _needs_check(self, conn: psycopg.Connection[Any], now: float) -> bool:
        if now - self._last_failure < SUSPECT_SECONDS:
            return True
        return now - getattr(conn, "_astra_used", float("-inf")) > IDLE_CHECK_SECONDS

    def failed(self, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._last_failure = now
            if self._down_since is not None:
                return
            self._down_since = now
        log.error("database.down", database=self.location, error=reason,
                  detail="answering 503 until it is back")
        for pool in list(self._pools):
            threading.Thread(target=_purge, args=(pool,), name="astra-db-purge",
                             daemon=True).start()

    def succeeded(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning("database.back", database=self.location,
                        down_seconds=round(time.monotonic() - since, 2))

    def getconn(self, pool: ConnectionPool[Any]) -> psycopg.Connection[Any]:
        """A working connection from `pool`, or StoreUnavailable in `timeout()` at most."""
        start = time.monotonic()
        while True:
            now = time.monotonic()
            # Recomputed each slice: a wait that began while the database answered ends soon
            # after it is found down.
            limit = start + (self.down_wait if self.down else self.wait)
            if now >= limit:
                message = (f"no connection to the database {self.location} "
                           f"within {now - start:.1f} s")
                self.failed(message)
                raise StoreUnavailable(message + " (is it running and reachable?)")
            try:
                conn = pool.getconn(timeout=min(limit - now, WAIT_SLICE_SECONDS))
            except PoolTimeout:
                continue
            if not self._needs_check(conn, time.monotonic()):
                break
            try:
                ConnectionPool.check_connection(conn)
            except psycopg.Error as exc:
                pool.putconn(conn)  # broken: the pool discards it and makes another
                self.failed(first_line(exc))
                continue  # the next one, until the limit
            break
        if self.down:
            self.succeeded()  # it just answered a round trip, or was made just now
        return conn

    def putconn(self, pool: ConnectionPool[Any], conn: psycopg.Connection[Any]) -> None:
        conn._astra_used = time.monotonic()  # type: ignore[attr-defined]
        pool.putconn(conn)

    def error(self, exc: BaseException, what: str = "database") -> StoreError:
        """The store error for a failed statement or connect; a connection failure marks the
        database down."""
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return StoreBusy(what, STATEMENT_TIMEOUT_SECONDS)
        if is_connection_failure(exc):
            text = first_line(exc)
            self.failed(text)
            return StoreUnavailable(f"the database {self.location} is unavailable: {text}")
        return StoreError(f"database error ({type(exc).__name__}): {first_line(exc)}")


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` says the server is gone rather than that a statement was wrong."""
    if isinstance(exc, PoolTimeout | psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
        return False
    # OperationalError: connection refused or lost, "terminating connection due to
    # administrator command" (57P01), "the database system is shutting down" (57P03)...
    return isinstance(exc, psycopg.OperationalError)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _purge(pool: ConnectionPool[Any]) -> None:
    try:
        pool.check()
    except Exception:  # a closed pool (shutting down): nothing to purge
        pass
