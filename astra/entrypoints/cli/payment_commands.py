"""`astra payments`: list the platform's PIX charges; settle sandbox ones by hand, as Mercado
Pago would."""

from __future__ import annotations

import argparse
from typing import Any

from astra.entrypoints.cli.console import (
    EXIT_OK,
    CliError,
    add_json_flag,
    container_from,
    print_json,
    print_table,
)

CHARGE_STATUSES = (
    "pending", "approved", "authorized", "in_process", "in_mediation", "rejected", "cancelled",
    "refunded", "charged_back",
)


def cmd_payments_list(args: argparse.Namespace) -> int:
    from astra.domain.money import format_brl

    container = container_from(args)
    rows = container.payments().list_charges(status=args.status)
    if args.json:
        print_json(rows)
    elif not rows:
        print(f"no {args.status + ' ' if args.status else ''}charges")
    else:
        print_table(
            ("CHARGE", "STATUS", "AMOUNT", "FOR", "ITS STATUS", "CREATED"),
            [(r["charge_id"], r["status"], format_brl(r["amount_cents"]),
              f"order {r['instance_id']}/{r['ref']}" if r["kind"] == "order"
              else f"plan {r['ref']}", r["ref_status"], r["created_at"]) for r in rows],
        )
    return EXIT_OK


def cmd_payments(args: argparse.Namespace) -> int:
    from astra.ports.payments import GatewayError

    container = container_from(args)
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


def register(sub: Any) -> None:
    pay = sub.add_parser(
        "payments", help="list PIX charges; settle sandbox ones by hand (sandbox only)"
    )
    paysub = pay.add_subparsers(dest="payments_command", metavar="ACTION", required=True)
    p = paysub.add_parser("list", help="every PIX charge (orders and plans), newest first")
    p.add_argument("--status", choices=CHARGE_STATUSES, help="only charges with this status")
    add_json_flag(p)
    p.set_defaults(func=cmd_payments_list)
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
