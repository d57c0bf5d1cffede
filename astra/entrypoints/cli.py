"""`astra`: the operator's command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from astra import __version__
from astra.domain.errors import DomainError
from astra.ports.store import StoreCorrupt, StoreError
from astra.settings import SettingsError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

ACTOR = "cli"
DELIVERY_KINDS = ("key", "text", "file", "role")
ORDER_STATUSES = (
    "pending",
    "paid",
    "waiting_stock",
    "delivered",
    "expired",
    "cancelled",
    "refunded",
)


if TYPE_CHECKING:  # imported lazily at run time: keeps --help fast
    from astra.container import Container
    from astra.domain.catalog import Product
    from astra.domain.coupon import Coupon
    from astra.plugins.manager import PluginManager


class CliError(Exception):
    """Something the operator asked for cannot be done; the message says why (exit 1)."""


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


# -- output helpers ------------------------------------------------------------------------------


def _print_json(value: object) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _on_off(value: bool | None) -> str:
    return "-" if value is None else ("on" if value else "off")


def _require_instance(container: Container, instance_id: str) -> dict[str, Any]:
    """The portal record of an instance; commands on an instance never create one by accident."""
    from astra.domain.errors import NotFoundError

    with container.store().portal(write=False) as uow:
        doc = uow.instances.get(instance_id)
    if doc is None:
        raise NotFoundError(f"Instance {instance_id!r}", instance_id)
    return doc


# -- plugins -------------------------------------------------------------------------------------


def _plugin_manager(container: Container, name: str | None = None) -> PluginManager:
    manager = container.plugins()
    if name is not None and name not in manager.names():
        installed = ", ".join(manager.names()) or "none"
        raise CliError(f"unknown plugin {name!r} (installed: {installed})")
    return manager


def cmd_plugins_list(args: argparse.Namespace) -> int:
    container = _container(args)
    manager = _plugin_manager(container)
    if args.instance:
        _require_instance(container, args.instance)
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
        _print_json(out)
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
    container = _container(args)
    manager = _plugin_manager(container, args.name)
    enabled = args.plugins_command == "enable"
    word = "enabled" if enabled else "disabled"
    if args.instance:
        _require_instance(container, args.instance)
        manager.set_instance(args.instance, args.name, enabled, ACTOR)
        print(f"{args.name}: {word} for instance {args.instance}")
    else:
        manager.set_global(args.name, enabled, ACTOR)
        print(f"{args.name}: {word} globally (instances with their own override keep it)")
    return EXIT_OK


def cmd_plugins_reset(args: argparse.Namespace) -> int:
    container = _container(args)
    manager = _plugin_manager(container, args.name)
    _require_instance(container, args.instance)
    manager.set_instance(args.instance, args.name, None, ACTOR)
    now = manager.effective(args.instance).get(args.name, False)
    print(
        f"{args.name}: override cleared for instance {args.instance}; "
        f"it follows the global state ({_on_off(now)})"
    )
    return EXIT_OK


# -- instances -----------------------------------------------------------------------------------


def _find_or_create_user(container: Container, email: str) -> tuple[dict[str, Any], bool]:
    """The portal user with this e-mail, or a minimal new one (it sets a password later)."""
    from astra.domain.ids import new_id
    from astra.domain.timestamps import iso

    wanted = email.strip().lower()
    if (
        not wanted
        or len(wanted) > 254
        or any(c.isspace() for c in wanted)
        or wanted.count("@") != 1
        or not all(wanted.split("@"))
    ):
        raise CliError(f"invalid e-mail address: {email!r}")
    with container.store().portal() as uow:
        for user in uow.users.all():
            if str(user.get("email", "")).lower() == wanted:
                return user, False
        user = {
            "id": new_id("usr"),
            "email": wanted,
            "name": "",
            "role": "customer",
            "created_at": iso(container.clock().now()),
            "password_hash": None,
            "plan": None,
        }
        uow.users.add(user)
        uow.commit()
    return user, True


def cmd_instance_create(args: argparse.Namespace) -> int:
    from astra.ports.store import INSTANCE_ID_PATTERN

    container = _container(args)
    # Checked before a user is created, so a typo in the id leaves nothing behind.
    if not INSTANCE_ID_PATTERN.fullmatch(args.id):
        raise CliError(
            f"invalid instance id {args.id!r}: 3-40 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    with container.store().portal(write=False) as uow:
        if uow.instances.get(args.id) is not None:
            raise CliError(f"instance {args.id!r} already exists")
    if not 1 <= len(args.name.strip()) <= 80:
        raise CliError("--name must have 1 to 80 characters")
    user, created = _find_or_create_user(container, args.owner_email)
    doc = container.instances().create(args.id, owner_id=user["id"], name=args.name, actor=ACTOR)
    owner = f"{user['email']} ({user['id']}{', new user' if created else ''})"
    print(f'created instance {doc["id"]} "{doc["name"]}", owner {owner}')
    return EXIT_OK


def cmd_instance_list(args: argparse.Namespace) -> int:
    container = _container(args)
    with container.store().portal(write=False) as uow:
        instances = uow.instances.all()
        emails = {u["id"]: u.get("email") for u in uow.users.all()}
    rows = [
        {
            "id": d["id"],
            "name": d.get("name"),
            "owner_id": d.get("owner_id"),
            "owner_email": emails.get(d.get("owner_id")),
            "status": d.get("status"),
            "status_reason": d.get("status_reason"),
            "created_at": d.get("created_at"),
        }
        for d in instances
    ]
    if args.json:
        _print_json(rows)
    elif not rows:
        print("no instances")
    else:
        _table(
            ("ID", "NAME", "OWNER", "STATUS", "CREATED"),
            [
                (
                    r["id"],
                    r["name"],
                    r["owner_email"] or r["owner_id"],
                    r["status"],
                    r["created_at"],
                )
                for r in rows
            ],
        )
    return EXIT_OK


def cmd_instance_set_token(args: argparse.Namespace) -> int:
    """The token comes from ASTRA_BOT_TOKEN or standard input, never from the command line
    (where `ps` and shell history would keep it)."""
    from astra.adapters.chat.discord.token import fetch_bot_profile
    from astra.ports.chat import ChatError

    container = _container(args)
    _require_instance(container, args.id)
    token = os.environ.get("ASTRA_BOT_TOKEN") or sys.stdin.readline()
    token = token.strip()
    if not token:
        raise CliError("give the bot token on standard input or in ASTRA_BOT_TOKEN")
    try:
        profile = asyncio.run(fetch_bot_profile(token, container.settings().discord_api_base))
    except ChatError as exc:
        raise CliError(f"Discord refused the token: {exc}") from None
    container.instances().set_bot_token(args.id, token, profile, actor="cli")
    print(f"token set for {args.id}: bot {profile.get('username')} ({profile.get('id')})")
    return EXIT_OK


def cmd_instance_rotate_key(args: argparse.Namespace) -> int:
    container = _container(args)
    _require_instance(container, args.id)
    key = container.instances().rotate_instance_key(args.id, actor="cli")
    print(key)
    print("this key is shown once; the previous one no longer works", file=sys.stderr)
    return EXIT_OK


def cmd_instance_run(args: argparse.Namespace) -> int:
    """One instance's bot. The token comes from ASTRA_BOT_TOKEN (what a tenant container gets)
    or, on a host that holds the whole data directory, from the instance's stored token."""
    from astra.entrypoints.bot.runtime import run_instance

    container = _container(args)
    token = os.environ.get("ASTRA_BOT_TOKEN", "").strip()
    if not token:
        _require_instance(container, args.id)
        token = container.instances().bot_token(args.id) or ""
    if not token:
        raise CliError(f"instance {args.id} has no bot token (astra instance set-token)")
    from astra.logs import add_secret

    add_secret(token)
    asyncio.run(run_instance(container, args.id, token))
    return EXIT_OK


