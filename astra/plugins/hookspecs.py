"""The hooks of the "astra" pluggy project: what a plugin may implement.

Every hook takes the sale's `SaleContext` first (instance, buyer, time, language, settings). A
plugin implements any subset of the hooks, and may accept any subset of a hook's arguments, in any
order: pluggy passes them by name. Refusals are values (`Veto`), never exceptions: an exception
raised by a plugin is that plugin's failure, logged, counted and skipped; the sale goes on with
the other plugins.

Besides its hooks, a plugin module declares `NAME` (str), `DESCRIPTION` (str) and
`DEFAULT_ENABLED` (bool), and is found through the `astra.plugins` entry point group.
"""

from __future__ import annotations

from typing import Any

import pluggy

from astra.domain.cart import Cart
from astra.domain.catalog import Product, Variant
from astra.domain.coupon import Coupon
from astra.domain.events import DomainEvent
from astra.domain.hooks import CouponOutcome, DeliveryItem, DeliveryOutcome, SaleContext, Veto
from astra.domain.pricing import Adjustment, Quote
from astra.plugins import PROJECT

hookspec = pluggy.HookspecMarker(PROJECT)

# -------------------------------------------------------------------------------------------------
# Cart and checkout
# -------------------------------------------------------------------------------------------------


@hookspec
def astra_cart_line_check(
    ctx: SaleContext, cart: Cart, product: Product, variant: Variant, quantity: int
) -> Veto | None:
    """Called before a line is added to a cart or its quantity changed, before keys are reserved.

    :param cart: the buyer's open cart, as it is before the change.
    :param product: the product of the line.
    :param variant: the variant of the line.
    :param quantity: the line's new total quantity (not the units being added).

    Return a `Veto` to refuse the change (the buyer reads `Veto.text()`), or None to allow it.
    Not firstresult: every enabled plugin is asked, and any Veto refuses.
    """


@hookspec
def astra_cart_adjustments(ctx: SaleContext, cart: Cart) -> list[Adjustment] | None:
    """Called whenever a cart is priced (shown to the buyer, and at checkout).

    :param cart: the cart being priced; its lines carry frozen unit prices.

    Return a list of `Adjustment` (`amount_cents` < 0 is a discount, > 0 a surcharge) or None.
    Not firstresult: the lists of all enabled plugins are concatenated, in call order. The total
    never goes below zero whatever the adjustments say. The coupon's discount is not an
    adjustment returned here; it comes from `astra_coupon_evaluate`.
    """


@hookspec
def astra_checkout_check(ctx: SaleContext, cart: Cart, quote: Quote) -> Veto | None:
    """Called when the buyer checks out, after pricing and before the order and its charge exist.

    :param cart: the cart about to become an order.
    :param quote: its price: subtotal, adjustments (plugins and coupon) and total.

    Return a `Veto` to refuse the checkout, or None. Not firstresult: any Veto refuses.
    """


@hookspec(firstresult=True)
def astra_coupon_evaluate(ctx: SaleContext, cart: Cart, coupon: Coupon) -> CouponOutcome | None:
    """Called when a buyer applies a coupon code that exists in the instance, and again whenever
    a cart holding a coupon is priced.

    :param cart: the cart the coupon is applied to.
    :param coupon: the stored coupon (code, kind, value, limits, uses so far).

    Return a `CouponOutcome`: `discount_cents` (positive, cents off) or `veto` (the reason the
    coupon does not apply). Return None to leave the decision to another plugin.
    firstresult: the first non-None answer wins. When every plugin returns None (no coupon
    plugin is enabled) the buyer is told coupons are unavailable.
    """


# -------------------------------------------------------------------------------------------------
# Delivery
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def astra_deliver_line(
    ctx: SaleContext, item: DeliveryItem, services: dict[str, Any]
) -> DeliveryOutcome | None:
    """Called by the delivery worker for each line of a paid order (and on a staff redelivery).

    :param item: the order, the line, its product, the keys in clear (for `key` lines) and the
        rendered DM (`item.message` as text; `item.embed` as the seller's embed, None when it
        does not fit one).
    :param services: what the runtime offers: `"chat"` (a `ChatPlatform`), and
        `"cart_channel_id"` (the order's cart channel) when it has one.

    Return a `DeliveryOutcome` (ok, channel, error, retryable), or None for a delivery kind the
    plugin does not handle. firstresult: the first non-None answer wins. The implementation may
    be a plain or an `async def` function. A failed, retryable outcome is tried again later.
    """


# -------------------------------------------------------------------------------------------------
# After-events: informational, called after the change is committed. Return values are ignored;
# a plugin cannot undo what already happened.
# -------------------------------------------------------------------------------------------------


@hookspec
def astra_order_created(ctx: SaleContext, order: dict[str, Any]) -> None:
    """Called after checkout created an order (pending payment).

    :param order: the order document (`Order.to_doc()`), a copy the plugin may keep.
    """


@hookspec
def astra_order_paid(ctx: SaleContext, order: dict[str, Any]) -> None:
    """Called after a payment was confirmed and the order's keys were sold.

    :param order: the order document.
    """


@hookspec
def astra_order_delivered(ctx: SaleContext, order: dict[str, Any]) -> None:
    """Called after every line of an order was delivered.

    :param order: the order document.
    """


@hookspec
def astra_order_cancelled(ctx: SaleContext, order: dict[str, Any]) -> None:
    """Called after an unpaid order was cancelled or expired and its keys released.

    :param order: the order document.
    """


@hookspec
def astra_order_refunded(ctx: SaleContext, order: dict[str, Any]) -> None:
    """Called after a paid order was refunded or charged back.

    :param order: the order document.
    """


@hookspec
def astra_event(ctx: SaleContext, event: DomainEvent) -> None:
    """Called for every domain event of the instance (order.*, cart.expired, stock.imported, ...),
    including the ones that also have an `astra_order_*` hook, after it is committed.

    :param event: the event: `name`, `instance_id` and `data`.
    """
