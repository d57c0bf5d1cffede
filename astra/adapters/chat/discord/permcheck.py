"""`/loja permcheck`: which Discord permissions the bot lacks where the store needs them.

Computed the way Discord does (https://discord.com/developers/docs/topics/permissions): the
@everyone role's permissions OR the bot's roles', ADMINISTRATOR allowing everything; then in a
channel its overwrites: @everyone's deny and allow, the roles' denies and allows together, the
member's own deny and allow. Read over REST (roles, the bot's member, each channel), never from
a cache that may be stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from astra.adapters.chat.discord.texts import t
from astra.ports.chat import ChatError

ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_HISTORY = 1 << 16
MANAGE_ROLES = 1 << 28

NAMES = {
    VIEW_CHANNEL: {"pt-BR": "Ver canal", "en": "View Channel"},
    SEND_MESSAGES: {"pt-BR": "Enviar mensagens", "en": "Send Messages"},
    EMBED_LINKS: {"pt-BR": "Inserir links", "en": "Embed Links"},
    ATTACH_FILES: {"pt-BR": "Anexar arquivos", "en": "Attach Files"},
    READ_HISTORY: {"pt-BR": "Ver histórico de mensagens", "en": "Read Message History"},
    MANAGE_CHANNELS: {"pt-BR": "Gerenciar canais", "en": "Manage Channels"},
    MANAGE_ROLES: {"pt-BR": "Gerenciar cargos", "en": "Manage Roles"},
    MANAGE_MESSAGES: {"pt-BR": "Gerenciar mensagens", "en": "Manage Messages"},
}
POST = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS
# What each configured place needs, by setting.
NEEDS: dict[str, tuple[int, dict[str, str]]] = {
    "products_channel_id": (POST | READ_HISTORY,
                            {"pt-BR": "canal de produtos", "en": "products channel"}),
    "sales_channel_id": (POST, {"pt-BR": "canal de vendas", "en": "sales channel"}),
    "log_channel_id": (POST, {"pt-BR": "canal de logs", "en": "log channel"}),
    "staff_channel_id": (POST, {"pt-BR": "canal da equipe", "en": "staff channel"}),
    "feedback_channel_id": (VIEW_CHANNEL,
                            {"pt-BR": "canal de feedback", "en": "feedback channel"}),
    # Cart channels are made there with overwrites: the bot must manage channels and roles.
    "cart_category_id": (VIEW_CHANNEL | MANAGE_CHANNELS | MANAGE_ROLES,
                         {"pt-BR": "categoria dos carrinhos", "en": "cart category"}),
}


class PermChat(Protocol):
    bot_id: str

    async def guild_roles_raw(self, guild_id: str) -> list[dict[str, Any]]: ...

    async def channel_raw(self, channel_id: str) -> dict[str, Any]: ...

    async def member_raw(self, guild_id: str, user_id: str) -> dict[str, Any]: ...


def base_permissions(guild_id: str, roles: list[dict[str, Any]], member_roles: list[str]) -> int:
    by_id = {str(r["id"]): int(r.get("permissions") or 0) for r in roles}
    perms = by_id.get(str(guild_id), 0)
    for role_id in member_roles:
        perms |= by_id.get(str(role_id), 0)
    if perms & ADMINISTRATOR:
        return -1  # everything
    return perms


def channel_permissions(
    base: int,
    guild_id: str,
    member_id: str,
    member_roles: list[str],
    overwrites: list[dict[str, Any]],
) -> int:
    if base == -1:
        return -1
    perms = base
    by_id = {str(o["id"]): o for o in overwrites}
    everyone = by_id.get(str(guild_id))
    if everyone:
        perms &= ~int(everyone.get("deny") or 0)
        perms |= int(everyone.get("allow") or 0)
    deny = allow = 0
    for role_id in member_roles:
        o = by_id.get(str(role_id))
        if o and int(o.get("type", 0)) == 0:
            deny |= int(o.get("deny") or 0)
            allow |= int(o.get("allow") or 0)
    perms = (perms & ~deny) | allow
    own = by_id.get(str(member_id))
    if own and int(own.get("type", 1)) == 1:
        perms &= ~int(own.get("deny") or 0)
        perms |= int(own.get("allow") or 0)
    if not perms & VIEW_CHANNEL:
        return 0  # a channel the member cannot see grants nothing in it
    return perms


@dataclass
class Report:
    checked: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)  # (where, missing bits)
    unknown: list[str] = field(default_factory=list)  # where: the channel is not found
    role_above: list[str] = field(default_factory=list)  # roles the bot cannot grant
    bot_role: str = ""


async def check(chat: PermChat, guild_id: str, settings: dict[str, Any]) -> Report:
    report = Report()
    roles = await chat.guild_roles_raw(guild_id)
    member = await chat.member_raw(guild_id, chat.bot_id)
    member_roles = [str(r) for r in member.get("roles") or []]
    base = base_permissions(guild_id, roles, member_roles)
    positions = {str(r["id"]): int(r.get("position") or 0) for r in roles}
    top = max((positions.get(r, 0) for r in member_roles), default=0)
    managed = [r for r in roles if str(r["id"]) in member_roles and r.get("managed")]
    report.bot_role = str((managed or [{"name": "Astra"}])[0].get("name") or "")
    for key, (needed, label) in NEEDS.items():
        channel_id = settings.get(key)
        if not channel_id:
            continue
        report.checked += 1
        where = f"{label.get('pt-BR')}|{label.get('en')}|<#{channel_id}>"
        try:
            channel = await chat.channel_raw(str(channel_id))
        except ChatError:
            report.unknown.append(where)
            continue
        perms = channel_permissions(base, guild_id, chat.bot_id, member_roles,
                                    channel.get("permission_overwrites") or [])
        lacking = 0 if perms == -1 else needed & ~perms
        if lacking:
            report.missing.append((where, lacking))
    for key in ("buyer_role_id",):
        role_id = settings.get(key)
        if not role_id:
            continue
        report.checked += 1
        if base != -1 and not base & MANAGE_ROLES:
            report.missing.append(("|".join(("cargo de comprador", "buyer role",
                                             f"<@&{role_id}>")), MANAGE_ROLES))
        elif positions.get(str(role_id), 0) >= top:
            # Discord lets a bot grant only roles below its highest one.
            report.role_above.append(str(role_id))
    return report


def render(report: Report, language: str) -> str:
    if report.checked == 0:
        return t(language, "perm_nothing_configured")
    if not report.missing and not report.unknown and not report.role_above:
        return t(language, "perm_ok")
    lang = 0 if language == "pt-BR" else 1
    lines = [t(language, "perm_missing")]
    for where, bits in report.missing:
        parts = where.split("|")
        perms = ", ".join(names[language if language in names else "pt-BR"]
                          for bit, names in NAMES.items() if bits & bit)
        lines.append(t(language, "perm_line", where=f"{parts[lang]} ({parts[2]})", perms=perms))
    for where in report.unknown:
        parts = where.split("|")
        lines.append(t(language, "perm_unknown_channel", where=f"{parts[lang]} ({parts[2]})"))
    for role_id in report.role_above:
        lines.append(
            "• " + (f"o cargo <@&{role_id}> está acima do cargo do bot: arraste o cargo do bot "
                    "para cima dele em Configurações do servidor → Cargos."
                    if lang == 0 else
                    f"the role <@&{role_id}> is above the bot's role: drag the bot's role above "
                    "it in Server Settings → Roles.")
        )
    lines.append(t(language, "perm_fix", role=report.bot_role or "Astra"))
    return "\n".join(lines)