# -- products and stock --------------------------------------------------------------------------


def _parse_variant(spec: str) -> dict[str, Any]:
    """'Name=19,90' or 'Name=19,90:5' (at most 5 per order)."""
    from astra.domain.money import parse_brl

    name, sep, rest = spec.rpartition("=")
    if not sep or not name.strip() or not rest.strip():
        raise CliError(
            f'invalid --variant {spec!r}: expected NAME=PRICE[:MAX], e.g. "Monthly=19,90:5"'
        )
    price, _, max_text = rest.partition(":")
    variant: dict[str, Any] = {"name": name.strip(), "price_cents": parse_brl(price)}
    if variant["price_cents"] == 0:
        raise CliError(f"invalid --variant {spec!r}: the price must be more than zero")
    if max_text.strip():
        try:
            variant["max_per_order"] = int(max_text)
        except ValueError:
            raise CliError(f"invalid --variant {spec!r}: MAX must be a whole number") from None
    return variant


def _product_doc(
    product: Product, counts: dict[str, dict[str, int]] | None = None
) -> dict[str, Any]:
    doc = product.to_doc()
    if counts is not None:
        for variant in doc["variants"]:
            variant["stock"] = counts.get(variant["id"], {})
    return doc


def cmd_product_create(args: argparse.Namespace) -> int:
    from astra.domain.money import format_brl

    container = _container(args)
    _require_instance(container, args.instance)
    variants = [_parse_variant(v) for v in args.variant]
    data: dict[str, Any] = {"name": args.name, "variants": variants, "delivery_kind": args.kind}
    for key, value in (
        ("description", args.description),
        ("category", args.category),
        ("content", args.content),
        ("dm_template", args.template),
    ):
        if value is not None:
            data[key] = value
    product = container.catalog().create_product(args.instance, data, actor=ACTOR)
    if args.json:
        _print_json(_product_doc(product))
        return EXIT_OK
    print(f'created product {product.id} "{product.name}" ({product.delivery_kind})')
    for v in product.variants:
        print(
            f"  variant {v.id}  {v.name}  {format_brl(v.price_cents)}  "
            f"max {v.max_per_order} per order"
        )
    return EXIT_OK


