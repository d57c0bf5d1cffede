"""What the `astra` commands share: exit codes, the container, printing, common checks."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

ACTOR = "cli"

if TYPE_CHECKING:  # imported lazily at run time: keeps --help fast
    from astra.container import Container


class CliError(Exception):
    """Something the operator asked for cannot be done; the message says why (exit 1)."""


def container_from(args: argparse.Namespace):  # -> Container (imported lazily: keeps --help fast)
    from astra.container import build_container
    from astra.logs import configure_logging
    from astra.settings import load_settings

    environ = dict(os.environ)
    if getattr(args, "data_dir", None):
        environ["ASTRA_DATA_DIR"] = str(args.data_dir)
    settings = load_settings(environ)
    configure_logging(settings)
    return build_container(settings)


def require_instance(container: Container, instance_id: str) -> dict[str, Any]:
    """The portal record of an instance; commands on an instance never create one by accident."""
    from astra.domain.errors import NotFoundError

    with container.store().portal(write=False) as uow:
        doc = uow.instances.get(instance_id)
    if doc is None:
        raise NotFoundError(f"Instance {instance_id!r}", instance_id)
    return doc


def print_json(value: object) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
