"""Discord's objects as the fake keeps them (users, roles, channels, members, guilds, files),
each rendering itself as Discord API v10 JSON."""

from __future__ import annotations

import copy
import mimetypes
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .snowflakes import iso

if TYPE_CHECKING:
    from .state import World

# Gateway intents that gate the events emitted here.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15

TEXT, DM, VOICE, CATEGORY, ANNOUNCEMENT, FORUM = 0, 1, 2, 4, 5, 15

EPHEMERAL = 1 << 6
LOADING = 1 << 7

Ref = Any  # an id (str/int), an entity with `.id`, or a JSON dict with "id"


def ref(value: Ref) -> str:
    if isinstance(value, dict):
        return str(value["id"])
    return str(getattr(value, "id", value))


@dataclass
class User:
    id: str
    username: str
    global_name: str | None = None
    bot: bool = False
    dms_closed: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class Role:
    id: str
    guild_id: str
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False
    bot_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": None,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None,
                       "tertiary_color": None},
            "hoist": self.hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.bot_id:
            data["tags"] = {"bot_id": self.bot_id}
        return data


@dataclass
class Channel:
    id: str
    type: int
    guild_id: str | None = None
    name: str | None = None
    position: int = 0
    parent_id: str | None = None
    topic: str | None = None
    nsfw: bool = False
    rate_limit_per_user: int = 0
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)
    recipient_id: str | None = None  # DM channels
    last_message_id: str | None = None

    def to_json(self, world: World, *, with_guild_id: bool = True) -> dict[str, Any]:
        if self.type == DM:
            recipient = world.users[self.recipient_id or ""]
            return {
                "id": self.id,
                "type": DM,
                "last_message_id": self.last_message_id,
                "flags": 0,
                "recipients": [recipient.to_json()],
            }
        data: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "position": self.position,
            "flags": 0,
            "parent_id": self.parent_id,
            "permission_overwrites": copy.deepcopy(self.permission_overwrites),
        }
        if with_guild_id:
            data["guild_id"] = self.guild_id
        if self.type in (TEXT, ANNOUNCEMENT, FORUM):
            data.update(
                topic=self.topic,
                nsfw=self.nsfw,
                rate_limit_per_user=self.rate_limit_per_user,
                last_message_id=self.last_message_id,
            )
        elif self.type == VOICE:
            data.update(bitrate=64000, user_limit=0, rtc_region=None, nsfw=self.nsfw,
                        rate_limit_per_user=0, last_message_id=self.last_message_id)
        return data


@dataclass
class Member:
    guild_id: str
    user_id: str
    roles: list[str] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso)

    def to_json(self, world: World, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
            "deaf": False,
            "flags": 0,
            "joined_at": self.joined_at,
            "mute": False,
            "nick": self.nick,
            "pending": False,
            "premium_since": None,
            "roles": list(self.roles),
            "avatar_decoration_data": None,
        }
        if with_user:
            data["user"] = world.users[self.user_id].to_json()
        return data


@dataclass
class Guild:
    id: str
    name: str
    owner_id: str
    preferred_locale: str = "pt-BR"
    roles: dict[str, Role] = field(default_factory=dict)
    channel_ids: list[str] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)
    system_channel_id: str | None = None
    joined_at: str = field(default_factory=iso)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": self.owner_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.to_json() for r in sorted(self.roles.values(), key=_role_order)],
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": self.system_channel_id,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "public_updates_channel_id": None,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw": False,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None,
            "incidents_data": None,
        }


@dataclass
class StoredFile:
    id: str
    filename: str
    content_type: str
    data: bytes
    url: str


def _role_order(role: Role) -> tuple[int, int]:
    return (role.position, int(role.id))


def content_type_for(filename: str, data: bytes) -> str:
    guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if guessed.startswith("text/"):
        return f"{guessed}; charset=utf-8"
    return guessed


def normalize_channel_name(name: str, channel_type: int) -> str:
    """Discord lower-cases text channel names and turns spaces into dashes."""
    if channel_type not in (TEXT, ANNOUNCEMENT, FORUM):
        return name
    return re.sub(r"\s+", "-", name.strip()).lower()


def normalize_overwrite(overwrite: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(overwrite["id"]),
        "type": int(overwrite.get("type", 0)),
        "allow": str(int(overwrite.get("allow") or 0)),
        "deny": str(int(overwrite.get("deny") or 0)),
    }


def normalize_embed(embed: dict[str, Any]) -> dict[str, Any]:
    embed = copy.deepcopy(embed)
    embed.setdefault("type", "rich")
    for fld in embed.get("fields", []):
        fld.setdefault("inline", False)
    return embed
