"""The README and docs stand alone in a clone and stay current with the code they describe."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from astra.entrypoints.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    groups: dict[str, list[str]] = {}
    for name, sub in action.choices.items():
        inner = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        groups[name] = list(inner[0].choices) if inner else []
    return groups


def test_the_readme_command_table_lists_every_command_group_and_action() -> None:
    table = README[README.index("## Commands"):README.index("## Sales and plugins")]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| (.+) \|$", table, re.M)}
    groups = _subcommands(build_parser())
    assert set(rows) == set(groups)
    for group, actions in groups.items():
        for action in actions:
            # "astra instance start|stop|restart" names three actions in one place
            assert re.search(rf"astra {group} [^`]*\b{re.escape(action)}\b", rows[group]), (
                group, action)


def test_readme_and_docs_links_stay_inside_the_repository() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", doc.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (doc.parent / target).resolve()
            assert ROOT in resolved.parents or resolved == ROOT, (doc.name, target)
            assert resolved.exists(), (doc.name, target)
    assert "](docs/architecture.md)" in README


def test_the_architecture_page_names_every_port_and_adapter() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for port in sorted((ROOT / "astra" / "ports").glob("*.py")):
        if port.stem != "__init__":
            assert f"{port.stem}.py" in page or port.stem in page, port.stem
    adapters = ROOT / "astra" / "adapters"
    for kind in ("store", "payments", "runtime", "chat"):
        for impl in sorted((adapters / kind).iterdir()):
            name = impl.stem
            if name.startswith("_") or name == "heartbeat" or name == "brcode":
                continue  # helpers of an adapter, not adapters
            assert f"{kind}/{name}" in page or f"`{name}`" in page, f"{kind}/{name}"
