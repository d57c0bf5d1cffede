"""The operator's numbers: what was sold, what the platform earned, what it owes, how it runs."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from astra.domain.order import PAID_STATUSES
from astra.domain.subscription import monthly_cents
from astra.domain.timestamps import parse_iso
from astra.ports.clock import Clock
from astra.ports.store import Store

PAID = {s.value for s in PAID_STATUSES}


def bucket(when: datetime, period: str) -> str:
    if period == "month":
        return when.strftime("%Y-%m")
    if period == "week":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    return when.strftime("%Y-%m-%d")


class Reporting:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def overview(self, period: str = "day") -> dict[str, Any]:
        if period not in ("day", "week", "month"):
            period = "day"
        gmv = net = fees = mrr = 0
        funnel = Counter()
        orders_by_status: Counter[str] = Counter()
        series: dict[str, dict[str, int]] = defaultdict(lambda: {"gmv_cents": 0, "orders": 0})
        for instance_id in self.store.instance_ids():
            with self.store.instance(instance_id, write=False) as uow:
                carts = uow.carts.count()
                orders = uow.orders.all()
                subscriptions = uow.subscriptions.find(status="active")
            now = self.clock.now()
            for sub in subscriptions:  # recurring revenue: live subscriptions, per 30 days
                end = parse_iso(sub.get("ends_at"))
                if end is not None and end > now:
                    mrr += monthly_cents(int(sub["price_cents"]), int(sub["period_days"]))
            funnel["carts"] += carts
            funnel["orders"] += len(orders)
            for o in orders:
                orders_by_status[o["status"]] += 1
                if o["status"] in PAID or o["status"] == "refunded":
                    funnel["paid"] += 1
                if o["status"] == "delivered":
                    funnel["delivered"] += 1
                if o["status"] in PAID:
                    gmv += o["total_cents"]
                    net += o.get("net_cents", 0)
                    fees += o.get("fee_cents", 0)
                    paid_at = parse_iso(o.get("paid_at"))
                    if paid_at:
                        point = series[bucket(paid_at, period)]
                        point["gmv_cents"] += o["total_cents"]
                        point["orders"] += 1
        with self.store.portal(write=False) as uow:
            ledger = uow.ledger.all()
            withdrawals = uow.withdrawals.all()
            plan_txs = uow.plan_transactions.all()
            instances = uow.instances.all()
            users = uow.users.count()
        balances: Counter[str] = Counter()
        for e in ledger:
            balances[e["user_id"]] += e["amount_cents"]
        statuses = Counter(i.get("status") or "offline" for i in instances)
        return {
            "period": period,
            "gmv_cents": gmv,
            "seller_net_cents": net,
            "platform_fees_cents": fees,
            "mrr_cents": mrr,
            "plan_revenue_cents": sum(t["amount_cents"] for t in plan_txs
                                      if t["status"] == "paid"),
            "wallet_balances_owed_cents": sum(b for b in balances.values() if b > 0),
            "withdrawals_pending_cents": sum(w["amount_cents"] for w in withdrawals
                                             if w["status"] == "requested"),
            "withdrawals_paid_cents": sum(w["amount_cents"] for w in withdrawals
                                          if w["status"] == "paid"),
            "instances": dict(statuses),
            "users": users,
            "orders_by_status": dict(orders_by_status),
            "funnel": {k: funnel[k] for k in ("carts", "orders", "paid", "delivered")},
            "series": [{"bucket": k, **v} for k, v in sorted(series.items())],
            "generated_at": self.clock.now().isoformat(),
        }
