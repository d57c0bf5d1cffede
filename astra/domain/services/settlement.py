"""Money in and out of an order: payment confirmation, refunds and chargebacks, waiting stock.

`confirm_payment` is the one door through which every payment signal (webhook, reconcile loop,
sandbox button, admin) passes, and it is idempotent: a paid order is never paid twice, its keys
never sold twice, its seller never credited twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from astra.domain.buyer import Buyer
from astra.domain.cart import Cart, CartState
from astra.domain.coupon import Coupon
from astra.domain.delivery import Delivery, DeliveryStatus
from astra.domain.errors import InvalidTransition, NotFoundError
from astra.domain.events import DomainEvent
from astra.domain.money import fee_cents
from astra.domain.order import PAID_STATUSES, Order, OrderStatus
from astra.domain.services.audit_log import record
from astra.domain.services.instances import SETTINGS_ID
from astra.domain.services.publishing import EventPublisher
from astra.domain.stock import KeyState
from astra.domain.timestamps import iso
from astra.domain.wallet import EntryKind, Posting
from astra.ports.clock import Clock
from astra.ports.store import InstanceUnitOfWork, Store


@dataclass(frozen=True)
class SettlementConfig:
    platform_fee_bps: int = 600


def _sell(doc: dict[str, Any], order_id: str, now: str) -> dict[str, Any]:
    doc.update(
        state=KeyState.SOLD.value, order_id=order_id, sold_at=now, cart_id=None, reserved_until=None
    )
    return doc


def take_keys(uow: InstanceUnitOfWork, order: Order, now: str) -> int:
    """Sell to `order` the keys its cart still reserves, then available ones for what is missing.
    Returns how many units are still missing (0 when the order is fully served)."""
    missing = 0
    for line in order.lines:
        if line.delivery_kind != "key":
            continue
        have: list[str] = []
        for kid in line.key_ids:
            doc = uow.stock.get(kid)
            if doc is None:
                continue
            if doc["state"] == KeyState.RESERVED.value and doc.get("cart_id") == order.cart_id:
                uow.stock.put(_sell(doc, order.id, now))
                have.append(kid)
            elif doc["state"] == KeyState.SOLD.value and doc.get("order_id") == order.id:
                have.append(kid)
        need = line.quantity - len(have)
        if need > 0:
            for doc in uow.stock.find(variant_id=line.variant_id, state=KeyState.AVAILABLE.value)[
                :need
            ]:
                uow.stock.put(_sell(doc, order.id, now))
                have.append(doc["id"])
        line.key_ids = have
        missing += line.quantity - len(have)
    return missing


def queue_delivery(uow: InstanceUnitOfWork, order: Order, now: str) -> None:
    if uow.deliveries.get(order.id) is None:
        uow.deliveries.add(
            Delivery(
                id=order.id,
                order_id=order.id,
                buyer_id=order.buyer_id,
                status=DeliveryStatus.PENDING,
                created_at=now,
                next_attempt_at=now,
            ).to_doc()
        )


def fill_waiting_orders(uow: InstanceUnitOfWork, now_dt: datetime) -> list[DomainEvent]:
    """Serve `waiting_stock` orders, oldest first, from available keys. Runs in the unit of work
    that adds stock, so waiting buyers are served before any new cart can reserve it."""
    now = iso(now_dt) or ""
    events = []
    waiting = sorted(
        uow.orders.find(status=OrderStatus.WAITING_STOCK.value),
        key=lambda d: d.get("paid_at") or "",
    )
    for doc in waiting:
        order = Order.from_doc(doc)
        if take_keys(uow, order, now) == 0:
            order.status = OrderStatus.PAID
            queue_delivery(uow, order, now)
            record(
                uow,
                at=now_dt,
                actor="system",
                action="order.stock_served",
                target=f"order:{order.id}",
            )
            events.append(
                DomainEvent(
                    "order.paid",
                    uow.instance_id,
                    {"order": order.to_doc(), "buyer_id": order.buyer_id},
                )
            )
        uow.orders.put(order.to_doc())
    return events


class SettlementService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        publisher: EventPublisher,
        config: SettlementConfig,
        wallet: Any | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.publisher = publisher
        self.config = config
        # The wallet service, where this process can reach the portal: credits are posted to the
        # seller's ledger right away instead of waiting for the next settlement pass.
        self.wallet = wallet

    def confirm_payment(
        self,
        instance_id: str,
        order_id: str,
        *,
        amount_cents: int,
        payment_id: str,
        actor: str = "system",
        credit_wallet: bool = True,
    ) -> Order:
        """Mark an order paid. `credit_wallet=False`: no money reached the platform (a seller's
        staff confirmed a payment made to them directly), so the seller's wallet is not
        credited and no fee is taken."""
        now_dt = self.clock.now()
        now = iso(now_dt) or ""
        events: list[DomainEvent] = []
        with self.store.instance(instance_id) as uow:
            doc = uow.orders.get(order_id)
            if doc is None:
                raise NotFoundError("pedido", order_id)
            order = Order.from_doc(doc)
            if order.status in PAID_STATUSES or order.status is OrderStatus.REFUNDED:
                return order  # already settled: a replayed or concurrent signal changes nothing
            if amount_cents < order.total_cents:
                record(
                    uow,
                    at=now_dt,
                    actor=actor,
                    action="payment.underpaid",
                    target=f"order:{order_id}",
                    paid_cents=amount_cents,
                    total_cents=order.total_cents,
                    payment_id=payment_id,
                )
                uow.commit()
                return order
            previous = order.status
            missing = take_keys(uow, order, now)
            order.status = OrderStatus.PAID if missing == 0 else OrderStatus.WAITING_STOCK
            order.paid_at = now
            order.paid_cents = amount_cents
            order.payment_events.append(payment_id)
            order.fee_bps = self.config.platform_fee_bps if credit_wallet else 0
            order.fee_cents = fee_cents(order.total_cents, order.fee_bps)
            order.net_cents = order.total_cents - order.fee_cents if credit_wallet else 0
            if order.coupon_code and not order.coupon_held:
                self._hold_coupon(uow, order)
            cart_doc = uow.carts.get(order.cart_id)
            if cart_doc is not None:
                cart = Cart.from_doc(cart_doc)
                cart.state = CartState.PAID
                cart.closed_at = cart.closed_at or now
                uow.carts.put(cart.to_doc())
            self._count_buyer(uow, order, now)
            settings = uow.settings.get(SETTINGS_ID) or {}
            owner = settings.get("owner_id")
            if owner and order.net_cents > 0:
                # put, not add: a posting rejected earlier under this id (it did not match the
                # order then) must not block the credit the order has now earned.
                uow.postings.put(
                    Posting(
                        id=f"sale:{instance_id}:{order.id}",
                        owner_id=owner,
                        kind=EntryKind.SALE_CREDIT,
                        amount_cents=order.net_cents,
                        order_id=order.id,
                        created_at=now,
                        description=f"Venda {order.id}",
                    ).to_doc()
                )
            if order.status is OrderStatus.PAID:
                queue_delivery(uow, order, now)
            uow.orders.put(order.to_doc())
            record(
                uow,
                at=now_dt,
                actor=actor,
                action="order.paid",
                target=f"order:{order.id}",
                payment_id=payment_id,
                amount_cents=amount_cents,
                previous=str(previous),
                status=str(order.status),
                fee_cents=order.fee_cents,
                net_cents=order.net_cents,
                missing_keys=missing,
            )
            uow.commit()
        events.append(
            DomainEvent(
                "order.paid",
                instance_id,
                {"order": order.to_doc(), "buyer_id": order.buyer_id, "actor": actor},
            )
        )
        self.publisher.publish(instance_id, events)
        if self.wallet is not None:
            self.wallet.settle_postings(instance_id)
        return order

    def refund(
        self,
        instance_id: str,
        order_id: str,
        *,
        kind: str = "refund",
        reason: str = "",
        actor: str = "system",
    ) -> Order:
        """Refund or chargeback of a paid order: the sale credit is reversed in the ledger. Keys
        the buyer has seen stay sold; keys of an order still waiting for stock go back to stock."""
        if kind not in ("refund", "chargeback"):
            raise InvalidTransition("invalid_transition", what="reembolso", state=kind)
        now_dt = self.clock.now()
        now = iso(now_dt) or ""
        with self.store.instance(instance_id) as uow:
            doc = uow.orders.get(order_id)
            if doc is None:
                raise NotFoundError("pedido", order_id)
            order = Order.from_doc(doc)
            if order.status is OrderStatus.REFUNDED:
                return order
            if order.status not in PAID_STATUSES:
                raise InvalidTransition(
                    "invalid_transition", what="o pedido", state=str(order.status)
                )
            returned = 0
            delivery_doc = uow.deliveries.get(order.id)
            if order.status is OrderStatus.WAITING_STOCK:
                # A waiting order is delivered only once whole, so its keys were never shown to
                # the buyer: they can be sold again. A paid order's keys may be on their way to
                # (or in) the buyer's DMs, so they stay sold.
                for line in order.lines:
                    for kid in line.key_ids:
                        key = uow.stock.get(kid)
                        if (
                            key
                            and key["state"] == KeyState.SOLD.value
                            and key.get("order_id") == order.id
                        ):
                            key.update(state=KeyState.AVAILABLE.value, order_id=None, sold_at=None)
                            uow.stock.put(key)
                            returned += 1
                    line.key_ids = []
            if delivery_doc is not None and delivery_doc["status"] in ("pending", "failed"):
                delivery_doc.update(
                    status=DeliveryStatus.CANCELLED.value,
                    lease_until=None,
                    last_error=f"order {kind}",
                )
                uow.deliveries.put(delivery_doc)
            previous = order.status
            order.status = OrderStatus.REFUNDED
            order.refunded_at = now
            order.refund_reason = f"{kind}: {reason}".strip(": ")
            uow.orders.put(order.to_doc())
            credit = uow.postings.get(f"sale:{instance_id}:{order.id}")
            if (
                credit is not None
                and uow.postings.get(f"reversal:{instance_id}:{order.id}") is None
            ):
                uow.postings.add(
                    Posting(
                        id=f"reversal:{instance_id}:{order.id}",
                        owner_id=credit["owner_id"],
                        kind=EntryKind.SALE_REVERSAL,
                        amount_cents=-credit["amount_cents"],
                        order_id=order.id,
                        created_at=now,
                        description=f"{'Estorno' if kind == 'refund' else 'Chargeback'} {order.id}",
                    ).to_doc()
                )
            buyer_doc = uow.buyers.get(order.buyer_id)
            if buyer_doc is not None:
                buyer_doc["total_spent_cents"] = max(
                    0, buyer_doc.get("total_spent_cents", 0) - order.total_cents
                )
                uow.buyers.put(buyer_doc)
            record(
                uow,
                at=now_dt,
                actor=actor,
                action=f"order.{kind}",
                target=f"order:{order.id}",
                previous=str(previous),
                reason=reason,
                keys_returned_to_stock=returned,
            )
            uow.commit()
        self.publisher.publish(
            instance_id,
            [
                DomainEvent(
                    "order.refunded",
                    instance_id,
                    {"order": order.to_doc(), "buyer_id": order.buyer_id, "kind": kind,
                     "amount_cents": order.total_cents - order.refunded_cents},
                )
            ],
        )
        if self.wallet is not None:
            self.wallet.settle_postings(instance_id)
        return order

    def partial_refund(
        self, instance_id: str, order_id: str, refunded_cents: int, *, actor: str = "system"
    ) -> Order:
        """The gateway refunded part of a paid order (`refunded_cents` in total so far). The
        order stays paid; the seller's credit is reduced in proportion, once per new total."""
        now_dt = self.clock.now()
        now = iso(now_dt) or ""
        with self.store.instance(instance_id) as uow:
            order = Order.from_doc(uow.orders.require(order_id))
            if order.status not in PAID_STATUSES or order.total_cents <= 0:
                return order
            refunded = min(refunded_cents, order.total_cents)
            before = order.refunded_cents
            if refunded <= before:
                return order  # this total was already accounted for
            share = (order.net_cents * refunded) // order.total_cents
            share_before = (order.net_cents * before) // order.total_cents
            credit = uow.postings.get(f"sale:{instance_id}:{order.id}")
            if credit is not None and share > share_before:
                uow.postings.add(
                    Posting(
                        id=f"partial-reversal:{instance_id}:{order.id}:{refunded}",
                        owner_id=credit["owner_id"],
                        kind=EntryKind.SALE_REVERSAL,
                        amount_cents=-(share - share_before),
                        order_id=order.id,
                        created_at=now,
                        description=f"Estorno parcial {order.id}",
                    ).to_doc()
                )
            order.refunded_cents = refunded
            uow.orders.put(order.to_doc())
            record(
                uow,
                at=now_dt,
                actor=actor,
                action="order.partially_refunded",
                target=f"order:{order.id}",
                refunded_cents=refunded,
                reversed_cents=share - share_before,
            )
            uow.commit()
        # Told like a whole refund, with its amount: the seller's webhook and staff channel
        # hear of it, and a subscription it bought loses the same share of its days.
        self.publisher.publish(instance_id, [DomainEvent(
            "order.refunded", instance_id,
            {"order": order.to_doc(), "buyer_id": order.buyer_id, "kind": "partial",
             "amount_cents": refunded - before},
        )])
        if self.wallet is not None:
            self.wallet.settle_postings(instance_id)
        return order

    def retry_waiting_stock(self, instance_id: str) -> list[str]:
        """Serve waiting orders from the stock there is now (also run after every import)."""
        with self.store.instance(instance_id) as uow:
            events = fill_waiting_orders(uow, self.clock.now())
            uow.commit()
        self.publisher.publish(instance_id, events)
        return [e.data["order"]["id"] for e in events]

    @staticmethod
    def _hold_coupon(uow: InstanceUnitOfWork, order: Order) -> None:
        doc = uow.coupons.first(code=order.coupon_code)
        if doc is None:
            return
        coupon = Coupon.from_doc(doc)
        coupon.uses += 1
        coupon.redemptions[order.buyer_id] = coupon.redemptions.get(order.buyer_id, 0) + 1
        uow.coupons.put(coupon.to_doc())
        order.coupon_held = True

    @staticmethod
    def _count_buyer(uow: InstanceUnitOfWork, order: Order, now: str) -> None:
        doc = uow.buyers.get(order.buyer_id)
        buyer = (
            Buyer.from_doc(doc)
            if doc
            else Buyer(id=order.buyer_id, discord_id=order.buyer_id, first_seen_at=now)
        )
        buyer.orders_count += 1
        buyer.total_spent_cents += order.total_cents
        buyer.last_order_at = now
        uow.buyers.put(buyer.to_doc())
