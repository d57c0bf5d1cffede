"""What one instance's bot may ask of its platform: the only door from a tenant runtime to data.

A tenant runtime holds its bot token and a runtime credential, and nothing else: no store, no
data mount, no lock, no vault key, no payment token. Every read and write it needs goes through
this port, already scoped to its own instance (no method takes an instance id, so no call can
name another instance's data). Two adapters implement it with the same semantics:

- in process (`adapters/instance_api/inprocess.py`): the platform's own services, for tests and
  one-process development; the internal API's server answers every request through it too;
- over HTTP (`adapters/instance_api/http.py`): the platform's internal API, what a runtime in a
  container or subprocess uses.

Errors a buyer or seller can cause arrive as the domain's errors (`DomainError` and its kinds),
whichever adapter carried them, so the bot answers both the same way. `InstanceAPIUnavailable`
means the platform could not be reached or refused to serve now: try again later.

Who acts is not a parameter: an operation done for a person (a buyer's cart, a seller's
command, a staff button) takes that person's Discord interaction (`InteractionRef`: its id and
token, after the bot deferred it), and the platform asks Discord who made it and decides what
they may do. A refusal is `Forbidden` (audited on the platform with the real user).

Deliveries are not here: the platform sends them itself (Discord REST, with the instance's bot
token), so stock keys never reach a tenant runtime and a runtime cannot claim a delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from astra.domain.cart import Cart
from astra.domain.catalog import Product
from astra.domain.coupon import Coupon
from astra.domain.order import Order
from astra.domain.services.sales import CartView
from astra.domain.stock import ImportReport
from astra.ports.chat import InteractionRef
from astra.ports.payments import Charge


class InstanceAPIUnavailable(Exception):
    """The platform did not answer (down, restarting, overloaded): nothing is known to have
    changed; the same call may be tried again."""


@dataclass(frozen=True)
class PaymentStart:
    """What pressing Pagar gave: the order, and its PIX charge (None when nothing is owed)."""

    order: Order
    charge: Charge | None
    sandbox: bool = False


@dataclass(frozen=True)
class Heartbeat:
    """A runtime's news about itself. `error` is why it is stopping (`invalid_token`, ...)."""

    ready_at: float | None = None
    latency_ms: float | None = None
    guilds: int = 0
    bot_user: str = ""
    pid: int = 0
    error: str | None = None


