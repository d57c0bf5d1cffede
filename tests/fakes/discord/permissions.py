"""Discord permission bits and the documented permission computation (base, then overwrites)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_AUDIT_LOG = 1 << 7
STREAM = 1 << 9
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
USE_VAD = 1 << 25
CHANGE_NICKNAME = 1 << 26
MANAGE_ROLES = 1 << 28
MANAGE_WEBHOOKS = 1 << 29
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
SEND_MESSAGES_IN_THREADS = 1 << 38
MODERATE_MEMBERS = 1 << 40
SEND_POLLS = 1 << 49
USE_EXTERNAL_APPS = 1 << 50

# Every documented flag (bits 47 and 48 are unassigned).
ALL = ((1 << 51) - 1) & ~((1 << 47) | (1 << 48))

# What @everyone gets in a freshly created guild (close to Discord's default).
DEFAULT_EVERYONE = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | STREAM
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | MENTION_EVERYONE
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | SPEAK
    | USE_VAD
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
    | SEND_POLLS
    | USE_EXTERNAL_APPS
)

# What a sales bot is usually invited with (its managed role).
DEFAULT_BOT = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | MANAGE_CHANNELS
    | MANAGE_ROLES
    | MANAGE_MESSAGES
    | USE_APPLICATION_COMMANDS
)

# Overwrite target types.
ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


def base_permissions(
    *, is_owner: bool, everyone: int, role_permissions: Iterable[int]
) -> int:
    if is_owner:
        return ALL
    perms = everyone
    for bits in role_permissions:
        perms |= bits
    if perms & ADMINISTRATOR:
        return ALL
    return perms


def apply_overwrites(
    base: int,
    overwrites: Iterable[dict[str, Any]],
    *,
    guild_id: str,
    role_ids: set[str],
    user_id: str,
) -> int:
    """Channel permissions: the @everyone overwrite, then all role overwrites at once, then
    the member's own."""
    if base & ADMINISTRATOR or base == ALL:
        return ALL
    overwrites = list(overwrites)
    perms = base
    for ow in overwrites:
        if ow["id"] == guild_id:
            perms &= ~int(ow.get("deny", 0))
            perms |= int(ow.get("allow", 0))
    allow = deny = 0
    for ow in overwrites:
        if int(ow.get("type", 0)) == ROLE_OVERWRITE and ow["id"] in role_ids:
            allow |= int(ow.get("allow", 0))
            deny |= int(ow.get("deny", 0))
    perms &= ~deny
    perms |= allow
    for ow in overwrites:
        if int(ow.get("type", 0)) == MEMBER_OVERWRITE and ow["id"] == user_id:
            perms &= ~int(ow.get("deny", 0))
            perms |= int(ow.get("allow", 0))
    if not perms & VIEW_CHANNEL:
        return 0  # a channel you cannot see grants nothing
    return perms
