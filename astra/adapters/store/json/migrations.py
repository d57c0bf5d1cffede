"""Schema versions of the JSON files and the hook that upgrades old ones.

Every snapshot and journal header carries `schema`. When a file is older than SCHEMA_VERSION, the
loaded state goes through MIGRATIONS[from_version] for each step, in memory; the first write then
compacts, so the files on disk are rewritten in the new shape before any new record is appended
(a journal never mixes two schemas). A file newer than this program stops start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from astra.ports.store import Doc

SCHEMA_VERSION = 1

# from_version -> function(kind, collections) that upgrades the data in place to from_version + 1.
# kind is "portal" or "instance"; collections maps collection name -> {id: document}.
Migration = Callable[[str, dict[str, dict[str, Doc]]], None]
MIGRATIONS: dict[int, Migration] = {}


def migrate(
    kind: str,
    collections: dict[str, dict[str, Doc]],
    from_version: int,
    to_version: int,
    migrations: dict[int, Migration],
) -> None:
    for version in range(from_version, to_version):
        step = migrations.get(version)
        if step is None:
            raise LookupError(f"no migration from schema {version} to {version + 1}")
        step(kind, collections)
