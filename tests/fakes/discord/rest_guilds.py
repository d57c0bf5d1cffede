"""REST routes for the application, users, DMs, guilds, channels, roles and members."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import permissions as P
from .entities import (
    ANNOUNCEMENT,
    CATEGORY,
    DM,
    FORUM,
    GUILDS,
    TEXT,
    VOICE,
    Channel,
    Guild,
    Member,
    Role,
    normalize_channel_name,
    normalize_overwrite,
)
from .errors import ApiError, invalid_field, missing_permissions, no_content, unknown
from .rest import API, RestCore, json_of, ok

CHANNEL_TYPES = (TEXT, VOICE, CATEGORY, ANNOUNCEMENT, 13, FORUM)


class GuildRoutes(RestCore):
    def register(self, r: web.UrlDispatcher) -> None:
        r.add_get(API + "/gateway", self.gateway)
        r.add_get(API + "/gateway/bot", self.gateway_bot)
        r.add_get(API + "/oauth2/applications/@me", self.application)
        r.add_get(API + "/applications/@me", self.application)
        r.add_get(API + "/users/@me", self.me)
        r.add_get(API + "/users/@me/guilds", self.my_guilds)
        r.add_post(API + "/users/@me/channels", self.open_dm)
        r.add_get(API + "/users/{user_id}", self.get_user)
        r.add_get(API + "/guilds/{guild_id}", self.get_guild)
        r.add_get(API + "/guilds/{guild_id}/channels", self.list_channels)
        r.add_post(API + "/guilds/{guild_id}/channels", self.create_channel)
        r.add_get(API + "/guilds/{guild_id}/roles", self.list_roles)
        r.add_post(API + "/guilds/{guild_id}/roles", self.create_role)
        r.add_delete(API + "/guilds/{guild_id}/roles/{role_id}", self.delete_role)
        r.add_get(API + "/guilds/{guild_id}/members", self.list_members)
        r.add_get(API + "/guilds/{guild_id}/members/{user_id}", self.get_member)
        r.add_put(API + "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.add_role)
        r.add_delete(API + "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
                     self.remove_role)
        r.add_get(API + "/channels/{channel_id}", self.get_channel)
        r.add_patch(API + "/channels/{channel_id}", self.edit_channel)
        r.add_delete(API + "/channels/{channel_id}", self.delete_channel)

    # --- lookups that answer 404 like Discord -----------------------------------------------

    def _guild(self, request: web.Request) -> Guild:
        guild = self.world.guilds.get(request.match_info["guild_id"])
        if guild is None:
            raise unknown("guild")
        return guild

    def _channel(self, request: web.Request) -> Channel:
        channel = self.world.channels.get(request.match_info["channel_id"])
        if channel is None:
            raise unknown("channel")
        return channel

    def _member(self, guild: Guild, user_id: str) -> Member:
        if user_id not in self.world.users:
            raise unknown("user")
        member = guild.members.get(user_id)
        if member is None:
            raise unknown("member")
        return member

    def _role(self, guild: Guild, role_id: str) -> Role:
        role = guild.roles.get(role_id)
        if role is None:
            raise unknown("role")
        return role

    # --- application, gateway, users --------------------------------------------------------

    async def gateway(self, request: web.Request) -> web.Response:
        return ok({"url": self.fake.gateway.url})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        return ok({"url": self.fake.gateway.url, "shards": 1,
                   "session_start_limit": {"total": 1000, "remaining": 999,
                                           "reset_after": 14_400_000, "max_concurrency": 1}})

    async def application(self, request: web.Request) -> web.Response:
        world = self.world
        owner = world.users.get(self.fake.owner_id)
        return ok({
            "id": world.application_id,
            "name": world.bot.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self.fake.gateway.application_flags,
            "bot": world.bot.to_json(),
            "owner": (owner or world.bot).to_json(),
            "team": None,
            "approximate_guild_count": len(world.guilds),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "install_params": {"scopes": ["bot", "applications.commands"],
                               "permissions": str(P.DEFAULT_BOT)},
            "integration_types_config": {"0": {}},
        })

    async def me(self, request: web.Request) -> web.Response:
        return ok(self.world.bot_user_json())

    async def my_guilds(self, request: web.Request) -> web.Response:
        result = []
        for guild in self.world.guilds.values():
            result.append({"id": guild.id, "name": guild.name, "icon": None, "banner": None,
                           "owner": guild.owner_id == self.world.bot.id,
                           "permissions": str(self.bot_guild_permissions(guild)),
                           "features": []})
        return ok(result)

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(request.match_info["user_id"])
        if user is None:
            raise unknown("user")
        return ok(user.to_json())

    async def open_dm(self, request: web.Request) -> web.Response:
        data = json_of(request)
        recipient = str(data.get("recipient_id") or "")
        if not recipient:
            raise invalid_field(["recipient_id"], "BASE_TYPE_REQUIRED", "This field is required")
        user = self.world.users.get(recipient)
        if user is None:
            raise unknown("user")
        return ok(self.world.open_dm(user).to_json(self.world))

    # --- guilds, channels -------------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        data = guild.to_json()
        if request.query.get("with_counts") in ("true", "1", "True"):
            data["approximate_member_count"] = len(guild.members)
            data["approximate_presence_count"] = 0
        return ok(data)

    async def list_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return ok([self.world.channels[c].to_json(self.world) for c in guild.channel_ids])

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self.require_channel(channel)
        return ok(channel.to_json(self.world))

    def _check_overwrites(self, guild: Guild, overwrites: Any, path: list[str | int]
                          ) -> list[dict[str, Any]]:
        if not isinstance(overwrites, list):
            raise invalid_field(path, "LIST_TYPE_CONVERT",
                                "Only iterables may be used in a ListType")
        perms = self.bot_guild_permissions(guild)
        result = []
        for i, raw in enumerate(overwrites):
            try:
                ow = normalize_overwrite(raw)
            except (KeyError, TypeError, ValueError):
                raise invalid_field([*path, i], "MODEL_TYPE_CONVERT",
                                    "Only dictionaries may be used in a ModelType") from None
            if ow["type"] not in (0, 1):
                raise invalid_field([*path, i, "type"], "BASE_TYPE_CHOICES",
                                    "Value must be one of {0, 1}.")
            bits = int(ow["allow"]) | int(ow["deny"])
            # Only permissions the bot has can be allowed/denied; MANAGE_ROLES only by admins.
            if self.fake.enforce_permissions and perms != P.ALL and (
                    bits & ~perms or bits & P.MANAGE_ROLES):
                raise missing_permissions()
            result.append(ow)
        return result

    def _check_parent(self, guild: Guild, parent_id: Any, channel_type: int) -> str | None:
        if parent_id in (None, ""):
            return None
        parent = self.world.channels.get(str(parent_id))
        if (parent is None or parent.guild_id != guild.id or parent.type != CATEGORY
                or channel_type == CATEGORY):
            raise invalid_field(["parent_id"], "CHANNEL_PARENT_INVALID",
                                "Category does not exist")
        return parent.id

    async def create_channel(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        data = json_of(request)
        self.require_guild(guild, P.MANAGE_CHANNELS)
        name = str(data.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise invalid_field(["name"], "BASE_TYPE_BAD_LENGTH",
                                "Must be between 1 and 100 in length.")
        channel_type = int(data.get("type") or 0)
        if channel_type not in CHANNEL_TYPES:
            raise invalid_field(["type"], "BASE_TYPE_CHOICES", "Value must be one of "
                                "{0, 2, 4, 5, 13, 15}.")
        if data.get("topic") is not None and len(str(data["topic"])) > 1024:
            raise invalid_field(["topic"], "BASE_TYPE_MAX_LENGTH",
                                "Must be 1024 or fewer in length.")
        parent_id = self._check_parent(guild, data.get("parent_id"), channel_type)
        overwrites = None
        if data.get("permission_overwrites") is not None:
            overwrites = self._check_overwrites(guild, data["permission_overwrites"],
                                                ["permission_overwrites"])
        channel = self.world._new_channel(
            guild, normalize_channel_name(name, channel_type), channel_type,
            parent_id=parent_id, topic=data.get("topic"), overwrites=overwrites,
            position=data.get("position"),
        )
        channel.nsfw = bool(data.get("nsfw", False))
        channel.rate_limit_per_user = int(data.get("rate_limit_per_user") or 0)
        self.world.emit("CHANNEL_CREATE", channel.to_json(self.world), GUILDS)
        return ok(channel.to_json(self.world), 201)

    async def edit_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel.type == DM:
            raise ApiError(403, 50003, "Cannot execute action on a DM channel")
        guild = self.world.guilds[channel.guild_id or ""]
        data = json_of(request)
        self.require_channel(channel, P.MANAGE_CHANNELS)
        if "name" in data:
            name = str(data["name"] or "")
            if not 1 <= len(name) <= 100:
                raise invalid_field(["name"], "BASE_TYPE_BAD_LENGTH",
                                    "Must be between 1 and 100 in length.")
            channel.name = normalize_channel_name(name, channel.type)
        if "topic" in data:
            channel.topic = data["topic"]
        if "parent_id" in data:
            channel.parent_id = self._check_parent(guild, data["parent_id"], channel.type)
        if "position" in data and data["position"] is not None:
            channel.position = int(data["position"])
        if "nsfw" in data:
            channel.nsfw = bool(data["nsfw"])
        if "rate_limit_per_user" in data:
            channel.rate_limit_per_user = int(data["rate_limit_per_user"] or 0)
        if data.get("permission_overwrites") is not None:
            channel.permission_overwrites = self._check_overwrites(
                guild, data["permission_overwrites"], ["permission_overwrites"])
        self.world.emit("CHANNEL_UPDATE", channel.to_json(self.world), GUILDS)
        return ok(channel.to_json(self.world))

    async def delete_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        data = channel.to_json(self.world)
        if channel.type == DM:
            return ok(data)  # "closing" a DM; Discord keeps the channel and its history
        self.require_channel(channel, P.MANAGE_CHANNELS)
        self.world.remove_channel(channel)
        self.world.emit("CHANNEL_DELETE", data, GUILDS)
        return ok(data)

    # --- roles, members ---------------------------------------------------------------------

    async def list_roles(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        roles = sorted(guild.roles.values(), key=lambda r: (r.position, int(r.id)))
        return ok([r.to_json() for r in roles])

    async def create_role(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        data = json_of(request)
        perms = self.require_guild(guild, P.MANAGE_ROLES)
        bits = int(data.get("permissions") or 0)
        if self.fake.enforce_permissions and perms != P.ALL and bits & ~perms:
            raise missing_permissions()
        name = str(data.get("name") or "new role")
        if len(name) > 100:
            raise invalid_field(["name"], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        role = self.world._insert_role(guild, name, bits, None, int(data.get("color") or 0),
                                       bool(data.get("hoist")), bool(data.get("mentionable")))
        return ok(role.to_json())

    async def delete_role(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        role = self._role(guild, request.match_info["role_id"])
        self.require_guild(guild, P.MANAGE_ROLES)
        self._check_hierarchy(guild, role)
        if role.id == guild.id:
            raise ApiError(400, 50028, "Invalid role")
        self.world.delete_role(guild, role)
        return no_content()

    async def list_members(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        limit = max(1, min(1000, int(request.query.get("limit", "1"))))
        after = int(request.query.get("after", "0"))
        members = sorted((m for m in guild.members.values() if int(m.user_id) > after),
                         key=lambda m: int(m.user_id))
        return ok([m.to_json(self.world) for m in members[:limit]])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        member = self._member(guild, request.match_info["user_id"])
        return ok(member.to_json(self.world))

    def _check_hierarchy(self, guild: Guild, role: Role) -> None:
        if not self.fake.enforce_permissions or guild.owner_id == self.world.bot.id:
            return
        if role.managed or role.position >= self.world.top_role_position(guild, self.world.bot.id):
            raise missing_permissions()

    async def _change_role(self, request: web.Request, on: bool) -> web.Response:
        guild = self._guild(request)
        member = self._member(guild, request.match_info["user_id"])
        role = self._role(guild, request.match_info["role_id"])
        self.require_guild(guild, P.MANAGE_ROLES)
        self._check_hierarchy(guild, role)
        if role.id == guild.id:
            raise missing_permissions()
        self.world.set_member_role(guild, member, role, on)
        return no_content()

    async def add_role(self, request: web.Request) -> web.Response:
        return await self._change_role(request, True)

    async def remove_role(self, request: web.Request) -> web.Response:
        return await self._change_role(request, False)
