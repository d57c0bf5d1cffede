"""The fake's world: users, guilds (roles, channels, members), DM channels, messages, uploaded
files and application commands.

Mutations made by tests here (add_guild, add_member, ...) emit the gateway events Discord would
send, through `emit` (wired to the gateway by FakeDiscord), and wake anything waiting in
`wait_for`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterable
from typing import Any

from . import permissions as P
from .entities import (
    CATEGORY,
    DM,
    GUILD_MEMBERS,
    GUILDS,
    TEXT,
    Channel,
    Guild,
    Member,
    Ref,
    Role,
    StoredFile,
    User,
    normalize_channel_name,
    normalize_overwrite,
    ref,
)
from .messages import NONCE_WINDOW, MessageStore
from .snowflakes import Snowflakes


class World(MessageStore):
    """Everything the fake Discord knows; one application, one bot user."""

    def __init__(self, *, bot_token: str, application_id: str, bot_user_id: str,
                 bot_username: str = "Astra") -> None:
        self.bot_token = bot_token
        self.application_id = str(application_id)
        self.ids = Snowflakes()
        self.users: dict[str, User] = {}
        self.guilds: dict[str, Guild] = {}
        self.channels: dict[str, Channel] = {}
        self.dm_channels: dict[str, str] = {}  # user id -> DM channel id
        self.channel_messages: dict[str, list[dict[str, Any]]] = {}
        self.message_channel: dict[str, str] = {}  # message id -> channel id
        self.files: dict[str, StoredFile] = {}
        # (channel id, author id, nonce) -> (monotonic time, message id), for enforce_nonce
        self.nonces: dict[tuple[str, str, str], tuple[float, str]] = {}
        self.nonce_window = NONCE_WINDOW
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id -> commands
        self.bot = self._put_user(User(str(bot_user_id), bot_username, bot_username, bot=True))
        self.cdn_base = ""  # set when the server starts
        # emit(event, data or data_for_intents(intents), required_intent or None)
        self.emit: Callable[[str, Any, int | None], None] = lambda *a: None
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    # --- waiting ----------------------------------------------------------------------------

    def changed(self) -> None:
        """Re-check every waiter; called after each REST call and each test-side mutation."""
        for check, future in list(self._waiters):
            if future.done():
                self._waiters.remove((check, future))
                continue
            try:
                result = check()
            except Exception as exc:  # a broken predicate should fail the waiting test
                future.set_exception(exc)
                continue
            if result:
                future.set_result(result)

    async def wait_for(self, check: Callable[[], Any], timeout: float = 5.0,
                       what: str = "condition") -> Any:
        """Wait until `check()` is truthy (re-checked on every state change); return its value."""
        result = check()
        if result:
            return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (check, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"fake Discord: timed out after {timeout}s waiting for {what}") \
                from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    # --- test-side setup --------------------------------------------------------------------

    def add_user(self, username: str, *, user_id: Ref | None = None,
                 global_name: str | None = None, bot: bool = False,
                 dms_closed: bool = False) -> User:
        user = User(ref(user_id) if user_id is not None else self.ids.next(), username,
                    global_name if global_name is not None else username, bot, dms_closed)
        self._put_user(user)
        self.changed()
        return user

    def set_dms_closed(self, user: Ref, closed: bool = True) -> None:
        """A user who turned off DMs from server members: sending them a DM fails with 50007."""
        self.user(user).dms_closed = closed

    def add_guild(self, name: str, *, guild_id: Ref | None = None, owner: Ref | None = None,
                  bot_permissions: int = P.DEFAULT_BOT,
                  everyone_permissions: int = P.DEFAULT_EVERYONE,
                  locale: str = "pt-BR", default_channels: bool = True) -> Guild:
        """A guild the bot is in: @everyone, the bot's managed role and member, an owner member
        and (like a new Discord server) a "Text Channels" category with #general."""
        gid = ref(guild_id) if guild_id is not None else self.ids.next()
        owner_user = self.user(owner) if owner is not None else self.add_user(f"{name}-owner")
        guild = Guild(gid, name, owner_user.id, preferred_locale=locale)
        guild.roles[gid] = Role(gid, gid, "@everyone", everyone_permissions, 0)
        bot_role = Role(self.ids.next(), gid, self.bot.username, bot_permissions, 1,
                        managed=True, bot_id=self.bot.id)
        guild.roles[bot_role.id] = bot_role
        self.guilds[gid] = guild
        guild.members[owner_user.id] = Member(gid, owner_user.id)
        guild.members[self.bot.id] = Member(gid, self.bot.id, [bot_role.id])
        if default_channels:
            category = self._new_channel(guild, "Text Channels", CATEGORY)
            general = self._new_channel(guild, "general", TEXT, parent_id=category.id)
            guild.system_channel_id = general.id
        # Rendered per session: without GUILD_MEMBERS only the bot's own member is listed.
        self.emit("GUILD_CREATE", lambda intents: self.guild_create_json(guild, intents), GUILDS)
        self.changed()
        return guild

    def add_role(self, guild: Ref, name: str, *, permissions: int = 0,
                 position: int | None = None, color: int = 0, hoist: bool = False,
                 mentionable: bool = False) -> Role:
        """A role; new roles go just above @everyone (position 1), like Discord's."""
        g = self.guild(guild)
        role = self._insert_role(g, name, permissions, position, color, hoist, mentionable)
        self.changed()
        return role

    def add_channel(self, guild: Ref, name: str, *, type: int = TEXT,
                    parent: Ref | None = None, topic: str | None = None,
                    overwrites: list[dict[str, Any]] | None = None,
                    position: int | None = None) -> Channel:
        g = self.guild(guild)
        channel = self._new_channel(
            g, normalize_channel_name(name, type), type,
            parent_id=ref(parent) if parent is not None else None, topic=topic,
            overwrites=[normalize_overwrite(o) for o in overwrites]
            if overwrites is not None else None,
            position=position,
        )
        self.emit("CHANNEL_CREATE", channel.to_json(self), GUILDS)
        self.changed()
        return channel

    def add_category(self, guild: Ref, name: str, **kwargs: Any) -> Channel:
        return self.add_channel(guild, name, type=CATEGORY, **kwargs)

    def add_member(self, guild: Ref, user: Ref, roles: Iterable[Ref] = (), *,
                   admin: bool = False, permissions: int | None = None,
                   nick: str | None = None) -> Member:
        """Put a user in a guild. `admin=True` gives an "Admin" role with ADMINISTRATOR;
        `permissions=bits` gives a role carrying exactly those bits (Discord grants
        permissions only through roles)."""
        g = self.guild(guild)
        u = self.user(user)
        role_ids = [self.role(g, r).id for r in roles]
        if admin:
            role_ids.append(self._named_role(g, "Admin", P.ADMINISTRATOR).id)
        if permissions is not None:
            role_ids.append(self._named_role(g, f"perms-{permissions}", permissions).id)
        member = Member(g.id, u.id, list(dict.fromkeys(role_ids)), nick)
        is_new = u.id not in g.members
        g.members[u.id] = member
        if is_new:
            self.emit("GUILD_MEMBER_ADD", {**member.to_json(self), "guild_id": g.id},
                      GUILD_MEMBERS)
        else:
            self._emit_member_update(g, member)
        self.changed()
        return member

    def remove_member(self, guild: Ref, user: Ref) -> None:
        g = self.guild(guild)
        u = self.user(user)
        if g.members.pop(u.id, None) is not None:
            self.emit("GUILD_MEMBER_REMOVE", {"guild_id": g.id, "user": u.to_json()},
                      GUILD_MEMBERS)
        self.changed()

    def user_message(self, channel: Ref, user: Ref, content: str = "", *,
                     embeds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A message typed by a user (not the bot); emitted as MESSAGE_CREATE."""
        ch = self.channel(channel)
        message = self.create_message(ch, self.user(user),
                                      {"content": content, "embeds": embeds or []})
        return copy.deepcopy(message)

    # --- lookups ----------------------------------------------------------------------------

    def user(self, user: Ref) -> User:
        try:
            return self.users[ref(user)]
        except KeyError:
            raise KeyError(f"fake Discord: no user {ref(user)!r}") from None

    def guild(self, guild: Ref) -> Guild:
        try:
            return self.guilds[ref(guild)]
        except KeyError:
            raise KeyError(f"fake Discord: no guild {ref(guild)!r}") from None

    def channel(self, channel: Ref) -> Channel:
        try:
            return self.channels[ref(channel)]
        except KeyError:
            raise KeyError(f"fake Discord: no channel {ref(channel)!r}") from None

    def role(self, guild: Ref, role: Ref) -> Role:
        g = self.guild(guild)
        key = ref(role)
        if key in g.roles:
            return g.roles[key]
        for r in g.roles.values():  # a role name is accepted too
            if r.name == key:
                return r
        raise KeyError(f"fake Discord: no role {key!r} in guild {g.id}")

    def member(self, guild: Ref, user: Ref) -> Member:
        g = self.guild(guild)
        try:
            return g.members[ref(user)]
        except KeyError:
            raise KeyError(f"fake Discord: user {ref(user)} is not in guild {g.id}") from None

    # --- test-side queries (copies; mutate nothing) -----------------------------------------

    def messages(self, channel: Ref) -> list[dict[str, Any]]:
        """Every message of a channel, oldest first, ephemeral ones included (flags & 64)."""
        return copy.deepcopy(self.channel_messages.get(ref(channel), []))

    def dm_channel_id(self, user: Ref) -> str | None:
        return self.dm_channels.get(ref(user))

    def dm_messages(self, user: Ref) -> list[dict[str, Any]]:
        channel_id = self.dm_channels.get(ref(user))
        return self.messages(channel_id) if channel_id else []

    def dm_texts(self, user: Ref) -> list[str]:
        """What the user reads of each DM: its content, then its embeds' titles and
        descriptions, one string per message."""
        return [message_text(m) for m in self.dm_messages(user)]

    def last_message(self, channel: Ref) -> dict[str, Any] | None:
        found = self.channel_messages.get(ref(channel), [])
        return copy.deepcopy(found[-1]) if found else None

    def message(self, message_id: Ref) -> dict[str, Any] | None:
        found = self._find_message(ref(message_id))
        return copy.deepcopy(found) if found else None

    def channels_of(self, guild: Ref) -> list[dict[str, Any]]:
        g = self.guild(guild)
        return [self.channels[c].to_json(self) for c in g.channel_ids]

    def channel_by_name(self, guild: Ref, name: str, *,
                        type: int | None = None) -> dict[str, Any] | None:
        """A guild channel by exact name (or by the name Discord would have normalized to)."""
        g = self.guild(guild)
        for cid in g.channel_ids:
            ch = self.channels[cid]
            if type is not None and ch.type != type:
                continue
            if ch.name in (name, normalize_channel_name(name, ch.type)):
                return ch.to_json(self)
        return None

    def role_by_name(self, guild: Ref, name: str) -> dict[str, Any] | None:
        for r in self.guild(guild).roles.values():
            if r.name == name:
                return r.to_json()
        return None

    def roles_of(self, guild: Ref, user: Ref) -> list[str]:
        """Role ids of a member (without @everyone), in the order they were given."""
        return list(self.member(guild, user).roles)

    def permissions_in(self, channel: Ref, user: Ref) -> int:
        ch = self.channel(channel)
        if ch.guild_id is None:
            return P.ALL & ~P.ADMINISTRATOR if ref(user) in (ch.recipient_id, self.bot.id) else 0
        g = self.guilds[ch.guild_id]
        member = g.members.get(ref(user))
        if member is None:
            return 0
        return P.apply_overwrites(
            self.guild_permissions(g, member), ch.permission_overwrites,
            guild_id=g.id, role_ids=set(member.roles), user_id=member.user_id,
        )

    def can_view(self, channel: Ref, user: Ref) -> bool:
        return bool(self.permissions_in(channel, user) & P.VIEW_CHANNEL)

    def guild_permissions(self, guild: Guild, member: Member) -> int:
        return P.base_permissions(
            is_owner=member.user_id == guild.owner_id,
            everyone=guild.roles[guild.id].permissions,
            role_permissions=(guild.roles[r].permissions for r in member.roles
                              if r in guild.roles),
        )

    def top_role_position(self, guild: Guild, user_id: str) -> int:
        member = guild.members.get(user_id)
        if member is None:
            return -1
        return max((guild.roles[r].position for r in member.roles if r in guild.roles),
                   default=0)

    def attachment_bytes(self, attachment: Ref) -> bytes:
        return self.files[ref(attachment)].data

    def registered_commands(self, guild: Ref | None = None) -> list[dict[str, Any]]:
        scope = "global" if guild is None else ref(guild)
        return copy.deepcopy(self.commands.get(scope, []))

    def find_command(self, name: str, guild: Ref | None = None) -> dict[str, Any] | None:
        """A guild command of that guild first, then a global one."""
        scopes = ([ref(guild)] if guild is not None else []) + ["global"]
        for scope in scopes:
            for cmd in self.commands.get(scope, []):
                if cmd["name"] == name and int(cmd.get("type", 1)) == 1:
                    return cmd
        return None

    # --- JSON renderers ---------------------------------------------------------------------

    def bot_user_json(self) -> dict[str, Any]:
        return {**self.bot.to_json(), "bot": True, "verified": True, "mfa_enabled": False,
                "locale": "en-US", "email": None, "premium_type": 0}

    def member_json(self, guild: Guild, member: Member, *, channel: Channel | None = None,
                    with_permissions: bool = False) -> dict[str, Any]:
        data = member.to_json(self)
        if with_permissions:
            data["permissions"] = str(
                self.permissions_in(channel, member.user_id) if channel is not None
                else self.guild_permissions(guild, member)
            )
        return data

    def guild_create_json(self, guild: Guild, intents: int) -> dict[str, Any]:
        members = [m for m in guild.members.values()
                   if intents & GUILD_MEMBERS or m.user_id == self.bot.id]
        return {
            **guild.to_json(),
            "joined_at": guild.joined_at,
            "large": len(guild.members) > 250,
            "unavailable": False,
            "member_count": len(guild.members),
            "voice_states": [],
            "members": [m.to_json(self) for m in members],
            "channels": [self.channels[c].to_json(self, with_guild_id=False)
                         for c in guild.channel_ids],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "lazy": True,
        }

    # --- mutations shared by REST and tests -------------------------------------------------

    def _put_user(self, user: User) -> User:
        self.users[user.id] = user
        return user

    def _named_role(self, guild: Guild, name: str, permissions: int) -> Role:
        for r in guild.roles.values():
            if r.name == name and r.permissions == permissions and not r.managed:
                return r
        return self._insert_role(guild, name, permissions, None, 0, False, False)

    def _insert_role(self, guild: Guild, name: str, permissions: int, position: int | None,
                     color: int, hoist: bool, mentionable: bool) -> Role:
        position = 1 if position is None else max(1, position)
        for r in guild.roles.values():
            if r.id != guild.id and r.position >= position:
                r.position += 1
        role = Role(self.ids.next(), guild.id, name, permissions, position, color, hoist,
                    mentionable)
        guild.roles[role.id] = role
        self.emit("GUILD_ROLE_CREATE", {"guild_id": guild.id, "role": role.to_json()}, GUILDS)
        return role

    def delete_role(self, guild: Guild, role: Role) -> None:
        del guild.roles[role.id]
        for m in guild.members.values():
            if role.id in m.roles:
                m.roles.remove(role.id)
        self.emit("GUILD_ROLE_DELETE", {"guild_id": guild.id, "role_id": role.id}, GUILDS)

    def _new_channel(self, guild: Guild, name: str, channel_type: int, *,
                     parent_id: str | None = None, topic: str | None = None,
                     overwrites: list[dict[str, Any]] | None = None,
                     position: int | None = None) -> Channel:
        if overwrites is None and parent_id is not None:
            # A channel created in a category starts synced with the category's overwrites.
            overwrites = copy.deepcopy(self.channels[parent_id].permission_overwrites)
        siblings = [self.channels[c] for c in guild.channel_ids
                    if (self.channels[c].type == CATEGORY) == (channel_type == CATEGORY)]
        channel = Channel(
            self.ids.next(), channel_type, guild.id, name,
            position if position is not None else len(siblings),
            parent_id, topic, permission_overwrites=overwrites or [],
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self.channel_messages[channel.id] = []
        return channel

    def remove_channel(self, channel: Channel) -> None:
        del self.channels[channel.id]
        for mid in [m["id"] for m in self.channel_messages.pop(channel.id, [])]:
            self.message_channel.pop(mid, None)
        if channel.guild_id is not None:
            guild = self.guilds[channel.guild_id]
            guild.channel_ids.remove(channel.id)
            if guild.system_channel_id == channel.id:
                guild.system_channel_id = None
            for other in guild.channel_ids:  # children of a deleted category become orphans
                if self.channels[other].parent_id == channel.id:
                    self.channels[other].parent_id = None
        else:
            self.dm_channels.pop(channel.recipient_id or "", None)

    def open_dm(self, user: User) -> Channel:
        channel_id = self.dm_channels.get(user.id)
        if channel_id is None:
            channel = Channel(self.ids.next(), DM, recipient_id=user.id)
            self.channels[channel.id] = channel
            self.channel_messages[channel.id] = []
            self.dm_channels[user.id] = channel.id
            return channel
        return self.channels[channel_id]

    def _emit_member_update(self, guild: Guild, member: Member) -> None:
        self.emit("GUILD_MEMBER_UPDATE", {**member.to_json(self), "guild_id": guild.id},
                  GUILD_MEMBERS)

    def set_member_role(self, guild: Guild, member: Member, role: Role, on: bool) -> None:
        if on and role.id not in member.roles:
            member.roles.append(role.id)
        elif not on and role.id in member.roles:
            member.roles.remove(role.id)
        else:
            return
        self._emit_member_update(guild, member)


def message_text(message: dict[str, Any]) -> str:
    """A message as its reader sees the words: content, then each embed's title and
    description (and field names and values)."""
    parts = [message["content"]] if message.get("content") else []
    for embed in message.get("embeds") or []:
        parts += [str(embed[k]) for k in ("title", "description") if embed.get(k)]
        for f in embed.get("fields") or []:
            parts += [str(f.get("name") or ""), str(f.get("value") or "")]
    return "\n".join(parts)
