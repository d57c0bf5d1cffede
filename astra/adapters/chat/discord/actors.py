"""Who made an interaction, and whether they are the shop's staff, asked of Discord itself.

A runtime that acts for a person hands the platform that person's interaction (id and token),
never their user id. The platform reads the interaction's original response from Discord
(`GET /webhooks/{application}/{token}/messages/@original`, which exists once the bot has
deferred): the token opens it only for the application it was issued to, so a token from
another bot, an expired one or a made-up one is refused by Discord, and the message's
`interaction_metadata` names the user Discord saw click. The metadata must be of the very
interaction named (its id), and that id, a snowflake, must be younger than a token lives.

Answers are kept for as long as the token lives (keyed by a hash of the token, never the token),
so the several calls one click makes cost one request to Discord. A staff decision is kept per
interaction too: one click, one decision, made from the member's and the guild's roles as
Discord has them now (`astra.domain.staff`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import aiohttp

from astra.adapters.chat.discord.rest import DiscordRest
from astra.domain.staff import facts_of, is_staff
from astra.ports.chat import ChatError, InteractionRef, InteractionUnverified, InteractionUser

DISCORD_EPOCH_MS = 1_420_070_400_000
# Discord's interaction tokens are valid for 15 minutes.
TOKEN_LIFETIME_S = 15 * 60
# Clocks disagree a little; an interaction "from the future" beyond this is not Discord's.
CLOCK_SKEW_S = 60
MAX_REMEMBERED = 20_000


def created_at(snowflake: str) -> float:
    """Seconds since the epoch at which Discord made the id."""
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000


@dataclass(frozen=True)
class _Seen:
    user: InteractionUser
    until: float  # monotonic


class InteractionActors:
    def __init__(self, api_base: str) -> None:
        self.api_base = api_base
        self._users: OrderedDict[str, _Seen] = OrderedDict()
        self._staff: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        # One keep-alive session per event loop: a click's question to Discord should not pay
        # for a new connection (a TLS handshake to discord.com) every time.
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession] = weakref.WeakKeyDictionary()

    def _discord(self, bot_token: str) -> DiscordRest:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            session = self._sessions[loop] = aiohttp.ClientSession()
        return DiscordRest(bot_token, self.api_base, session=session)

    async def close(self) -> None:
        """Close this loop's session (the internal API's shutdown)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    @staticmethod
    def _key(application_id: str, ref: InteractionRef) -> str:
        return hashlib.sha256(f"{application_id}:{ref.id}:{ref.token}".encode()).hexdigest()

    def _fresh_for(self, ref: InteractionRef) -> float:
        """How many seconds the interaction's token still lives; InteractionUnverified when
        its id is not a plausible, live Discord id."""
        if not ref.id.isdigit() or not 5 <= len(ref.id) <= 25:
            raise InteractionUnverified("malformed interaction id")
        # Wall time, not the domain's clock: Discord made the id and runs the token's life.
        now = time.time()
        made = created_at(ref.id)
        if made > now + CLOCK_SKEW_S:
            raise InteractionUnverified("interaction from the future")
        left = made + TOKEN_LIFETIME_S - now
        if left <= 0:
            raise InteractionUnverified("interaction expired")
        return left

    async def user_of(self, application_id: str, bot_token: str,
                      ref: InteractionRef) -> InteractionUser:
        """The user Discord says made `ref`, an interaction of `application_id`."""
        left = self._fresh_for(ref)
        key = self._key(application_id, ref)
        seen = self._users.get(key)
        if seen is not None and seen.until > time.monotonic():
            return seen.user
        try:
            async with self._discord(bot_token) as discord:
                message = await discord.original_response(application_id, ref.token)
        except ChatError as exc:
            if exc.retryable:
                raise
            raise InteractionUnverified(str(exc)) from None
        metadata = message.get("interaction_metadata")
        if not isinstance(metadata, dict) or str(metadata.get("id")) != ref.id:
            # A deferred update (or any message not made by this interaction) carries another
            # interaction's metadata, or none: it says nothing about who clicked now.
            raise InteractionUnverified("not the original response of this interaction")
        if str(message.get("application_id") or application_id) != application_id:
            raise InteractionUnverified("another application's message")
        user = metadata.get("user")
        if not isinstance(user, dict) or not str(user.get("id") or "").isdigit():
            raise InteractionUnverified("no user in the interaction")
        verified = InteractionUser(
            id=str(user["id"]),
            username=str(user.get("username") or "")[:100],
            bot=bool(user.get("bot")),
        )
        self._remember(self._users, key, _Seen(verified, time.monotonic() + left))
        return verified

    async def guild_of(self, application_id: str, bot_token: str, ref: InteractionRef) -> str:
        """The guild Discord says `ref` was made in (the channel of its original response):
        what a runtime says about where a command came from is not enough to bind a shop."""
        self._fresh_for(ref)
        try:
            async with self._discord(bot_token) as discord:
                message = await discord.original_response(application_id, ref.token)
                metadata = message.get("interaction_metadata") or {}
                if str(metadata.get("id")) != ref.id:
                    raise InteractionUnverified("not the original response of this interaction")
                channel = await discord.channel(str(message.get("channel_id") or ""))
        except ChatError as exc:
            if exc.retryable:
                raise
            raise InteractionUnverified(str(exc)) from None
        guild_id = str(channel.get("guild_id") or "")
        if not guild_id.isdigit():
            raise InteractionUnverified("not made in a guild")
        return guild_id

    async def is_staff(self, bot_token: str, guild_id: str, ref: InteractionRef,
                       user: InteractionUser, staff_role_id: str | None) -> bool:
        """Whether `user` (already verified as the maker of `ref`) is staff in `guild_id`."""
        key = "staff:" + hashlib.sha256(
            f"{guild_id}:{staff_role_id}:{ref.id}:{ref.token}".encode()).hexdigest()
        cached = self._staff.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if user.bot:
            return False
        async with self._discord(bot_token) as discord:
            try:
                member = await discord.member(guild_id, user.id)
            except ChatError as exc:
                if exc.retryable:
                    raise
                return False  # not a member of the bound guild
            guild = await discord.guild(guild_id)
        decision = is_staff(user.id, user_is_bot=user.bot, facts=facts_of(guild, member),
                            staff_role_id=staff_role_id)
        self._remember(self._staff, key, (time.monotonic() + self._fresh_for(ref), decision))
        return decision

    @staticmethod
    def _remember(cache: OrderedDict, key: str, value: object) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > MAX_REMEMBERED:
            cache.popitem(last=False)
