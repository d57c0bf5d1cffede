"""`astra serve`, `doctor`, `backup` and `restore`: running the platform and keeping its data."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from astra.entrypoints.cli.console import (
    EXIT_FAILURE,
    EXIT_OK,
    CliError,
    add_json_flag,
    container_from,
    print_json,
)


def cmd_serve(args: argparse.Namespace) -> int:
    from astra.entrypoints.serve import serve

    container = container_from(args)
    asyncio.run(serve(container))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    container = container_from(args)
    store = container.store()
    problems = store.check()
    postgres = bool(container.settings().database_url)
    if args.json:
        print_json([p.__dict__ for p in problems])
    else:
        if postgres:
            print(f"database: {store.location}")
        else:
            print(f"data directory: {store.data_dir}")
        if not problems:
            print(
                "ok: connected, schema up to date, every document well-formed"
                if postgres
                else "ok: every file reads cleanly"
            )
        for p in problems:
            print(f"{p.severity.upper():8} {p.path}\n         {p.message}")
            if p.hint:
                print(f"         fix: {p.hint}")
    return EXIT_FAILURE if any(p.severity == "error" for p in problems) else EXIT_OK


def _postgres_store(container: Any, command: str):
    """The PostgreSQL store, or CliError saying how to choose it."""
    if not container.settings().database_url:
        raise CliError(
            f"`astra {command}` works on PostgreSQL: set ASTRA_DATABASE_URL=postgresql://... "
            "(the JSON store needs no migrations: its files are upgraded on the next write)"
        )
    return container.store()


def cmd_migrate(args: argparse.Namespace) -> int:
    container = container_from(args)
    store = _postgres_store(container, "migrate")
    before = store.schema_status()
    if before.unknown:
        print(f"astra: {store.location}: {before.problem()}", file=sys.stderr)
        return EXIT_FAILURE
    done = store.migrate()
    for m in done:
        print(f"applied {m.version:04d}_{m.name}")
    after = store.schema_status()
    state = "up to date" if not done else f"migrated from {before.current}"
    print(f"{store.location}: schema version {after.current} ({state})")
    store.close()
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    container = container_from(args)
    manifest = container.store().backup(Path(args.dest))
    domains = manifest["domains"]
    print(f"backup written to {Path(args.dest).resolve()} ({len(domains)} domains)")
    if manifest.get("format") == "astra-pg-backup":
        print(f"restore it with: {manifest['restore']}")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from astra.adapters.store.json import restore
    from astra.settings import Settings

    # Plain settings: loading the development secrets would create a file in the target first.
    environ = dict(os.environ)
    if args.data_dir:
        environ["ASTRA_DATA_DIR"] = str(args.data_dir)
    settings = Settings.from_env(environ)
    if settings.database_url:
        raise CliError(
            "`astra restore` puts back a JSON data directory. On PostgreSQL, restore an "
            "`astra backup` with pg_restore (see its backup.json and docs/operations.md), or "
            "load a JSON copy into an empty database with `astra db import --from-json DIR`"
        )
    data_dir = settings.data_dir
    manifest = restore(Path(args.src), data_dir, force=args.force)
    print(f"restored {len(manifest['domains'])} domains into {Path(data_dir).resolve()}")
    if "previous_data_moved_to" in manifest:
        print(f"previous data kept at {manifest['previous_data_moved_to']}")
    return EXIT_OK


def _print_summary(result: Any, verb: str) -> None:
    for line in result.source.lines():
        print(f"  {line}")
    print(
        f"{verb} {result.source.documents} documents in {len(result.source.collections)} "
        f"collections; checksum source {result.source.checksum[:16]} = "
        f"copy {result.target.checksum[:16]}"
    )
    for note in result.notes:
        print(f"note: {note}")


def cmd_db_import(args: argparse.Namespace) -> int:
    from astra.adapters.store.postgresql.transfer import import_json

    container = container_from(args)
    store = _postgres_store(container, "db import")
    result = import_json(store, Path(args.from_json))
    print(f"imported {Path(args.from_json).resolve()} into {store.location}")
    _print_summary(result, "copied")
    return EXIT_OK


def cmd_db_export(args: argparse.Namespace) -> int:
    from astra.adapters.store.postgresql.transfer import export_json

    container = container_from(args)
    store = _postgres_store(container, "db export")
    result = export_json(store, Path(args.to_json))
    print(f"exported {store.location} to {Path(args.to_json).resolve()}")
    _print_summary(result, "wrote")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the portal (:3100) and the admin panel (:3000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "migrate", help="create or upgrade the PostgreSQL schema (ASTRA_DATABASE_URL)"
    )
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("db", help="move data between a JSON data directory and PostgreSQL")
    db = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    q = db.add_parser(
        "import", help="copy a JSON data directory into an empty database (ASTRA_DATABASE_URL)"
    )
    q.add_argument("--from-json", required=True, metavar="DIR", help="a JSON data directory")
    q.set_defaults(func=cmd_db_import)
    q = db.add_parser("export", help="write the database out as a JSON data directory")
    q.add_argument("--to-json", required=True, metavar="DIR", help="a new or empty directory")
    q.set_defaults(func=cmd_db_export)

    p = sub.add_parser("doctor", help="check a data directory and say what is wrong")
    add_json_flag(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("backup", help="write a consistent copy of the data while it runs")
    p.add_argument("dest", help="an empty or new directory outside the data directory")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="put a backup back in place of the data directory")
    p.add_argument("src", help="a directory written by `astra backup`")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty data directory (the old one is kept aside)",
    )
    p.set_defaults(func=cmd_restore)
