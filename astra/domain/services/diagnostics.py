"""Consistency checks over the whole data set, for the admin panel's Diagnóstico.

Each finding has a severity and a hint. The checks read; they never repair: a person decides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from astra.domain.cart import LIVE_STATES
from astra.domain.order import PAID_STATUSES
from astra.domain.timestamps import parse_iso
from astra.ports.clock import Clock
from astra.ports.store import Store, StoreCorrupt

UNDELIVERED_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # error | warning | info
    message: str
    hint: str
    instance_id: str | None = None
    ref: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


class Diagnostics:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def run(self) -> list[Finding]:
        findings: list[Finding] = [
            Finding("files", p.severity, f"{p.path}: {p.message}", p.hint)
            for p in self.store.check()
        ]
        now = self.clock.now()
        credited: dict[str, int] = {}
        for instance_id in self.store.instance_ids():
            try:
                findings += self._instance(instance_id, now, credited)
            except StoreCorrupt as exc:
                findings.append(Finding("files", "error", f"{exc.path}: {exc.problem}",
                                        "restore the file from a backup", instance_id))
        findings += self._wallets(credited)
        return findings

    def _instance(self, instance_id: str, now: datetime,
                  credited: dict[str, int]) -> list[Finding]:
        out: list[Finding] = []
        with self.store.instance(instance_id, write=False) as uow:
            keys = uow.stock.all()
            orders = {o["id"]: o for o in uow.orders.all()}
            carts = {c["id"]: c for c in uow.carts.all()}
            deliveries = {d["id"]: d for d in uow.deliveries.all()}
            products = uow.products.all()
            postings = {p["id"]: p for p in uow.postings.all()}
        owners: dict[str, list[str]] = {}
        for order in orders.values():
            if order["status"] in [s.value for s in PAID_STATUSES] + ["refunded"]:
                for line in order["lines"]:
                    for kid in line.get("key_ids", []):
                        owners.setdefault(kid, []).append(order["id"])
        for kid, ids in owners.items():
            if len(ids) > 1:
                out.append(Finding("keys", "error", f"key {kid} belongs to {len(ids)} orders",
                                   "refund one of the orders; the key was sold twice",
                                   instance_id, kid))
        for key in keys:
            state = key["state"]
            if state == "reserved":
                cart = carts.get(key.get("cart_id") or "")
                if cart is None or cart["state"] not in [s.value for s in LIVE_STATES]:
                    out.append(Finding("reservations", "warning",
                                       f"key {key['id']} is reserved by a cart that ended",
                                       "expire the cart (housekeeping does it on its next "
                                       "pass) or cancel it in Carrinhos", instance_id,
                                       key["id"]))
            elif state == "sold":
                if owners.get(key["id"]) != [key.get("order_id")]:
                    out.append(Finding("keys", "error",
                                       f"sold key {key['id']} is not in exactly its order",
                                       "check the order in Pedidos", instance_id, key["id"]))
            elif key.get("order_id") or key.get("cart_id"):
                out.append(Finding("keys", "error",
                                   f"available key {key['id']} still points at an order or "
                                   "cart", "check the key's history in the audit log",
                                   instance_id, key["id"]))
        for order in orders.values():
            paid_at = parse_iso(order.get("paid_at"))
            if order["status"] == "paid" and paid_at and now - paid_at > UNDELIVERED_AFTER:
                delivery = deliveries.get(order["id"]) or {}
                out.append(Finding("deliveries", "warning",
                                   f"order {order['id']} paid {order['paid_at']} but not "
                                   f"delivered ({delivery.get('status', 'no delivery')}, "
                                   f"{delivery.get('last_error') or 'no error recorded'})",
                                   "redeliver it in Entregas, or deliver by hand",
                                   instance_id, order["id"]))
            if order["status"] in [s.value for s in PAID_STATUSES] + ["refunded"] and \
                    order.get("net_cents", 0) > 0:
                credit = postings.get(f"sale:{instance_id}:{order['id']}")
                if credit is None:
                    out.append(Finding("ledger", "error",
                                       f"paid order {order['id']} has no sale credit",
                                       "the seller was not credited: check the audit log",
                                       instance_id, order["id"]))
                else:
                    credited[credit["owner_id"]] = credited.get(credit["owner_id"], 0) + 1
            if order["status"] == "refunded" and \
                    f"sale:{instance_id}:{order['id']}" in postings and \
                    f"reversal:{instance_id}:{order['id']}" not in postings:
                out.append(Finding("ledger", "error",
                                   f"refunded order {order['id']} kept its sale credit",
                                   "reverse the credit", instance_id, order["id"]))
        for posting in postings.values():
            if posting.get("status") == "pending":
                out.append(Finding("ledger", "info",
                                   f"posting {posting['id']} waits to reach the wallet",
                                   "housekeeping moves it within seconds", instance_id,
                                   posting["id"]))
        for product in products:
            if not product.get("variants"):
                out.append(Finding("catalog", "warning",
                                   f"product {product['id']} has no variant",
                                   "add a variant or remove the product", instance_id,
                                   product["id"]))
        return out

    def _wallets(self, credited: dict[str, int]) -> list[Finding]:
        out = []
        with self.store.portal(write=False) as uow:
            entries = uow.ledger.all()
        balances: dict[str, int] = {}
        for e in entries:
            balances[e["user_id"]] = balances.get(e["user_id"], 0) + e["amount_cents"]
        for user_id, balance in balances.items():
            if balance < 0:
                out.append(Finding("wallets", "error",
                                   f"wallet of {user_id} is negative ({balance} cents)",
                                   "check its withdrawals and reversals", None, user_id))
        return out
