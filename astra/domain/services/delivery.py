"""Delivering paid orders: the outbox worker's steps and staff redelivery.

A delivery is claimed with a lease before any message is sent, so two workers (or a worker and
a staff redelivery) never DM the same order at the same time; the chat calls happen outside the
store's lock, and the result is recorded in a second unit of work.

A process can die between "message sent" and "result recorded". Each line therefore carries an
idempotency key (order, line, redelivery generation) from which the delivery plugin derives
per-message nonces: the retry sends the same nonces and the chat platform drops the duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from astra.domain.catalog import Product
from astra.domain.delivery import Delivery, DeliveryStatus
from astra.domain.errors import InvalidTransition, NotFoundError
from astra.domain.events import DomainEvent
from astra.domain.hooks import DeliveryItem, DeliveryOutcome, HooksProvider, SaleContext
from astra.domain.money import format_brl
from astra.domain.order import PAID_STATUSES, Order, OrderStatus
from astra.domain.services.audit_log import record
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.domain.services.publishing import EventPublisher
from astra.domain.templates import RenderedDM, render_dm
from astra.domain.timestamps import iso, parse_iso
from astra.ports.clock import Clock
from astra.ports.secrets import InstanceVault
from astra.ports.store import Store

LEASE = timedelta(minutes=2)
# Who holds a lease when the caller does not say (a bot's worker names itself).
DEFAULT_HOLDER = "portal"


def delivery_kind_of(order: Order, delivery: Delivery) -> str:
    """`staff` when people made this delivery happen (a payment confirmed by hand, a
    redelivery staff asked for), else `sale`: which DM template the buyer gets."""
    manual = any(str(p).startswith("manual:") for p in order.payment_events)
    return "staff" if manual or delivery.generation > 0 else "sale"


def render_message(
    product: Product,
    order: Order,
    line_index: int,
    keys: list[str],
    settings: dict[str, Any],
    kind: str = "sale",
) -> RenderedDM:
    line = order.lines[line_index]
    language = settings.get("language") or "pt-BR"
    keys_text = "\n".join(f"`{k}`" for k in keys) if keys else product.content
    values = {
        "product": line.product_name,
        "variant": line.variant_name,
        "quantity": str(line.quantity),
        "keys": keys_text,
        "order": order.id,
        "amount": format_brl(order.total_cents),
        "buyer": f"<@{order.buyer_id}>",
        "instance": str(settings.get("name") or ""),
        "date": (order.paid_at or "")[:10],
    }
    body = product.staff_dm_template if kind == "staff" else product.dm_template
    return render_dm(
        kind,
        values,
        language=language,
        settings=settings,
        product_body=body,
        product_color=product.color,
    )


class DeliveryService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        hooks: HooksProvider,
        publisher: EventPublisher,
        vaults: Callable[[str], InstanceVault],
    ) -> None:
        self.store = store
        self.clock = clock
        self.hooks = hooks
        self.publisher = publisher
        self.vaults = vaults

    def due(self, instance_id: str) -> list[str]:
        """Orders whose delivery should be attempted now."""
        now = self.clock.now()
        with self.store.instance(instance_id, write=False) as uow:
            docs = uow.deliveries.find(status=DeliveryStatus.PENDING.value)
        out = []
        for d in docs:
            at = parse_iso(d.get("next_attempt_at"))
            lease = parse_iso(d.get("lease_until"))
            if (at is None or at <= now) and (lease is None or lease <= now):
                out.append(d["order_id"])
        return out

    def queue_depth(self, instance_id: str) -> int:
        with self.store.instance(instance_id, write=False) as uow:
            return uow.deliveries.count(status=DeliveryStatus.PENDING.value)

    def _claim(self, instance_id: str, order_id: str, now: datetime, holder: str):
        with self.store.instance(instance_id) as uow:
            doc = uow.deliveries.get(order_id)
            if doc is None:
                return None
            delivery = Delivery.from_doc(doc)
            lease = parse_iso(delivery.lease_until)
            if delivery.status is not DeliveryStatus.PENDING or (lease and lease > now):
                return None
            delivery.lease_until = iso(now + LEASE)
            delivery.lease_holder = holder
            uow.deliveries.put(delivery.to_doc())
            order = Order.from_doc(uow.orders.require(order_id))
            products = {
                ln.product_id: Product.from_doc(uow.products.require(ln.product_id))
                for ln in order.lines
            }
            keys = {
                i: [uow.stock.require(k) for k in ln.key_ids] for i, ln in enumerate(order.lines)
            }
            settings = settings_of(uow.settings.get(SETTINGS_ID))
            cart = uow.carts.get(order.cart_id) or {}
            uow.commit()
        return delivery, order, products, keys, settings, cart.get("channel_id")

    async def deliver(
        self,
        instance_id: str,
        order_id: str,
        services: dict[str, Any],
        *,
        holder: str = DEFAULT_HOLDER,
    ) -> Delivery | None:
        """One attempt at delivering an order through the delivery plugins. Returns the updated
        record, or None when another worker holds it or there is nothing to do. `holder` names
        the caller in the lease (see release_leases)."""
        now = self.clock.now()
        claimed = self._claim(instance_id, order_id, now, holder)
        if claimed is None:
            return None
        delivery, order, products, key_docs, settings, cart_channel = claimed
        hooks = self.hooks.for_instance(instance_id)
        vault = self.vaults(instance_id)
        ctx = SaleContext(
            instance_id=instance_id,
            buyer_id=order.buyer_id,
            now=now,
            language=settings.get("language") or "pt-BR",
            settings=settings,
        )
        call_services = {**services, "cart_channel_id": cart_channel}
        outcomes: dict[int, DeliveryOutcome] = {}
        kind = delivery_kind_of(order, delivery)
        for index, line in enumerate(order.lines):
            if index in delivery.delivered_lines:
                continue
            keys = [vault.decrypt(d["secret"], context=d["fingerprint"]) for d in key_docs[index]]
            product = products[line.product_id]
            rendered = render_message(product, order, index, keys, settings, kind)
            item = DeliveryItem(
                order=order,
                line=line,
                product=product,
                keys=keys,
                message=rendered.text,
                embed=rendered.embed,
                idempotency_key=f"{instance_id}:{order.id}:{index}:{delivery.generation}",
            )
            outcome = await hooks.deliver(ctx, item, call_services)
            outcomes[index] = outcome or DeliveryOutcome(
                ok=False, error=f"no enabled plugin delivers '{line.delivery_kind}'", retryable=True
            )
        return self._record(instance_id, order_id, outcomes)

    def _record(
        self, instance_id: str, order_id: str, outcomes: dict[int, DeliveryOutcome]
    ) -> Delivery:
        now = self.clock.now()
        stamp = iso(now)
        events = []
        with self.store.instance(instance_id) as uow:
            delivery = Delivery.from_doc(uow.deliveries.require(order_id))
            order = Order.from_doc(uow.orders.require(order_id))
            failures = {i: o for i, o in outcomes.items() if not o.ok}
            for i, o in outcomes.items():
                if o.ok and i not in delivery.delivered_lines:
                    delivery.delivered_lines.append(i)
            delivery.attempts.append(
                {
                    "at": stamp,
                    "ok": not failures,
                    "channels": sorted({o.channel for o in outcomes.values() if o.ok}),
                    "error": "; ".join(o.error or "" for o in failures.values()) or None,
                }
            )
            delivery.lease_until = None
            delivery.lease_holder = None
            if delivery.status is DeliveryStatus.CANCELLED:
                pass  # refunded while we were sending: keep it cancelled
            elif not failures:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = stamp
                delivery.channel = ",".join(sorted({o.channel for o in outcomes.values()}))
                delivery.last_error = None
                delivery.next_attempt_at = None
                if order.status is OrderStatus.PAID:
                    order.status = OrderStatus.DELIVERED
                    order.delivered_at = stamp
                    uow.orders.put(order.to_doc())
                events.append(
                    DomainEvent(
                        "order.delivered",
                        instance_id,
                        {
                            "order": order.to_doc(),
                            "buyer_id": order.buyer_id,
                            "channel": delivery.channel,
                        },
                    )
                )
            else:
                delivery.last_error = delivery.attempts[-1]["error"]
                retryable = all(o.retryable for o in failures.values())
                nxt = delivery.next_retry(now) if retryable else None
                if nxt is None:
                    delivery.status = DeliveryStatus.FAILED
                    delivery.next_attempt_at = None
                else:
                    delivery.next_attempt_at = iso(nxt)
                events.append(
                    DomainEvent(
                        "delivery.failed",
                        instance_id,
                        {
                            "order": order.to_doc(),
                            "buyer_id": order.buyer_id,
                            "attempt": len(delivery.attempts),
                            "error": delivery.last_error,
                            "final": delivery.status is DeliveryStatus.FAILED,
                            "next_attempt_at": delivery.next_attempt_at,
                        },
                    )
                )
            uow.deliveries.put(delivery.to_doc())
            record(
                uow,
                at=now,
                actor="system",
                action=f"delivery.{delivery.status.value}",
                target=f"order:{order_id}",
                attempt=len(delivery.attempts),
                error=delivery.last_error,
            )
            uow.commit()
        self.publisher.publish(instance_id, events)
        return delivery

    def redeliver(self, instance_id: str, order_id: str, *, actor: str) -> Delivery:
        """Staff asks for the order to be delivered again now (all lines)."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            doc = uow.orders.get(order_id)
            if doc is None:
                raise NotFoundError("pedido", order_id)
            order = Order.from_doc(doc)
            if order.status not in PAID_STATUSES or order.status is OrderStatus.WAITING_STOCK:
                raise InvalidTransition(
                    "invalid_transition", what="o pedido", state=order.status.value
                )
            existing = uow.deliveries.get(order_id)
            delivery = (
                Delivery.from_doc(existing)
                if existing
                else Delivery(
                    id=order_id,
                    order_id=order_id,
                    buyer_id=order.buyer_id,
                    status=DeliveryStatus.PENDING,
                    created_at=iso(now) or "",
                )
            )
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = iso(now)
            delivery.delivered_lines = []
            delivery.lease_until = None
            delivery.lease_holder = None
            delivery.retry_from = len(delivery.attempts)
            delivery.generation += 1
            uow.deliveries.put(delivery.to_doc())
            record(
                uow,
                at=now,
                actor=actor,
                action="delivery.redeliver_requested",
                target=f"order:{order_id}",
            )
            uow.commit()
        return delivery

    def release_leases(self, instance_id: str, keep_holder: str) -> list[str]:
        """Free the leases of pending deliveries held by anyone but `keep_holder`; returns their
        order ids (due again now).

        For a bot starting up: its instance has no other bot, so a lease it does not hold was
        left by a process that died mid-delivery, and waiting for it to expire would hold the
        buyer's keys back for minutes. Should the holder be alive after all, the second send
        reuses the same message nonces and the chat platform drops it."""
        now = self.clock.now()
        released: list[str] = []
        with self.store.instance(instance_id) as uow:
            for doc in uow.deliveries.find(status=DeliveryStatus.PENDING.value):
                delivery = Delivery.from_doc(doc)
                if delivery.lease_until is None or delivery.lease_holder == keep_holder:
                    continue
                record(
                    uow,
                    at=now,
                    actor="system",
                    action="delivery.lease_released",
                    target=f"order:{delivery.order_id}",
                    holder=delivery.lease_holder,
                    by=keep_holder,
                )
                delivery.lease_until = None
                delivery.lease_holder = None
                uow.deliveries.put(delivery.to_doc())
                released.append(delivery.order_id)
            if released:
                uow.commit()
        return released

    # -- after a delivery ------------------------------------------------------------------------

    def purchases_of(
        self, instance_id: str, buyer_id: str, *, limit: int = 10
    ) -> list[dict[str, Any]]:
        """The buyer's delivered orders, newest first, with what was delivered in clear: for
        the buyer alone (`/minhas-compras`), who may have lost a DM or a closed channel.
        [{order_id, delivered_at, lines: [{product, variant, quantity, keys, content}]}]"""
        with self.store.instance(instance_id, write=False) as uow:
            orders = [
                Order.from_doc(d)
                for d in uow.orders.find(buyer_id=buyer_id)
                if d["status"] == OrderStatus.DELIVERED.value
            ]
            orders.sort(key=lambda o: o.delivered_at or "", reverse=True)
            orders = orders[:limit]
            key_docs = {
                o.id: [[uow.stock.require(k) for k in ln.key_ids] for ln in o.lines]
                for o in orders
            }
            contents = {
                ln.product_id: (uow.products.get(ln.product_id) or {}).get("content") or ""
                for o in orders
                for ln in o.lines
            }
        vault = self.vaults(instance_id)
        out = []
        for order in orders:
            lines = []
            for index, line in enumerate(order.lines):
                keys = [
                    vault.decrypt(d["secret"], context=d["fingerprint"])
                    for d in key_docs[order.id][index]
                ]
                lines.append(
                    {
                        "product": line.product_name,
                        "variant": line.variant_name,
                        "quantity": line.quantity,
                        "keys": keys,
                        # text deliveries: what the product delivers to everyone who buys it
                        "content": "" if keys else contents.get(line.product_id, ""),
                    }
                )
            out.append({"order_id": order.id, "delivered_at": order.delivered_at, "lines": lines})
        return out

    def acknowledge(self, instance_id: str, order_id: str, buyer_id: str) -> bool:
        """The buyer says they have the keys delivered in their cart channel: the channel may
        close now instead of waiting for its time. Only the order's own buyer can say so."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            doc = uow.orders.get(order_id)
            if doc is None or doc["buyer_id"] != buyer_id:
                raise NotFoundError("pedido", order_id)
            cart = uow.carts.get(doc["cart_id"])
            if cart is None or cart.get("received_at"):
                return False
            cart["received_at"] = iso(now)
            uow.carts.put(cart)
            record(uow, at=now, actor=f"buyer:{buyer_id}", action="delivery.received",
                   target=f"order:{order_id}")
            uow.commit()
        return True

    def channel_keep_until(
        self, instance_id: str, cart: dict[str, Any], order_id: str | None
    ) -> datetime | None:
        """Until when a paid cart's channel must stay open: a delivery made in it stays
        readable for the instance's `delivery_channel_keep_days`, unless the buyer pressed
        "Recebi". None: nothing in it needs keeping."""
        if not order_id or cart.get("received_at"):
            return None
        with self.store.instance(instance_id, write=False) as uow:
            delivery = uow.deliveries.get(order_id)
            settings = settings_of(uow.settings.get(SETTINGS_ID))
        if delivery is None or "cart_channel" not in (delivery.get("channel") or "").split(","):
            return None
        delivered = parse_iso(delivery.get("delivered_at"))
        if delivered is None:
            return None
        return delivered + timedelta(days=int(settings.get("delivery_channel_keep_days") or 7))
