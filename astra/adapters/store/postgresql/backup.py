"""`astra backup` on PostgreSQL: pg_dump's custom format, with a manifest beside it.

pg_dump reads one consistent snapshot while the platform keeps writing, which is what the JSON
store's backup gives. Restoring is pg_restore's job (docs/operations.md). The password never
goes on pg_dump's command line (visible to every user in `ps`): it travels in PGPASSWORD.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from astra import __version__
from astra.ports.store import StoreError

from . import migrations

if TYPE_CHECKING:
    from .store import PostgresStore

DUMP_FILE = "astra.dump"
MANIFEST = "backup.json"


def pg_dump_backup(store: PostgresStore, dest: Path | str) -> dict[str, Any]:
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise StoreError(f"backup destination {dest} is not empty")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise StoreError(
            "pg_dump is not installed: install the PostgreSQL client (Debian: apt-get install "
            "postgresql-client, the server's major version or newer) and run `astra backup` "
            "again, or run `pg_dump --format=custom` against ASTRA_DATABASE_URL yourself; "
            "`astra db export --to-json DIR` writes a JSON copy without it"
        )
    st = store.schema_status()
    params = conninfo_to_dict(store.dsn)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / DUMP_FILE
    result = subprocess.run(
        [pg_dump, "--format=custom", "--no-owner", f"--file={target}",
         f"--dbname={make_conninfo(**params)}"],
        env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        target.unlink(missing_ok=True)
        detail = result.stderr.strip().splitlines()
        raise StoreError(f"pg_dump failed: {detail[-1] if detail else result.returncode}")
    data = target.read_bytes()
    with store.connect() as conn:
        rows = conn.execute("SELECT id FROM astra_domains ORDER BY id").fetchall()
    manifest: dict[str, Any] = {
        "format": "astra-pg-backup",
        "astra_version": __version__,
        "schema": st.current,
        "schema_expected": migrations.latest_version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "file": DUMP_FILE,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "restore": f"pg_restore --clean --if-exists --no-owner --dbname=URL {DUMP_FILE}",
        "domains": {r[0]: {} for r in rows},
    }
    (dest / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest
