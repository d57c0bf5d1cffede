"""Coordination of replicas through PostgreSQL (tables from migration 0002_replicas.sql).

Leases are session-level advisory locks held by one dedicated connection per process: a process
that dies (SIGKILL, a lost host) loses its connection, the server drops its locks, and another
replica's next `try_lead` (every second or so) takes them. TCP keepalives on that connection,
on both ends, bound how long a vanished host's locks outlive it.

The webhook inbox is a table. `put` commits the row before the webhook is answered; a worker
claims the oldest due row with `SELECT ... FOR UPDATE SKIP LOCKED` and keeps that transaction
open while it processes the payment, then deletes the row. Two workers never hold one row; a
worker that dies mid-way rolls back, and the row is claimed again by someone else. Processing
a payment twice is harmless (settlement is idempotent); losing one is not.

While the database is down every call fails fast with the store port's StoreUnavailable (the
portal and the internal API answer 503), and the leases' connection is tried again with a
capped backoff rather than on every check (availability.py has the rest of the story).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from astra.adapters.store.postgresql.availability import (
    KEEPALIVE,
    RECONNECT_SECONDS,
    Availability,
    first_line,
)
from astra.adapters.store.postgresql.dsn import redact
from astra.logs import get_logger
from astra.ports.coordination import Coordination, WebhookClaim

log = get_logger("astra.coordination")

# The first half of every two-key advisory lock Astra's leases take ("AS"): their own space,
# apart from the single-key locks the store takes.
LEASE_SPACE = 0x4153
MAX_WAITING = 10_000
POLL_SECONDS = 0.5
# After the leases' connection fails, the next attempt waits this long, doubling up to the cap:
# a replica without its database neither spins nor takes long to lead again once it is back.
LEASE_RETRY_FIRST = 0.5
LEASE_RETRY_CAP = 4.0
# The server's side of the same, for the leases' session: a replica whose host vanished
# without closing its socket loses its leases in about 5 + 2*3 seconds.
SERVER_KEEPALIVE = (
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
    "SET tcp_keepalives_count = 3"
)


class PostgresLeases:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._retry_at = 0.0  # monotonic: no connection attempt before this
        self._retry_delay = 0.0

    def _connection(self) -> psycopg.Connection[Any] | None:
        """The leases' session, or None while waiting to try again after a failure."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        now = time.monotonic()
        if now < self._retry_at:
            return None
        self._held.clear()
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, **KEEPALIVE)
            conn.execute(SERVER_KEEPALIVE)
        except psycopg.Error as exc:
            self._retry_delay = min(LEASE_RETRY_CAP,
                                    max(LEASE_RETRY_FIRST, self._retry_delay * 2))
            self._retry_at = now + self._retry_delay
            log.warning("leases.unavailable", error=first_line(exc),
                        retry_in=round(self._retry_delay, 1))
            return None
        if self._retry_delay:
            log.info("leases.reconnected")
        self._retry_delay = 0.0
        self._conn = conn
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None
        self._held.clear()

    def try_lead(self, name: str) -> bool:
        with self._lock:
            if name in self._held:
                return True
            conn = self._connection()
            if conn is None:
                return False
            try:
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LEASE_SPACE, name)
                ).fetchone()
            except psycopg.Error as exc:
                log.warning("leases.unavailable", error=first_line(exc))
                self._drop()
                return False
            if row and row[0]:
                self._held.add(name)
                return True
            return False

    def still_leading(self) -> bool:
        with self._lock:
            if not self._held:
                return True
            if self._conn is None or self._conn.closed:
                self._held.clear()
                return False
            try:
                self._conn.execute("SELECT 1").fetchone()
            except psycopg.Error as exc:
                log.warning("leases.lost", error=first_line(exc), leases=sorted(self._held))
                self._drop()
                return False
            return True

    def release(self, name: str) -> None:
        with self._lock:
            if name not in self._held or self._conn is None:
                return
            self._held.discard(name)
            try:
                self._conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", (LEASE_SPACE, name)
                )
            except psycopg.Error:
                self._drop()

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def close(self) -> None:
        with self._lock:
            self._drop()