class InstanceAPI(Protocol):
    instance_id: str

    # -- settings ------------------------------------------------------------------------------
    async def settings(self) -> dict[str, Any]:
        """The instance's settings (language, channels, roles, guild, cart ttl, ...), plus
        `payments_sandbox` (charges move no money)."""
        ...

    async def update_settings(
        self, changes: dict[str, Any], *, interaction: InteractionRef
    ) -> dict[str, Any]:
        """The staff's `/loja config`; validated like the portal's settings form. Settings that
        bind the bot or move money (`PORTAL_ONLY_SETTINGS`) are refused."""
        ...

    async def bind_guild(self, instance_key: str, *, interaction: InteractionRef) -> bool:
        """`/loja vincular`: bind the guild Discord says the interaction came from, when its
        maker manages that guild and `instance_key` is the instance's key; False (nothing
        changed) on a wrong key. An instance bound elsewhere is moved on the portal only."""
        ...

    # -- the buyer's cart ------------------------------------------------------------------------
    async def get_cart(self, interaction: InteractionRef) -> CartView | None:
        """The cart of the person who made `interaction`."""
        ...

    async def get_cart_by_id(self, cart_id: str) -> Cart: ...

    async def cart_in_channel(self, channel_id: str) -> CartView | None:
        """The live cart whose private channel this is (what the channel already shows)."""
        ...

    async def add_item(
        self, interaction: InteractionRef, product_id: str, variant_id: str, quantity: int
    ) -> CartView: ...

    async def set_item(
        self, interaction: InteractionRef, product_id: str, variant_id: str, quantity: int
    ) -> CartView: ...

    async def apply_coupon(self, interaction: InteractionRef, code: str) -> CartView: ...

    async def remove_coupon(self, interaction: InteractionRef) -> CartView: ...

    async def cancel_cart(self, interaction: InteractionRef) -> None: ...

    async def bind_cart_channel(self, cart_id: str, channel_id: str, message_id: str) -> None:
        """Where the cart's private channel and message are (so they can be refreshed)."""
        ...

    async def pay(self, interaction: InteractionRef) -> PaymentStart:
        """Checkout and the PIX charge for the buyer's cart (the same charge when pressed
        again while it is open)."""
        ...

    async def get_order(self, order_id: str) -> Order: ...

    async def check_payment(self, order_id: str) -> Order:
        """"Já paguei": the platform asks the gateway about the order's charge now, and
        returns the order as it is after that."""
        ...

    # -- cart channels (the janitor) -----------------------------------------------------------
    async def carts_with_open_channels(self) -> list[dict[str, Any]]:
        """Ended carts whose channel is still open: [{id, state, buyer_id, channel_id,
        closed_at, order_id, order_status, keep_until}]. `keep_until` (ISO time or None): a
        delivery was made in the channel, which stays readable until then."""
        ...

    async def acknowledge_delivery(self, order_id: str, interaction: InteractionRef) -> bool:
        """The buyer pressed "Recebi" under a delivery made in their cart channel: it may
        close now. Only the order's own buyer counts (another's order: NotFoundError)."""
        ...

    async def send_purchases(self, interaction: InteractionRef) -> int:
        """`/minhas-compras`: the platform answers the buyer's deferred interaction itself,
        ephemerally, with their delivered keys (they never pass through the bot). Returns how
        many orders were listed."""
        ...

    async def mark_cart_channel_closed(self, cart_id: str) -> None: ...

    async def staff_confirm(self, cart_id: str, *, interaction: InteractionRef) -> Order:
        """"Confirmar pagamento" pressed in a cart. The platform decides: the instance must
        have manual confirmation on (a portal setting), and Discord itself must say the maker
        of `interaction` is staff and not the cart's buyer; else Forbidden. Audited; no wallet
        credit."""
        ...

    # -- the seller's commands -------------------------------------------------------------------
    async def list_products(self) -> list[Product]: ...

    async def get_product(self, product_id: str) -> Product: ...

    async def create_product(
        self, data: dict[str, Any], *, interaction: InteractionRef
    ) -> Product: ...

    async def update_product(
        self, product_id: str, changes: dict[str, Any], *, interaction: InteractionRef
    ) -> Product: ...

    async def remove_product(self, product_id: str, *, interaction: InteractionRef) -> Product: ...

    async def record_posts(
        self, product_id: str, posts: list[dict[str, str]], *, interaction: InteractionRef
    ) -> None: ...

    async def stock_counts(self) -> dict[str, dict[str, int]]: ...

    async def import_stock(
        self, product_id: str, variant_id: str, data: bytes | str, *,
        interaction: InteractionRef,
    ) -> ImportReport:
        """One key per line (a pasted list, or an attached file's bytes)."""
        ...

    async def send_keys(
        self, variant_id: str, *, interaction: InteractionRef, limit: int = 20
    ) -> int:
        """`/loja estoque ver mostrar_chaves`: the platform shows the variant's available keys
        to the seller in an ephemeral follow-up of their deferred interaction (audited); the
        keys never pass through the bot. Returns how many were shown."""
        ...

    async def list_coupons(self, *, interaction: InteractionRef) -> list[Coupon]: ...

    async def create_coupon(
        self, data: dict[str, Any], *, interaction: InteractionRef
    ) -> Coupon: ...

    async def set_coupon_active(
        self, code: str, active: bool, *, interaction: InteractionRef
    ) -> Coupon: ...

    async def list_orders(
        self, *, interaction: InteractionRef, status: str | None = None
    ) -> list[Order]: ...

    # -- subscriptions ---------------------------------------------------------------------------
    async def list_subscriptions(self, interaction: InteractionRef) -> list[dict[str, Any]]:
        """The buyer's subscriptions: [{id, product, variant, status, ends_at, card}]."""
        ...

    async def renew_subscription(
        self, interaction: InteractionRef, subscription_id: str
    ) -> PaymentStart:
        """"Renovar": a cart with the subscription's variant, checked out to its PIX. The end
        date moves only when that PIX is paid."""
        ...

    async def start_card_renewal(
        self, interaction: InteractionRef, subscription_id: str
    ) -> dict[str, Any]:
        """Automatic card renewal where the seller enables it: {"url"} where the buyer
        authorises it at Mercado Pago."""
        ...

    async def cancel_card_renewal(
        self, interaction: InteractionRef, subscription_id: str
    ) -> bool:
        """Stop the automatic card renewal (the paid period stays)."""
        ...

    async def member_joined(self, member_id: str) -> int:
        """A member joined the guild: the platform gives back the roles of their live
        subscriptions (its own records decide). Returns how many subscriptions that touched."""
        ...

    # -- the runtime itself ----------------------------------------------------------------------
    async def heartbeat(self, beat: Heartbeat) -> None:
        """Alive (and how), or why it is stopping. The runtime monitor reads these."""
        ...

    async def log(self, lines: list[dict[str, str]]) -> None:
        """A runtime's warnings and errors ([{level, logger, text}]), which the platform logs
        under the instance's name, as text."""
        ...

    async def close(self) -> None:
        """Release connections (the HTTP adapter's session)."""
        ...
