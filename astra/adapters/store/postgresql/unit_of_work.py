"""Units of work and repositories on one PostgreSQL transaction.

Writes are buffered per collection and reach the server in batches (a pipeline of upserts and
deletes): before any query that could see them, and at `commit()`. `get` answers from the
buffer first, so a unit of work always reads its own changes, and a commit that only writes
costs one round of statements plus COMMIT. Documents cross the boundary as JSON text parsed by
orjson, so callers always hold copies.

`get` also remembers what it read (and what the unit wrote) until the transaction ends: a sale
reads the same settings and buyer several times, and within one transaction the answer cannot
change. A writer holds the domain's lock from its first statement, so no one else writes that
domain meanwhile; a reader's snapshot is fixed (REPEATABLE READ). Commit and rollback forget it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
import psycopg

from astra.adapters.store.units import UnitOfWorkBase
from astra.ports.store import (
    INSTANCE_COLLECTIONS,
    PORTAL_COLLECTIONS,
    Doc,
    DuplicateId,
    NotFound,
    StoreBusy,
    StoreError,
)

if TYPE_CHECKING:
    from .store import PostgresStore

# Collection names become table names: only these, never a caller's string.
TABLES = {
    name: f"docs_{name}" for name in dict.fromkeys((*PORTAL_COLLECTIONS, *INSTANCE_COLLECTIONS))
}

# Key space of the domain locks (two-int advisory locks: namespace, hashtext(domain)). Other
# users of advisory locks in Astra pick other namespaces.
DOMAIN_LOCK_NAMESPACE = 1095980115

_IDLE = psycopg.pq.TransactionStatus.IDLE
# Pooled connections are in autocommit mode: a unit opens its transaction itself, on its first
# statement, so that a unit which only writes can send its writes and commit in one statement.
_BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"
_BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def _where(equals: dict[str, Any]) -> tuple[str, list[Any]]:
    """SQL conditions for `find(**equals)`; the expressions are those of the indexes in
    0001_documents.sql, so the planner matches them."""
    clauses, params = [], []
    for field in sorted(equals):
        if not isinstance(field, str) or "'" in field or "\\" in field:
            raise StoreError(f"invalid field name {field!r}")
        clauses.append(f" AND coalesce(doc->'{field}', 'null'::jsonb) = %s::jsonb")
        try:
            params.append(orjson.dumps(equals[field]).decode())
        except TypeError as exc:
            raise StoreError(f"cannot compare {field!r}: {exc}") from None
    return "".join(clauses), params


def select_sql(name: str, what: str, equals: dict[str, Any], tail: str = "") -> tuple[str, list]:
    """The query `find`/`first`/`count` send for `equals` on collection `name` (params after the
    domain). The EXPLAIN test checks these very statements."""
    where, params = _where(equals)
    order = "" if what == "count(*)" else " ORDER BY seq"
    return f"SELECT {what} FROM {TABLES[name]} WHERE domain = %s{where}{order}{tail}", params


def domains_sql(name: str, equals: dict[str, Any]) -> tuple[str, list]:
    """The query `instances_with` sends: the instance domains with a matching document (params
    after the excluded portal domain). Indexed by 0004_work_indexes.sql."""
    where, params = _where(equals)
    return (f"SELECT DISTINCT domain FROM {TABLES[name]} WHERE domain <> %s{where} "
            "ORDER BY domain", params)


class PgRepository:
    __slots__ = ("_table", "_uow", "name")

    def __init__(self, uow: PgUnitOfWork, name: str) -> None:
        self._uow = uow
        self.name = name
        self._table = TABLES[name]

    def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        uow = self._uow
        uow._flush()
        return uow._execute(sql, params).fetchall()

    def get(self, doc_id: str) -> Doc | None:
        uow = self._uow
        pending = uow._pending.get(self.name)
        if pending is not None and doc_id in pending:
            raw = pending[doc_id]
            return None if raw is None else orjson.loads(raw)
        seen = uow._seen.get(self.name)
        if seen is not None and doc_id in seen:
            known = seen[doc_id]
            return None if known is None else orjson.loads(known)
        row = uow._execute(
            f"SELECT doc::text FROM {self._table} WHERE domain = %s AND id = %s",
            [uow.domain, doc_id],
        ).fetchone()
        text = None if row is None else row[0]
        uow._seen.setdefault(self.name, {})[doc_id] = text
        return None if text is None else orjson.loads(text)

    def require(self, doc_id: str) -> Doc:
        doc = self.get(doc_id)
        if doc is None:
            raise NotFound(f"{self.name}/{doc_id} not found")
        return doc

    def put(self, doc: Doc) -> None:
        self._uow._check_writable()
        doc_id = doc.get("id") if isinstance(doc, dict) else None
        if not isinstance(doc_id, str) or not doc_id:
            raise StoreError(f"{self.name}: a document needs a non-empty string 'id'")
        try:
            raw = orjson.dumps(doc)
        except TypeError as exc:
            raise StoreError(f"{self.name}/{doc_id} is not JSON-serialisable: {exc}") from None
        if b"\\u0000" in raw:
            # JSONB cannot hold a NUL character; refuse it here, with a clear error, instead of
            # failing the whole transaction at commit.
            raise StoreError(f"{self.name}/{doc_id} contains a NUL character")
        self._uow._pending.setdefault(self.name, {})[doc_id] = raw

    def add(self, doc: Doc) -> None:
        if self.get(doc.get("id", "")) is not None:
            raise DuplicateId(f"{self.name}/{doc.get('id')} already exists")
        self.put(doc)

    def delete(self, doc_id: str) -> None:
        self._uow._check_writable()
        self._uow._pending.setdefault(self.name, {})[doc_id] = None

    def find(self, **equals: Any) -> list[Doc]:
        query, params = select_sql(self.name, "doc::text", equals)
        rows = self._query(query, [self._uow.domain, *params])
        return [orjson.loads(r[0]) for r in rows]

    def first(self, **equals: Any) -> Doc | None:
        query, params = select_sql(self.name, "doc::text", equals, " LIMIT 1")
        rows = self._query(query, [self._uow.domain, *params])
        return orjson.loads(rows[0][0]) if rows else None

    def find_any(self, field: str, values: Iterable[Any]) -> list[Doc]:
        wanted = list(dict.fromkeys(orjson.dumps(v).decode() for v in values))
        if not wanted:
            return []
        if not isinstance(field, str) or "'" in field or "\\" in field:
            raise StoreError(f"invalid field name {field!r}")
        # One statement for every value, on the expression of the field's index
        # (0001_documents.sql), so the planner may probe it; for 1,000 values in a stock of
        # tens of thousands it rather scans once (~10 ms per 20k rows, measured). A join on
        # unnest() of the values was tried: it sorted the whole domain, 10x slower.
        rows = self._query(
            f"SELECT doc::text FROM {self._table} WHERE domain = %s AND "
            f"coalesce(doc->'{field}', 'null'::jsonb) = ANY(%s::jsonb[])",
            [self._uow.domain, wanted],
        )
        return [orjson.loads(r[0]) for r in rows]

    def count(self, **equals: Any) -> int:
        query, params = select_sql(self.name, "count(*)", equals)
        rows = self._query(query, [self._uow.domain, *params])
        return int(rows[0][0])

    def all(self) -> list[Doc]:
        return self.find()

    def ids(self) -> list[str]:
        rows = self._query(
            f"SELECT id FROM {self._table} WHERE domain = %s ORDER BY seq", [self._uow.domain]
        )
        return [r[0] for r in rows]


class PgUnitOfWork(UnitOfWorkBase):
    _repository = PgRepository

    def __init__(
        self,
        store: PostgresStore,
        domain: str,
        conn: psycopg.Connection[Any],
        writable: bool,
        names: tuple[str, ...],
    ) -> None:
        self.domain = domain
        self.writable = writable
        self._store = store
        self._conn = conn
        self._names = names
        self._pending: dict[str, dict[str, bytes | None]] = {}
        # What `get` read or this unit wrote, in this transaction (see the module's docstring).
        self._seen: dict[str, dict[str, bytes | str | None]] = {}
        # The domain lock is transaction-scoped: taken before the first statement of each
        # transaction of a writable unit (again after a commit, if the unit goes on).
        self._locked = not writable
        self._wrote = False
        self.closed = False
        self.failed = False

    def _begin(self) -> None:
        if self._conn.info.transaction_status == _IDLE:
            self._conn.execute(_BEGIN_WRITE if self.writable else _BEGIN_READ)

    def _lock(self) -> None:
        """Serialise writers of this domain across every process and host (the JSON store's
        flock). The server gives up after the store's lock_timeout: StoreBusy (see _failure)."""
        self._begin()
        self._conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [DOMAIN_LOCK_NAMESPACE, self.domain]
        )
        self._locked = True

    def _check_usable(self) -> None:
        if self.closed:
            raise StoreError("unit of work already closed")
        if self.failed:
            raise StoreError(f"unit of work on {self.domain!r} failed earlier; start a new one")

    def _failure(self, exc: psycopg.Error) -> StoreError:
        """The store error for a failed statement; the transaction is abandoned."""
        self._reset()
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return StoreBusy(self.domain, self._store.lock_timeout)
        return self._store._error(exc)

    def _execute(self, sql: str, params: list[Any]) -> psycopg.Cursor[Any]:
        self._check_usable()
        try:
            if not self._locked:
                self._lock()
            else:
                self._begin()
            return self._conn.execute(sql, params)
        except psycopg.Error as exc:
            raise self._failure(exc) from None

    def _flush(self) -> None:
        """Send buffered writes before a query that could see them."""
        if not self._pending:
            return
        self._check_usable()
        try:
            self._begin()  # the reads that follow must see these writes: one transaction
            self._send_pending()
        except psycopg.Error as exc:
            raise self._failure(exc) from None

    def _send_pending(self, *, register_domain: bool = False) -> None:
        """Every buffered write in one statement, which first takes the domain lock.

        One round trip instead of one per collection; outside a transaction (a unit that only
        wrote, at commit) the statement is the whole transaction, lock to commit, in one round
        trip. Taking the lock inside the statement is safe because these writes read
        nothing (an upsert checks conflicts against the latest committed row whatever the
        snapshot); a unit that read has taken the lock before its first read, and taking it
        again is free."""
        if not self._locked and any(None in changes.values() for changes in self._pending.values()):
            # A delete must not run on a snapshot older than the lock: a row the previous
            # holder inserted would be invisible to it and survive. Lock first, on its own.
            self._lock()
        pending, self._pending = self._pending, {}
        domain = self.domain
        ctes = ["lk AS (SELECT pg_advisory_xact_lock(%s, hashtext(%s)))"]
        params: list[Any] = [DOMAIN_LOCK_NAMESPACE, domain]
        for n, (name, changes) in enumerate(pending.items()):
            table = TABLES[name]
            docs = [raw for raw in changes.values() if raw is not None]
            gone = [doc_id for doc_id, raw in changes.items() if raw is None]
            if gone:
                ctes.append(
                    f"d{n} AS (DELETE FROM {table} t USING lk "
                    "WHERE t.domain = %s AND t.id = ANY(%s::text[]))"
                )
                params += [domain, gone]
            if docs:
                # Documents go as one JSON array; the order of the array is the order of seq.
                ctes.append(
                    f"u{n} AS (INSERT INTO {table} (domain, id, doc) "
                    "SELECT %s, d->>'id', d FROM lk, jsonb_array_elements(%s::jsonb) "
                    "WITH ORDINALITY AS x(d, i) ORDER BY i "
                    "ON CONFLICT (domain, id) DO UPDATE SET doc = EXCLUDED.doc)"
                )
                params += [domain, (b"[" + b",".join(docs) + b"]").decode()]
            if docs or gone:
                self._wrote = True
        if register_domain and self._wrote:
            ctes.append("r AS (INSERT INTO astra_domains (id) SELECT %s FROM lk "
                        "ON CONFLICT DO NOTHING)")
            params.append(domain)
        self._conn.execute(f"WITH {', '.join(ctes)} SELECT 1 FROM lk", params)
        self._locked = True
        for name, changes in pending.items():
            self._seen.setdefault(name, {}).update(changes)

    def commit(self) -> None:
        self._check_writable()
        self._check_usable()
        if not self._pending and not self._locked:
            return  # nothing read or written since the last commit
        conn = self._conn
        new_domain = self.domain not in self._store._known_domains
        try:
            if self._pending:
                # In autocommit when nothing was read: this statement commits by itself.
                self._send_pending(register_domain=new_domain)
            elif new_domain and self._wrote:
                conn.execute(
                    "INSERT INTO astra_domains (id) VALUES (%s) ON CONFLICT DO NOTHING",
                    [self.domain],
                )
            wrote = self._wrote
            conn.commit()  # nothing to do when the statement above was the transaction
        except psycopg.Error as exc:
            raise self._failure(exc) from None
        if new_domain and wrote:
            self._store._known_domains.add(self.domain)
        self._locked = not self.writable
        self._wrote = False
        self._seen = {}  # the lock is gone: others may write before this unit reads again

    def rollback(self) -> None:
        self._pending = {}
        self._seen = {}
        if self.failed:
            return
        if self._conn.info.transaction_status != _IDLE:
            try:
                self._conn.rollback()
            except psycopg.Error:
                self.failed = True
        self._locked = not self.writable
        self._wrote = False

    def _reset(self) -> None:
        """Abandon the transaction (and with it the domain lock) after a failure: what was sent
        is gone, so the unit refuses to go on (a later commit would save half of it)."""
        self._pending = {}
        self._seen = {}
        self.failed = True
        try:
            self._conn.rollback()
        except psycopg.Error:
            pass  # a broken connection: the pool discards it
        self._locked = not self.writable
        self._wrote = False


class PortalUnitOfWork(PgUnitOfWork):
    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any], writable: bool):
        super().__init__(store, "portal", conn, writable, PORTAL_COLLECTIONS)


class InstanceUnitOfWork(PgUnitOfWork):
    def __init__(
        self, store: PostgresStore, instance_id: str, conn: psycopg.Connection[Any], writable: bool
    ):
        super().__init__(store, instance_id, conn, writable, INSTANCE_COLLECTIONS)
        self.instance_id = instance_id