class _Pooled:
    """A user of the coordination pool: a connection per call, one transaction, errors as the
    store port's (StoreUnavailable while the database is down)."""

    def __init__(self, pool: ConnectionPool[Any], availability: Availability) -> None:
        self.pool = pool
        self.availability = availability

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self.availability.getconn(self.pool)
        try:
            yield conn
            conn.commit()
        except psycopg.Error as exc:
            _rollback(conn)
            raise self.availability.error(exc, "coordination") from None
        except BaseException:
            _rollback(conn)
            raise
        finally:
            self.availability.putconn(self.pool, conn)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.rollback()
    except psycopg.Error:
        pass  # a broken connection: the pool discards it when it is given back


class PostgresInbox(_Pooled):
    poll_interval = POLL_SECONDS

    def __init__(self, pool: ConnectionPool[Any], availability: Availability,
                 max_waiting: int = MAX_WAITING) -> None:
        super().__init__(pool, availability)
        self.max_waiting = max_waiting

    def put(self, charge_id: str, accepted_at: float) -> bool:
        with self._connection() as conn:
            # A row for this charge that nobody is processing yet will read the charge afresh:
            # no second one. A row being processed may have read it already: add one.
            waiting = conn.execute(
                "SELECT id FROM webhook_inbox WHERE charge_id = %s "
                "FOR UPDATE SKIP LOCKED LIMIT 1", (charge_id,)
            ).fetchone()
            if waiting:
                # Waiting for a retry, perhaps: new news makes it due now.
                conn.execute(
                    "UPDATE webhook_inbox SET not_before = least(not_before, now()) "
                    "WHERE id = %s", (waiting[0],),
                )
                return True
            count = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM webhook_inbox LIMIT %s) AS w",
                (self.max_waiting,),
            ).fetchone()
            if count and count[0] >= self.max_waiting:
                return False
            conn.execute(
                "INSERT INTO webhook_inbox (charge_id, accepted_at) "
                "VALUES (%s, to_timestamp(%s))", (charge_id, accepted_at),
            )
        return True  # committed as the connection went back

    def claim(self) -> WebhookClaim | None:
        conn = self.availability.getconn(self.pool)
        try:
            row = conn.execute(
                "SELECT id, charge_id, extract(epoch FROM accepted_at), tries "
                "FROM webhook_inbox WHERE not_before <= now() ORDER BY id "
                "FOR UPDATE SKIP LOCKED LIMIT 1"
            ).fetchone()
        except psycopg.Error as exc:
            self._give_back(conn, commit=False)
            raise self.availability.error(exc, "webhook inbox") from None
        except BaseException:
            self._give_back(conn, commit=False)
            raise
        if row is None:
            self._give_back(conn, commit=False)
            return None
        # The transaction stays open, and the row locked, until finish or retry.
        return WebhookClaim(str(row[1]), float(row[2]), int(row[3]), handle=(conn, row[0]))

    def finish(self, claim: WebhookClaim) -> None:
        conn, row_id = claim.handle
        try:
            conn.execute("DELETE FROM webhook_inbox WHERE id = %s", (row_id,))
            self._give_back(conn, commit=True)
        except psycopg.Error as exc:
            # Not deleted: someone processes it again, which settlement makes harmless.
            self._give_back(conn, commit=False)
            raise self.availability.error(exc, "webhook inbox") from None

    def retry(self, claim: WebhookClaim, delay: float) -> None:
        conn, row_id = claim.handle
        try:
            conn.execute(
                "UPDATE webhook_inbox SET tries = tries + 1, "
                "not_before = now() + make_interval(secs => %s) WHERE id = %s",
                (delay, row_id),
            )
            self._give_back(conn, commit=True)
        except psycopg.Error as exc:
            self._give_back(conn, commit=False)
            raise self.availability.error(exc, "webhook inbox") from None

    def _give_back(self, conn: psycopg.Connection[Any], *, commit: bool) -> None:
        try:
            if commit:
                conn.commit()
            else:
                _rollback(conn)
        finally:
            self.availability.putconn(self.pool, conn)

    def waiting(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT count(*) FROM webhook_inbox").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        pass


def _row_key(key: str) -> str:
    # Keys hold e-mails and addresses (and may hold anything a client typed, NUL included):
    # the table keeps a digest.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class PostgresThrottles(_Pooled):

    def recent(self, key: str, since: float) -> list[float]:
        key = _row_key(key)
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT extract(epoch FROM at) FROM throttle_events "
                "WHERE key = %s AND at > to_timestamp(%s) ORDER BY at", (key, since),
            ).fetchall()
        return [float(r[0]) for r in rows]

    def add(self, key: str, at: float, keep: float) -> None:
        key = _row_key(key)
        with self._connection() as conn:
            conn.execute(
                "DELETE FROM throttle_events WHERE key = %s AND at <= to_timestamp(%s)",
                (key, at - keep),
            )
            conn.execute(
                "INSERT INTO throttle_events (key, at) VALUES (%s, to_timestamp(%s))", (key, at)
            )

    def clear(self, key: str) -> None:
        key = _row_key(key)
        with self._connection() as conn:
            conn.execute("DELETE FROM throttle_events WHERE key = %s", (key,))

    def lock(self, key: str, until: float) -> None:
        key = _row_key(key)
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO throttle_locks (key, until) VALUES (%s, to_timestamp(%s)) "
                "ON CONFLICT (key) DO UPDATE SET until = excluded.until", (key, until),
            )

    def locked_until(self, key: str) -> float:
        key = _row_key(key)
        with self._connection() as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM until) FROM throttle_locks WHERE key = %s", (key,)
            ).fetchone()
        return float(row[0]) if row else 0.0

    def prune(self, now: float, keep: float) -> int:
        """Forget events older than `keep` seconds and locks that ended (the housekeeping
        loop's leader calls it)."""
        with self._connection() as conn:
            events = conn.execute(
                "DELETE FROM throttle_events WHERE at < to_timestamp(%s)", (now - keep,)
            ).rowcount
            locks = conn.execute(
                "DELETE FROM throttle_locks WHERE until < to_timestamp(%s)", (now,)
            ).rowcount
        return events + locks


