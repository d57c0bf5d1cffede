"""Subscriptions over time: periods bought, taken back, ended; the work the keeper owes Discord.

The platform is the only writer. A period is recorded by the delivery of its paid order (the
delivery outbox retries until it is, so a crash never loses one) and is keyed by order and line,
so a redelivery never adds it twice. The end of a subscription is decided here, from the Clock
port; the keeper (`entrypoints/subscription_keeper.py`) then takes the roles off over Discord
REST and records that it did, so an end missed while anything was down is caught by the next
pass. Nothing a tenant runtime sends can move an end date: the internal API offers a buyer's
list, a renewal cart (which must be paid), a card cancellation and "this member joined" (which
re-grants only what the records say is paid).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from astra.domain.catalog import DeliveryKind, Product
from astra.domain.errors import InvalidInput, InvalidTransition, NotFoundError
from astra.domain.events import DomainEvent
from astra.domain.order import PAID_STATUSES, Order, OrderStatus
from astra.domain.services.audit_log import record
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.domain.services.publishing import EventPublisher
from astra.domain.subscription import (
    DEFAULT_REMINDER_DAYS,
    PeriodKind,
    Subscription,
    SubscriptionStatus,
    monthly_cents,
    roles_still_granted,
    subscription_id,
)
from astra.domain.timestamps import iso, parse_iso
from astra.ports.clock import Clock
from astra.ports.store import InstanceUnitOfWork, Store

MAX_STAFF_DAYS = 3650


@dataclass
class KeeperWork:
    """What the keeper owes Discord for one instance right now."""

    ending: list[Subscription] = field(default_factory=list)  # live until now, past their end
    revoke: list[Subscription] = field(default_factory=list)  # ended, roles still on
    grant: list[Subscription] = field(default_factory=list)  # live, roles owed
    notices: list[Subscription] = field(default_factory=list)  # ended, last DM owed
    reminders: list[tuple[Subscription, int]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    next_due: datetime | None = None  # the earliest end or reminder still ahead
    next_end: datetime | None = None  # the earliest end still ahead (DMs yield to it)

    def __bool__(self) -> bool:
        return bool(self.ending or self.revoke or self.grant or self.notices or self.reminders)


def reminder_days(settings: dict[str, Any]) -> list[int]:
    days = settings.get("subscription_reminder_days")
    return list(DEFAULT_REMINDER_DAYS) if days is None else [int(d) for d in days]


def _subs(uow: InstanceUnitOfWork, **equals: Any) -> list[Subscription]:
    docs = uow.subscriptions.find(**equals) if equals else uow.subscriptions.all()
    return [Subscription.from_doc(d) for d in docs]


class SubscriptionService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        publisher: EventPublisher,
        sales: Any | None = None,
        payments: Any | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.publisher = publisher
        # A renewal from the DM button is a cart checked out straight to its PIX.
        self.sales = sales
        self.payments = payments

    # -- periods -------------------------------------------------------------------------------

    def activate(self, instance_id: str, order_id: str) -> list[Subscription]:
        """Record the periods a paid order bought (once per order line, whatever the number of
        delivery attempts). Returns the order's subscriptions as they are now."""
        now = self.clock.now()
        events: list[DomainEvent] = []
        out: list[Subscription] = []
        with self.store.instance(instance_id) as uow:
            order = Order.from_doc(uow.orders.require(order_id))
            if order.status not in PAID_STATUSES:
                return []
            changed = False
            for index, line in enumerate(order.lines):
                if line.delivery_kind != DeliveryKind.SUBSCRIPTION.value:
                    continue
                product = Product.from_doc(uow.products.require(line.product_id))
                variant = product.variant(line.variant_id)
                days = (variant.period_days if variant else 0) or 0
                sid = subscription_id(product.id, order.buyer_id)
                doc = uow.subscriptions.get(sid)
                if doc is None:
                    sub = Subscription(
                        id=sid,
                        buyer_id=order.buyer_id,
                        product_id=product.id,
                        variant_id=line.variant_id,
                        product_name=line.product_name,
                        variant_name=line.variant_name,
                        role_ids=product.content.split(),
                        period_days=days,
                        price_cents=line.unit_price_cents,
                        status=SubscriptionStatus.ENDED,
                        started_at=iso(now) or "",
                        ends_at=iso(now) or "",
                        created_at=iso(now) or "",
                    )
                else:
                    sub = Subscription.from_doc(doc)
                if sub.has_period(order.id, index):
                    out.append(sub)
                    continue
                was_live = sub.live(now)
                # The variant bought last is the one a renewal offers, at its current roles.
                sub.variant_id, sub.variant_name = line.variant_id, line.variant_name
                sub.period_days, sub.price_cents = days, line.unit_price_cents
                sub.role_ids = product.content.split()
                share = order.total_cents * line.total_cents // max(1, order.subtotal_cents)
                start, end = sub.add_period(
                    order_id=order.id,
                    line=index,
                    kind=PeriodKind.RENEWAL if was_live else PeriodKind.PURCHASE,
                    days=days * line.quantity,
                    cents=share,
                    now=now,
                )
                uow.subscriptions.put(sub.to_doc())
                record(
                    uow, at=now, actor="system",
                    action="subscription.renewed" if was_live else "subscription.started",
                    target=f"subscription:{sub.id}", order_id=order.id,
                    start=iso(start), end=iso(end),
                )
                events.append(self._event("renewed" if was_live else "started", instance_id, sub))
                changed = True
                out.append(sub)
            if changed:
                uow.commit()
        self.publisher.publish(instance_id, events)
        return out

    def take_back(self, instance_id: str, order_id: str, reason: str, *,
                  refunded_cents: int | None = None) -> list[Subscription]:
        """A refund or chargeback of `order_id`: the days it bought and did not yet use are
        taken back; a subscription left with no time ends now (its roles go on the next pass).
        With `refunded_cents` (a partial refund, that much of the order in all so far), each
        period loses the same share of its days instead (see `Subscription.take_back_share`)."""
        now = self.clock.now()
        events: list[DomainEvent] = []
        changed: list[Subscription] = []
        with self.store.instance(instance_id) as uow:
            order_doc = uow.orders.get(order_id)
            if order_doc is None:
                return []
            share = None if refunded_cents is None else (
                refunded_cents, int(order_doc.get("total_cents") or 0))
            for sub in _subs(uow, buyer_id=order_doc["buyer_id"]):
                if self._take_back_in(uow, sub, order_id, reason, now, events, share=share):
                    changed.append(sub)
            if changed:
                uow.commit()
        self.publisher.publish(instance_id, events)
        return changed

    def take_back_period(self, instance_id: str, sub_id: str, key: str, reason: str) -> bool:
        """The same for one subscription's period keyed `key` (a card payment: "card:<id>")."""
        now = self.clock.now()
        events: list[DomainEvent] = []
        with self.store.instance(instance_id) as uow:
            doc = uow.subscriptions.get(sub_id)
            if doc is None:
                return False
            if not self._take_back_in(uow, Subscription.from_doc(doc), key, reason, now, events):
                return False
            uow.commit()
        self.publisher.publish(instance_id, events)
        return True

    def _take_back_in(self, uow: InstanceUnitOfWork, sub: Subscription, key: str, reason: str,
                      now: datetime, events: list[DomainEvent],
                      share: tuple[int, int] | None = None) -> bool:
        if not any(p["order_id"] == key and not p.get("taken_back_at") for p in sub.periods):
            return False
        was_live = sub.live(now)
        if share is None:
            taken = sub.take_back(key, now)
        else:
            taken = sub.take_back_share(key, share[0], share[1], now)
            if not taken:
                return False
        if was_live and sub.end() <= now:
            sub.close(now, reason)
            events.append(self._event("ended", uow.instance_id, sub))
        uow.subscriptions.put(sub.to_doc())
        record(uow, at=now, actor="system", action="subscription.taken_back",
               target=f"subscription:{sub.id}", order_id=key, reason=reason,
               seconds=int(taken.total_seconds()), ends_at=sub.ends_at)
        return True

    def on_event(self, instance_id: str, event: DomainEvent) -> None:
        """A publisher subscriber: a refunded order takes its days back at once. (The keeper's
        pass checks refunded orders too, should this process stop before it ran.)"""
        if event.name != "order.refunded":
            return
        order = event.data.get("order") or {}
        if any(ln.get("delivery_kind") == DeliveryKind.SUBSCRIPTION.value
               for ln in order.get("lines") or []):
            kind = str(event.data.get("kind") or "refund")
            self.take_back(instance_id, str(order.get("id")), kind,
                           refunded_cents=order.get("refunded_cents") if kind == "partial"
                           else None)

    # -- the keeper's work ---------------------------------------------------------------------

    def work(self, instance_id: str) -> KeeperWork:
        now = self.clock.now()
        with self.store.instance(instance_id, write=False) as uow:
            subs = _subs(uow)
            settings = settings_of(uow.settings.get(SETTINGS_ID))
            refunded = {
                p["order_id"]
                for s in subs
                for p in s.periods
                if not p.get("taken_back_at")
                and (uow.orders.get(p["order_id"]) or {}).get("status")
                == OrderStatus.REFUNDED.value
            }
        work = KeeperWork(settings=settings)
        days = reminder_days(settings)
        for order_id in refunded:
            # A refund whose event was lost (the process stopped right after it).
            self.take_back(instance_id, order_id, "refund")
        if refunded:
            return self.work(instance_id)
        for sub in subs:
            if sub.status is SubscriptionStatus.ACTIVE:
                if sub.end() <= now:
                    work.ending.append(sub)
                    continue
                if not sub.roles_granted:
                    work.grant.append(sub)
                reminder = None if sub.card_active() else sub.due_reminder(now, days)
                if reminder is not None:
                    work.reminders.append((sub, reminder))
                if work.next_end is None or sub.end() < work.next_end:
                    work.next_end = sub.end()
                for at in [sub.end(), *(sub.end() - timedelta(days=d) for d in days)]:
                    if at > now and (work.next_due is None or at < work.next_due):
                        work.next_due = at
            elif not sub.roles_revoked:
                work.revoke.append(sub)
            elif not sub.ended_notice_sent:
                work.notices.append(sub)
        return work

    def close_expired_many(
        self, instance_id: str, sub_ids: list[str]
    ) -> list[tuple[Subscription, list[str]]]:
        """End the subscriptions of `sub_ids` whose time is up, in one commit. Returns each with
        the roles to take off (those no other live subscription of the buyer grants); one
        renewed meanwhile is left out."""
        now = self.clock.now()
        closed: list[Subscription] = []
        with self.store.instance(instance_id) as uow:
            for sub_id in sub_ids:
                doc = uow.subscriptions.get(sub_id)
                if doc is None:
                    continue
                sub = Subscription.from_doc(doc)
                if sub.status is not SubscriptionStatus.ACTIVE or sub.live(now):
                    continue
                sub.close(now, "expired")
                uow.subscriptions.put(sub.to_doc())
                record(uow, at=now, actor="system", action="subscription.ended",
                       target=f"subscription:{sub.id}", reason="expired", ends_at=sub.ends_at)
                closed.append(sub)
            out = []
            for sub in closed:
                keep = roles_still_granted(_subs(uow, buyer_id=sub.buyer_id), sub.buyer_id, now,
                                           excluding=sub.id)
                out.append((sub, [r for r in sub.role_ids if r not in keep]))
            if closed:
                uow.commit()
        self.publisher.publish(instance_id, [self._event("ended", instance_id, s) for s in closed])
        return out

    def roles_to_revoke(self, instance_id: str, sub: Subscription) -> list[str]:
        now = self.clock.now()
        with self.store.instance(instance_id, write=False) as uow:
            keep = roles_still_granted(_subs(uow, buyer_id=sub.buyer_id), sub.buyer_id, now,
                                       excluding=sub.id)
        return [r for r in sub.role_ids if r not in keep]

    def _update(self, instance_id: str, sub_id: str, change: Any, **audit: Any) -> None:
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            doc = uow.subscriptions.get(sub_id)
            if doc is None:
                return
            sub = Subscription.from_doc(doc)
            if change(sub, now) is False:
                return
            sub.updated_at = iso(now)
            uow.subscriptions.put(sub.to_doc())
            if audit:
                record(uow, at=now, actor="system", target=f"subscription:{sub_id}", **audit)
            uow.commit()

    def record_revoked_many(
        self, instance_id: str, results: list[tuple[str, str | None]]
    ) -> None:
        """What the keeper did about ended subscriptions' roles: None (off), "retry" (Discord
        failed for now: the next pass tries again), or why it gave up (missing permission)."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            changed = False
            for sub_id, error in results:
                doc = uow.subscriptions.get(sub_id)
                if doc is None or error == "retry":
                    continue
                sub = Subscription.from_doc(doc)
                # A live subscription of the buyer with one of these roles (this one bought
                # again meanwhile, or another one) may have been granted just before the
                # removal reached Discord: it is owed its roles again (granting is idempotent).
                for other in _subs(uow, buyer_id=sub.buyer_id):
                    if other.live(now) and set(other.role_ids) & set(sub.role_ids) \
                            and other.roles_granted:
                        other.roles_granted = False
                        uow.subscriptions.put(other.to_doc())
                        changed = True
                if sub.status is not SubscriptionStatus.ENDED:
                    continue  # bought again meanwhile: its roles stay
                sub = Subscription.from_doc(uow.subscriptions.require(sub_id))
                sub.roles_revoked, sub.roles_granted, sub.last_error = True, False, error
                sub.updated_at = iso(now)
                uow.subscriptions.put(sub.to_doc())
                if error:
                    record(uow, at=now, actor="system", action="subscription.revoke_failed",
                           target=f"subscription:{sub_id}", error=error)
                changed = True
            if changed:
                uow.commit()

    def record_granted(self, instance_id: str, sub_id: str, error: str | None = None) -> None:
        def change(sub: Subscription, now: datetime) -> bool:
            if not sub.live(now):
                return False
            sub.roles_granted, sub.last_error = True, error
            return True

        self._update(instance_id, sub_id, change)

    def record_reminded(self, instance_id: str, sub_id: str, days: int, ends_at: str) -> None:
        def change(sub: Subscription, now: datetime) -> bool:
            if sub.ends_at != ends_at:
                return False  # renewed while the DM was on its way: the new end has its own
            sub.mark_reminded(days, reminder_days(settings))
            return True

        with self.store.instance(instance_id, write=False) as uow:
            settings = settings_of(uow.settings.get(SETTINGS_ID))
        self._update(instance_id, sub_id, change)

    def record_notices(self, instance_id: str, sub_ids: list[str]) -> None:
        """The last DM after the end was sent to each of `sub_ids` (one commit for all)."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            changed = False
            for sub_id in sub_ids:
                doc = uow.subscriptions.get(sub_id)
                if doc is None or doc["status"] != SubscriptionStatus.ENDED.value:
                    continue
                doc["ended_notice_sent"], doc["updated_at"] = True, iso(now)
                uow.subscriptions.put(doc)
                changed = True
            if changed:
                uow.commit()

    # -- buyers --------------------------------------------------------------------------------

    def of_buyer(self, instance_id: str, buyer_id: str) -> list[Subscription]:
        with self.store.instance(instance_id, write=False) as uow:
            subs = _subs(uow, buyer_id=buyer_id)
        return sorted(subs, key=lambda s: (s.status is not SubscriptionStatus.ACTIVE, s.ends_at))

    def get(self, instance_id: str, sub_id: str, *, buyer_id: str | None = None) -> Subscription:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.subscriptions.get(sub_id)
        if doc is None or (buyer_id is not None and doc["buyer_id"] != buyer_id):
            raise NotFoundError("assinatura", sub_id)
        return Subscription.from_doc(doc)

    def member_joined(self, instance_id: str, member_id: str) -> int:
        """A member (re)joined the guild: the roles of their live subscriptions are owed again
        (Discord took them off when they left). Only what the records say is paid."""
        now = self.clock.now()
        owed = 0
        with self.store.instance(instance_id) as uow:
            for sub in _subs(uow, buyer_id=member_id):
                if sub.live(now):
                    sub.roles_granted = False
                    uow.subscriptions.put(sub.to_doc())
                    owed += 1
            if owed:
                record(uow, at=now, actor="system", action="subscription.member_rejoined",
                       target=f"buyer:{member_id}", subscriptions=owed)
                uow.commit()
        if owed:  # the keeper wakes on it and grants the roles
            self.publisher.publish(instance_id, [DomainEvent(
                "subscription.member_joined", instance_id, {"buyer_id": member_id})])
        return owed

    def renew(self, instance_id: str, buyer_id: str, sub_id: str) -> Any:
        """The "Renovar" button: a cart with one unit of the subscription's variant, checked
        out to its PIX at once. Returns (order, charge) as `PaymentService.pay_cart` does."""
        assert self.sales is not None and self.payments is not None
        sub = self.get(instance_id, sub_id, buyer_id=buyer_id)
        current = self.sales.get_cart(instance_id, buyer_id)
        if current is not None:
            lines = [(ln.variant_id, ln.quantity) for ln in current.cart.lines]
            if lines and lines != [(sub.variant_id, 1)]:
                raise InvalidTransition("renewal_cart_busy")
        if current is None or current.cart.state.value == "open":
            self.sales.set_item(instance_id, buyer_id, sub.product_id, sub.variant_id, 1)
        return self.payments.pay_cart(instance_id, buyer_id)

    # -- the seller ----------------------------------------------------------------------------

    def extend(self, instance_id: str, sub_id: str, days: Any, *, actor: str) -> Subscription:
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_STAFF_DAYS:
            raise InvalidInput("invalid_field", field="days")
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            doc = uow.subscriptions.get(sub_id)
            if doc is None:
                raise NotFoundError("assinatura", sub_id)
            sub = Subscription.from_doc(doc)
            was_live = sub.live(now)
            start, end = sub.add_period(order_id=f"staff:{len(sub.periods)}", line=0,
                                        kind=PeriodKind.STAFF, days=days, cents=0, now=now)
            uow.subscriptions.put(sub.to_doc())
            record(uow, at=now, actor=actor, action="subscription.extended",
                   target=f"subscription:{sub.id}", days=days, start=iso(start), end=iso(end))
            uow.commit()
        kind = "renewed" if was_live else "started"
        self.publisher.publish(instance_id, [self._event(kind, instance_id, sub)])
        return sub

    def end_now(self, instance_id: str, sub_id: str, *, actor: str) -> Subscription:
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            doc = uow.subscriptions.get(sub_id)
            if doc is None:
                raise NotFoundError("assinatura", sub_id)
            sub = Subscription.from_doc(doc)
            if not sub.live(now):
                raise InvalidTransition("invalid_transition", what="a assinatura",
                                        state=sub.status.value)
            sub.close(now, "staff")
            uow.subscriptions.put(sub.to_doc())
            record(uow, at=now, actor=actor, action="subscription.ended_by_staff",
                   target=f"subscription:{sub.id}")
            uow.commit()
        self.publisher.publish(instance_id, [self._event("ended", instance_id, sub)])
        return sub

    def report(self, instance_id: str, month: str | None = None) -> dict[str, Any]:
        """The seller's page: active subscribers per product, the month's new, renewals and
        churn (per day, for the chart), MRR and every subscriber with their end date."""
        now = self.clock.now()
        start, end = _month_bounds(month, now)
        with self.store.instance(instance_id, write=False) as uow:
            subs = _subs(uow)
        days_in_month = (end - start).days
        series = [{"day": d + 1, "new": 0, "renewals": 0, "churn": 0}
                  for d in range(days_in_month)]
        per_product: dict[str, dict[str, Any]] = {}
        totals = {"new": 0, "renewals": 0, "churn": 0}
        mrr = 0
        for sub in subs:
            row = per_product.setdefault(sub.product_id, {
                "product_id": sub.product_id, "product": sub.product_name, "active": 0,
                "mrr_cents": 0,
            })
            if sub.live(now):
                row["active"] += 1
                value = monthly_cents(sub.price_cents, sub.period_days)
                row["mrr_cents"] += value
                mrr += value
            for p in sub.periods:
                paid = parse_iso(p.get("paid_at") or p.get("start"))
                if paid is None or not start <= paid < end or p["kind"] == "staff":
                    continue
                key = "new" if p["kind"] == "purchase" else "renewals"
                series[(paid - start).days][key] += 1
                totals[key] += 1
            for ended in sub.ended_history:
                when = parse_iso(ended)
                if when is not None and start <= when < end:
                    series[(when - start).days]["churn"] += 1
                    totals["churn"] += 1
        subscribers = [
            {
                "id": s.id,
                "buyer_id": s.buyer_id,
                "product": s.product_name,
                "variant": s.variant_name,
                "status": "active" if s.live(now) else "ended",
                "ends_at": s.ends_at,
                "renewals": s.renewals,
                "card": (s.card or {}).get("status"),
            }
            for s in sorted(subs, key=lambda s: (not s.live(now), s.ends_at))
        ]
        return {
            "month": start.strftime("%Y-%m"),
            "products": sorted(per_product.values(), key=lambda r: r["product"]),
            "totals": totals,
            "series": series,
            "mrr_cents": mrr,
            "active": sum(1 for s in subs if s.live(now)),
            "subscribers": subscribers,
        }

    def mrr_cents(self, instance_ids: list[str]) -> int:
        """Recurring revenue of every live subscription, per 30 days (the admin's Resumo)."""
        now = self.clock.now()
        total = 0
        for instance_id in instance_ids:
            with self.store.instance(instance_id, write=False) as uow:
                subs = _subs(uow, status=SubscriptionStatus.ACTIVE.value)
            total += sum(monthly_cents(s.price_cents, s.period_days) for s in subs if s.live(now))
        return total

    # -- card renewal (Mercado Pago preapproval) -----------------------------------------------

    def set_card(self, instance_id: str, sub_id: str, card: dict[str, Any] | None,
                 *, actor: str) -> Subscription:
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            doc = uow.subscriptions.get(sub_id)
            if doc is None:
                raise NotFoundError("assinatura", sub_id)
            sub = Subscription.from_doc(doc)
            sub.card = card
            sub.updated_at = iso(now)
            uow.subscriptions.put(sub.to_doc())
            record(uow, at=now, actor=actor, action="subscription.card_changed",
                   target=f"subscription:{sub_id}", status=(card or {}).get("status"))
            uow.commit()
        return sub

    def card_payment(self, instance_id: str, sub_id: str, payment_id: str,
                     amount_cents: int) -> Subscription | None:
        """An approved recurring card payment: one more period, once per payment id. A payment
        for less than the variant's price adds nothing (audited)."""
        now = self.clock.now()
        events = []
        with self.store.instance(instance_id) as uow:
            doc = uow.subscriptions.get(sub_id)
            if doc is None:
                return None
            sub = Subscription.from_doc(doc)
            key = f"card:{payment_id}"
            if sub.has_period(key, 0):
                return sub
            if amount_cents < sub.price_cents:
                record(uow, at=now, actor="gateway", action="subscription.card_underpaid",
                       target=f"subscription:{sub_id}", payment_id=payment_id,
                       paid_cents=amount_cents)
                uow.commit()
                return sub
            was_live = sub.live(now)
            sub.add_period(order_id=key, line=0, kind=PeriodKind.CARD, days=sub.period_days,
                           cents=amount_cents, now=now)
            uow.subscriptions.put(sub.to_doc())
            record(uow, at=now, actor="gateway", action="subscription.card_renewed",
                   target=f"subscription:{sub_id}", payment_id=payment_id, ends_at=sub.ends_at)
            uow.commit()
            events.append(self._event("renewed" if was_live else "started", instance_id, sub))
        self.publisher.publish(instance_id, events)
        return sub

    @staticmethod
    def _event(kind: str, instance_id: str, sub: Subscription) -> DomainEvent:
        return DomainEvent(f"subscription.{kind}", instance_id,
                           {"subscription": sub.to_doc(), "buyer_id": sub.buyer_id})


def _month_bounds(month: str | None, now: datetime) -> tuple[datetime, datetime]:
    if month:
        try:
            year, mon = (int(x) for x in month.split("-", 1))
            if not 2000 <= year <= 2200 or not 1 <= mon <= 12:
                raise ValueError
        except ValueError:
            raise InvalidInput("invalid_field", field="month") from None
    else:
        year, mon = now.year, now.month
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = start + timedelta(days=calendar.monthrange(year, mon)[1])
    return start, end
