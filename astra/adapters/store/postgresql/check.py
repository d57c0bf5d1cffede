"""`astra doctor` on PostgreSQL: the connection, the schema version, and the documents' shape.

What the JSON store's `check()` finds in files (a document that does not parse, one filed under
the wrong domain, an invalid instance directory) has a counterpart here, looked for with a few
aggregate queries that change nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from astra.ports.store import INSTANCE_COLLECTIONS, PORTAL, PORTAL_COLLECTIONS, Problem, StoreError

from . import migrations
from .unit_of_work import TABLES

if TYPE_CHECKING:
    from .store import PostgresStore

_ID_RE = "^[a-z0-9][a-z0-9-]{2,39}$"  # INSTANCE_ID_PATTERN, in SQL


def check_database(store: PostgresStore) -> list[Problem]:
    where = store.location
    try:
        conn = store.connect()
    except StoreError as exc:
        return [Problem("error", where, str(exc), "start the database or fix ASTRA_DATABASE_URL")]
    problems: list[Problem] = []
    try:
        with conn:
            # One snapshot for every query, and nothing written.
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            st = migrations.status(conn)
            problem = st.problem()
            if problem:
                hint = "run `astra migrate`" if not st.unknown else "run the newer Astra"
                return [Problem("error", where, problem, hint)]
            problems.extend(_documents(conn, where))
            problems.extend(_domains(conn, where))
    except psycopg.Error as exc:
        problems.append(Problem("error", where, f"query failed: {exc}".splitlines()[0], ""))
    return problems


def _documents(conn: psycopg.Connection, where: str) -> list[Problem]:
    problems = []
    for name, table in TABLES.items():
        # A collection that one kind of domain does not have must hold nothing for it.
        allowed_portal = name in PORTAL_COLLECTIONS
        allowed_instance = name in INSTANCE_COLLECTIONS
        row = conn.execute(
            f"""SELECT
                count(*) FILTER (WHERE doc->>'id' IS DISTINCT FROM id),
                count(*) FILTER (WHERE domain = %s AND NOT %s),
                count(*) FILTER (WHERE domain <> %s AND NOT %s),
                count(*) FILTER (WHERE domain <> %s AND domain !~ %s)
            FROM {table}""",
            [PORTAL, allowed_portal, PORTAL, allowed_instance, PORTAL, _ID_RE],
        ).fetchone()
        bad_id, wrong_portal, wrong_instance, bad_domain = row
        path = f"{where} {table}"
        if bad_id:
            problems.append(Problem(
                "error", path, f"{bad_id} document(s) whose \"id\" differs from their key",
                "restore from a backup (pg_restore) or fix the rows by hand"))
        if wrong_portal or wrong_instance:
            problems.append(Problem(
                "error", path,
                f"{wrong_portal + wrong_instance} document(s) filed under a domain that has no "
                f"{name!r} collection", "written by something other than Astra: remove them"))
        if bad_domain:
            problems.append(Problem(
                "error", path, f"{bad_domain} document(s) under an invalid instance id",
                "written by something other than Astra: remove them"))
    return problems


def _domains(conn: psycopg.Connection, where: str) -> list[Problem]:
    union = " UNION ".join(f"SELECT DISTINCT domain FROM {t}" for t in TABLES.values())
    rows = conn.execute(
        f"SELECT d.domain FROM ({union}) d LEFT JOIN astra_domains a ON a.id = d.domain "
        "WHERE a.id IS NULL ORDER BY 1"
    ).fetchall()
    problems = []
    if rows:
        names = ", ".join(r[0] for r in rows[:10])
        problems.append(Problem(
            "warning", f"{where} astra_domains",
            f"data of {len(rows)} domain(s) not registered ({names}): not listed as instances",
            "INSERT INTO astra_domains (id) SELECT the missing ids"))
    bad = conn.execute(
        "SELECT id FROM astra_domains WHERE id <> %s AND id !~ %s", [PORTAL, _ID_RE]
    ).fetchall()
    if bad:
        problems.append(Problem(
            "error", f"{where} astra_domains",
            f"invalid instance id(s): {', '.join(repr(r[0]) for r in bad[:10])}",
            "written by something other than Astra: remove them"))
    return problems
