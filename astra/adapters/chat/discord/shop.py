"""The buyer's journey: product select -> private cart -> quantity, coupon -> PIX -> paid."""

from __future__ import annotations

import re

import interactions
from interactions import ComponentContext, ModalContext

from astra.adapters.chat.discord import ui
from astra.adapters.chat.discord.context import BotContext, friendly, interaction_of
from astra.adapters.chat.discord.texts import t
from astra.domain.errors import DomainError, InvalidInput
from astra.domain.services.sales import CartView
from astra.domain.timestamps import parse_iso
from astra.ports.chat import ChatError, OutgoingMessage

CART_CHANNEL_PREFIX = "carrinho-"


def _cart_channel_name(ctx: interactions.BaseContext) -> str:
    name = re.sub(r"[^a-z0-9-]", "", str(ctx.author.username).lower())[:40] or "cliente"
    return f"{CART_CHANNEL_PREFIX}{name}"


class ShopExtension(interactions.Extension):
    def __init__(self, bot: interactions.Client, bot_ctx: BotContext) -> None:
        self.bot_ctx = bot_ctx

    # -- helpers ---------------------------------------------------------------------------------

    async def _show_cart(
        self, ctx: interactions.BaseContext, view: CartView, language: str, *, fresh: bool = False
    ) -> str:
        """Create the buyer's private cart channel if needed, and refresh its cart message.
        Returns the channel id. `fresh`: the cart was created by this very interaction, so no
        earlier attempt can have opened a channel for it."""
        bot = self.bot_ctx
        cart = view.cart
        settings = await bot.settings()
        message = ui.cart_message(view, language, settings)
        if cart.channel_id and cart.message_id:
            try:
                await bot.chat.edit_message(cart.channel_id, cart.message_id, message)
                return cart.channel_id
            except ChatError:
                pass  # the channel was deleted by hand: open a new one
        channel_id = None if fresh else await self._unrecorded_channel(str(ctx.guild_id), cart.id)
        if channel_id is None:
            channel_id = await bot.chat.open_private_channel(
                str(ctx.guild_id),
                _cart_channel_name(ctx),
                member_ids=[str(ctx.author.id)],
                staff_role_id=settings.get("staff_role_id"),
                category_id=settings.get("cart_category_id"),
                topic=ui.cart_topic(cart.id),
            )
        message_id = await bot.chat.send_message(
            channel_id,
            OutgoingMessage(
                content=f"<@{ctx.author.id}>", embeds=message.embeds, components=message.components
            ),
        )
        await bot.api.bind_cart_channel(cart.id, channel_id, message_id)
        return channel_id

    async def _unrecorded_channel(self, guild_id: str, cart_id: str) -> str | None:
        """The channel an earlier attempt opened for this cart and stopped before recording
        (the bot was stopped in between): reused, so the buyer is not left with an empty
        second channel. Found by the topic every cart channel carries."""
        try:
            channels = await self.bot_ctx.chat.list_channels(guild_id)
        except ChatError:
            return None
        return next((c["id"] for c in channels if ui.cart_of_topic(c.get("topic")) == cart_id),
                    None)

    async def _refresh(self, ctx: interactions.BaseContext, view: CartView) -> None:
        language = await self.bot_ctx.language()
        await self._show_cart(ctx, view, language)

    # -- product post ------------------------------------------------------------------------

    @interactions.component_callback(re.compile(r"^astra:variant:"))
    @friendly
    async def choose_variant(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        product_id = ctx.custom_id.removeprefix(ui.VARIANT_PREFIX)
        variant_id = ctx.values[0]
        language = await bot.language()
        refused = ""
        started = bot.now()
        try:
            view = await bot.api.add_item(interaction_of(ctx), product_id, variant_id, 1)
        except DomainError as exc:
            # A buyer who already has a cart is taken to it with the reason: the usual case is
            # "at most N", from a buyer picking again because the cart channel never opened (the
            # bot stopped between reserving the key and creating the channel).
            existing = await bot.api.get_cart(interaction_of(ctx))
            if existing is None:
                raise
            view, refused = existing, exc.message(language)
        fresh = (parse_iso(view.cart.created_at) or started) >= started
        channel_id = await self._show_cart(ctx, view, language, fresh=fresh)
        text = f"{refused}\n{t(language, 'cart_here', channel=f'<#{channel_id}>')}" if refused \
            else t(language, "added", channel=f"<#{channel_id}>")
        await ctx.send(text, ephemeral=True)

    # -- cart buttons ------------------------------------------------------------------------

    @interactions.component_callback("astra:cart:quantity")
    @friendly
    async def quantity(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        # A modal must be the first answer, so there is no deferral for the platform to ask
        # Discord about: the lines come from the cart this channel shows (what it already
        # shows anyone in it); the change itself is the submitter's, checked on submit.
        view = await bot.api.cart_in_channel(str(ctx.channel_id))
        language = await bot.language()
        if view is None or not view.cart.lines:
            raise InvalidInput("cart_empty")
        fields = [
            interactions.ShortText(
                label=f"{ln.product_name} — {ln.variant_name}"[:45],
                custom_id=ln.variant_id,
                value=str(ln.quantity),
                min_length=1,
                max_length=3,
                required=True,
            )
            for ln in view.cart.lines[:5]
        ]
        await ctx.send_modal(
            interactions.Modal(
                *fields, title=t(language, "quantity_title"), custom_id="astra:modal:quantity"
            )
        )

    @interactions.modal_callback("astra:modal:quantity")
    @friendly
    async def quantity_submitted(self, ctx: ModalContext, **values: str) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        language = await bot.language()
        buyer = interaction_of(ctx)
        current = await bot.api.get_cart(buyer)
        if current is None:
            raise InvalidInput("cart_empty")
        lines = {ln.variant_id: ln for ln in current.cart.lines}
        view = current
        for variant_id, raw in ctx.responses.items():
            if variant_id not in lines:
                continue
            if not raw.strip().isdigit():
                raise InvalidInput("invalid_quantity", limit=100)
            view = await bot.api.set_item(
                buyer, lines[variant_id].product_id, variant_id, int(raw.strip())
            )
        await self._refresh(ctx, view)
        await ctx.send(t(language, "quantity_updated"), ephemeral=True)

    @interactions.component_callback("astra:cart:coupon")
    @friendly
    async def coupon(self, ctx: ComponentContext) -> None:
        language = await self.bot_ctx.language()
        await ctx.send_modal(
            interactions.Modal(
                interactions.ShortText(
                    label=t(language, "coupon_field"),
                    custom_id="code",
                    min_length=3,
                    max_length=32,
                    required=True,
                ),
                title=t(language, "coupon_title"),
                custom_id="astra:modal:coupon",
            )
        )

    @interactions.modal_callback("astra:modal:coupon")
    @friendly
    async def coupon_submitted(self, ctx: ModalContext, **values: str) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        code = ctx.responses.get("code", "")
        view = await bot.api.apply_coupon(interaction_of(ctx), code)
        await self._refresh(ctx, view)
        await ctx.send(
            t(await bot.language(), "coupon_applied", code=view.cart.coupon_code), ephemeral=True
        )

    @interactions.component_callback("astra:cart:uncoupon")
    @friendly
    async def remove_coupon(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        view = await bot.api.remove_coupon(interaction_of(ctx))
        await self._refresh(ctx, view)
        await ctx.send(t(await bot.language(), "coupon_removed"), ephemeral=True)

    @interactions.component_callback("astra:cart:pay")
    @friendly
    async def pay(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        buyer = interaction_of(ctx)
        language = await bot.language()
        start = await bot.api.pay(buyer)
        order, charge = start.order, start.charge
        if charge is None:  # nothing to pay (a 100% coupon): it is being delivered
            await ctx.send(t(language, "paid", order=order.id), ephemeral=True)
            return
        view = await bot.api.get_cart(buyer)
        if view is not None:
            await self._refresh(ctx, view)
        message = ui.pix_message(order, charge, language, sandbox=start.sandbox,
                                 settings=await bot.settings())
        channel = view.cart.channel_id if view and view.cart.channel_id else str(ctx.channel_id)
        await bot.chat.send_message(channel, message)
        await ctx.send(t(language, "pix_title"), ephemeral=True)

    @interactions.component_callback("astra:cart:cancel")
    @friendly
    async def cancel(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        await bot.api.cancel_cart(interaction_of(ctx))
        await ctx.send(t(await bot.language(), "cancelled"), ephemeral=True)
        # the janitor closes the channel on its next pass

    @interactions.component_callback(re.compile(r"^astra:staff:confirm:"))
    @friendly
    async def staff_confirm(self, ctx: ComponentContext) -> None:
        """"Confirmar pagamento" (staff): the platform checks the member's roles with Discord
        and refuses anyone else, the cart's buyer included."""
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        language = await bot.language()
        cart_id = ctx.custom_id.removeprefix(ui.STAFF_CONFIRM_PREFIX)
        order = await bot.api.staff_confirm(cart_id, interaction=interaction_of(ctx))
        await ctx.send(
            t(language, "staff_confirmed", order=order.id, staff=f"<@{ctx.author.id}>"),
            ephemeral=True,
        )

    @interactions.component_callback(ui.TERMS_ID)
    @friendly
    async def terms(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        language = await bot.language()
        text = ui.terms_text(await bot.settings(), language)
        await ctx.send(text or t(language, "no_terms"), ephemeral=True)

    # -- PIX message buttons -----------------------------------------------------------------

    @interactions.component_callback(re.compile(r"^astra:order:copy:"))
    @friendly
    async def copy_code(self, ctx: ComponentContext) -> None:
        """The bare code, alone in a message: what a phone's copy gesture wants."""
        bot = self.bot_ctx
        order = await bot.api.get_order(ctx.custom_id.rsplit(":", 1)[1])
        if order.buyer_id != str(ctx.author.id) or not order.charge:
            raise InvalidInput("cart_closed")
        await ctx.send(order.charge.get("qr_code") or "-", ephemeral=True)

    @interactions.component_callback(re.compile(r"^astra:order:received:"))
    @friendly
    async def received(self, ctx: ComponentContext) -> None:
        """"Recebi" under a delivery made in the cart channel: the channel may close."""
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        order_id = ctx.custom_id.rsplit(":", 1)[1]
        await bot.api.acknowledge_delivery(order_id, interaction_of(ctx))
        await ctx.send(t(await bot.language(), "received_thanks"), ephemeral=True)

    @interactions.slash_command(
        name="minhas-compras",
        description="Ver suas compras e chaves nesta loja (só você vê)",
        dm_permission=False,
    )
    @friendly
    async def my_purchases(self, ctx: interactions.SlashContext) -> None:
        """Any buyer, any time (a lost DM, a closed channel): the platform answers this
        interaction itself, so the keys never pass through the bot."""
        await ctx.defer(ephemeral=True)
        await self.bot_ctx.api.send_purchases(interaction_of(ctx))

    @interactions.component_callback(re.compile(r"^astra:order:check:"))
    @friendly
    async def check_payment(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        language = await bot.language()
        order = await bot.api.get_order(ctx.custom_id.rsplit(":", 1)[1])
        if order.buyer_id != str(ctx.author.id):
            raise InvalidInput("cart_closed")
        if order.status.value == "pending" and order.charge_id:
            # The platform asks the gateway now instead of waiting for the webhook.
            order = await bot.api.check_payment(order.id)
        if order.status.value in ("paid", "delivered", "waiting_stock"):
            await ctx.send(t(language, "paid", order=order.id), ephemeral=True)
        else:
            await ctx.send(t(language, "not_paid_yet"), ephemeral=True)
