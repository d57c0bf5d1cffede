"""`astra plugins`: list plugins and switch them on or off globally or for one instance."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from astra.entrypoints.cli.console import (
    ACTOR,
    EXIT_OK,
    CliError,
    add_json_flag,
    container_from,
    print_json,
    require_instance,
)

if TYPE_CHECKING:  # imported lazily at run time: keeps --help fast
    from astra.container import Container
    from astra.plugins.manager import PluginManager


def _plugin_manager(container: Container, name: str | None = None) -> PluginManager:
    manager = container.plugins()
    if name is not None and name not in manager.names():
        installed = ", ".join(manager.names()) or "none"
        raise CliError(f"unknown plugin {name!r} (installed: {installed})")
    return manager


def _on_off(value: bool | None) -> str:
    return "-" if value is None else ("on" if value else "off")


def cmd_plugins_list(args: argparse.Namespace) -> int:
    container = container_from(args)
    manager = _plugin_manager(container)
    if args.instance:
        require_instance(container, args.instance)
    overrides = manager.instance_toggles(args.instance) if args.instance else {}
    globals_ = manager.global_toggles()
    effective = manager.effective(args.instance)
    out = []
    for info in manager.plugins():
        name = info["name"]
        entry = {**info, "global": globals_.get(name), "effective": effective.get(name, False)}
        if args.instance:
            entry["instance_id"] = args.instance
            entry["instance_override"] = overrides.get(name)
        out.append(entry)
    if args.json:
        print_json(out)
        return EXIT_OK
    if not out:
        print("no plugins installed")
    scope = f"for instance {args.instance}" if args.instance else "globally"
    for entry in out:
        state = "enabled" if entry["effective"] else "disabled"
        print(f"{entry['name']}: {state} {scope}")
        if entry["description"]:
            print(f"  {entry['description']}")
        toggles = f"default {_on_off(entry['default_enabled'])}, global {_on_off(entry['global'])}"
        if args.instance:
            toggles += f", instance override {_on_off(entry['instance_override'])}"
        print(f"  toggles: {toggles}")
        print(f"  hooks:   {', '.join(entry['hooks']) or '-'}")
        errors = f"{entry['errors']}"
        if entry["last_error"]:
            errors += f" (last: {entry['last_error']})"
        print(f"  errors:  {errors}")
    return EXIT_OK


def cmd_plugins_toggle(args: argparse.Namespace) -> int:
    container = container_from(args)
    manager = _plugin_manager(container, args.name)
    enabled = args.plugins_command == "enable"
    word = "enabled" if enabled else "disabled"
    if args.instance:
        require_instance(container, args.instance)
        manager.set_instance(args.instance, args.name, enabled, ACTOR)
        print(f"{args.name}: {word} for instance {args.instance}")
    else:
        manager.set_global(args.name, enabled, ACTOR)
        print(f"{args.name}: {word} globally (instances with their own override keep it)")
    return EXIT_OK


def cmd_plugins_reset(args: argparse.Namespace) -> int:
    container = container_from(args)
    manager = _plugin_manager(container, args.name)
    require_instance(container, args.instance)
    manager.set_instance(args.instance, args.name, None, ACTOR)
    now = manager.effective(args.instance).get(args.name, False)
    print(
        f"{args.name}: override cleared for instance {args.instance}; "
        f"it follows the global state ({_on_off(now)})"
    )
    return EXIT_OK


def register(sub: Any) -> None:
    plugins = sub.add_parser(
        "plugins", help="list plugins and toggle them globally or per instance"
    )
    psub = plugins.add_subparsers(dest="plugins_command", metavar="ACTION", required=True)
    p = psub.add_parser("list", help="installed plugins with their toggles, hooks and errors")
    p.add_argument("--instance", metavar="ID", help="also show the state for this instance")
    add_json_flag(p)
    p.set_defaults(func=cmd_plugins_list)
    for action in ("enable", "disable"):
        p = psub.add_parser(action, help=f"{action} a plugin globally, or for one instance")
        p.add_argument("name", metavar="NAME", help="plugin name (see `astra plugins list`)")
        p.add_argument("--instance", metavar="ID", help="override only this instance")
        p.set_defaults(func=cmd_plugins_toggle)
    p = psub.add_parser("reset", help="clear an instance's override: the global state applies")
    p.add_argument("name", metavar="NAME", help="plugin name")
    p.add_argument("--instance", metavar="ID", required=True, help="the instance")
    p.set_defaults(func=cmd_plugins_reset)
