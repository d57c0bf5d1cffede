"""The extension points the sales services call, as the domain sees them.

The plugin manager (astra/plugins) implements this on top of pluggy; the domain never imports
pluggy. A plugin refuses something by returning a Veto, never by raising: an exception from a
plugin is a failure of that plugin, logged and skipped, not a decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from astra.domain.cart import Cart
from astra.domain.catalog import Product, Variant
from astra.domain.coupon import Coupon
from astra.domain.events import DomainEvent
from astra.domain.messages import DEFAULT_LANGUAGE, MESSAGES, render
from astra.domain.order import Order, OrderLine
from astra.domain.pricing import Adjustment, Quote


@dataclass(frozen=True)
class SaleContext:
    """Who is buying where, passed to every hook."""

    instance_id: str
    buyer_id: str | None
    now: datetime
    language: str = DEFAULT_LANGUAGE
    settings: dict[str, Any] = field(default_factory=dict)
    buyer: dict[str, Any] | None = None  # the Buyer document, when known


@dataclass(frozen=True)
class Veto:
    """A refusal the buyer reads. `code` is a message code (astra.domain.messages) or, for a
    plugin's own reason, any text in `message`."""

    code: str = "checkout_vetoed"
    params: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    def text(self, language: str = DEFAULT_LANGUAGE) -> str:
        if self.message:
            return self.message
        if self.code in MESSAGES:
            return render(self.code, language, **self.params)
        return self.code


@dataclass(frozen=True)
class CouponOutcome:
    """A coupon plugin's answer: a discount (cents, positive) or a refusal."""

    discount_cents: int = 0
    veto: Veto | None = None


@dataclass(frozen=True)
class DeliveryOutcome:
    ok: bool
    channel: str = "dm"  # dm | cart_channel | staff | role
    error: str | None = None
    retryable: bool = True


@dataclass(frozen=True)
class DeliveryItem:
    """One line of an order to deliver, with what the buyer gets (keys in clear, text, role)."""

    order: Order
    line: OrderLine
    product: Product
    keys: list[str]
    message: str  # the rendered DM template
    # The same on every attempt at this line until staff asks for a redelivery. Derive message
    # nonces from it, so a resend after a crash (DM sent, result not recorded) is dropped by
    # the platform instead of reaching the buyer twice. Empty: send without nonces.
    idempotency_key: str = ""
    # The same message as a Discord embed (the seller's DM template), None when it does not
    # fit one; `message` is its plain-text version.
    embed: dict[str, Any] | None = None


class SalesHooks(Protocol):
    def check_cart_line(
        self, ctx: SaleContext, cart: Cart, product: Product, variant: Variant, quantity: int
    ) -> Veto | None: ...

    def cart_adjustments(self, ctx: SaleContext, cart: Cart) -> list[Adjustment]: ...

    def check_checkout(self, ctx: SaleContext, cart: Cart, quote: Quote) -> Veto | None: ...

    def coupon(self, ctx: SaleContext, cart: Cart, coupon: Coupon) -> CouponOutcome | None:
        """None when no enabled plugin handles coupons."""
        ...

    async def deliver(
        self, ctx: SaleContext, item: DeliveryItem, services: dict[str, Any]
    ) -> DeliveryOutcome | None:
        """None when no enabled plugin delivers this kind."""
        ...

    def notify(self, ctx: SaleContext, event: DomainEvent) -> None: ...


class HooksProvider(Protocol):
    def for_instance(self, instance_id: str) -> SalesHooks:
        """The hooks of the plugins enabled for this instance now (toggles read on each call)."""
        ...
