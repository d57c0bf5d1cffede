"""Sellers' plans: a one-time trial, then a paid plan bought by PIX through the same gateway.

A paid plan adds its days to whatever time is left (renewing early loses nothing). An instance
runs only while its owner's plan is active; the runtime monitor suspends it when it lapses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from astra.domain.charges import Outcome
from astra.domain.errors import (
    InvalidInput,
    InvalidTransition,
    NotFoundError,
    PaymentUnavailable,
)
from astra.domain.ids import new_id
from astra.domain.money import format_brl
from astra.domain.services.audit_log import record
from astra.domain.timestamps import iso, parse_iso
from astra.ports.clock import Clock
from astra.ports.payments import Charge, ChargeRequest, ChargeStatus, GatewayError, PaymentGateway
from astra.ports.store import Store

PLAN_PAYMENT_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class PlanConfig:
    price_cents: int = 4990
    days: int = 30
    trial_days: int = 7
    payer_email_domain: str = "astra-buyers.com.br"


def plan_state(user: dict[str, Any], now: datetime) -> dict[str, Any]:
    """{"kind": none|trial|paid, "active": bool, "until": iso|None, "days_left": int}."""
    plan = user.get("plan") or {}
    until = parse_iso(plan.get("until"))
    active = until is not None and now < until
    # The one rounding rule (API, pages, admin): whole days rounded up, so a 7-day trial
    # started a minute ago has 7 days left, and one with an hour left has 1.
    days_left = math.ceil((until - now).total_seconds() / 86400) if until and active else 0
    return {
        "kind": plan.get("kind") or "none",
        "active": active,
        "until": plan.get("until"),
        "days_left": days_left,
        "trial_used": bool(user.get("trial_used_at")),
    }


class PlanService:
    def __init__(
        self, store: Store, clock: Clock, gateway: PaymentGateway, config: PlanConfig
    ) -> None:
        self.store = store
        self.clock = clock
        self.gateway = gateway
        self.config = config

    def catalog(self) -> list[dict[str, Any]]:
        plans = [
            {
                "id": "monthly",
                "name": "Plano mensal",
                "price_cents": self.config.price_cents,
                "price": format_brl(self.config.price_cents),
                "days": self.config.days,
            }
        ]
        if self.config.trial_days:
            plans.insert(
                0,
                {
                    "id": "trial",
                    "name": "Teste grátis",
                    "price_cents": 0,
                    "price": format_brl(0),
                    "days": self.config.trial_days,
                },
            )
        return plans

    def status(self, user_id: str) -> dict[str, Any]:
        with self.store.portal(write=False) as uow:
            user = uow.users.get(user_id)
        if user is None:
            raise NotFoundError("usuário", user_id)
        return plan_state(user, self.clock.now())

    def start_trial(self, user_id: str) -> dict[str, Any]:
        if not self.config.trial_days:
            raise InvalidTransition(
                "invalid_transition", what="o teste grátis", state="indisponível"
            )
        now = self.clock.now()
        with self.store.portal() as uow:
            user = uow.users.get(user_id)
            if user is None:
                raise NotFoundError("usuário", user_id)
            if user.get("trial_used_at"):
                raise InvalidTransition("trial_used")
            state = plan_state(user, now)
            base = parse_iso(state["until"]) if state["active"] else now
            assert base is not None
            user["trial_used_at"] = iso(now)
            user["plan"] = {
                "kind": "paid" if state["kind"] == "paid" else "trial",
                "until": iso(base + timedelta(days=self.config.trial_days)),
            }
            uow.users.put(user)
            record(
                uow,
                at=now,
                actor=f"user:{user_id}",
                action="plan.trial_started",
                target=f"user:{user_id}",
                until=user["plan"]["until"],
            )
            uow.commit()
        return plan_state(user, now)

    def checkout(self, user_id: str, plan_id: str = "monthly") -> tuple[dict[str, Any], Charge]:
        """A pending plan transaction with its PIX charge (an open one is reused)."""
        if plan_id != "monthly":
            raise InvalidInput("invalid_field", field="plan")
        now = self.clock.now()
        with self.store.portal() as uow:
            user = uow.users.get(user_id)
            if user is None:
                raise NotFoundError("usuário", user_id)
            open_tx = [
                t
                for t in uow.plan_transactions.find(user_id=user_id)
                if t["status"] == "pending" and parse_iso(t["expires_at"]) > now
            ]
            if open_tx:
                tx = open_tx[0]
            else:
                tx = {
                    "id": new_id("ptx"),
                    "user_id": user_id,
                    "plan_id": plan_id,
                    "amount_cents": self.config.price_cents,
                    "days": self.config.days,
                    "status": "pending",
                    "created_at": iso(now),
                    "expires_at": iso(now + PLAN_PAYMENT_LIFETIME),
                    "charge_id": None,
                    "charge": None,
                    "paid_at": None,
                }
                uow.plan_transactions.add(tx)
                record(
                    uow,
                    at=now,
                    actor=f"user:{user_id}",
                    action="plan.checkout",
                    target=f"plan_tx:{tx['id']}",
                    amount_cents=tx["amount_cents"],
                )
                uow.commit()
        if tx.get("charge") and tx["charge"].get("status") == ChargeStatus.PENDING.value:
            return tx, replace(Charge.from_doc(tx["charge"]), external_reference=tx["id"])
        request = ChargeRequest(
            amount_cents=tx["amount_cents"],
            description=f"Astra - plano {tx['days']} dias",
            payer_email=user.get("email") or f"user-{user_id}@{self.config.payer_email_domain}",
            expires_at=parse_iso(tx["expires_at"]),
            idempotency_key=f"plan-{tx['id']}",
            external_reference=tx["id"],
            created_at=parse_iso(tx["created_at"]),
            metadata={"kind": "plan", "user_id": user_id, "transaction_id": tx["id"]},
        )
        try:
            charge = self.gateway.create_charge(request)
        except GatewayError:
            raise PaymentUnavailable() from None
        with self.store.portal() as uow:
            tx = uow.plan_transactions.require(tx["id"])
            tx["charge_id"] = charge.id
            tx["charge"] = charge.to_doc()
            uow.plan_transactions.put(tx)
            uow.commit()
        return tx, charge

    def apply_charge(self, charge: Charge) -> Outcome:
        """Activate (once) the plan a charge paid for; a refund or chargeback is recorded."""
        tx_id = str(charge.metadata.get("transaction_id") or charge.external_reference)
        now = self.clock.now()
        with self.store.portal() as uow:
            tx = uow.plan_transactions.get(tx_id)
            if tx is None:
                return Outcome("plan", "unknown_transaction", tx_id)
            if charge.status is ChargeStatus.APPROVED and tx["status"] != "paid":
                if charge.amount_cents < tx["amount_cents"]:
                    return Outcome("plan", "underpaid", tx_id)
                user = uow.users.require(tx["user_id"])
                state = plan_state(user, now)
                base = parse_iso(state["until"]) if state["active"] else now
                assert base is not None
                user["plan"] = {"kind": "paid", "until": iso(base + timedelta(days=tx["days"]))}
                tx.update(status="paid", paid_at=iso(now), charge_id=charge.id)
                uow.users.put(user)
                uow.plan_transactions.put(tx)
                record(
                    uow,
                    at=now,
                    actor="gateway",
                    action="plan.paid",
                    target=f"plan_tx:{tx_id}",
                    user_id=tx["user_id"],
                    amount_cents=charge.amount_cents,
                    until=user["plan"]["until"],
                )
                uow.commit()
                return Outcome("plan", "paid", tx_id)
            if (
                charge.status in (ChargeStatus.REFUNDED, ChargeStatus.CHARGED_BACK)
                and tx["status"] == "paid"
            ):
                tx["status"] = charge.status.value
                uow.plan_transactions.put(tx)
                record(
                    uow,
                    at=now,
                    actor="gateway",
                    action=f"plan.{charge.status.value}",
                    target=f"plan_tx:{tx_id}",
                    user_id=tx["user_id"],
                )
                uow.commit()
                return Outcome("plan", charge.status.value, tx_id)
        return Outcome("plan", "noted", tx_id)

    def pending_transactions(self) -> list[dict[str, Any]]:
        with self.store.portal(write=False) as uow:
            return uow.plan_transactions.find(status="pending")
