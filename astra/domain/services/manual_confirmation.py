"""A seller's staff confirms a cart's payment by hand ("Confirmar pagamento" in the cart).

Off by default, turned on in the portal only (a tenant runtime cannot turn it on). Allowed to
the shop's staff as Discord itself says (the caller learns who pressed the button from Discord
and decides staff from the member's and the guild's roles, `astra.domain.staff`: a runtime's
word about either is not enough), never to the cart's own buyer. The money went to the seller
directly, so the platform takes no fee and credits no wallet; the confirmation is audited with
who made it.
"""

from __future__ import annotations

from astra.domain.cart import Cart, CartState
from astra.domain.errors import Forbidden, InvalidTransition, NotFoundError
from astra.domain.order import Order, OrderStatus
from astra.domain.services.audit_log import record
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.ports.clock import Clock
from astra.ports.store import Store


class ManualConfirmation:
    def __init__(self, store: Store, clock: Clock, settlement: object) -> None:
        self.store = store
        self.clock = clock
        self.settlement = settlement

    def check(self, instance_id: str, cart_id: str, staff_id: str,
              is_staff: bool) -> tuple[Cart, Order]:
        """The cart and its pending order when `staff_id` may confirm it; else Forbidden
        (the refusal is audited: someone pressed a staff button they have no right to)."""
        with self.store.instance(instance_id, write=False) as uow:
            settings = settings_of(uow.settings.get(SETTINGS_ID))
            doc = uow.carts.get(cart_id)
            order_doc = uow.orders.get(doc["order_id"]) if doc and doc.get("order_id") else None
        reason = None
        if not settings.get("manual_confirmation"):
            reason = "manual_confirmation_off"
        elif not is_staff:
            reason = "staff_only"
        elif doc is not None and doc.get("buyer_id") == staff_id:
            reason = "staff_only"  # nobody confirms their own purchase
        if reason is not None:
            self._refused(instance_id, cart_id, staff_id, reason)
            raise Forbidden(reason)
        if doc is None:
            raise NotFoundError("carrinho", cart_id)
        cart = Cart.from_doc(doc)
        if cart.state is not CartState.CHECKOUT or order_doc is None:
            raise InvalidTransition("invalid_transition", what="o carrinho", state=cart.state.value)
        order = Order.from_doc(order_doc)
        if order.status is not OrderStatus.PENDING:
            raise InvalidTransition("invalid_transition", what="o pedido", state=order.status.value)
        return cart, order

    def confirm(self, instance_id: str, cart_id: str, *, staff_id: str,
                is_staff: bool) -> Order:
        cart, order = self.check(instance_id, cart_id, staff_id, is_staff)
        actor = f"staff:discord:{staff_id}"
        with self.store.instance(instance_id) as uow:
            record(uow, at=self.clock.now(), actor=actor, action="payment.manual_confirmed",
                   target=f"order:{order.id}", cart_id=cart.id, total_cents=order.total_cents)
            uow.commit()
        return self.settlement.confirm_payment(  # type: ignore[attr-defined]
            instance_id, order.id, amount_cents=order.total_cents,
            payment_id=f"manual:{cart.id}", actor=actor, credit_wallet=False,
        )

    def _refused(self, instance_id: str, cart_id: str, staff_id: str, reason: str) -> None:
        with self.store.instance(instance_id) as uow:
            record(uow, at=self.clock.now(), actor=f"discord:{staff_id}",
                   action="payment.manual_refused", target=f"cart:{cart_id}", reason=reason)
            uow.commit()