def cmd_product_list(args: argparse.Namespace) -> int:
    from astra.domain.money import format_brl

    container = _container(args)
    _require_instance(container, args.instance)
    catalog = container.catalog()
    products = catalog.list_products(args.instance)
    counts = catalog.stock_counts(args.instance)
    if args.json:
        _print_json([_product_doc(p, counts) for p in products])
        return EXIT_OK
    if not products:
        print(f"no products in instance {args.instance}")
    for p in products:
        state = "" if p.active else "  [inactive]"
        print(f"{p.id}  {p.name}  ({p.delivery_kind}){state}")
        rows = []
        for v in p.variants:
            c = counts.get(v.id, {})
            rows.append(
                (
                    "  " + v.id,
                    v.name,
                    format_brl(v.price_cents),
                    v.max_per_order,
                    c.get("available", 0),
                    c.get("reserved", 0),
                    c.get("sold", 0),
                )
            )
        _table(("  VARIANT", "NAME", "PRICE", "MAX", "AVAILABLE", "RESERVED", "SOLD"), rows)
    return EXIT_OK


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def cmd_stock_import(args: argparse.Namespace) -> int:
    from astra.domain.errors import NotFoundError

    container = _container(args)
    _require_instance(container, args.instance)
    catalog = container.catalog()
    try:
        product = catalog.get_product(args.instance, args.product_id)
    except NotFoundError:
        raise CliError(
            f"product {args.product_id!r} not found in instance {args.instance}"
        ) from None
    if product.variant(args.variant_id) is None:
        ids = ", ".join(v.id for v in product.variants)
        raise CliError(
            f"variant {args.variant_id!r} not found in product {product.id} (its variants: {ids})"
        )
    report = catalog.import_stock(
        args.instance, args.product_id, args.variant_id, _read_input(args.file), actor=ACTOR
    )
    if args.json:
        _print_json(report.to_doc())
        return EXIT_OK
    print(
        f"added {report.added} key(s) to {product.name} / {product.variant(args.variant_id).name}"
    )
    print(
        f"skipped {report.skipped}: {report.duplicate_in_file} duplicate(s) in the file, "
        f"{report.already_in_stock} already in stock, {report.too_long} too long, "
        f"{report.invalid} with control characters"
    )
    print(f"blank lines ignored: {report.blank}")
    if report.skipped_lines:
        shown = report.skipped_lines[:50]
        more = (
            f" (and {len(report.skipped_lines) - 50} more)"
            if len(report.skipped_lines) > 50
            else ""
        )
        print(f"skipped lines: {', '.join(map(str, shown))}{more}")
    return EXIT_OK


