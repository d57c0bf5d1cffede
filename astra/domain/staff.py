"""Who counts as a shop's staff in its Discord server.

The platform decides this from Discord's own data (the member's roles, the guild's roles and
owner, fetched with the instance's bot token), never from what a runtime says about a member:
a compromised bot could claim any role for anyone. Staff is the guild's owner, a member whose
roles grant Manage Server (or Administrator), or a member with the seller's configured staff
role. Bot users never count (a bot cannot click, and a compromised one would otherwise vouch
for itself), and neither do roles managed by an integration: every bot has one, which its
bot can hand itself permissions through, and no person can be given it by the seller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5


@dataclass(frozen=True)
class GuildRole:
    id: str
    permissions: int = 0
    managed: bool = False

    @staticmethod
    def from_discord(doc: Mapping[str, object]) -> GuildRole:
        try:
            permissions = int(str(doc.get("permissions") or "0"))
        except ValueError:
            permissions = 0
        return GuildRole(str(doc.get("id")), permissions, bool(doc.get("managed")))


@dataclass(frozen=True)
class GuildFacts:
    """What Discord says about a guild and one of its members."""

    guild_id: str
    owner_id: str
    roles: Mapping[str, GuildRole]
    member_role_ids: frozenset[str]


def facts_of(guild: Mapping[str, object], member: Mapping[str, object]) -> GuildFacts:
    """From Discord's guild object and guild member object."""
    roles_doc = guild.get("roles")
    roles = [GuildRole.from_discord(r) for r in roles_doc if isinstance(r, Mapping)] \
        if isinstance(roles_doc, list) else []
    member_roles = member.get("roles")
    return GuildFacts(
        guild_id=str(guild.get("id")),
        owner_id=str(guild.get("owner_id") or ""),
        roles={r.id: r for r in roles},
        member_role_ids=frozenset(str(r) for r in member_roles)
        if isinstance(member_roles, list) else frozenset(),
    )


def _permissions(facts: GuildFacts, role_ids: Iterable[str]) -> int:
    everyone = facts.roles.get(facts.guild_id)
    value = everyone.permissions if everyone else 0
    for role_id in role_ids:
        role = facts.roles.get(role_id)
        if role is not None and not role.managed:
            value |= role.permissions
    return value


def is_staff(user_id: str, *, user_is_bot: bool, facts: GuildFacts,
             staff_role_id: str | None) -> bool:
    if user_is_bot or not user_id:
        return False
    if facts.owner_id and user_id == facts.owner_id:
        return True
    if _permissions(facts, facts.member_role_ids) & (ADMINISTRATOR | MANAGE_GUILD):
        return True
    if staff_role_id and str(staff_role_id) in facts.member_role_ids:
        role = facts.roles.get(str(staff_role_id))
        return role is not None and not role.managed
    return False
