"""Versioned schema migrations: `migrations/NNNN_name.sql`, applied in order by `astra migrate`.

Each file runs once. Every pending file is applied inside one transaction together with its row
in `schema_migrations`, so a failed or interrupted migration leaves the database as it was (DDL
is transactional in PostgreSQL). A transaction-scoped advisory lock keeps two `astra migrate`
runs (two replicas starting together, say) from applying the same file twice.

The store refuses a database that is behind (some file not applied: "run astra migrate") or
ahead (a version this Astra does not know: written by a newer one) rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from astra.ports.store import StoreError

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Key of the advisory lock serialising migration runs (two-int form, namespace of locks.py).
MIGRATION_LOCK = (1095980114, 0)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class SchemaStatus:
    applied: tuple[int, ...]
    known: tuple[int, ...]

    @property
    def current(self) -> int:
        return max(self.applied, default=0)

    @property
    def latest(self) -> int:
        return max(self.known, default=0)

    @property
    def pending(self) -> tuple[int, ...]:
        return tuple(v for v in self.known if v not in self.applied)

    @property
    def unknown(self) -> tuple[int, ...]:
        """Versions applied by a newer Astra."""
        return tuple(v for v in self.applied if v not in self.known)

    def problem(self) -> str | None:
        """Why the store cannot use this database as it is, or None."""
        if self.unknown:
            return (
                f"the database schema is at version {self.current}, newer than this Astra knows "
                f"(up to {self.latest}): it was migrated by a newer Astra; run that version"
            )
        if self.pending:
            return (
                f"the database schema is at version {self.current}, this Astra needs "
                f"{self.latest}: run `astra migrate`"
            )
        return None


class SchemaMismatch(StoreError):
    """The database is behind or ahead of this Astra's migrations."""


def available() -> list[Migration]:
    """Every migration shipped with this Astra, in order."""
    out = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        m = _FILE_RE.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort(key=lambda m: m.version)
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise StoreError(f"two migrations share a version: {versions}")
    return out


def latest_version() -> int:
    """The schema version this Astra expects."""
    return max((m.version for m in available()), default=0)


def _applied(conn: Any) -> tuple[int, ...]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return ()
    rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    return tuple(r[0] for r in rows)


def status(conn: Any, migrations: list[Migration] | None = None) -> SchemaStatus:
    migrations = available() if migrations is None else migrations
    return SchemaStatus(_applied(conn), tuple(m.version for m in migrations))


def migrate(conn: Any, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration in one transaction on `conn`; returns those applied.

    Refuses a database ahead of this Astra. `conn` must not be inside a transaction."""
    migrations = available() if migrations is None else migrations
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", MIGRATION_LOCK)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        st = status(conn, migrations)
        if st.unknown:
            raise SchemaMismatch(st.problem() or "")
        done = []
        for m in migrations:
            if m.version in st.applied:
                continue
            conn.execute(m.sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (m.version, m.name)
            )
            done.append(m)
    return done