class PostgresReplays(_Pooled):
    """Table internal_replays (migration 0005). Rows older than the housekeeping's keep are
    deleted by `prune`; `get` ignores them meanwhile."""

    def get(self, instance_id: str, key: str, since: float) -> tuple[int, bytes] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT status, body FROM internal_replays WHERE instance_id = %s AND key = %s "
                "AND at >= to_timestamp(%s)", (instance_id, key, since),
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def put(self, instance_id: str, key: str, status: int, body: bytes, at: float) -> None:
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO internal_replays (instance_id, key, status, body, at) "
                "VALUES (%s, %s, %s, %s, to_timestamp(%s)) ON CONFLICT DO NOTHING",
                (instance_id, key, status, body, at),
            )

    def prune(self, before: float) -> int:
        with self._connection() as conn:
            return conn.execute(
                "DELETE FROM internal_replays WHERE at < to_timestamp(%s)", (before,)
            ).rowcount


class PostgresCoordination(Coordination):
    def __init__(self, dsn: str, *, max_connections: int = 8) -> None:
        self.availability = Availability(redact(dsn))
        self.pool: ConnectionPool[Any] = ConnectionPool(
            dsn, min_size=1, max_size=max_connections, kwargs=dict(KEEPALIVE),
            configure=self.availability.configure, timeout=self.availability.wait,
            connection_class=self.availability.connection_class(),
            reconnect_timeout=RECONNECT_SECONDS, open=True, name="astra-coordination",
        )
        self.availability.watch(self.pool)
        up = self.availability
        super().__init__("postgresql", PostgresLeases(dsn), PostgresInbox(self.pool, up),
                         PostgresThrottles(self.pool, up), PostgresReplays(self.pool, up))

    def close(self) -> None:
        super().close()
        self.pool.close()