# -- coupons -------------------------------------------------------------------------------------


def _describe_discount(coupon: Coupon) -> str:
    from astra.domain.money import format_brl

    return f"{coupon.value}%" if coupon.kind == "percent" else format_brl(coupon.value)


def cmd_coupon_create(args: argparse.Namespace) -> int:
    from datetime import datetime

    from astra.domain.money import format_brl, parse_brl

    container = _container(args)
    _require_instance(container, args.instance)
    data: dict[str, Any] = {"code": args.code}
    if args.percent is not None:
        data.update(kind="percent", value=args.percent)
    else:
        data.update(kind="fixed", value=parse_brl(args.fixed))
    if args.min_order is not None:
        data["min_order_cents"] = parse_brl(args.min_order)
    if args.max_uses is not None:
        data["max_uses"] = args.max_uses
    if args.per_buyer is not None:
        data["per_buyer_limit"] = args.per_buyer
    if args.expires is not None:
        try:
            datetime.fromisoformat(args.expires)
        except ValueError:
            raise CliError(
                f"invalid --expires {args.expires!r}: use ISO 8601, e.g. 2026-12-31T23:59:59-03:00"
            ) from None
        data["expires_at"] = args.expires
    if args.product_ids:
        data["product_ids"] = list(dict.fromkeys(args.product_ids))
    coupon = container.coupons().create(args.instance, data, actor=ACTOR)
    details = [f"{_describe_discount(coupon)} off"]
    if coupon.min_order_cents:
        details.append(f"minimum order {format_brl(coupon.min_order_cents)}")
    if coupon.max_uses is not None:
        details.append(f"at most {coupon.max_uses} use(s)")
    if coupon.per_buyer_limit is not None:
        details.append(f"{coupon.per_buyer_limit} per buyer")
    if coupon.expires_at:
        details.append(f"expires {coupon.expires_at}")
    if coupon.product_ids:
        details.append(f"only for {', '.join(coupon.product_ids)}")
    print(f"created coupon {coupon.code}: {'; '.join(details)}")
    return EXIT_OK


def cmd_coupon_list(args: argparse.Namespace) -> int:
    from astra.domain.money import format_brl

    container = _container(args)
    _require_instance(container, args.instance)
    coupons = container.coupons().list(args.instance)
    if args.json:
        _print_json([c.to_doc() for c in coupons])
    elif not coupons:
        print(f"no coupons in instance {args.instance}")
    else:
        _table(
            ("CODE", "DISCOUNT", "USES", "PER BUYER", "MIN ORDER", "EXPIRES", "ACTIVE", "PRODUCTS"),
            [
                (
                    c.code,
                    _describe_discount(c),
                    f"{c.uses}/{c.max_uses}" if c.max_uses is not None else f"{c.uses}",
                    c.per_buyer_limit if c.per_buyer_limit is not None else "-",
                    format_brl(c.min_order_cents) if c.min_order_cents else "-",
                    c.expires_at or "-",
                    "yes" if c.active else "no",
                    ",".join(c.product_ids) or "all",
                )
                for c in coupons
            ],
        )
    return EXIT_OK


def cmd_coupon_toggle(args: argparse.Namespace) -> int:
    container = _container(args)
    _require_instance(container, args.instance)
    from astra.domain.errors import NotFoundError

    active = args.coupon_command == "enable"
    try:
        coupon = container.coupons().set_active(args.instance, args.code, active, actor=ACTOR)
    except NotFoundError:
        raise CliError(
            f"coupon {args.code.strip().upper()!r} not found in instance {args.instance}"
        ) from None
    print(f"coupon {coupon.code} {'enabled' if active else 'disabled'}")
    return EXIT_OK


# -- orders --------------------------------------------------------------------------------------


