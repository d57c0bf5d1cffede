"""PIX for carts and plans: creating charges, and turning what the gateway says into sales.

Every signal about a payment — a webhook, the reconcile loop, a sandbox button — ends in
`apply_charge`, which asks nothing of the signal but the charge id: the charge's state is always
read from the gateway with our own credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from astra.domain.charges import Outcome
from astra.domain.errors import NotFoundError, PaymentUnavailable
from astra.domain.events import DomainEvent
from astra.domain.order import PAID_STATUSES, Order, OrderStatus
from astra.domain.services.instances import SETTINGS_ID
from astra.domain.services.sales import SalesService
from astra.domain.services.settlement import SettlementService
from astra.domain.timestamps import parse_iso
from astra.ports.clock import Clock
from astra.ports.payments import (
    Charge,
    ChargeRequest,
    ChargeStatus,
    GatewayError,
    GatewayUnavailable,
    PaymentGateway,
)
from astra.ports.store import InvalidDomain, Store


@dataclass(frozen=True)
class PaymentConfig:
    payer_email_domain: str = "astra-buyers.com.br"


class PaymentService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        gateway: PaymentGateway,
        sales: SalesService,
        settlement: SettlementService,
        config: PaymentConfig,
        plans: Any | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.gateway = gateway
        self.sales = sales
        self.settlement = settlement
        self.config = config
        self.plans = plans
        # Subscriptions renewed by card: a function returning that service (set by the
        # container, and resolved late: that service needs this one).
        self.card_renewals_of: Any | None = None

    def payer_email(self, buyer_id: str) -> str:
        # Mercado Pago requires a payer e-mail; Discord buyers have none to give.
        return f"discord-{buyer_id}@{self.config.payer_email_domain}"

    # -- buyers --------------------------------------------------------------------------------

    def pay_cart(self, instance_id: str, buyer_id: str) -> tuple[Order, Charge | None]:
        """Check the cart out and make (or find) its PIX charge. A free order comes back paid
        with no charge. Gateway trouble raises PaymentUnavailable; the order stays pending and
        pressing "Pagar" again retries with the same idempotency key (never two charges)."""
        order = self.sales.checkout(instance_id, buyer_id)
        if order.status is not OrderStatus.PENDING:
            return order, None
        if order.charge and order.charge.get("status") == ChargeStatus.PENDING.value:
            return order, Charge.from_doc(order.charge)
        with self.store.instance(instance_id, write=False) as uow:
            shop = (uow.settings.get(SETTINGS_ID) or {}).get("name") or instance_id
        created = parse_iso(order.created_at)
        expires = parse_iso(order.expires_at)
        assert created is not None and expires is not None
        request = ChargeRequest(
            amount_cents=order.total_cents,
            description=f"{shop} - pedido {order.id}",
            payer_email=self.payer_email(buyer_id),
            expires_at=expires,
            idempotency_key=f"order-{instance_id}-{order.id}",
            external_reference=order.id,
            created_at=created,
            metadata={
                "kind": "order",
                "instance_id": instance_id,
                "order_id": order.id,
                "buyer_id": buyer_id,
            },
        )
        try:
            charge = self.gateway.create_charge(request)
        except GatewayUnavailable:
            raise PaymentUnavailable() from None
        except GatewayError:
            raise PaymentUnavailable() from None
        order = self.sales.attach_charge(instance_id, order.id, charge.to_doc())
        return order, charge

    # -- every payment signal ends here --------------------------------------------------------

    def handle_notification(self, charge_id: str) -> Outcome:
        topic, _, resource_id = charge_id.rpartition(":")
        if topic:
            # A subscription's card authorisation or recurring charge (Mercado Pago preapproval).
            if self.card_renewals_of is None:
                return Outcome("unknown", "ignored", charge_id)
            return self.card_renewals_of().handle_notification(topic, resource_id)
        charge = self.gateway.get_charge(charge_id)
        if charge is None:
            return Outcome("unknown", "unknown_charge", charge_id)
        return self.apply_charge(charge)

    def apply_charge(self, charge: Charge) -> Outcome:
        kind = str(charge.metadata.get("kind") or "")
        if not kind and charge.external_reference.startswith("ptx_"):
            # A card payment whose preference metadata did not come through: the reference
            # alone names the plan transaction (checked against our record in plans).
            kind = "plan"
        if kind == "order":
            return self._apply_order_charge(charge)
        if kind == "plan" and self.plans is not None:
            return self.plans.apply_charge(charge)
        return Outcome("unknown", "ignored", charge.id)

    def _apply_order_charge(self, charge: Charge) -> Outcome:
        instance_id = str(charge.metadata.get("instance_id") or "")
        order_id = str(charge.metadata.get("order_id") or charge.external_reference)
        try:
            order = self.sales.get_order(instance_id, order_id)
        except (NotFoundError, InvalidDomain):
            return Outcome("order", "unknown_order", order_id)
        status = charge.status
        if status is ChargeStatus.APPROVED:
            # Confirm first (idempotent), then account for a partial refund if there is one.
            self.settlement.confirm_payment(
                instance_id,
                order.id,
                amount_cents=charge.amount_cents,
                payment_id=charge.id,
                actor="gateway",
            )
            if charge.refunded_cents:
                self.settlement.partial_refund(
                    instance_id, order.id, charge.refunded_cents, actor="gateway"
                )
                return Outcome("order", "partially_refunded", order.id)
            return Outcome("order", "paid", order.id)
        if status in (ChargeStatus.REFUNDED, ChargeStatus.CHARGED_BACK):
            if order.status in PAID_STATUSES:
                kind = "chargeback" if status is ChargeStatus.CHARGED_BACK else "refund"
                self.settlement.refund(
                    instance_id,
                    order.id,
                    kind=kind,
                    reason=f"gateway {status.value}",
                    actor="gateway",
                )
                return Outcome("order", "refunded", order.id)
            return Outcome("order", "ignored", order.id)
        self._remember_status(instance_id, order, charge)
        return Outcome("order", "noted", order.id)

    def _remember_status(self, instance_id: str, order: Order, charge: Charge) -> None:
        """Keep the order's copy of the charge status current (pending, rejected, in_mediation,
        cancelled...), for panels and for the buyer's "is it paid?" button."""
        if order.charge is None or order.charge.get("status") == charge.status.value:
            return
        with self.store.instance(instance_id) as uow:
            doc = uow.orders.get(order.id)
            if doc is None or doc.get("charge") is None:
                return
            doc["charge"]["status"] = charge.status.value
            doc["charge"]["status_detail"] = charge.raw_status_detail
            uow.orders.put(doc)
            uow.commit()

    # -- carts that end before payment ---------------------------------------------------------

    def on_event(self, instance_id: str, event: DomainEvent) -> None:
        """Cancel the PIX of an order whose cart was cancelled or expired, so a buyer cannot pay
        a charge for keys that went back to stock. (If one still pays — the gateway was down, or
        the transfer crossed the cancellation — `confirm_payment` serves the order from stock,
        or parks it in waiting_stock: the buyer paid, so the buyer is served, not refunded.)"""
        if event.name not in ("order.cancelled", "order.expired"):
            return
        charge_id = event.data.get("charge_id")
        if not charge_id:
            return
        try:
            self.gateway.cancel_charge(str(charge_id))
        except GatewayError:
            # The reconcile loop sees the charge still pending and tries again.
            pass

    # -- what operators look at -----------------------------------------------------------------

    def list_charges(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every PIX charge the platform made, buyers' orders and sellers' plans, newest first,
        with its status as the platform last knew it (what the order's or plan's own state
        implies once it is settled), optionally only those with `status`."""
        rows: list[dict[str, Any]] = []
        for instance_id in self.store.instance_ids():
            with self.store.instance(instance_id, write=False) as uow:
                docs = [d for d in uow.orders.all() if d.get("charge_id")]
            for doc in docs:
                order = Order.from_doc(doc)
                rows.append({
                    "charge_id": order.charge_id,
                    "status": _known_status((order.charge or {}).get("status"), order.status),
                    "amount_cents": order.total_cents,
                    "kind": "order",
                    "instance_id": instance_id,
                    "ref": order.id,
                    "ref_status": order.status.value,
                    "created_at": order.created_at,
                })
        with self.store.portal(write=False) as uow:
            txs = [t for t in uow.plan_transactions.all() if t.get("charge_id")]
        for tx in txs:
            known = (tx.get("charge") or {}).get("status") or ChargeStatus.PENDING.value
            rows.append({
                "charge_id": tx["charge_id"],
                "status": ChargeStatus.APPROVED.value if tx["status"] == "paid" else known,
                "amount_cents": tx["amount_cents"],
                "kind": "plan",
                "instance_id": "",
                "ref": tx["id"],
                "ref_status": tx["status"],
                "created_at": tx["created_at"],
            })
        if status:
            rows = [r for r in rows if r["status"] == status]
        rows.sort(key=lambda r: (r["created_at"] or "", r["charge_id"]), reverse=True)
        return rows

    # -- the reconcile loop's step -------------------------------------------------------------

    def check_order(
        self, instance_id: str, order: Order, now: datetime, charge: Charge | None = None
    ) -> Outcome:
        """Apply what the gateway says about one order's charge: `charge` as a search just
        returned it, or read again here. Pending charges of orders that ended unpaid get
        cancelled."""
        if not order.charge_id:
            return Outcome("order", "no_charge", order.id)
        if charge is None:
            charge = self.gateway.get_charge(order.charge_id)
        if charge is None:
            return Outcome("order", "unknown_charge", order.id)
        if (
            order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED)
            and charge.status is ChargeStatus.PENDING
        ):
            self.gateway.cancel_charge(charge.id)
            return Outcome("order", "charge_cancelled", order.id)
        return self.apply_charge(charge)


def _known_status(recorded: str | None, order_status: OrderStatus) -> str:
    # An order keeps the charge as it was at checkout (and any status change noted since); its
    # own status says when the money moved after that.
    if order_status in PAID_STATUSES and recorded in (None, "pending", "in_process"):
        return ChargeStatus.APPROVED.value
    if order_status is OrderStatus.REFUNDED and recorded in (None, "pending", "approved"):
        return ChargeStatus.REFUNDED.value
    return recorded or ChargeStatus.PENDING.value


def is_news(order: Order, charge: Charge) -> bool:
    """Whether `charge` says something `order` does not know yet. The reconcile loop sees a
    charge again and again (search windows overlap, paid orders are re-read); only news is
    applied, so a quiet pass writes nothing and counts nothing."""
    status = charge.status
    if status is ChargeStatus.APPROVED:
        if order.status in PAID_STATUSES:
            return charge.refunded_cents > order.refunded_cents
        # Paid late (the cart ended first) is still paid; an order we refunded is not.
        return order.status is not OrderStatus.REFUNDED
    if status in (ChargeStatus.REFUNDED, ChargeStatus.CHARGED_BACK):
        return order.status in PAID_STATUSES
    if status is ChargeStatus.PENDING and order.status in (
        OrderStatus.EXPIRED, OrderStatus.CANCELLED
    ):
        return True  # a charge that outlived its order: cancel it
    return (order.charge or {}).get("status") != status.value
