"""`astra product`, `stock` and `coupon`: what an instance sells, its keys and its discounts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astra.entrypoints.cli.console import (
    ACTOR,
    EXIT_OK,
    CliError,
    add_json_flag,
    container_from,
    print_json,
    print_table,
    require_instance,
)

DELIVERY_KINDS = ("key", "text", "file", "role")

if TYPE_CHECKING:  # imported lazily at run time: keeps --help fast
    from astra.domain.catalog import Product
    from astra.domain.coupon import Coupon


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

    container = container_from(args)
    require_instance(container, args.instance)
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
        print_json(_product_doc(product))
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

    container = container_from(args)
    require_instance(container, args.instance)
    catalog = container.catalog()
    products = catalog.list_products(args.instance)
    counts = catalog.stock_counts(args.instance)
    if args.json:
        print_json([_product_doc(p, counts) for p in products])
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
        print_table(("  VARIANT", "NAME", "PRICE", "MAX", "AVAILABLE", "RESERVED", "SOLD"), rows)
    return EXIT_OK


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _import_progress() -> Callable[[dict[str, Any] | None], None]:
    """Progress of a big import on stderr (stdout keeps the report): a line redrawn in place on
    a terminal, a line per tenth otherwise. Called with None at the end."""
    tty = sys.stderr.isatty()
    shown = [-1]

    def show(view: dict[str, Any] | None) -> None:
        if view is None:
            if shown[0] >= 0 and tty:
                sys.stderr.write("\n")
            return
        percent = int(view["percent"])
        if not tty and percent // 10 == shown[0] // 10 and percent != 100:
            return
        shown[0] = percent
        line = f"importing: {view['processed']}/{view['total']} keys ({percent}%)"
        sys.stderr.write(f"\r{line}" if tty else f"{line}\n")
        sys.stderr.flush()

    return show


def cmd_stock_import(args: argparse.Namespace) -> int:
    from astra.domain.errors import NotFoundError

    container = container_from(args)
    require_instance(container, args.instance)
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
    progress = None if args.json else _import_progress()
    report = catalog.import_stock(
        args.instance, args.product_id, args.variant_id, _read_input(args.file), actor=ACTOR,
        progress=progress,
    )
    if progress is not None:
        progress(None)
    if args.json:
        print_json(report.to_doc())
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


def _describe_discount(coupon: Coupon) -> str:
    from astra.domain.money import format_brl

    return f"{coupon.value}%" if coupon.kind == "percent" else format_brl(coupon.value)


def cmd_coupon_create(args: argparse.Namespace) -> int:
    from datetime import datetime

    from astra.domain.money import format_brl, parse_brl

    container = container_from(args)
    require_instance(container, args.instance)
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

    container = container_from(args)
    require_instance(container, args.instance)
    coupons = container.coupons().list(args.instance)
    if args.json:
        print_json([c.to_doc() for c in coupons])
    elif not coupons:
        print(f"no coupons in instance {args.instance}")
    else:
        print_table(
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
    container = container_from(args)
    require_instance(container, args.instance)
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


def register(sub: Any) -> None:
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
    add_json_flag(p)
    p.set_defaults(func=cmd_product_create)
    p = prsub.add_parser("list", help="products, variants, prices and stock counts")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    add_json_flag(p)
    p.set_defaults(func=cmd_product_list)

    # stock
    stock = sub.add_parser("stock", help="import keys into a variant's stock")
    ssub = stock.add_subparsers(dest="stock_command", metavar="ACTION", required=True)
    p = ssub.add_parser("import", help="add one key per line of a UTF-8 text file (deduplicated)")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    p.add_argument("product_id", metavar="PRODUCT_ID", help="product id")
    p.add_argument("variant_id", metavar="VARIANT_ID", help="variant id")
    p.add_argument("file", metavar="FILE", help='the keys file, or "-" for standard input')
    add_json_flag(p)
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
    add_json_flag(p)
    p.set_defaults(func=cmd_coupon_list)
    for action in ("disable", "enable"):
        p = csub.add_parser(action, help=f"{action} a coupon")
        p.add_argument("instance", metavar="INSTANCE", help="instance id")
        p.add_argument("code", metavar="CODE", help="coupon code")
        p.set_defaults(func=cmd_coupon_toggle)