def cmd_orders_list(args: argparse.Namespace) -> int:
    from astra.domain.money import format_brl

    container = _container(args)
    _require_instance(container, args.instance)
    orders = container.sales().list_orders(args.instance, status=args.status)
    if args.json:
        docs = []
        for order in orders:
            doc = order.to_doc()
            doc.pop("charge", None)  # the QR image is large and says nothing an operator needs
            docs.append(doc)
        _print_json(docs)
    elif not orders:
        which = f"{args.status} orders" if args.status else "orders"
        print(f"no {which} in instance {args.instance}")
    else:
        _table(
            ("ID", "STATUS", "BUYER", "TOTAL", "CREATED"),
            [(o.id, o.status, o.buyer_id, format_brl(o.total_cents), o.created_at) for o in orders],
        )
    return EXIT_OK


# -- sandbox payments ----------------------------------------------------------------------------


def cmd_payments(args: argparse.Namespace) -> int:
    from astra.ports.payments import GatewayError

    container = _container(args)
    gateway = container.gateway()
    if not getattr(gateway, "simulated", False):
        raise CliError(
            "payments approve/reject/refund/chargeback work on sandbox charges only; real "
            "Mercado Pago payments are settled by Mercado Pago"
        )
    try:
        if args.action == "approve":
            charge = gateway.approve(args.charge)
        elif args.action == "reject":
            charge = gateway.reject(args.charge)
        elif args.action == "chargeback":
            charge = gateway.chargeback(args.charge)
        else:
            amount = None
            if args.amount is not None:
                from astra.domain.money import parse_brl

                amount = parse_brl(args.amount)
            charge = gateway.refund_charge(args.charge, amount)
    except GatewayError as exc:
        raise CliError(str(exc)) from None
    # Apply it now, as a webhook would; the running platform's reconcile loop would too.
    outcome = container.payments().apply_charge(charge)
    print(f"charge {charge.id}: {charge.status}; {outcome.kind} {outcome.ref}: {outcome.action}")
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------------


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _add_operator_commands(sub: Any) -> None:
    # plugins
    plugins = sub.add_parser(
        "plugins", help="list plugins and toggle them globally or per instance"
    )
    psub = plugins.add_subparsers(dest="plugins_command", metavar="ACTION", required=True)
    p = psub.add_parser("list", help="installed plugins with their toggles, hooks and errors")
    p.add_argument("--instance", metavar="ID", help="also show the state for this instance")
    _add_json(p)
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

    # instances
    instance = sub.add_parser("instance", help="create and list seller instances (bots)")
    isub = instance.add_subparsers(dest="instance_command", metavar="ACTION", required=True)
    p = isub.add_parser("create", help="create an instance owned by a portal user")
    p.add_argument("id", metavar="ID", help="instance id: 3-40 of a-z, 0-9, '-'")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument(
        "--owner-email",
        required=True,
        metavar="EMAIL",
        help="owner's portal e-mail (a user is created if there is none)",
    )
    p.set_defaults(func=cmd_instance_create)
    p = isub.add_parser(
        "set-token",
        help="store a bot token (read from stdin or ASTRA_BOT_TOKEN), checked against Discord",
    )
    p.add_argument("id")
    p.set_defaults(func=cmd_instance_set_token)
    p = isub.add_parser("rotate-key", help="print a new instance key (shown once)")
    p.add_argument("id")
    p.set_defaults(func=cmd_instance_rotate_key)
    p = isub.add_parser("run", help="run one instance's Discord bot (what its runtime runs)")
    p.add_argument("id")
    p.set_defaults(func=cmd_instance_run)
    p = isub.add_parser("list", help="every instance with its owner and status")
    _add_json(p)
    p.set_defaults(func=cmd_instance_list)

    # products
    product = sub.add_parser("product", help="create and list an instance's products")
    prsub = product.add_subparsers(dest="product_command", metavar="ACTION", required=True)
    p = prsub.add_parser("create", help="create a product with one or more variants")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    p.add_argument("--name", required=True, help="product name")
    p.add_argument(
        "--variant",
        action="append",
        required=True,
        metavar="NAME=PRICE[:MAX]",
        help="a variant, its price in BRL and optionally the most units per order, "
        'e.g. "Monthly=19,90:5" (repeat for more variants)',
    )
    p.add_argument("--description", help="product description")
    p.add_argument("--category", help="category")
    p.add_argument(
        "--kind",
        choices=DELIVERY_KINDS,
        default="key",
        help="what a buyer receives (default: key, one stock key per unit)",
    )
    p.add_argument("--content", help="for text/file/role delivery: the text, file URL or role id")
    p.add_argument("--template", help="DM template ({produto}, {variante}, {chaves}, ...)")
    _add_json(p)
    p.set_defaults(func=cmd_product_create)
    p = prsub.add_parser("list", help="products, variants, prices and stock counts")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    _add_json(p)
    p.set_defaults(func=cmd_product_list)

    # stock
    stock = sub.add_parser("stock", help="import keys into a variant's stock")
    ssub = stock.add_subparsers(dest="stock_command", metavar="ACTION", required=True)
    p = ssub.add_parser("import", help="add one key per line of a UTF-8 text file (deduplicated)")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    p.add_argument("product_id", metavar="PRODUCT_ID", help="product id")
    p.add_argument("variant_id", metavar="VARIANT_ID", help="variant id")
    p.add_argument("file", metavar="FILE", help='the keys file, or "-" for standard input')
    _add_json(p)
    p.set_defaults(func=cmd_stock_import)

    # coupons
    coupon = sub.add_parser("coupon", help="create, list and switch off an instance's coupons")
    csub = coupon.add_subparsers(dest="coupon_command", metavar="ACTION", required=True)
    p = csub.add_parser("create", help="create a percent or fixed-amount coupon")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    p.add_argument("code", metavar="CODE", help="coupon code (case-insensitive, A-Z 0-9 _ -)")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--percent", type=int, metavar="N", help="N%% off (1-100)")
    kind.add_argument("--fixed", metavar="AMOUNT", help="a fixed amount off, e.g. 10,00")
    p.add_argument("--min-order", metavar="AMOUNT", help="minimum order, e.g. 50,00")
    p.add_argument("--max-uses", type=int, metavar="N", help="total uses allowed")
    p.add_argument("--per-buyer", type=int, metavar="N", help="uses allowed per buyer")
    p.add_argument(
        "--expires",
        metavar="ISO_TIME",
        help="expiry, ISO 8601 with offset, e.g. 2026-12-31T23:59:59-03:00",
    )
    p.add_argument(
        "--product",
        dest="product_ids",
        action="extend",
        nargs="+",
        metavar="PRODUCT_ID",
        help="only for these products (default: all)",
    )
    p.set_defaults(func=cmd_coupon_create)
    p = csub.add_parser("list", help="coupons with their rules and uses")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    _add_json(p)
    p.set_defaults(func=cmd_coupon_list)
    for action in ("disable", "enable"):
        p = csub.add_parser(action, help=f"{action} a coupon")
        p.add_argument("instance", metavar="INSTANCE", help="instance id")
        p.add_argument("code", metavar="CODE", help="coupon code")
        p.set_defaults(func=cmd_coupon_toggle)

    # orders
    pay = sub.add_parser("payments", help="settle sandbox PIX charges by hand (sandbox only)")
    paysub = pay.add_subparsers(dest="payments_command", metavar="ACTION", required=True)
    for action, text in (
        ("approve", "mark a pending charge paid"),
        ("reject", "mark a pending charge rejected"),
        ("refund", "refund a paid charge (in full, or --amount)"),
        ("chargeback", "simulate a chargeback of a paid charge"),
    ):
        p = paysub.add_parser(action, help=text)
        p.add_argument("charge", help="charge id (shown with the PIX code)")
        if action == "refund":
            p.add_argument("--amount", help="partial refund, e.g. 5,00")
        p.set_defaults(func=cmd_payments, action=action)

    orders = sub.add_parser("orders", help="an instance's orders")
    osub = orders.add_subparsers(dest="orders_command", metavar="ACTION", required=True)
    p = osub.add_parser("list", help="orders with status, buyer, total and date")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    p.add_argument("--status", choices=ORDER_STATUSES, help="only orders in this status")
    _add_json(p)
    p.set_defaults(func=cmd_orders_list)


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

    _add_operator_commands(sub)
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


if __name__ == "__main__":
    sys.exit(main())
