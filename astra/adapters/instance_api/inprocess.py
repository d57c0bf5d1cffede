"""The instance API on the platform's own services, in this process.

What a bot uses when it runs inside the platform (tests, one-process development), and what the
internal API's server calls for every request a runtime makes over HTTP: one implementation of
what each call means, whichever way it arrives. Every call is bound to the one instance this
object was made for; ids a caller passes are looked up inside that instance only, so another
instance's cart, order or product is simply "not found".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from astra.adapters.chat.discord.rest import DiscordRest
from astra.adapters.chat.discord.texts import t
from astra.domain.cart import Cart
from astra.domain.catalog import Product
from astra.domain.coupon import Coupon
from astra.domain.errors import Forbidden, InvalidInput, NotFoundError
from astra.domain.order import Order
from astra.domain.services.instances import PORTAL_ONLY_SETTINGS, SETTINGS_ID, settings_of
from astra.domain.services.sales import CartView
from astra.domain.stock import ImportReport, KeyState
from astra.domain.timestamps import iso, parse_iso
from astra.logs import get_logger
from astra.plugins.delivery import split_message
from astra.ports.chat import ChatError
from astra.ports.instance_api import Heartbeat, PaymentStart

# How many follow-ups one answer may take (each at most Discord's 2,000 characters).
MAX_FOLLOWUPS = 5


def split_lines(lines: list[str]) -> list[str]:
    """Lines packed into at most MAX_FOLLOWUPS messages, never cutting a line (a key) across
    two of them: the delivery plugin's own splitting."""
    return split_message("\n".join(lines))[:MAX_FOLLOWUPS]


def purchases_messages(purchases: list[dict[str, Any]], language: str) -> list[str]:
    """`/minhas-compras` as at most MAX_FOLLOWUPS messages, newest orders first; a key is
    never cut across two messages."""
    if not purchases:
        return [t(language, "my_purchases_none")]
    lines = [t(language, "my_purchases_title")]
    for purchase in purchases:
        when = f"<t:{int(parse_iso(purchase['delivered_at']).timestamp())}:d>" \
            if parse_iso(purchase.get("delivered_at")) else "-"
        lines.append(t(language, "my_purchases_order", order=purchase["order_id"], when=when))
        for line in purchase["lines"]:
            lines.append(f"• {line['product']} — {line['variant']} ×{line['quantity']}")
            lines += [f"  `{key}`" for key in line["keys"]]
            if line["content"]:
                lines.append(f"  {line['content']}")
    return split_lines(lines)

_runtime_log = get_logger("astra.runtime_log")

P = ParamSpec("P")
R = TypeVar("R")


class HeartbeatBoard:
    """The last heartbeat of every runtime, as the internal API received it. In memory: a
    platform restart forgets them, and runtimes beat again within seconds (the monitor gives a
    runtime a starting grace meanwhile). Read by the runtime monitor."""

    def __init__(self) -> None:
        self._beats: dict[str, dict[str, Any]] = {}

    def record(self, instance_id: str, beat: Heartbeat) -> None:
        self._beats[instance_id] = {
            "instance_id": instance_id,
            "pid": beat.pid,
            "ready_at": beat.ready_at,
            "at": time.time(),
            "latency_ms": beat.latency_ms,
            "guilds": beat.guilds,
            "bot_user": beat.bot_user,
            "error": beat.error,
        }

    def __call__(self, instance_id: str) -> dict[str, Any] | None:
        return self._beats.get(instance_id)


