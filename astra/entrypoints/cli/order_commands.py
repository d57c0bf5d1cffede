"""`astra orders`: an instance's orders."""

from __future__ import annotations

import argparse
from typing import Any

from astra.entrypoints.cli.console import (
    EXIT_OK,
    add_json_flag,
    container_from,
    print_json,
    print_table,
    require_instance,
)

ORDER_STATUSES = (
    "pending",
    "paid",
    "waiting_stock",
    "delivered",
    "expired",
    "cancelled",
    "refunded",
)


def cmd_orders_list(args: argparse.Namespace) -> int:
    from astra.domain.money import format_brl

    container = container_from(args)
    require_instance(container, args.instance)
    orders = container.sales().list_orders(args.instance, status=args.status)
    if args.json:
        docs = []
        for order in orders:
            doc = order.to_doc()
            doc.pop("charge", None)  # the QR image is large and says nothing an operator needs
            docs.append(doc)
        print_json(docs)
    elif not orders:
        which = f"{args.status} orders" if args.status else "orders"
        print(f"no {which} in instance {args.instance}")
    else:
        print_table(
            ("ID", "STATUS", "BUYER", "TOTAL", "CREATED"),
            [(o.id, o.status, o.buyer_id, format_brl(o.total_cents), o.created_at) for o in orders],
        )
    return EXIT_OK


def cmd_orders_redeliver(args: argparse.Namespace) -> int:
    """Staff asks for a paid order to be delivered again now; the instance's bot sends it."""
    container = container_from(args)
    require_instance(container, args.instance)
    delivery = container.delivery().redeliver(args.instance, args.order, actor="cli")
    print(f"order {args.order}: delivery {delivery.status} again (the bot sends it shortly)")
    return EXIT_OK


def register(sub: Any) -> None:
    orders = sub.add_parser("orders", help="an instance's orders")
    osub = orders.add_subparsers(dest="orders_command", metavar="ACTION", required=True)
    p = osub.add_parser("list", help="orders with status, buyer, total and date")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    p.add_argument("--status", choices=ORDER_STATUSES, help="only orders in this status")
    add_json_flag(p)
    p.set_defaults(func=cmd_orders_list)
    p = osub.add_parser("redeliver", help="deliver a paid order again (keys sent again)")
    p.add_argument("instance", metavar="INSTANCE", help="instance id")
    p.add_argument("order", metavar="ORDER", help="order id")
    p.set_defaults(func=cmd_orders_redeliver)
