"""`astra`: the operator's command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from astra import __version__
from astra.ports.store import StoreCorrupt, StoreError
from astra.settings import SettingsError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _container(args: argparse.Namespace):  # -> Container (imported lazily: keeps --help fast)
    from astra.container import build_container
    from astra.logs import configure_logging
    from astra.settings import load_settings

    environ = dict(os.environ)
    if getattr(args, "data_dir", None):
        environ["ASTRA_DATA_DIR"] = str(args.data_dir)
    settings = load_settings(environ)
    configure_logging(settings)
    return build_container(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    from astra.entrypoints.serve import serve

    container = _container(args)
    asyncio.run(serve(container))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    container = _container(args)
    store = container.store()
    problems = store.check()
    if args.json:
        print(orjson.dumps([p.__dict__ for p in problems], option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"data directory: {store.data_dir}")
        if not problems:
            print("ok: every file reads cleanly")
        for p in problems:
            print(f"{p.severity.upper():8} {p.path}\n         {p.message}")
            if p.hint:
                print(f"         fix: {p.hint}")
    return EXIT_FAILURE if any(p.severity == "error" for p in problems) else EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    container = _container(args)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astra",
        description="Astra: Discord sales bots paid by PIX. Settings come from the environment "
        "and ./.env (ASTRA_DATA_DIR, ASTRA_PORTAL_PORT, ASTRA_ADMIN_PORT, ...).",
    )
    parser.add_argument("--version", action="version", version=f"astra {__version__}")
    parser.add_argument(
        "--data-dir", type=Path, help="data directory (default: ASTRA_DATA_DIR or ./data)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="run the portal (:3100) and the admin panel (:3000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("doctor", help="check a data directory and say what is wrong")
    p.add_argument("--json", action="store_true", help="machine-readable output")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print("astra: configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_USAGE
    except StoreCorrupt as exc:
        print(f"astra: damaged data file {exc.path}: {exc.problem}", file=sys.stderr)
        print(
            "  nothing was changed; run `astra doctor`, then restore the file from a backup",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except StoreError as exc:
        print(f"astra: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