class InProcessInstanceAPI:
    """`InstanceAPI` for one instance, on the container's services."""

    def __init__(self, container: Any, instance_id: str) -> None:
        self.container = container
        self.instance_id = instance_id

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        # Services block (store locks, fsync, gateway SDK): off the event loop.
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _service(self, name: str) -> Any:
        return getattr(self.container, name)()

    # -- settings ----------------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        with self.container.store().instance(self.instance_id, write=False) as uow:
            settings = settings_of(uow.settings.get(SETTINGS_ID))
        for private in ("owner_id", "created_at"):
            settings.pop(private, None)
        settings["payments_sandbox"] = bool(
            getattr(self.container.gateway(), "simulated", False)
        )
        # Where `/loja portal` sends the seller.
        settings["portal_url"] = self.container.settings().public_url or ""
        return settings

    async def settings(self) -> dict[str, Any]:
        return await self._run(self._settings)

    async def update_settings(self, changes: dict[str, Any], *, actor: str) -> dict[str, Any]:
        refused = sorted(set(changes) & PORTAL_ONLY_SETTINGS)
        if refused:
            raise Forbidden("invalid_field", field=f"{refused[0]} (portal only)")
        await self._run(
            self._service("instances").update_settings, self.instance_id, changes, actor=actor
        )
        return await self.settings()

    async def bind_guild(self, guild_id: str, instance_key: str, *, actor: str) -> bool:
        instances = self._service("instances")
        if not await self._run(instances.verify_instance_key, self.instance_id, instance_key):
            return False
        await self._run(instances.bind_guild, self.instance_id, guild_id, actor=actor)
        return True

    # -- the buyer's cart --------------------------------------------------------------------------

    async def get_cart(self, buyer_id: str) -> CartView | None:
        return await self._run(self._service("sales").get_cart, self.instance_id, buyer_id)

    async def get_cart_by_id(self, cart_id: str) -> Cart:
        return await self._run(self._service("sales").get_cart_by_id, self.instance_id, cart_id)

    async def add_item(
        self, buyer_id: str, product_id: str, variant_id: str, quantity: int, *, username: str
    ) -> CartView:
        return await self._run(
            self._service("sales").add_item,
            self.instance_id,
            buyer_id,
            product_id,
            variant_id,
            quantity,
            username=username,
        )

    async def set_item(
        self, buyer_id: str, product_id: str, variant_id: str, quantity: int
    ) -> CartView:
        return await self._run(
            self._service("sales").set_item,
            self.instance_id,
            buyer_id,
            product_id,
            variant_id,
            quantity,
        )

    async def apply_coupon(self, buyer_id: str, code: str) -> CartView:
        return await self._run(
            self._service("sales").apply_coupon, self.instance_id, buyer_id, code
        )

    async def remove_coupon(self, buyer_id: str) -> CartView:
        return await self._run(self._service("sales").remove_coupon, self.instance_id, buyer_id)

    async def cancel_cart(self, buyer_id: str) -> None:
        await self._run(self._service("sales").cancel_cart, self.instance_id, buyer_id)

    async def bind_cart_channel(self, cart_id: str, channel_id: str, message_id: str) -> None:
        await self._run(
            self._service("sales").bind_cart_channel,
            self.instance_id,
            cart_id,
            channel_id,
            message_id,
        )

    async def pay(self, buyer_id: str) -> PaymentStart:
        order, charge = await self._run(
            self._service("payments").pay_cart, self.instance_id, buyer_id
        )
        sandbox = bool(getattr(self.container.gateway(), "simulated", False))
        return PaymentStart(order=order, charge=charge, sandbox=sandbox)

    async def get_order(self, order_id: str) -> Order:
        return await self._run(self._service("sales").get_order, self.instance_id, order_id)

    async def check_payment(self, order_id: str) -> Order:
        order = await self.get_order(order_id)
        if order.status.value == "pending" and order.charge_id:
            # The charge id comes from the platform's own record of this instance's order,
            # never from the caller; the gateway's answer is what counts.
            await self._run(self._service("payments").handle_notification, order.charge_id)
            order = await self.get_order(order_id)
        return order

    # -- cart channels -----------------------------------------------------------------------------

    def _carts_with_open_channels(self) -> list[dict[str, Any]]:
        sales = self._service("sales")
        out = []
        for cart in sales.carts_with_open_channels(self.instance_id):
            status = None
            if cart.get("order_id"):
                try:
                    status = sales.get_order(self.instance_id, cart["order_id"]).status.value
                except NotFoundError:
                    status = None
            keep = None
            if cart["state"] == "paid":
                keep = self._service("delivery").channel_keep_until(
                    self.instance_id, cart, cart.get("order_id")
                )
            out.append(
                {
                    "id": cart["id"],
                    "state": cart["state"],
                    "buyer_id": cart["buyer_id"],
                    "channel_id": cart["channel_id"],
                    "closed_at": cart.get("closed_at"),
                    "order_id": cart.get("order_id"),
                    "order_status": status,
                    "keep_until": iso(keep),
                }
            )
        return out

    async def carts_with_open_channels(self) -> list[dict[str, Any]]:
        return await self._run(self._carts_with_open_channels)

    async def acknowledge_delivery(self, order_id: str, buyer_id: str) -> bool:
        return await self._run(
            self._service("delivery").acknowledge, self.instance_id, order_id, buyer_id
        )

    async def send_purchases(self, buyer_id: str, interaction_token: str) -> int:
        purchases = await self._run(
            self._service("delivery").purchases_of, self.instance_id, buyer_id
        )
        settings = await self.settings()
        language = settings.get("language") or "pt-BR"
        await self._followups(interaction_token, purchases_messages(purchases, language))
        return len(purchases)

    async def _followups(self, interaction_token: str, messages: list[str]) -> None:
        """Ephemeral follow-ups to an interaction the bot deferred, sent by the platform with
        the instance's own application: what only its user may read skips the bot."""
        token = await self._run(self._service("instances").bot_token, self.instance_id)
        doc = await self._run(self._service("instances").get, self.instance_id)
        application_id = str((doc.get("bot_profile") or {}).get("application_id") or "")
        if not token or not application_id:
            raise InvalidInput("invalid_field", field="bot_token")  # no bot to answer with
        async with DiscordRest(token, self.container.settings().discord_api_base) as discord:
            try:
                for content in messages:
                    await discord.followup(
                        application_id, interaction_token, content, ephemeral=True
                    )
            except ChatError as exc:
                # An expired or foreign interaction token: nothing was shown to anyone.
                raise InvalidInput("invalid_field", field="interaction_token") from exc

    async def mark_cart_channel_closed(self, cart_id: str) -> None:
        await self._run(
            self._service("sales").mark_cart_channel_closed, self.instance_id, cart_id
        )

    async def staff_confirm(
        self, cart_id: str, member_roles: list[str], *, actor: str
    ) -> Order:
        staff_id = actor.rsplit(":", 1)[-1]
        service = self._service("manual_confirmation")
        # Cheap refusals first (the setting, the claimed roles, the cart's own buyer)...
        await self._run(service.check, self.instance_id, cart_id, staff_id, member_roles)
        # ...then Discord's own word on the member's roles: a runtime may claim anything.
        roles = await self._member_roles(staff_id)
        return await self._run(
            service.confirm, self.instance_id, cart_id, staff_id=staff_id,
            staff_roles=[r for r in member_roles if r in roles],
        )

    async def _member_roles(self, user_id: str) -> set[str]:
        guild = (await self.settings()).get("guild_id")
        token = await self._run(self._service("instances").bot_token, self.instance_id)
        if not guild or not token:
            raise Forbidden("staff_only")
        async with DiscordRest(token, self.container.settings().discord_api_base) as discord:
            try:
                member = await discord.member(str(guild), user_id)
            except ChatError:
                raise Forbidden("staff_only") from None
        return {str(r) for r in member.get("roles") or []}

    # -- the seller's commands ---------------------------------------------------------------------

    async def list_products(self) -> list[Product]:
        return await self._run(self._service("catalog").list_products, self.instance_id)

    async def get_product(self, product_id: str) -> Product:
        return await self._run(self._service("catalog").get_product, self.instance_id, product_id)

    async def create_product(self, data: dict[str, Any], *, actor: str) -> Product:
        return await self._run(
            self._service("catalog").create_product, self.instance_id, data, actor=actor
        )

    async def update_product(
        self, product_id: str, changes: dict[str, Any], *, actor: str
    ) -> Product:
        return await self._run(
            self._service("catalog").update_product,
            self.instance_id,
            product_id,
            changes,
            actor=actor,
        )

    async def remove_product(self, product_id: str, *, actor: str) -> Product:
        return await self._run(
            self._service("catalog").remove_product, self.instance_id, product_id, actor=actor
        )

    async def record_posts(self, product_id: str, posts: list[dict[str, str]]) -> None:
        await self._run(
            self._service("catalog").record_posts, self.instance_id, product_id, posts
        )

    async def stock_counts(self) -> dict[str, dict[str, int]]:
        return await self._run(self._service("catalog").stock_counts, self.instance_id)

    async def import_stock(
        self, product_id: str, variant_id: str, data: bytes | str, *, actor: str
    ) -> ImportReport:
        return await self._run(
            self._service("catalog").import_stock,
            self.instance_id,
            product_id,
            variant_id,
            data,
            actor=actor,
        )

    async def send_keys(
        self, variant_id: str, interaction_token: str, *, actor: str, limit: int = 20
    ) -> int:
        keys = await self._run(
            self._service("catalog").reveal_keys,
            self.instance_id,
            variant_id,
            KeyState.AVAILABLE,
            actor=actor,
            limit=limit,
        )
        language = (await self.settings()).get("language") or "pt-BR"
        products = await self.list_products()
        label = next(
            (f"**{p.name} — {v.name}**" for p in products for v in p.variants
             if v.id == variant_id),
            f"**{variant_id}**",
        )
        lines = [label, *([f"`{k['key']}`" for k in keys] or [t(language, "no_keys_to_show")])]
        await self._followups(interaction_token, split_lines(lines))
        return len(keys)

    async def list_coupons(self) -> list[Coupon]:
        return await self._run(self._service("coupons").list, self.instance_id)

    async def create_coupon(self, data: dict[str, Any], *, actor: str) -> Coupon:
        return await self._run(
            self._service("coupons").create, self.instance_id, data, actor=actor
        )

    async def set_coupon_active(self, code: str, active: bool, *, actor: str) -> Coupon:
        return await self._run(
            self._service("coupons").set_active, self.instance_id, code, active, actor=actor
        )

    async def list_orders(self, *, status: str | None = None) -> list[Order]:
        return await self._run(
            self._service("sales").list_orders, self.instance_id, status=status
        )

    # -- the runtime itself ------------------------------------------------------------------------

    async def log(self, lines: list[dict[str, str]]) -> None:
        # Text from an untrusted runtime: logged under its instance's name (and redacted like
        # every log line), never parsed or acted on.
        for line in lines:
            getattr(_runtime_log, line["level"])(
                "runtime.log", instance=self.instance_id, logger=line["logger"],
                text=line["text"],
            )

    async def heartbeat(self, beat: Heartbeat) -> None:
        self.container.heartbeats().record(self.instance_id, beat)

    async def close(self) -> None:
        return None
