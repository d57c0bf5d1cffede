"""`astra payments`: settle sandbox PIX charges by hand, as Mercado Pago would."""

from __future__ import annotations

import argparse
from typing import Any

from astra.entrypoints.cli.console import EXIT_OK, CliError, container_from


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
