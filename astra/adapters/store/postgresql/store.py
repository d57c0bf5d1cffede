"""PostgresStore: the store port on PostgreSQL (psycopg 3, a connection pool), for platforms
that run several `astra serve` replicas on one database.

A unit of work is one transaction on one pooled connection (a unit that only writes sends its
writes and its commit as one statement). Writable units take a
transaction-scoped advisory lock on their domain before their first statement, so writers of a
domain are serialised across processes and hosts exactly as the JSON store's flock serialises
them on one machine (a key is reserved once, a credit applied once); the lock goes with the
transaction, so a killed process can never leave it held. Read units run REPEATABLE READ READ
ONLY: a consistent snapshot that blocks nobody. The lock-order rule of the JSON store (at most
one instance unit per thread, the portal after it) is enforced the same way, so code that passes
on one store passes on the other.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from astra.ports.store import (
    INSTANCE_COLLECTIONS,
    INSTANCE_ID_PATTERN,
    PORTAL,
    InvalidDomain,
    LockOrderError,
    Problem,
    StoreBusy,
    StoreError,
    StoreUnavailable,
)

from . import migrations
from .availability import (
    KEEPALIVE,
    RECONNECT_SECONDS,
    STATEMENT_TIMEOUT_SECONDS,
    WAIT_SECONDS,
    Availability,
    first_line,
)
from .dsn import redact
from .unit_of_work import InstanceUnitOfWork, PgUnitOfWork, PortalUnitOfWork, domains_sql

# As the JSON store's LOCK_DEADLINE_SECONDS: a domain whose lock is not free this long is busy.
LOCK_TIMEOUT_SECONDS = 10.0

_held = threading.local()

# psycopg_pool logs every checkout and return at INFO: two lines per unit of work would drown
# the platform's own log. Its warnings (a broken connection, a pool that cannot connect) stay.
_pool_log = logging.getLogger("psycopg.pool")
if _pool_log.level == logging.NOTSET:
    _pool_log.setLevel(logging.WARNING)


def _stack() -> list[str]:
    stack = getattr(_held, "stack", None)
    if stack is None:
        stack = _held.stack = []
    return stack


def _check_order(domain: str) -> None:
    stack = _stack()
    if stack:
        if domain in stack:
            raise LockOrderError(f"nested unit of work on {domain!r} in one thread")
        if domain != PORTAL:
            raise LockOrderError(
                f"unit of work on {domain!r} opened while holding {stack!r}: "
                "open instance units of work first, the portal last"
            )


class _Session:
    """The `with` block of one unit of work: a pooled connection, one transaction, returned."""

    __slots__ = ("conn", "domain", "store", "uow", "write")

    def __init__(self, store: PostgresStore, domain: str, write: bool) -> None:
        self.store, self.domain, self.write = store, domain, write

    def __enter__(self) -> Any:
        _check_order(self.domain)
        store = self.store
        store._ready()
        self.conn = conn = store._getconn()
        # The unit begins its transaction on its first statement (see unit_of_work.py).
        self.uow = (
            PortalUnitOfWork(store, conn, self.write)
            if self.domain == PORTAL
            else InstanceUnitOfWork(store, self.domain, conn, self.write)
        )
        _stack().append(self.domain)
        return self.uow

    def __exit__(self, *exc: object) -> None:
        _stack().pop()
        uow: PgUnitOfWork = self.uow
        uow._pending = {}
        uow.closed = True
        try:
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.rollback()  # anything not committed is discarded, the lock released
        except psycopg.Error:
            pass  # a broken connection: the pool notices and replaces it
        finally:
            self.store._putconn(self.conn)


class PostgresStore:
    """The Store port on PostgreSQL. `dsn` is a libpq URL or key=value string."""

    kind = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 1,
        pool_max: int = 20,
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
        connect_timeout: float = WAIT_SECONDS,
        statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
    ) -> None:
        self.dsn = dsn
        self.lock_timeout = lock_timeout
        # How long a caller waits for a pooled connection while the database answers (see
        # availability.py for while it does not).
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self.availability = Availability(redact(dsn), wait=connect_timeout)
        self._pool_min, self._pool_max = pool_min, pool_max
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._schema_ok = False
        self._known_domains: set[str] = set()

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.dsn)!r})"

    @property
    def location(self) -> str:
        """Where the data is, fit to print (no password)."""
        return redact(self.dsn)

    # -- connections ---------------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        self.availability.configure(conn)
        # Every wait for a lock (the domain locks above all) ends after lock_timeout with
        # LockNotAvailable, which units of work turn into StoreBusy.
        conn.execute(f"SET lock_timeout = {int(self.lock_timeout * 1000)}")
        # No statement holds a request (and a pooled connection) forever.
        conn.execute(f"SET statement_timeout = {int(self.statement_timeout * 1000)}")
        # A unit that only writes commits as one autocommit statement: pin its isolation
        # whatever the server's default is.
        conn.execute("SET default_transaction_isolation = 'read committed'")

    def _pool_or_open(self) -> ConnectionPool:
        pool = self._pool
        if pool is not None:
            return pool
        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.dsn,
                    min_size=self._pool_min,
                    max_size=self._pool_max,
                    kwargs={"application_name": "astra", "autocommit": True, **KEEPALIVE},
                    configure=self._configure,
                    connection_class=self.availability.connection_class(),
                    timeout=self.connect_timeout,
                    reconnect_timeout=RECONNECT_SECONDS,
                    name="astra-store",
                    open=False,
                )
                self._pool.open(wait=False)
                self.availability.watch(self._pool)
            return self._pool

    def _getconn(self) -> psycopg.Connection[Any]:
        """A working pooled connection; StoreUnavailable (in under a second while the database
        is known to be down) when there is none."""
        return self.availability.getconn(self._pool_or_open())

    def _putconn(self, conn: psycopg.Connection[Any]) -> None:
        pool = self._pool
        if pool is not None:
            self.availability.putconn(pool, conn)
        else:
            conn.close()

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A connection of its own, outside the pool (migrations, import, export, doctor)."""
        try:
            return psycopg.connect(
                self.dsn,
                autocommit=autocommit,
                application_name="astra",
                connect_timeout=max(1, int(self.connect_timeout)),
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"cannot connect to the database {self.location}: {first_line(exc)}"
            ) from None

    def _error(self, exc: psycopg.Error) -> StoreError:
        """The port's error for a failed statement: StoreBusy for a lock or a statement that
        took too long, StoreUnavailable when the server is gone (and it is marked down)."""
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return StoreBusy("database", self.lock_timeout)
        return self.availability.error(exc)

    def close(self) -> None:
        """Close the pool. Using the store again afterwards opens a new one."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- schema --------------------------------------------------------------------------------

    def schema_status(self) -> migrations.SchemaStatus:
        with self.connect(autocommit=True) as conn:
            return migrations.status(conn)

    def migrate(self) -> list[migrations.Migration]:
        with self.connect() as conn:
            done = migrations.migrate(conn)
        self._schema_ok = False
        return done

    def _ready(self) -> None:
        """Refuse a database this Astra does not match, once per process (cheap afterwards)."""
        if self._schema_ok:
            return
        conn = self._getconn()
        try:
            st = migrations.status(conn)
            conn.rollback()
        except psycopg.Error as exc:
            raise self._error(exc) from None
        finally:
            self._putconn(conn)
        problem = st.problem()
        if problem:
            raise migrations.SchemaMismatch(f"{self.location}: {problem}")
        self._schema_ok = True

    # -- the port ------------------------------------------------------------------------------

    def portal(self, *, write: bool = True) -> Any:
        return _Session(self, PORTAL, write)

    def instance(self, instance_id: str, *, write: bool = True) -> Any:
        if instance_id == PORTAL:
            raise InvalidDomain("'portal' is not an instance id")
        if not isinstance(instance_id, str) or not INSTANCE_ID_PATTERN.fullmatch(instance_id):
            raise InvalidDomain(
                f"invalid instance id {instance_id!r}: expected ^[a-z0-9][a-z0-9-]{{2,39}}$"
            )
        return _Session(self, instance_id, write)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self._ready()
        conn = self._getconn()
        try:
            rows = conn.execute(sql, params).fetchall()
            conn.rollback()
            return rows
        except psycopg.Error as exc:
            raise self._error(exc) from None
        finally:
            self._putconn(conn)

    def instance_ids(self) -> list[str]:
        rows = self._query("SELECT id FROM astra_domains WHERE id <> %s ORDER BY id", (PORTAL,))
        return [r[0] for r in rows]

    def instances_with(self, collection: str, **equals: Any) -> list[str]:
        if collection not in INSTANCE_COLLECTIONS:
            raise StoreError(f"no collection {collection!r} in an instance")
        query, params = domains_sql(collection, equals)
        return [r[0] for r in self._query(query, (PORTAL, *params))]

    def open(self, *, quarantine: bool = False) -> dict[str, Any]:
        """Check the connection and the schema now, so a wrong database stops start-up. A
        database has no damaged files to quarantine: every instance is served."""
        self._ready()
        with self.portal(write=False) as uow:
            uow.users.count()
        return {}

    def health(self) -> dict[str, Any]:
        try:
            with self.portal(write=False) as uow:
                users = uow.users.count()
            return {
                "ok": True,
                "backend": self.kind,
                "schema": migrations.latest_version(),
                "users": users,
            }
        except StoreError as exc:
            return {"ok": False, "backend": self.kind, "error": type(exc).__name__,
                    "problem": str(exc)}

    def check(self) -> list[Problem]:
        from .check import check_database

        return check_database(self)

    def backup(self, dest: Any) -> dict[str, Any]:
        from .backup import pg_dump_backup

        return pg_dump_backup(self, dest)


