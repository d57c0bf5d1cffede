"""`astra`: the operator's command line.

Each `*_commands` module adds one family of commands; `console` holds what they share. Heavy
modules are imported inside the command functions, so `astra --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from astra import __version__
from astra.domain.errors import DomainError
from astra.entrypoints.cli import (
    catalog_commands,
    data_commands,
    instance_commands,
    order_commands,
    payment_commands,
    plugin_commands,
    runtime_commands,
)
from astra.entrypoints.cli.console import EXIT_FAILURE, EXIT_USAGE, CliError
from astra.ports.store import StoreCorrupt, StoreError
from astra.settings import SettingsError

# In the order `astra --help` lists them.
COMMAND_FAMILIES = (
    data_commands,
    plugin_commands,
    instance_commands,
    runtime_commands,
    catalog_commands,
    payment_commands,
    order_commands,
)


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
    for family in COMMAND_FAMILIES:
        family.register(sub)
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
    except DomainError as exc:
        print(f"astra: {exc.message('en')}", file=sys.stderr)
        return EXIT_FAILURE
    except CliError as exc:
        print(f"astra: {exc}", file=sys.stderr)
        return EXIT_FAILURE
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
