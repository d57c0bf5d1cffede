"""Sellers' wallets: credits from sales, withdrawals by PIX, and the ledger that is the truth.

The balance is never stored: it is the sum of the user's ledger entries, computed inside the
portal's exclusive unit of work, so concurrent withdrawals see each other's debits and the
balance can never go below zero through one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from astra.domain.errors import InsufficientBalance, InvalidInput, InvalidTransition, NotFoundError
from astra.domain.ids import new_id
from astra.domain.money import check_cents, format_brl
from astra.domain.order import PAID_STATUSES, Order, OrderStatus
from astra.domain.services.audit_log import record
from astra.domain.services.plans import apply_sales_bonus
from astra.domain.timestamps import iso
from astra.domain.wallet import (
    EntryKind,
    LedgerEntry,
    Withdrawal,
    WithdrawalStatus,
    classify_pix_key,
)
from astra.ports.clock import Clock
from astra.ports.store import PortalUnitOfWork, Store

_log = logging.getLogger("astra.wallet")


def _check_posting(
    instance_id: str,
    posting: dict[str, Any],
    order_doc: dict[str, Any] | None,
    owner: str | None,
    uow: Any,
) -> str | None:
    """Why a posting must not reach the ledger, or None when the platform's records back it."""
    if not owner:
        return "instance has no owner in the portal"
    if posting.get("owner_id") != owner:
        return "owner is not the instance's owner"
    if order_doc is None:
        return "no such order in this instance"
    order = Order.from_doc(order_doc)
    amount = posting.get("amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int):
        return "amount is not integer cents"
    pid = str(posting.get("id") or "")
    kind = posting.get("kind")
    if pid == f"sale:{instance_id}:{order.id}" and kind == EntryKind.SALE_CREDIT.value:
        if order.status not in (*PAID_STATUSES, OrderStatus.REFUNDED) or not order.paid_at:
            return "order was never paid"
        if amount != order.net_cents or amount <= 0:
            return "amount is not the order's net"
        return None
    if kind != EntryKind.SALE_REVERSAL.value or amount >= 0:
        return "unknown posting"
    credit = uow.postings.get(f"sale:{instance_id}:{order.id}")
    if credit is None or credit.get("status") == "rejected":
        return "reversal of a sale that was never credited"
    reversals = [
        d for d in uow.postings.find(order_id=order.id)
        if d.get("kind") == EntryKind.SALE_REVERSAL.value and d.get("status") == "posted"
        and d.get("id") != pid
    ]
    if -amount - sum(d["amount_cents"] for d in reversals) > credit["amount_cents"]:
        return "reversal larger than the sale's credit"
    if pid == f"reversal:{instance_id}:{order.id}":
        return None if order.status is OrderStatus.REFUNDED else "order was not refunded"
    if pid.startswith(f"partial-reversal:{instance_id}:{order.id}:"):
        return None if order.refunded_cents > 0 else "order was not partially refunded"
    return "unknown posting"


@dataclass(frozen=True)
class WalletConfig:
    min_withdrawal_cents: int = 1000
    plan_bonus_cents_per_day: int = 0  # a bonus day of plan per this much sold; 0: off


def _balance(uow: PortalUnitOfWork, user_id: str) -> int:
    return sum(e["amount_cents"] for e in uow.ledger.find(user_id=user_id))


class WalletService:
    def __init__(self, store: Store, clock: Clock, config: WalletConfig) -> None:
        self.store = store
        self.clock = clock
        self.config = config

    def settle_postings(self, instance_id: str) -> int:
        """Move the instance's pending postings into the portal ledger. Idempotent: the ledger
        entry's id is the posting's, so a crash between the two commits is repaired by running
        this again. Returns how many entries were written now.

        A posting is believed only as far as the platform's own records back it: the owner is
        the portal's record of the instance's owner, and the amount must be what the order
        itself says (its net for a sale, no more than that back for a reversal). Anything else
        is rejected, audited and logged, and moves no money (see `_check_posting`)."""
        written = 0
        now = self.clock.now()
        with self.store.instance(instance_id) as iuow:
            pending = iuow.postings.find(status="pending")
            if not pending:
                return 0
            orders = {p.get("order_id"): iuow.orders.get(str(p.get("order_id"))) for p in pending}
            with self.store.portal() as puow:
                instance = puow.instances.get(instance_id) or {}
                owner = instance.get("owner_id")
                for p in pending:
                    problem = _check_posting(instance_id, p, orders.get(p.get("order_id")),
                                             owner, iuow)
                    if problem is not None:
                        p["status"] = "rejected"
                        p["rejected_reason"] = problem
                        record(
                            iuow,
                            at=now,
                            actor="system",
                            action="wallet.posting_rejected",
                            target=f"posting:{str(p.get('id'))[:120]}",
                            reason=problem,
                        )
                        _log.error("wallet.posting_rejected instance=%s posting=%s reason=%s",
                                   instance_id, str(p.get("id"))[:120], problem)
                        continue
                    if puow.ledger.get(p["id"]) is None:
                        puow.ledger.add(
                            LedgerEntry(
                                id=p["id"],
                                user_id=owner,
                                kind=EntryKind(p["kind"]),
                                amount_cents=p["amount_cents"],
                                at=p["created_at"],
                                description=str(p.get("description", ""))[:200],
                                instance_id=instance_id,
                                order_id=p.get("order_id"),
                            ).to_doc()
                        )
                        written += 1
                        self._count_for_bonus(puow, owner, p, orders.get(p.get("order_id")),
                                              now)
                    p["status"] = "posted"
                if written:
                    puow.commit()
            for p in pending:
                iuow.postings.put(p)
            iuow.commit()
        return written

    def _count_for_bonus(self, puow: PortalUnitOfWork, owner: str, posting: dict[str, Any],
                         order_doc: dict[str, Any] | None, now: Any) -> None:
        """Bonus days count gross sales (what the buyer paid), net of what went back; in the
        same commit as the ledger entry, so once per sale whatever replays the settlement."""
        if not self.config.plan_bonus_cents_per_day or order_doc is None:
            return
        order = Order.from_doc(order_doc)
        amount = int(posting["amount_cents"])
        if amount > 0:
            gross = order.total_cents
        elif order.net_cents > 0:
            gross = -round(-amount * order.total_cents / order.net_cents)
        else:
            return
        apply_sales_bonus(puow, owner, gross, now, self.config.plan_bonus_cents_per_day)

    def balance(self, user_id: str) -> int:
        with self.store.portal(write=False) as uow:
            return _balance(uow, user_id)

    def balances(self, user_ids: list[str]) -> dict[str, int]:
        """Several users' balances, read at one moment."""
        with self.store.portal(write=False) as uow:
            return {u: _balance(uow, u) for u in dict.fromkeys(user_ids)}

    def ledger(self, user_id: str) -> list[dict[str, Any]]:
        with self.store.portal(write=False) as uow:
            entries = uow.ledger.find(user_id=user_id)
        return sorted(entries, key=lambda e: e["at"], reverse=True)

    def withdrawals(
        self, *, user_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        with self.store.portal(write=False) as uow:
            docs = uow.withdrawals.find(user_id=user_id) if user_id else uow.withdrawals.all()
        if status:
            docs = [d for d in docs if d["status"] == status]
        return sorted(docs, key=lambda d: d["requested_at"], reverse=True)

    def request_withdrawal(self, user_id: str, amount_cents: int, pix_key: str) -> Withdrawal:
        amount = check_cents(amount_cents, "amount_cents")
        if amount < self.config.min_withdrawal_cents:
            raise InvalidInput(
                "min_withdrawal", minimum=format_brl(self.config.min_withdrawal_cents)
            )
        key, key_type = classify_pix_key(pix_key)
        now = self.clock.now()
        with self.store.portal() as uow:
            balance = _balance(uow, user_id)
            if amount > balance:
                raise InsufficientBalance("insufficient_balance", balance=format_brl(balance))
            w = Withdrawal(
                id=new_id("wd"),
                user_id=user_id,
                amount_cents=amount,
                pix_key=key,
                pix_key_type=key_type,
                status=WithdrawalStatus.REQUESTED,
                requested_at=iso(now) or "",
            )
            uow.withdrawals.add(w.to_doc())
            uow.ledger.add(
                LedgerEntry(
                    id=f"withdrawal:{w.id}",
                    user_id=user_id,
                    kind=EntryKind.WITHDRAWAL_DEBIT,
                    amount_cents=-amount,
                    at=w.requested_at,
                    withdrawal_id=w.id,
                    description="Saque solicitado",
                ).to_doc()
            )
            record(
                uow,
                at=now,
                actor=f"user:{user_id}",
                action="withdrawal.requested",
                target=f"withdrawal:{w.id}",
                amount_cents=amount,
                pix_key_type=key_type,
            )
            uow.commit()
        return w

    def _decide(
        self,
        withdrawal_id: str,
        status: WithdrawalStatus,
        *,
        actor: str,
        reason: str = "",
        owner: str | None = None,
    ) -> Withdrawal:
        now = self.clock.now()
        with self.store.portal() as uow:
            doc = uow.withdrawals.get(withdrawal_id)
            if doc is None or (owner is not None and doc["user_id"] != owner):
                raise NotFoundError("saque", withdrawal_id)
            w = Withdrawal.from_doc(doc)
            if w.status is not WithdrawalStatus.REQUESTED:
                raise InvalidTransition("invalid_transition", what="o saque", state=w.status.value)
            if status is WithdrawalStatus.PAID:
                # The request's debit is already in the balance; below zero means refunds or
                # chargebacks came after it, and paying would hand out money the seller owes.
                balance = _balance(uow, w.user_id)
                if balance < 0:
                    raise InsufficientBalance("negative_balance", balance=format_brl(balance))
            w.status = status
            w.decided_at = iso(now)
            w.decided_by = actor
            w.reason = reason.strip()[:500]
            uow.withdrawals.put(w.to_doc())
            if status is not WithdrawalStatus.PAID:
                # Cancelled or rejected: the money was never sent, so the debit is reversed.
                uow.ledger.add(
                    LedgerEntry(
                        id=f"withdrawal-reversal:{w.id}",
                        user_id=w.user_id,
                        kind=EntryKind.WITHDRAWAL_REVERSAL,
                        amount_cents=w.amount_cents,
                        at=w.decided_at or "",
                        withdrawal_id=w.id,
                        description=f"Saque {status.value}",
                    ).to_doc()
                )
            record(
                uow,
                at=now,
                actor=actor,
                action=f"withdrawal.{status.value}",
                target=f"withdrawal:{w.id}",
                amount_cents=w.amount_cents,
                reason=w.reason,
            )
            uow.commit()
        return w

    def cancel_withdrawal(self, user_id: str, withdrawal_id: str) -> Withdrawal:
        return self._decide(
            withdrawal_id, WithdrawalStatus.CANCELLED, actor=f"user:{user_id}", owner=user_id
        )

    def reject_withdrawal(self, withdrawal_id: str, *, actor: str, reason: str) -> Withdrawal:
        if not reason or not reason.strip():
            raise InvalidInput("invalid_field", field="reason")
        return self._decide(withdrawal_id, WithdrawalStatus.REJECTED, actor=actor, reason=reason)

    def complete_withdrawal(self, withdrawal_id: str, *, actor: str) -> Withdrawal:
        return self._decide(withdrawal_id, WithdrawalStatus.PAID, actor=actor)
