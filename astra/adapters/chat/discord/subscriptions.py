"""The buyer's side of subscriptions: `/minhas-assinaturas`, "Renovar" (from a reminder DM or the
command), card auto-renewal on and off, and member joins forwarded to the platform.

The bot decides nothing here: dates, roles and prices are the platform's. A renewal is a cart
checked out to its PIX, whose end date moves only when the platform sees it paid.
"""

from __future__ import annotations

import re

import interactions
from interactions import ComponentContext

from astra.adapters.chat.discord import ui
from astra.adapters.chat.discord.context import BotContext, friendly, interaction_of
from astra.adapters.chat.discord.texts import t
from astra.domain.timestamps import parse_iso
from astra.logs import get_logger
from astra.ports.instance_api import InstanceAPIUnavailable

log = get_logger("astra.bot")

RENEW_PREFIX = "astra:sub:renew:"
CARD_PREFIX = "astra:sub:card:"
CARD_CANCEL_PREFIX = "astra:sub:cardcancel:"


def subscriptions_text(subs: list[dict], language: str) -> str:
    if not subs:
        return t(language, "my_subs_none")
    lines = [t(language, "my_subs_title")]
    for sub in subs:
        when = parse_iso(sub.get("ends_at"))
        ts = int(when.timestamp()) if when else 0
        if sub["status"] == "active":
            card = t(language, "my_subs_card") if sub.get("card") in ("pending", "authorized") \
                else ""
            lines.append(t(language, "my_subs_active", product=sub["product"],
                           variant=sub["variant"], ts=ts, card=card))
        else:
            lines.append(t(language, "my_subs_ended", product=sub["product"],
                           variant=sub["variant"], ts=ts))
    return "\n".join(lines)[:2000]


def subscription_buttons(subs: list[dict], language: str, card_enabled: bool) -> list:
    rows = []
    for sub in subs[:5]:  # a message holds five rows
        label = f"{t(language, 'btn_renew')}: {sub['product']}"[:80]
        row = [interactions.Button(style=interactions.ButtonStyle.SUCCESS, label=label,
                                   custom_id=f"{RENEW_PREFIX}{sub['id']}")]
        if sub.get("card") in ("pending", "authorized"):
            row.append(interactions.Button(style=interactions.ButtonStyle.DANGER,
                                           label=t(language, "btn_card_cancel")[:80],
                                           custom_id=f"{CARD_CANCEL_PREFIX}{sub['id']}"))
        elif card_enabled and sub["status"] == "active":
            row.append(interactions.Button(style=interactions.ButtonStyle.SECONDARY,
                                           label=t(language, "btn_card_start")[:80],
                                           custom_id=f"{CARD_PREFIX}{sub['id']}"))
        rows.append(interactions.ActionRow(*row))
    return rows


class SubscriptionsExtension(interactions.Extension):
    def __init__(self, bot: interactions.Client, bot_ctx: BotContext) -> None:
        self.bot_ctx = bot_ctx

    @interactions.slash_command(
        name="minhas-assinaturas",
        description="Ver suas assinaturas e até quando valem (só você vê)",
        dm_permission=False,
    )
    @friendly
    async def my_subscriptions(self, ctx: interactions.SlashContext) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        language = await bot.language()
        subs = await bot.api.list_subscriptions(interaction_of(ctx))
        settings = await bot.settings()
        card = bool(settings.get("subscription_card_renewal"))
        await ctx.send(subscriptions_text(subs, language),
                       components=subscription_buttons(subs, language, card) or None,
                       ephemeral=True)

    @interactions.component_callback(re.compile(r"^astra:sub:renew:"))
    @friendly
    async def renew(self, ctx: ComponentContext) -> None:
        """From a reminder DM (or the command): a cart for the same variant, straight to the
        PIX, posted where the buyer clicked."""
        bot = self.bot_ctx
        await ctx.defer(ephemeral=ctx.guild_id is not None)
        language = await bot.language()
        start = await bot.api.renew_subscription(
            interaction_of(ctx), ctx.custom_id.removeprefix(RENEW_PREFIX)
        )
        if start.charge is None:
            await ctx.send(t(language, "paid", order=start.order.id), ephemeral=True)
            return
        message = ui.pix_message(start.order, start.charge, language, sandbox=start.sandbox)
        await bot.chat.send_message(str(ctx.channel_id), message)
        await ctx.send(t(language, "renew_pix_sent"), ephemeral=True)

    @interactions.component_callback(re.compile(r"^astra:sub:card:"))
    @friendly
    async def start_card(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        language = await bot.language()
        answer = await bot.api.start_card_renewal(
            interaction_of(ctx), ctx.custom_id.removeprefix(CARD_PREFIX)
        )
        await ctx.send(t(language, "card_link", url=answer.get("url") or "-"), ephemeral=True)

    @interactions.component_callback(re.compile(r"^astra:sub:cardcancel:"))
    @friendly
    async def cancel_card(self, ctx: ComponentContext) -> None:
        bot = self.bot_ctx
        await ctx.defer(ephemeral=True)
        await bot.api.cancel_card_renewal(
            interaction_of(ctx), ctx.custom_id.removeprefix(CARD_CANCEL_PREFIX)
        )
        await ctx.send(t(await bot.language(), "card_cancelled"), ephemeral=True)

    @interactions.listen(interactions.events.MemberAdd)
    async def member_added(self, event: interactions.events.MemberAdd) -> None:
        """Only with the GUILD_MEMBERS intent (see InstanceBot's `member_events`)."""
        try:
            await self.bot_ctx.api.member_joined(str(event.member.id))
        except InstanceAPIUnavailable as exc:
            # The keeper's next pass does not see joins; the buyer's command re-checks nothing
            # either, so say it: the seller can give the role back from the portal.
            log.warning("bot.member_join_lost", instance=self.bot_ctx.instance_id,
                        error=str(exc))
