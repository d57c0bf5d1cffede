"""Carts and checkout: what a buyer does before paying.

Every operation runs in one unit of work on the instance, whose lock serialises buyers across
tasks and processes: two buyers can never reserve the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from astra.domain.buyer import Buyer
from astra.domain.cart import LIVE_STATES, Cart, CartLine, CartState
from astra.domain.catalog import DeliveryKind, Product
from astra.domain.coupon import Coupon, normalize_code
from astra.domain.errors import (
    CheckoutVetoed,
    CouponRejected,
    DomainError,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    NotFoundError,
    OutOfStock,
)
from astra.domain.events import DomainEvent
from astra.domain.hooks import HooksProvider, SaleContext, SalesHooks, Veto
from astra.domain.ids import new_id
from astra.domain.order import Order, OrderLine, OrderStatus
from astra.domain.pricing import Adjustment, Quote
from astra.domain.services.audit_log import record
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.domain.services.publishing import EventPublisher
from astra.domain.stock import KeyState
from astra.domain.timestamps import iso
from astra.ports.clock import Clock
from astra.ports.store import InstanceUnitOfWork, Store

MAX_QUANTITY = 100
DISCORD_ID_MAX = 25


@dataclass
class CartView:
    """A cart with its price, as a buyer sees it."""

    cart: Cart
    quote: Quote
    coupon_problem: str | None = None  # why the cart's coupon does not apply right now
    events: list[DomainEvent] = field(default_factory=list)


def _check_buyer_id(buyer_id: Any) -> str:
    if not isinstance(buyer_id, str) or not buyer_id.isdigit() or len(buyer_id) > DISCORD_ID_MAX:
        raise InvalidInput("invalid_field", field="buyer_id")
    return buyer_id


def _check_quantity(quantity: Any, limit: int = MAX_QUANTITY, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not low <= quantity <= limit:
        raise InvalidInput("invalid_quantity", limit=limit)
    return quantity


def _veto(veto: Veto, error: type[DomainError] = CheckoutVetoed) -> DomainError:
    if veto.message or veto.code not in _known_codes():
        return error("checkout_vetoed", reason=veto.text())
    return error(veto.code, **veto.params)


def _known_codes() -> set[str]:
    from astra.domain.messages import MESSAGES

    return set(MESSAGES)


def _idle_seconds(uow: InstanceUnitOfWork) -> int:
    value = settings_of(uow.settings.get(SETTINGS_ID)).get("cart_idle_seconds") or 0
    return value if isinstance(value, int) else 0


def _stock_out(
    instance_id: str, line: CartLine, buyer_id: str, available: int, wanted: int
) -> DomainEvent:
    """A variant has no key left to reserve (`wanted` > 0: a buyer was refused)."""
    return DomainEvent(
        "stock.out",
        instance_id,
        {
            "product_id": line.product_id,
            "variant_id": line.variant_id,
            "product_name": line.product_name,
            "variant_name": line.variant_name,
            "buyer_id": buyer_id,
            "available": available,
            "wanted": wanted,
        },
    )


# How long before a cart expires its buyer is warned.
WARN_BEFORE = timedelta(seconds=60)


class SalesService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        hooks: HooksProvider,
        publisher: EventPublisher,
        settlement: Any | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.hooks = hooks
        self.publisher = publisher
        # Orders that cost nothing (a 100% coupon) are settled at checkout through it.
        self.settlement = settlement

    # -- shared pieces -------------------------------------------------------------------------

    def _context(self, uow: InstanceUnitOfWork, buyer_id: str | None, now: datetime) -> SaleContext:
        settings = settings_of(uow.settings.get(SETTINGS_ID))
        buyer = uow.buyers.get(buyer_id) if buyer_id else None
        return SaleContext(
            instance_id=uow.instance_id,
            buyer_id=buyer_id,
            now=now,
            language=settings.get("language") or "pt-BR",
            settings=settings,
            buyer=buyer,
        )

    @staticmethod
    def _live_cart(uow: InstanceUnitOfWork, buyer_id: str) -> Cart | None:
        for state in LIVE_STATES:
            doc = uow.carts.first(buyer_id=buyer_id, state=state.value)
            if doc is not None:
                return Cart.from_doc(doc)
        return None

    @staticmethod
    def _release_keys(uow: InstanceUnitOfWork, cart: Cart, key_ids: list[str]) -> None:
        for kid in key_ids:
            doc = uow.stock.get(kid)
            if doc and doc["state"] == KeyState.RESERVED.value and doc.get("cart_id") == cart.id:
                doc.update(state=KeyState.AVAILABLE.value, cart_id=None, reserved_until=None)
                uow.stock.put(doc)

    @staticmethod
    def _release_coupon(uow: InstanceUnitOfWork, order: Order) -> None:
        if not order.coupon_held or not order.coupon_code:
            return
        doc = uow.coupons.first(code=order.coupon_code)
        if doc is not None:
            coupon = Coupon.from_doc(doc)
            coupon.uses = max(0, coupon.uses - 1)
            left = coupon.redemptions.get(order.buyer_id, 0) - 1
            if left > 0:
                coupon.redemptions[order.buyer_id] = left
            else:
                coupon.redemptions.pop(order.buyer_id, None)
            uow.coupons.put(coupon.to_doc())
        order.coupon_held = False

    def _close_cart(
        self, uow: InstanceUnitOfWork, cart: Cart, state: CartState, now: datetime, actor: str
    ) -> list[DomainEvent]:
        """Expire or cancel a live cart: its keys go back to stock, its pending order ends."""
        self._release_keys(uow, cart, cart.key_ids)
        events = []
        stamp = iso(now)
        cart.state = state
        cart.closed_at = stamp
        cart.updated_at = stamp
        for line in cart.lines:
            line.key_ids = []
        if cart.order_id:
            doc = uow.orders.get(cart.order_id)
            if doc is not None and doc["status"] == OrderStatus.PENDING.value:
                order = Order.from_doc(doc)
                order.status = (
                    OrderStatus.EXPIRED if state is CartState.EXPIRED else OrderStatus.CANCELLED
                )
                order.closed_at = stamp
                self._release_coupon(uow, order)
                uow.orders.put(order.to_doc())
                record(
                    uow,
                    at=now,
                    actor=actor,
                    action=f"order.{order.status.value}",
                    target=f"order:{order.id}",
                    charge_id=order.charge_id,
                )
                name = "order.expired" if state is CartState.EXPIRED else "order.cancelled"
                # The payment layer listens for these to cancel the PIX charge.
                events.append(
                    DomainEvent(
                        name,
                        uow.instance_id,
                        {
                            "order": order.to_doc(),
                            "buyer_id": order.buyer_id,
                            "charge_id": order.charge_id,
                        },
                    )
                )
        uow.carts.put(cart.to_doc())
        record(
            uow,
            at=now,
            actor=actor,
            action=f"cart.{state.value}",
            target=f"cart:{cart.id}",
            released_keys=len(cart.key_ids),
        )
        events.append(
            DomainEvent(
                f"cart.{state.value}",
                uow.instance_id,
                {"cart": cart.to_doc(), "buyer_id": cart.buyer_id},
            )
        )
        return events

    def _expire_due(self, uow: InstanceUnitOfWork, now: datetime) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for state in LIVE_STATES:
            for doc in uow.carts.find(state=state.value):
                cart = Cart.from_doc(doc)
                if cart.expired(now):
                    events += self._close_cart(uow, cart, CartState.EXPIRED, now, "system")
        return events

    def _quote(
        self, hooks: SalesHooks, ctx: SaleContext, uow: InstanceUnitOfWork, cart: Cart
    ) -> tuple[Quote, Veto | None]:
        quote = Quote(subtotal_cents=cart.subtotal_cents)
        quote.adjustments.extend(hooks.cart_adjustments(ctx, cart))
        problem = None
        if cart.coupon_code:
            doc = uow.coupons.first(code=cart.coupon_code)
            if doc is None:
                problem = Veto("coupon_unknown", {"code": cart.coupon_code})
            else:
                outcome = hooks.coupon(ctx, cart, Coupon.from_doc(doc))
                if outcome is None:
                    problem = Veto("coupons_unavailable")
                elif outcome.veto is not None:
                    problem = outcome.veto
                elif outcome.discount_cents > 0:
                    quote.adjustments.append(
                        Adjustment(
                            source="coupon",
                            label=f"Cupom {cart.coupon_code}",
                            amount_cents=-outcome.discount_cents,
                        )
                    )
        return quote, problem

    def _open_or_current(
        self,
        uow: InstanceUnitOfWork,
        buyer_id: str,
        username: str,
        now: datetime,
        events: list[DomainEvent],
    ) -> Cart:
        cart = self._live_cart(uow, buyer_id)
        if cart is not None and cart.expired(now):
            events += self._close_cart(uow, cart, CartState.EXPIRED, now, "system")
            cart = None
        if cart is None:
            settings = settings_of(uow.settings.get(SETTINGS_ID))
            ttl = int(settings.get("cart_ttl_seconds") or 900)
            cart = Cart(
                id=new_id("cart"),
                buyer_id=buyer_id,
                state=CartState.OPEN,
                created_at=iso(now) or "",
                expires_at=iso(now + timedelta(seconds=ttl)) or "",
                updated_at=iso(now),
            )
            events.append(
                DomainEvent(
                    "cart.opened",
                    uow.instance_id,
                    {"cart": cart.to_doc(), "buyer_id": buyer_id, "username": username[:100]},
                )
            )
        if uow.buyers.get(buyer_id) is None:
            uow.buyers.add(
                Buyer(
                    id=buyer_id,
                    discord_id=buyer_id,
                    username=username[:100],
                    first_seen_at=iso(now),
                ).to_doc()
            )
        return cart

    def _view(
        self,
        hooks: SalesHooks,
        ctx: SaleContext,
        uow: InstanceUnitOfWork,
        cart: Cart,
        events: list[DomainEvent],
    ) -> CartView:
        quote, problem = self._quote(hooks, ctx, uow, cart)
        return CartView(
            cart=cart,
            quote=quote,
            coupon_problem=problem.text(ctx.language) if problem else None,
            events=events,
        )

    def _finish(self, instance_id: str, view: CartView) -> CartView:
        self.publisher.publish(instance_id, view.events)
        return view

    # -- buyer operations ----------------------------------------------------------------------

    def get_cart(self, instance_id: str, buyer_id: str) -> CartView | None:
        _check_buyer_id(buyer_id)
        hooks = self.hooks.for_instance(instance_id)
        with self.store.instance(instance_id, write=False) as uow:
            cart = self._live_cart(uow, buyer_id)
            if cart is None:
                return None
            ctx = self._context(uow, buyer_id, self.clock.now())
            return self._view(hooks, ctx, uow, cart, [])

    def set_item(
        self,
        instance_id: str,
        buyer_id: str,
        product_id: str,
        variant_id: str,
        quantity: int,
        *,
        username: str = "",
        add: bool = False,
    ) -> CartView:
        """Put `quantity` units of a variant in the buyer's cart (or add them to what is there
        with add=True), reserving keys for the cart's lifetime. 0 removes the line."""
        _check_buyer_id(buyer_id)
        _check_quantity(quantity, allow_zero=not add)
        try:
            return self._set_item(instance_id, buyer_id, product_id, variant_id, quantity,
                                  username=username, add=add)
        except OutOfStock as refusal:
            event = getattr(refusal, "event", None)
            if event is not None:
                self.publisher.publish(instance_id, [event])
            raise

    def _set_item(
        self,
        instance_id: str,
        buyer_id: str,
        product_id: str,
        variant_id: str,
        quantity: int,
        *,
        username: str,
        add: bool,
    ) -> CartView:
        hooks = self.hooks.for_instance(instance_id)
        now = self.clock.now()
        events: list[DomainEvent] = []
        with self.store.instance(instance_id) as uow:
            cart = self._open_or_current(uow, buyer_id, username, now, events)
            if cart.state is not CartState.OPEN:
                raise InvalidTransition(
                    "invalid_transition", what="o carrinho", state="aguardando pagamento"
                )
            doc = uow.products.get(product_id)
            if doc is None:
                raise NotFoundError("produto", product_id)
            product = Product.from_doc(doc)
            variant = product.variant(variant_id)
            if variant is None:
                raise NotFoundError("variante", variant_id)
            if not product.active or not variant.active:
                raise InvalidInput("product_inactive")
            line = cart.line(variant_id)
            current = line.quantity if line else 0
            target = current + quantity if add else quantity
            if target > MAX_QUANTITY:
                raise InvalidInput("invalid_quantity", limit=MAX_QUANTITY)
            ctx = self._context(uow, buyer_id, now)
            if target > 0:
                veto = hooks.check_cart_line(ctx, cart, product, variant, target)
                if veto is not None:
                    raise _veto(veto, LimitExceeded)
            if line is None and target > 0:
                line = CartLine(
                    product_id=product.id,
                    variant_id=variant.id,
                    product_name=product.name,
                    variant_name=variant.name,
                    # A shared key sold any number of times is delivered like a text.
                    delivery_kind=str(
                        DeliveryKind.TEXT if product.unlimited_stock else product.delivery_kind
                    ),
                    quantity=0,
                    unit_price_cents=variant.price_cents,
                )
                cart.lines.append(line)
            if line is not None:
                if line.delivery_kind == DeliveryKind.KEY.value:
                    self._adjust_reservation(uow, cart, line, target, now, events)
                line.quantity = target
                # The price a buyer sees is the price they pay: refreshed while the cart is open.
                line.unit_price_cents = variant.price_cents
                if target == 0:
                    cart.lines.remove(line)
            cart.updated_at = iso(now)
            cart.touch(now, _idle_seconds(uow))
            uow.carts.put(cart.to_doc())
            ctx = self._context(uow, buyer_id, now)
            view = self._view(hooks, ctx, uow, cart, events)
            uow.commit()
        return self._finish(instance_id, view)

    def add_item(
        self,
        instance_id: str,
        buyer_id: str,
        product_id: str,
        variant_id: str,
        quantity: int = 1,
        *,
        username: str = "",
    ) -> CartView:
        return self.set_item(
            instance_id, buyer_id, product_id, variant_id, quantity, username=username, add=True
        )

    def _adjust_reservation(
        self,
        uow: InstanceUnitOfWork,
        cart: Cart,
        line: CartLine,
        target: int,
        now: datetime,
        events: list[DomainEvent],
    ) -> None:
        held = list(line.key_ids)
        if target < len(held):
            self._release_keys(uow, cart, held[target:])
            line.key_ids = held[:target]
            record(
                uow,
                at=now,
                actor=f"buyer:{cart.buyer_id}",
                action="cart.keys_released",
                target=f"cart:{cart.id}",
                variant_id=line.variant_id,
                count=len(held) - target,
            )
            return
        need = target - len(held)
        if need == 0:
            return
        free = uow.stock.find(variant_id=line.variant_id, state=KeyState.AVAILABLE.value)
        if len(free) < need:
            # Keys held by carts that expired but were not swept yet are free in truth.
            events += self._expire_due(uow, now)
            free = uow.stock.find(variant_id=line.variant_id, state=KeyState.AVAILABLE.value)
        if len(free) < need:
            refusal = OutOfStock(
                "out_of_stock",
                item=f"{line.product_name} — {line.variant_name}",
                available=len(free),
            )
            # Told to staff (by set_item, once the lock is released) though this unit of work
            # is abandoned with the refusal.
            refusal.event = _stock_out(  # type: ignore[attr-defined]
                uow.instance_id, line, cart.buyer_id, len(free), need
            )
            raise refusal
        if len(free) == need:
            events.append(_stock_out(uow.instance_id, line, cart.buyer_id, 0, 0))
        for doc in free[:need]:
            doc.update(
                state=KeyState.RESERVED.value, cart_id=cart.id, reserved_until=cart.expires_at
            )
            uow.stock.put(doc)
            line.key_ids.append(doc["id"])
        record(
            uow,
            at=now,
            actor=f"buyer:{cart.buyer_id}",
            action="cart.keys_reserved",
            target=f"cart:{cart.id}",
            variant_id=line.variant_id,
            count=need,
            until=cart.expires_at,
        )

    def apply_coupon(self, instance_id: str, buyer_id: str, code: str) -> CartView:
        _check_buyer_id(buyer_id)
        code = normalize_code(code) if isinstance(code, str) and code.strip() else ""
        if not code:
            raise InvalidInput("invalid_field", field="code")
        hooks = self.hooks.for_instance(instance_id)
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            cart = self._live_cart(uow, buyer_id)
            if cart is None or cart.expired(now):
                raise InvalidTransition("cart_closed")
            if cart.state is not CartState.OPEN:
                raise InvalidTransition(
                    "invalid_transition", what="o carrinho", state="aguardando pagamento"
                )
            if not cart.lines:
                raise InvalidInput("cart_empty")
            doc = uow.coupons.first(code=code)
            if doc is None:
                raise CouponRejected("coupon_unknown", code=code)
            ctx = self._context(uow, buyer_id, now)
            outcome = hooks.coupon(ctx, cart, Coupon.from_doc(doc))
            if outcome is None:
                raise CouponRejected("coupons_unavailable")
            if outcome.veto is not None:
                raise _veto(outcome.veto, CouponRejected)
            cart.coupon_code = code
            cart.updated_at = iso(now)
            cart.touch(now, _idle_seconds(uow))
            uow.carts.put(cart.to_doc())
            view = self._view(hooks, ctx, uow, cart, [])
            uow.commit()
        return view

    def remove_coupon(self, instance_id: str, buyer_id: str) -> CartView:
        _check_buyer_id(buyer_id)
        hooks = self.hooks.for_instance(instance_id)
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            cart = self._live_cart(uow, buyer_id)
            if cart is None or cart.state is not CartState.OPEN:
                raise InvalidTransition("cart_closed")
            cart.coupon_code = None
            cart.updated_at = iso(now)
            cart.touch(now, _idle_seconds(uow))
            uow.carts.put(cart.to_doc())
            view = self._view(hooks, self._context(uow, buyer_id, now), uow, cart, [])
            uow.commit()
        return view

    def cancel_cart(self, instance_id: str, buyer_id: str, *, actor: str | None = None) -> Cart:
        """The buyer (or staff) gives up: keys back to stock, a pending order cancelled (and its
        charge, by whoever listens to order.cancelled)."""
        _check_buyer_id(buyer_id)
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            cart = self._live_cart(uow, buyer_id)
            if cart is None:
                raise InvalidTransition("cart_closed")
            events = self._close_cart(
                uow, cart, CartState.CANCELLED, now, actor or f"buyer:{buyer_id}"
            )
            uow.commit()
        self.publisher.publish(instance_id, events)
        return cart

    def cancel_cart_by_id(self, instance_id: str, cart_id: str, *, actor: str) -> Cart:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.carts.get(cart_id)
        if doc is None:
            raise NotFoundError("carrinho", cart_id)
        cart = Cart.from_doc(doc)
        if cart.state not in LIVE_STATES:
            raise InvalidTransition("invalid_transition", what="o carrinho", state=cart.state.value)
        return self.cancel_cart(instance_id, cart.buyer_id, actor=actor)

    def expire_due(self, instance_id: str) -> list[str]:
        """Close every cart past its expiry (the worker calls this); returns their ids."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            events = self._expire_due(uow, now)
            if events:
                uow.commit()
        self.publisher.publish(instance_id, events)
        return [e.data["cart"]["id"] for e in events if e.name == "cart.expired"]

    def warn_expiring(self, instance_id: str) -> list[str]:
        """Mark the live carts that expire within WARN_BEFORE as warned and publish
        `cart.expiring` for each (the platform tells the buyer). Once per idle period: a buyer's
        action clears the mark."""
        now = self.clock.now()
        events: list[DomainEvent] = []
        with self.store.instance(instance_id) as uow:
            for state in LIVE_STATES:
                for doc in uow.carts.find(state=state.value):
                    cart = Cart.from_doc(doc)
                    ends = cart.ends_at()
                    if cart.warned_at or ends is None or not now < ends <= now + WARN_BEFORE:
                        continue
                    cart.warned_at = iso(now)
                    uow.carts.put(cart.to_doc())
                    events.append(
                        DomainEvent(
                            "cart.expiring",
                            instance_id,
                            {"cart": cart.to_doc(), "buyer_id": cart.buyer_id,
                             "ends_at": iso(ends)},
                        )
                    )
            if events:
                uow.commit()
        self.publisher.publish(instance_id, events)
        return [e.data["cart"]["id"] for e in events]

    def checkout(self, instance_id: str, buyer_id: str) -> Order:
        """Freeze the cart into a pending order. Calling it again while the order is pending
        returns the same order (a double click on "Pagar" never makes two)."""
        _check_buyer_id(buyer_id)
        hooks = self.hooks.for_instance(instance_id)
        now = self.clock.now()
        stamp = iso(now) or ""
        with self.store.instance(instance_id) as uow:
            cart = self._live_cart(uow, buyer_id)
            if cart is None:
                raise InvalidTransition("cart_closed")
            if cart.expired(now):
                events = self._close_cart(uow, cart, CartState.EXPIRED, now, "system")
                uow.commit()
                self.publisher.publish(instance_id, events)
                raise InvalidTransition("cart_expired")
            if cart.state is CartState.CHECKOUT and cart.order_id:
                return Order.from_doc(uow.orders.require(cart.order_id))
            if not cart.lines:
                raise InvalidInput("cart_empty")
            for line in cart.lines:
                product_doc = uow.products.get(line.product_id)
                product = Product.from_doc(product_doc) if product_doc else None
                variant = product.variant(line.variant_id) if product else None
                if product is None or variant is None or not product.active or not variant.active:
                    raise InvalidInput("product_inactive")
                if (
                    line.delivery_kind == DeliveryKind.KEY.value
                    and len(line.key_ids) != line.quantity
                ):
                    raise OutOfStock(
                        "out_of_stock",
                        item=f"{line.product_name} — {line.variant_name}",
                        available=len(line.key_ids),
                    )
            ctx = self._context(uow, buyer_id, now)
            quote, problem = self._quote(hooks, ctx, uow, cart)
            if problem is not None:
                raise _veto(problem, CouponRejected)
            veto = hooks.check_checkout(ctx, cart, quote)
            if veto is not None:
                raise _veto(veto)
            order = Order(
                id=new_id("ord"),
                cart_id=cart.id,
                buyer_id=buyer_id,
                status=OrderStatus.PENDING,
                lines=[
                    OrderLine(
                        product_id=ln.product_id,
                        variant_id=ln.variant_id,
                        product_name=ln.product_name,
                        variant_name=ln.variant_name,
                        delivery_kind=ln.delivery_kind,
                        quantity=ln.quantity,
                        unit_price_cents=ln.unit_price_cents,
                        key_ids=list(ln.key_ids),
                    )
                    for ln in cart.lines
                ],
                subtotal_cents=quote.subtotal_cents,
                discount_cents=quote.discount_cents,
                total_cents=quote.total_cents,
                created_at=stamp,
                expires_at=cart.expires_at,
                adjustments=[
                    {"source": a.source, "label": a.label, "amount_cents": a.amount_cents}
                    for a in quote.adjustments
                ],
                coupon_code=cart.coupon_code,
            )
            if order.coupon_code:
                coupon_doc = uow.coupons.first(code=order.coupon_code)
                if coupon_doc is not None:
                    coupon = Coupon.from_doc(coupon_doc)
                    coupon.uses += 1
                    coupon.redemptions[buyer_id] = coupon.redemptions.get(buyer_id, 0) + 1
                    uow.coupons.put(coupon.to_doc())
                    order.coupon_held = True
            cart.state = CartState.CHECKOUT
            cart.order_id = order.id
            cart.updated_at = stamp
            uow.carts.put(cart.to_doc())
            uow.orders.add(order.to_doc())
            record(
                uow,
                at=now,
                actor=f"buyer:{buyer_id}",
                action="order.created",
                target=f"order:{order.id}",
                total_cents=order.total_cents,
                discount_cents=order.discount_cents,
                coupon=order.coupon_code,
            )
            uow.commit()
        self.publisher.publish(
            instance_id,
            [
                DomainEvent(
                    "order.created", instance_id, {"order": order.to_doc(), "buyer_id": buyer_id}
                )
            ],
        )
        if order.total_cents == 0 and self.settlement is not None:
            order = self.settlement.confirm_payment(
                instance_id, order.id, amount_cents=0, payment_id=f"free:{order.id}"
            )
        return order

    # -- the cart's place in the chat (kept by the bot) ----------------------------------------

    def bind_cart_channel(
        self, instance_id: str, cart_id: str, channel_id: str, message_id: str | None
    ) -> None:
        with self.store.instance(instance_id) as uow:
            doc = uow.carts.get(cart_id)
            if doc is None:
                raise NotFoundError("carrinho", cart_id)
            doc["channel_id"] = channel_id
            doc["message_id"] = message_id
            uow.carts.put(doc)
            uow.commit()

    def mark_cart_channel_closed(self, instance_id: str, cart_id: str) -> None:
        with self.store.instance(instance_id) as uow:
            doc = uow.carts.get(cart_id)
            if doc is None:
                raise NotFoundError("carrinho", cart_id)
            doc["channel_closed_at"] = iso(self.clock.now())
            uow.carts.put(doc)
            uow.commit()

    def carts_with_open_channels(self, instance_id: str) -> list[dict[str, Any]]:
        """Ended carts (paid, expired, cancelled) whose chat channel is still there."""
        with self.store.instance(instance_id, write=False) as uow:
            out = []
            for state in (CartState.PAID, CartState.EXPIRED, CartState.CANCELLED):
                out += [
                    c
                    for c in uow.carts.find(state=state.value)
                    if c.get("channel_id") and not c.get("channel_closed_at")
                ]
        return out

    def get_cart_by_id(self, instance_id: str, cart_id: str) -> Cart:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.carts.get(cart_id)
        if doc is None:
            raise NotFoundError("carrinho", cart_id)
        return Cart.from_doc(doc)

    def attach_charge(self, instance_id: str, order_id: str, charge: dict[str, Any]) -> Order:
        """Record the PIX charge made for a pending order (id, code, QR, expiry)."""
        with self.store.instance(instance_id) as uow:
            doc = uow.orders.get(order_id)
            if doc is None:
                raise NotFoundError("pedido", order_id)
            order = Order.from_doc(doc)
            first = order.charge_id is None
            order.charge_id = str(charge.get("id"))
            order.charge = dict(charge)
            uow.orders.put(order.to_doc())
            uow.commit()
        if first:
            self.publisher.publish(instance_id, [DomainEvent(
                "order.charged", instance_id,
                {"order": order.to_doc(), "buyer_id": order.buyer_id},
            )])
        return order

    def order_by_charge(self, instance_id: str, charge_id: str) -> Order | None:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.orders.first(charge_id=charge_id)
        return Order.from_doc(doc) if doc else None

    def get_order(self, instance_id: str, order_id: str) -> Order:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.orders.get(order_id)
        if doc is None:
            raise NotFoundError("pedido", order_id)
        return Order.from_doc(doc)

    def list_orders(self, instance_id: str, *, status: str | None = None) -> list[Order]:
        with self.store.instance(instance_id, write=False) as uow:
            docs = uow.orders.find(status=status) if status else uow.orders.all()
        return [Order.from_doc(d) for d in docs]
