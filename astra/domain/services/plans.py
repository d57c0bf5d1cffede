"""Sellers' plans: a one-time trial, then a paid plan bought by PIX or by card (Mercado Pago
Checkout Pro) through the same gateway, and a bonus day per R$ 20 sold (see `apply_sales_bonus`).

A paid plan adds its days to whatever time is left (renewing early loses nothing). Each plan
allows a number of instances (the trial fewer). An instance runs only while its owner's plan is
active; the runtime monitor suspends it when it lapses.
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
from astra.ports.payments import (
    Charge,
    ChargeRequest,
    ChargeStatus,
    CheckoutLink,
    CheckoutRequest,
    GatewayError,
    PaymentGateway,
)
from astra.ports.store import PortalUnitOfWork, Store

PLAN_PAYMENT_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class PlanConfig:
    price_cents: int = 4990
    days: int = 30
    trial_days: int = 7
    payer_email_domain: str = "astra-buyers.com.br"
    max_instances: int = 3  # instances a paid plan allows
    trial_max_instances: int = 3
    public_url: str = ""  # where Checkout Pro sends the payer back (else the request's origin)


def apply_sales_bonus(
    uow: PortalUnitOfWork,
    user_id: str,
    gross_delta_cents: int,
    now: datetime,
    cents_per_day: int,
) -> int:
    """Count a sale (or, negative, a reversal) towards the owner's bonus days and grant the days
    now due: one per `cents_per_day` sold, net of refunds, never granted twice. Called inside
    the unit of work that posts the sale's ledger entry, which happens once per sale: that is
    what makes a replayed webhook or a second settlement pass count nothing more. As in the
    original, the days extend an active plan; sold while no plan is active, they are lost.
    Returns the days granted now."""
    if cents_per_day <= 0 or not gross_delta_cents:
        return 0
    user = uow.users.get(user_id)
    if user is None:
        return 0
    bonus = dict(user.get("sales_bonus") or {})
    sold = int(bonus.get("sold_cents", 0)) + gross_delta_cents
    granted = int(bonus.get("days_counted", 0))
    due = max(0, sold // cents_per_day - granted)
    bonus.update(sold_cents=sold, days_counted=granted + due)
    state = plan_state(user, now)
    given = 0
    if due and state["active"]:
        until = parse_iso(state["until"])
        assert until is not None
        user["plan"] = {**(user.get("plan") or {}), "until": iso(until + timedelta(days=due))}
        bonus["days_granted"] = int(bonus.get("days_granted", 0)) + due
        given = due
    user["sales_bonus"] = bonus
    uow.users.put(user)
    if given:
        record(uow, at=now, actor="system", action="plan.sales_bonus", target=f"user:{user_id}",
               days=given, sold_cents=sold, until=user["plan"]["until"])
    return given


def reverse_plan_days(user: dict[str, Any], days: int, now: datetime) -> str | None:
    """Take `days` off the user's paid plan (a refunded or charged-back plan payment); the end
    moves back, never before `now`. Returns the new end."""
    plan = dict(user.get("plan") or {})
    until = parse_iso(plan.get("until"))
    if until is None or days <= 0:
        return plan.get("until")
    plan["until"] = iso(max(until - timedelta(days=days), min(until, now)))
    user["plan"] = plan
    return plan["until"]


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
                "max_instances": self.config.max_instances,
                "methods": ["pix", "card"],
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
                    "max_instances": self.config.trial_max_instances,
                    "methods": [],
                },
            )
        return plans

    def instance_cap(self, user_id: str) -> int:
        """How many instances the user's current plan allows (0 when none is active)."""
        state = self.status(user_id)
        if not state["active"]:
            return 0
        if state["kind"] == "trial":
            return self.config.trial_max_instances
        return self.config.max_instances

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
                and t.get("method", "pix") == "pix"
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

    def checkout_card(
        self, user_id: str, plan_id: str = "monthly", *, base_url: str = ""
    ) -> tuple[dict[str, Any], CheckoutLink]:
        """A plan paid by card on Mercado Pago's hosted checkout (Checkout Pro): a pending
        transaction and its preference; the payer is sent to the link's init_point and comes
        back to the portal's plan page. An open card transaction is reused (same preference)."""
        if plan_id != "monthly":
            raise InvalidInput("invalid_field", field="plan")
        now = self.clock.now()
        with self.store.portal() as uow:
            user = uow.users.get(user_id)
            if user is None:
                raise NotFoundError("usuário", user_id)
            open_tx = [
                t for t in uow.plan_transactions.find(user_id=user_id)
                if t["status"] == "pending" and t.get("method") == "card"
                and parse_iso(t["expires_at"]) > now and t.get("checkout")
            ]
            if open_tx:
                tx = open_tx[0]
                link = tx["checkout"]
                return tx, CheckoutLink(link["id"], link["init_point"],
                                        link.get("sandbox_init_point") or "")
            tx = {
                "id": new_id("ptx"),
                "user_id": user_id,
                "plan_id": plan_id,
                "method": "card",
                "amount_cents": self.config.price_cents,
                "days": self.config.days,
                "status": "pending",
                "created_at": iso(now),
                # Card payments can take a while to be approved (review): a day, like a PIX.
                "expires_at": iso(now + timedelta(days=1)),
                "charge_id": None,
                "charge": None,
                "checkout": None,
                "paid_at": None,
            }
            uow.plan_transactions.add(tx)
            record(uow, at=now, actor=f"user:{user_id}", action="plan.checkout",
                   target=f"plan_tx:{tx['id']}", amount_cents=tx["amount_cents"], method="card")
            uow.commit()
        base = (self.config.public_url or base_url).rstrip("/")
        request = CheckoutRequest(
            amount_cents=tx["amount_cents"],
            title=f"Astra - plano {tx['days']} dias",
            payer_email=user.get("email") or f"user-{user_id}@{self.config.payer_email_domain}",
            external_reference=tx["id"],
            idempotency_key=f"plan-card-{tx['id']}",
            return_url=f"{base}/checkout/plan/return",
            created_at=now,
            expires_at=parse_iso(tx["expires_at"]) or now,
            item_id=f"plan-{plan_id}",
            metadata={"kind": "plan", "user_id": user_id, "transaction_id": tx["id"]},
        )
        try:
            link = self.gateway.create_checkout(request)
        except GatewayError:
            raise PaymentUnavailable() from None
        with self.store.portal() as uow:
            tx = uow.plan_transactions.require(tx["id"])
            tx["checkout"] = {"id": link.id, "init_point": link.init_point,
                              "sandbox_init_point": link.sandbox_init_point}
            uow.plan_transactions.put(tx)
            uow.commit()
        return tx, link

    def apply_charge(self, charge: Charge) -> Outcome:
        """Activate (once) the plan a charge paid for; a refund or chargeback is recorded."""
        tx_id = str(charge.metadata.get("transaction_id") or charge.external_reference)
        now = self.clock.now()
        with self.store.portal() as uow:
            tx = uow.plan_transactions.get(tx_id)
            if tx is None:
                return Outcome("plan", "unknown_transaction", tx_id)
            if charge.external_reference not in ("", tx_id) or str(
                charge.metadata.get("user_id") or tx["user_id"]
            ) != tx["user_id"]:
                # Metadata and reference must agree with our own record of what was sold.
                return Outcome("plan", "mismatch", tx_id)
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
                # The money went back: so do the days it bought, once (the transaction leaves
                # "paid" in this same unit of work). Days used up already cannot be returned,
                # so the plan ends no earlier than now; the monitor then suspends its bots.
                user = uow.users.require(tx["user_id"])
                until = reverse_plan_days(user, int(tx.get("days") or 0), now)
                tx.update(status=charge.status.value, reversed_at=iso(now))
                uow.users.put(user)
                uow.plan_transactions.put(tx)
                record(
                    uow,
                    at=now,
                    actor="gateway",
                    action=f"plan.{charge.status.value}",
                    target=f"plan_tx:{tx_id}",
                    user_id=tx["user_id"],
                    days_removed=int(tx.get("days") or 0),
                    until=until,
                )
                uow.commit()
                return Outcome("plan", charge.status.value, tx_id)
        return Outcome("plan", "noted", tx_id)

    def pending_transactions(self) -> list[dict[str, Any]]:
        with self.store.portal(write=False) as uow:
            return uow.plan_transactions.find(status="pending")
