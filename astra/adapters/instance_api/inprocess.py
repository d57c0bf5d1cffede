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
from astra.domain.services.audit_log import record
from astra.domain.services.instances import PORTAL_ONLY_SETTINGS, SETTINGS_ID, settings_of
from astra.domain.services.sales import CartView
from astra.domain.stock import ImportReport, KeyState
from astra.domain.timestamps import iso, parse_iso
from astra.logs import get_logger
from astra.plugins.delivery import split_message
from astra.ports.chat import ChatError, InteractionRef, InteractionUnverified, InteractionUser
from astra.ports.instance_api import Heartbeat, InstanceAPIUnavailable, PaymentStart

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
    """`InstanceAPI` for one instance, on the container's services.

    Who acts is never taken from the caller: every operation done for a person names their
    interaction, and the platform asks Discord who made it (`InteractionActors`); what that
    person may do is decided here, from Discord's data and the platform's records (a buyer
    touches only their own cart, orders and subscriptions; the catalog, stock, coupons, posts,
    keys and staff confirmation are the shop's staff's, per `astra.domain.staff`)."""

    def __init__(self, container: Any, instance_id: str) -> None:
        self.container = container
        self.instance_id = instance_id

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        # Services block (store locks, fsync, gateway SDK): off the event loop.
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _service(self, name: str) -> Any:
        return getattr(self.container, name)()

    # -- who acts --------------------------------------------------------------------------------

    def _bot_identity(self) -> tuple[str, str]:
        instances = self._service("instances")
        token = instances.bot_token(self.instance_id)
        doc = instances.get(self.instance_id)
        profile = doc.get("bot_profile") or {}
        # Profiles stored before the application was recorded: a bot's id is its
        # application's for every bot made since 2016 (Discord's own rule for new apps).
        application_id = str(profile.get("application_id") or profile.get("id") or "")
        return token or "", application_id

    async def _who(self, interaction: InteractionRef,
                   identity: tuple[str, str] | None = None) -> InteractionUser:
        """The person who made `interaction`, as Discord says; Forbidden when Discord does not
        vouch for it (a made-up, expired or another bot's token). `identity`: the bot's token and
        application, when the caller read them already."""
        token, application_id = identity or await self._run(self._bot_identity)
        if not token or not application_id:
            raise Forbidden("interaction_unverified")
        try:
            return await self.container.actors().user_of(application_id, token, interaction)
        except InteractionUnverified as exc:
            await self._run(self._audit_refusal, None, "interaction_unverified", str(exc))
            raise Forbidden("interaction_unverified") from None
        except ChatError as exc:  # Discord unreachable or failing: nothing is known
            raise InstanceAPIUnavailable(f"discord: {exc}") from None

    async def _buyer(self, interaction: InteractionRef) -> InteractionUser:
        """The buyer who made `interaction` (never a bot user)."""
        user = await self._who(interaction)
        if user.bot:
            await self._run(self._audit_refusal, user.id, "bot_user", "buyer operation")
            raise Forbidden("staff_only")
        return user

    async def _staff(self, interaction: InteractionRef, action: str) -> str:
        """The audit actor of a staff member who made `interaction`; Forbidden (audited with
        the real user) for anyone else."""
        identity = await self._run(self._bot_identity)
        user = await self._who(interaction, identity)
        if not await self._is_staff(interaction, user, token=identity[0]):
            await self._run(self._audit_refusal, user.id, "staff_only", action)
            raise Forbidden("staff_only")
        return f"seller:discord:{user.id}"

    async def _is_staff(self, interaction: InteractionRef, user: InteractionUser,
                        *, guild_id: str | None = None, staff_role: bool = True,
                        token: str | None = None) -> bool:
        settings = await self._run(self._raw_settings)
        guild = guild_id or settings.get("guild_id")
        if token is None:
            token, _ = await self._run(self._bot_identity)
        if not guild or not token:
            return False
        try:
            return await self.container.actors().is_staff(
                token, str(guild), interaction, user,
                settings.get("staff_role_id") if staff_role else None,
            )
        except ChatError as exc:
            raise InstanceAPIUnavailable(f"discord: {exc}") from None

    def _audit_refusal(self, user_id: str | None, reason: str, action: str) -> None:
        with self.container.store().instance(self.instance_id) as uow:
            record(uow, at=self.container.clock().now(),
                   actor=f"discord:{user_id}" if user_id else "runtime",
                   action="runtime.refused", target=f"instance:{self.instance_id}",
                   reason=reason, operation=action[:80])
            uow.commit()

    # -- settings ----------------------------------------------------------------------------------

    def _raw_settings(self) -> dict[str, Any]:
        with self.container.store().instance(self.instance_id, write=False) as uow:
            return settings_of(uow.settings.get(SETTINGS_ID))

    def _settings(self) -> dict[str, Any]:
        settings = self._raw_settings()
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

    async def update_settings(
        self, changes: dict[str, Any], *, interaction: InteractionRef
    ) -> dict[str, Any]:
        refused = sorted(set(changes) & PORTAL_ONLY_SETTINGS)
        if refused:
            raise Forbidden("invalid_field", field=f"{refused[0]} (portal only)")
        actor = await self._staff(interaction, "update_settings")
        await self._run(
            self._service("instances").update_settings, self.instance_id, changes, actor=actor
        )
        return await self.settings()

    async def bind_guild(self, instance_key: str, *, interaction: InteractionRef) -> bool:
        """`/loja vincular`: the first binding, made from Discord. The guild is the one Discord
        says the interaction came from, its maker must manage that guild, and the instance key
        must match; an instance already bound elsewhere is moved on the portal only."""
        instances = self._service("instances")
        token, application_id = identity = await self._run(self._bot_identity)
        user = await self._who(interaction, identity)
        try:
            guild_id = await self.container.actors().guild_of(application_id, token, interaction)
        except InteractionUnverified:
            raise Forbidden("interaction_unverified") from None
        except ChatError as exc:
            raise InstanceAPIUnavailable(f"discord: {exc}") from None
        bound = (await self._run(self._raw_settings)).get("guild_id")
        if bound and str(bound) != guild_id:
            await self._run(self._audit_refusal, user.id, "rebind_on_portal", "bind_guild")
            raise Forbidden("rebind_on_portal")
        if not await self._run(instances.verify_instance_key, self.instance_id, instance_key):
            return False
        if not await self._is_staff(interaction, user, guild_id=guild_id, staff_role=False,
                                    token=token):
            await self._run(self._audit_refusal, user.id, "staff_only", "bind_guild")
            raise Forbidden("staff_only")
        if not bound:
            await self._run(instances.bind_guild, self.instance_id, guild_id,
                            actor=f"seller:discord:{user.id}")
        return True

    # -- the buyer's cart --------------------------------------------------------------------------

    async def get_cart(self, interaction: InteractionRef) -> CartView | None:
        buyer_id = (await self._buyer(interaction)).id
        return await self._run(self._service("sales").get_cart, self.instance_id, buyer_id)

    def _cart_in_channel(self, channel_id: str) -> CartView | None:
        with self.container.store().instance(self.instance_id, write=False) as uow:
            docs = [d for d in uow.carts.find(channel_id=channel_id)
                    if d.get("state") in ("open", "checkout")]
        if not docs:
            return None
        return self._service("sales").get_cart(self.instance_id, docs[0]["buyer_id"])

    async def cart_in_channel(self, channel_id: str) -> CartView | None:
        return await self._run(self._cart_in_channel, channel_id)

    async def get_cart_by_id(self, cart_id: str) -> Cart:
        return await self._run(self._service("sales").get_cart_by_id, self.instance_id, cart_id)

    async def add_item(
        self, interaction: InteractionRef, product_id: str, variant_id: str, quantity: int
    ) -> CartView:
        user = await self._buyer(interaction)
        return await self._run(
            self._service("sales").add_item,
            self.instance_id,
            user.id,
            product_id,
            variant_id,
            quantity,
            username=user.username,
        )

    async def set_item(
        self, interaction: InteractionRef, product_id: str, variant_id: str, quantity: int
    ) -> CartView:
        buyer_id = (await self._buyer(interaction)).id
        return await self._run(
            self._service("sales").set_item,
            self.instance_id,
            buyer_id,
            product_id,
            variant_id,
            quantity,
        )

    async def apply_coupon(self, interaction: InteractionRef, code: str) -> CartView:
        buyer_id = (await self._buyer(interaction)).id
        return await self._run(
            self._service("sales").apply_coupon, self.instance_id, buyer_id, code
        )

    async def remove_coupon(self, interaction: InteractionRef) -> CartView:
        buyer_id = (await self._buyer(interaction)).id
        return await self._run(self._service("sales").remove_coupon, self.instance_id, buyer_id)

    async def cancel_cart(self, interaction: InteractionRef) -> None:
        buyer_id = (await self._buyer(interaction)).id
        await self._run(self._service("sales").cancel_cart, self.instance_id, buyer_id)

    async def bind_cart_channel(self, cart_id: str, channel_id: str, message_id: str) -> None:
        await self._run(
            self._service("sales").bind_cart_channel,
            self.instance_id,
            cart_id,
            channel_id,
            message_id,
        )

    async def pay(self, interaction: InteractionRef) -> PaymentStart:
        buyer_id = (await self._buyer(interaction)).id
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

    async def acknowledge_delivery(self, order_id: str, interaction: InteractionRef) -> bool:
        buyer_id = (await self._buyer(interaction)).id
        return await self._run(
            self._service("delivery").acknowledge, self.instance_id, order_id, buyer_id
        )

    async def send_purchases(self, interaction: InteractionRef) -> int:
        # The keys go to the interaction Discord says this buyer made, so they reach only them.
        buyer_id = (await self._buyer(interaction)).id
        purchases = await self._run(
            self._service("delivery").purchases_of, self.instance_id, buyer_id
        )
        settings = await self.settings()
        language = settings.get("language") or "pt-BR"
        await self._followups(interaction.token, purchases_messages(purchases, language))
        return len(purchases)

    async def _followups(self, interaction_token: str, messages: list[str]) -> None:
        """Ephemeral follow-ups to an interaction the bot deferred, sent by the platform with
        the instance's own application: what only its user may read skips the bot."""
        token, application_id = await self._run(self._bot_identity)
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

    async def staff_confirm(self, cart_id: str, *, interaction: InteractionRef) -> Order:
        identity = await self._run(self._bot_identity)
        user = await self._who(interaction, identity)
        staff = await self._is_staff(interaction, user, token=identity[0])
        return await self._run(
            self._service("manual_confirmation").confirm, self.instance_id, cart_id,
            staff_id=user.id, is_staff=staff,
        )

    # -- the seller's commands ---------------------------------------------------------------------

    async def list_products(self) -> list[Product]:
        return await self._run(self._service("catalog").list_products, self.instance_id)

    async def get_product(self, product_id: str) -> Product:
        return await self._run(self._service("catalog").get_product, self.instance_id, product_id)

    async def create_product(
        self, data: dict[str, Any], *, interaction: InteractionRef
    ) -> Product:
        actor = await self._staff(interaction, "create_product")
        return await self._run(
            self._service("catalog").create_product, self.instance_id, data, actor=actor
        )

    async def update_product(
        self, product_id: str, changes: dict[str, Any], *, interaction: InteractionRef
    ) -> Product:
        actor = await self._staff(interaction, "update_product")
        return await self._run(
            self._service("catalog").update_product,
            self.instance_id,
            product_id,
            changes,
            actor=actor,
        )

    async def remove_product(self, product_id: str, *, interaction: InteractionRef) -> Product:
        actor = await self._staff(interaction, "remove_product")
        return await self._run(
            self._service("catalog").remove_product, self.instance_id, product_id, actor=actor
        )

    async def record_posts(
        self, product_id: str, posts: list[dict[str, str]], *, interaction: InteractionRef
    ) -> None:
        await self._staff(interaction, "record_posts")
        await self._run(
            self._service("catalog").record_posts, self.instance_id, product_id, posts
        )

    async def stock_counts(self) -> dict[str, dict[str, int]]:
        return await self._run(self._service("catalog").stock_counts, self.instance_id)

    async def import_stock(
        self, product_id: str, variant_id: str, data: bytes | str, *,
        interaction: InteractionRef,
    ) -> ImportReport:
        actor = await self._staff(interaction, "import_stock")
        return await self._run(
            self._service("catalog").import_stock,
            self.instance_id,
            product_id,
            variant_id,
            data,
            actor=actor,
        )

    async def send_keys(
        self, variant_id: str, *, interaction: InteractionRef, limit: int = 20
    ) -> int:
        # Shown to the interaction of a staff member Discord names, so only they read them.
        actor = await self._staff(interaction, "send_keys")
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
        await self._followups(interaction.token, split_lines(lines))
        return len(keys)

    async def list_coupons(self, *, interaction: InteractionRef) -> list[Coupon]:
        # Codes are the shop's secret until it hands them out: a 100% one is stock for free.
        await self._staff(interaction, "list_coupons")
        return await self._run(self._service("coupons").list, self.instance_id)

    async def create_coupon(self, data: dict[str, Any], *, interaction: InteractionRef) -> Coupon:
        actor = await self._staff(interaction, "create_coupon")
        return await self._run(
            self._service("coupons").create, self.instance_id, data, actor=actor
        )

    async def set_coupon_active(
        self, code: str, active: bool, *, interaction: InteractionRef
    ) -> Coupon:
        actor = await self._staff(interaction, "set_coupon_active")
        return await self._run(
            self._service("coupons").set_active, self.instance_id, code, active, actor=actor
        )

    async def list_orders(
        self, *, interaction: InteractionRef, status: str | None = None
    ) -> list[Order]:
        await self._staff(interaction, "list_orders")
        return await self._run(
            self._service("sales").list_orders, self.instance_id, status=status
        )

    # -- subscriptions -----------------------------------------------------------------------------

    async def list_subscriptions(self, interaction: InteractionRef) -> list[dict[str, Any]]:
        buyer_id = (await self._buyer(interaction)).id
        subs = await self._run(
            self._service("subscriptions").of_buyer, self.instance_id, buyer_id
        )
        now = self.container.clock().now()
        return [
            {
                "id": s.id,
                "product": s.product_name,
                "variant": s.variant_name,
                "status": "active" if s.live(now) else "ended",
                "ends_at": s.ends_at,
                "card": (s.card or {}).get("status"),
            }
            for s in subs
        ]

    async def renew_subscription(
        self, interaction: InteractionRef, subscription_id: str
    ) -> PaymentStart:
        buyer_id = (await self._buyer(interaction)).id
        order, charge = await self._run(
            self._service("subscriptions").renew, self.instance_id, buyer_id, subscription_id
        )
        sandbox = bool(getattr(self.container.gateway(), "simulated", False))
        return PaymentStart(order=order, charge=charge, sandbox=sandbox)

    async def start_card_renewal(
        self, interaction: InteractionRef, subscription_id: str
    ) -> dict[str, Any]:
        buyer_id = (await self._buyer(interaction)).id
        return await self._run(
            self._service("card_renewals").start, self.instance_id, buyer_id, subscription_id
        )

    async def cancel_card_renewal(
        self, interaction: InteractionRef, subscription_id: str
    ) -> bool:
        buyer_id = (await self._buyer(interaction)).id
        return await self._run(
            self._service("card_renewals").cancel, self.instance_id, subscription_id,
            buyer_id=buyer_id, actor=f"buyer:{buyer_id}",
        )

    async def member_joined(self, member_id: str) -> int:
        return await self._run(
            self._service("subscriptions").member_joined, self.instance_id, member_id
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
