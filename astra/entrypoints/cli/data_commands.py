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
    if args.json:
        print_json([p.__dict__ for p in problems])
    else:
        print(f"data directory: {store.data_dir}")
        if not problems:
            print("ok: every file reads cleanly")
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
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from astra.adapters.store.json import restore
    from astra.settings import Settings

    # Plain settings: loading the development secrets would create a file in the target first.
    environ = dict(os.environ)
    if args.data_dir:
        environ["ASTRA_DATA_DIR"] = str(args.data_dir)
    data_dir = Settings.from_env(environ).data_dir
    manifest = restore(Path(args.src), data_dir, force=args.force)
    print(f"restored {len(manifest['domains'])} domains into {Path(data_dir).resolve()}")
    if "previous_data_moved_to" in manifest:
        print(f"previous data kept at {manifest['previous_data_moved_to']}")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the portal (:3100) and the admin panel (:3000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "migrate", help="create or upgrade the PostgreSQL schema (ASTRA_DATABASE_URL)"
    )
    p.set_defaults(func=cmd_migrate)

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
