"""Moving a platform's data between the JSON store and PostgreSQL, and proving nothing changed.

`import_json` copies a JSON data directory into an empty database; `export_json` writes a
database out as a JSON data directory the JSON store opens. Documents travel as they are (stock
keys and bot tokens stay encrypted under the same master key), in their insertion order. Each
side is summarised by `summarise`: per domain and collection, the number of documents and a
SHA-256 over them in order, in a canonical encoding (sorted keys; JSONB does not keep key
order), so the two summaries of one copy are equal exactly when every document arrived.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import psycopg

from astra.ports.store import (
    INSTANCE_COLLECTIONS,
    PORTAL,
    PORTAL_COLLECTIONS,
    Doc,
    StoreError,
)

from .unit_of_work import TABLES

if TYPE_CHECKING:
    from astra.adapters.store.json import JsonStore

    from .store import PostgresStore


def collections_of(domain: str) -> tuple[str, ...]:
    return PORTAL_COLLECTIONS if domain == PORTAL else INSTANCE_COLLECTIONS


def canonical(doc: Doc) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


@dataclass
class Summary:
    """(domain, collection) -> (count, sha256 hex); `checksum` covers all of them."""

    collections: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def add(self, domain: str, collection: str, docs: Iterable[Doc]) -> None:
        digest = hashlib.sha256()
        n = 0
        for doc in docs:
            digest.update(canonical(doc))
            digest.update(b"\n")
            n += 1
        if n:
            self.collections[(domain, collection)] = (n, digest.hexdigest())

    @property
    def documents(self) -> int:
        return sum(n for n, _ in self.collections.values())

    @property
    def checksum(self) -> str:
        digest = hashlib.sha256()
        for (domain, coll), (n, h) in sorted(self.collections.items()):
            digest.update(f"{domain}/{coll}:{n}:{h}\n".encode())
        return digest.hexdigest()

    def differences(self, other: Summary) -> list[str]:
        out = []
        for key in sorted(set(self.collections) | set(other.collections)):
            mine, theirs = self.collections.get(key), other.collections.get(key)
            if mine != theirs:
                out.append(f"{key[0]}/{key[1]}: {mine or (0, '-')} != {theirs or (0, '-')}")
        return out

    def lines(self) -> list[str]:
        return [
            f"{domain}/{coll}  {n}  sha256:{h[:16]}"
            for (domain, coll), (n, h) in sorted(self.collections.items())
        ]


# -- reading each side -----------------------------------------------------------------------


def _json_domains(store: JsonStore) -> Iterator[tuple[str, dict[str, list[Doc]]]]:
    for domain in [PORTAL, *store.instance_ids()]:
        session = (
            store.portal(write=False) if domain == PORTAL else store.instance(domain, write=False)
        )
        with session as uow:
            docs = {c: uow.repo(c).all() for c in collections_of(domain)}
        yield domain, docs


def summarise_json(store: JsonStore) -> Summary:
    summary = Summary()
    for domain, colls in _json_domains(store):
        for name, docs in colls.items():
            summary.add(domain, name, docs)
    return summary


def _pg_docs(conn: psycopg.Connection, table: str, domain: str) -> list[Doc]:
    rows = conn.execute(
        f"SELECT doc::text FROM {table} WHERE domain = %s ORDER BY seq", [domain]
    ).fetchall()
    return [orjson.loads(r[0]) for r in rows]


def _pg_domains(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT id FROM astra_domains WHERE id <> %s ORDER BY id", [PORTAL])
    return [PORTAL, *(r[0] for r in rows.fetchall())]


def summarise_pg(conn: psycopg.Connection) -> Summary:
    """Of what `conn` sees (call it inside one transaction for one consistent moment)."""
    summary = Summary()
    for domain in _pg_domains(conn):
        for name in collections_of(domain):
            summary.add(domain, name, _pg_docs(conn, TABLES[name], domain))
    return summary


def _database_is_empty(conn: psycopg.Connection) -> bool:
    if conn.execute("SELECT EXISTS (SELECT 1 FROM astra_domains)").fetchone()[0]:
        return False
    return not any(
        conn.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchone()[0] for t in TABLES.values()
    )


# -- the two directions ----------------------------------------------------------------------


@dataclass
class TransferResult:
    source: Summary
    target: Summary
    notes: list[str] = field(default_factory=list)


def import_json(store: PostgresStore, src: Path | str) -> TransferResult:
    """Copy the JSON data directory `src` into `store`'s database, which must be migrated and
    empty. One transaction: all of it arrives, verified, or nothing does."""
    from astra.adapters.store.json import JsonStore

    src = Path(src).resolve()
    if not src.is_dir():
        raise StoreError(f"{src} is not a directory")
    json_store = JsonStore(src)
    json_store.open()  # a damaged file stops the import here, naming it
    store._ready()  # the schema matches this Astra
    source = Summary()
    with store.connect() as conn:
        if not _database_is_empty(conn):
            raise StoreError(
                f"{store.location} already holds Astra data: import only into an empty database"
            )
        conn.rollback()
        with conn.transaction(), conn.cursor() as cur:
            for domain, colls in _json_domains(json_store):
                wrote = False
                for name, docs in colls.items():
                    source.add(domain, name, docs)
                    if not docs:
                        continue
                    wrote = True
                    copy_sql = f"COPY {TABLES[name]} (domain, id, doc) FROM STDIN"
                    with cur.copy(copy_sql) as copy:
                        for doc in docs:  # in order: `seq` follows the JSON insertion order
                            copy.write_row((domain, doc["id"], orjson.dumps(doc).decode()))
                if wrote:
                    cur.execute(
                        "INSERT INTO astra_domains (id) VALUES (%s) ON CONFLICT DO NOTHING",
                        [domain],
                    )
            target = summarise_pg(conn)
            problems = source.differences(target)
            if problems:
                raise StoreError("the copy differs from the source: " + "; ".join(problems[:5]))
    json_store.close()
    notes = []
    if (src / ".secrets.json").exists():
        notes.append(
            f"{src}/.secrets.json holds the development secrets these documents were encrypted "
            "with: give the platform on PostgreSQL the same ASTRA_MASTER_KEY (or that file in "
            "its data directory), or the stored bot tokens and keys cannot be read"
        )
    return TransferResult(source, target, notes)


def export_json(store: PostgresStore, dest: Path | str) -> TransferResult:
    """Write the database out as a JSON data directory at `dest` (new or empty), from one
    consistent snapshot, and verify it by reading it back through the JSON store."""
    from astra.adapters.store.json import JsonStore

    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise StoreError(f"{dest} is not empty: export into a new or empty directory")
    store._ready()
    with store.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        source = Summary()
        json_store = JsonStore(dest)
        try:
            for domain in _pg_domains(conn):
                opener = json_store.portal() if domain == PORTAL else json_store.instance(domain)
                with opener as uow:
                    for name in collections_of(domain):
                        docs = _pg_docs(conn, TABLES[name], domain)
                        source.add(domain, name, docs)
                        repo = uow.repo(name)
                        for doc in docs:
                            repo.put(doc)
                    uow.commit()
            conn.rollback()
        finally:
            json_store.close()
    reader = JsonStore(dest)
    try:
        target = summarise_json(reader)
    finally:
        reader.close()
    problems = source.differences(target)
    if problems:
        raise StoreError(f"the export in {dest} differs: " + "; ".join(problems[:5]))
    return TransferResult(source, target, [])


def summary_table(summary: Summary) -> list[dict[str, Any]]:
    return [
        {"domain": d, "collection": c, "documents": n, "sha256": h}
        for (d, c), (n, h) in sorted(summary.collections.items())
    ]
