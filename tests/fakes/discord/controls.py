"""What a Discord user does, as INTERACTION_CREATE events built the way Discord builds them:
a slash command (with subcommands, options and resolved users/channels/roles/attachments),
a button click, a select, a modal submit."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import permissions as P
from .entities import EPHEMERAL, TEXT, Channel, Ref, ref
from .handles import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    Interaction,
)
from .validation import (
    BUTTON,
    CHANNEL_SELECT,
    LABEL,
    LINK_STYLE,
    MENTIONABLE_SELECT,
    ROLE_SELECT,
    SELECTS,
    STRING_SELECT,
    USER_SELECT,
)

if TYPE_CHECKING:
    from .fake import FakeDiscord

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)
GUILD_CONTEXT, BOT_DM_CONTEXT = 0, 1
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class InteractionControls:
    """Mixed into FakeDiscord: the user-side actions."""

    async def slash(self: FakeDiscord, guild: Ref | None, user: Ref, name: str,
                    options: Mapping[str, Any] | list[dict[str, Any]] | None = None, *,
                    channel: Ref | None = None, locale: str = "pt-BR",
                    timeout: float = 5.0) -> Interaction:
        """Run `/name` (subcommands in the name: "shop stock add") as `user` in `guild`
        (None = in the bot's DM). `options` maps option names to values, typed from the
        registered command's schema; USER/CHANNEL/ROLE options take ids and come with
        `resolved` data; an ATTACHMENT option takes (filename, bytes) or
        {"filename", "data", "content_type"} and gets a URL served by the fake.
        Waits for the gateway to be READY and the command to be registered first."""
        await self.wait_ready(timeout)
        world = self.world
        path = name.split()
        guild_id = ref(guild) if guild is not None else None
        command = await world.wait_for(lambda: world.find_command(path[0], guild_id), timeout,
                                       f"command /{path[0]} to be registered")
        ch = self._interaction_channel(guild_id, user, channel)
        self._check_can_use(command, ch, ref(user))
        schema = command.get("options") or []
        chain: list[dict[str, Any]] = []
        for part in path[1:]:
            option = next((o for o in schema if o["name"] == part
                           and o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)), None)
            if option is None:
                raise ValueError(f"/{command['name']} has no subcommand {part!r}")
            chain.append(option)
            schema = option.get("options") or []
        if schema and any(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
            raise ValueError(f"/{name} needs a subcommand")
        resolved: dict[str, dict[str, Any]] = {}
        if isinstance(options, list):
            leaf = copy.deepcopy(options)
        else:
            leaf = self._typed_options(schema, dict(options or {}), resolved, ch, ref(user))
        for option in reversed(chain):
            leaf = [{"name": option["name"], "type": option["type"], "options": leaf}]
        data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1}
        if leaf:
            data["options"] = leaf
        if resolved:
            data["resolved"] = resolved
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        payload = self._interaction_payload(APPLICATION_COMMAND, data, ch, user, locale)
        return self._send_interaction(payload)

    async def click(self: FakeDiscord, target: Ref, user: Ref, custom_id: str, *,
                    locale: str = "pt-BR", timeout: float = 5.0) -> Interaction:
        """Press the button `custom_id` on a message (a message dict/id, or a channel id:
        the newest message there carrying that button)."""
        await self.wait_ready(timeout)
        message, _ = self._find_component(target, user, custom_id, (BUTTON,))
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return self._component_interaction(message, user, data, locale)

    def interaction_from(self: FakeDiscord, user: Ref, channel: Ref, *,
                         custom_id: str = "astra:test", locale: str = "pt-BR") -> Interaction:
        """A component interaction `user` made in `channel`, as the bot's gateway would get it,
        without a connected bot: what a test playing a compromised bot starts from (it then
        answers or defers it over REST itself, as that bot could)."""
        ch = self.world.channel(channel)
        message = self.world.create_message(ch, self.world.bot, {"content": "."})
        data = {"custom_id": custom_id, "component_type": BUTTON}
        payload = self._interaction_payload(MESSAGE_COMPONENT, data, ch, user, locale,
                                            message=message)
        return self._send_interaction(payload, message["id"])

    async def select(self: FakeDiscord, target: Ref, user: Ref, custom_id: str,
                     values: Iterable[Any], *, locale: str = "pt-BR",
                     timeout: float = 5.0) -> Interaction:
        """Pick `values` in the select menu `custom_id` (string selects check the values
        against the options and min/max_values; user/role/channel selects take ids)."""
        await self.wait_ready(timeout)
        message, component = self._find_component(target, user, custom_id, SELECTS)
        picked = [str(v) for v in values]
        kind = int(component["type"])
        low, high = int(component.get("min_values", 1)), int(component.get("max_values", 1))
        if not low <= len(picked) <= high:
            raise ValueError(f"select {custom_id!r} takes {low}..{high} values, got {picked}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": kind,
                                "values": picked}
        if kind == STRING_SELECT:
            allowed = {o["value"] for o in component.get("options", [])}
            if unknown_values := [v for v in picked if v not in allowed]:
                raise ValueError(f"select {custom_id!r} has no option(s) {unknown_values}")
        else:
            resolved: dict[str, dict[str, Any]] = {}
            channel = self.world.channel(message["channel_id"])
            kinds = {USER_SELECT: USER, ROLE_SELECT: ROLE, CHANNEL_SELECT: CHANNEL,
                     MENTIONABLE_SELECT: MENTIONABLE}
            for value in picked:
                self._resolve(kinds[kind], value, resolved, channel, ref(user))
            data["resolved"] = resolved
        return self._component_interaction(message, user, data, locale)

    async def submit_modal(self: FakeDiscord, user: Ref, custom_id: str,
                           values: Mapping[str, str], *, source: Interaction | None = None,
                           guild: Ref | None = None, channel: Ref | None = None,
                           locale: str = "pt-BR", timeout: float = 5.0) -> Interaction:
        """Fill and submit the modal `custom_id` the bot showed to `user` (the latest one,
        or the one `source` got). Field values are checked against the modal's inputs."""
        await self.wait_ready(timeout)
        user_id = ref(user)
        if source is None:
            source = next((h for h in reversed(self.interactions) if h.user_id == user_id
                           and h.callback_type == MODAL
                           and (h.modal or {}).get("custom_id") == custom_id), None)
        modal = source.modal if source is not None else None
        if modal is None:
            if guild is None and channel is None:
                raise ValueError(f"the bot never showed modal {custom_id!r} to {user_id}")
            rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": str(v)}]}
                    for k, v in values.items()]
            ch = self._interaction_channel(ref(guild) if guild else None, user, channel)
            message = None
        else:
            if modal.get("custom_id") != custom_id:
                raise ValueError(f"{source!r} showed modal {modal.get('custom_id')!r}")
            rows = self._fill_modal(modal, values)
            assert source is not None
            ch = self.world.channel(source.channel_id)
            message = self.world.message(source.source_message_id) \
                if source.source_message_id else None
        data = {"custom_id": custom_id, "components": rows}
        payload = self._interaction_payload(MODAL_SUBMIT, data, ch, user, locale,
                                            message=message)
        return self._send_interaction(payload, message["id"] if message else None)

    # --- building blocks --------------------------------------------------------------------

    def _interaction_channel(self: FakeDiscord, guild_id: str | None, user: Ref,
                             channel: Ref | None) -> Channel:
        world = self.world
        if channel is not None:
            return world.channel(channel)
        if guild_id is None:
            return world.open_dm(world.user(user))
        g = world.guild(guild_id)
        for cid in [g.system_channel_id, *g.channel_ids]:
            if cid and world.channels[cid].type == TEXT:
                return world.channels[cid]
        raise ValueError(f"guild {guild_id} has no text channel; pass channel=")

    def _check_can_use(self: FakeDiscord, command: dict[str, Any], channel: Channel,
                       user_id: str) -> None:
        """Discord only offers a command where its contexts and default_member_permissions
        allow it ("0" = administrators only)."""
        contexts = command.get("contexts")
        context = BOT_DM_CONTEXT if channel.guild_id is None else GUILD_CONTEXT
        if (contexts is not None and context not in contexts) or (
                channel.guild_id is None and command.get("dm_permission") is False):
            raise ValueError(f"/{command['name']} is not available in this context")
        required = command.get("default_member_permissions")
        if channel.guild_id is None or required is None:
            return
        perms = self.world.permissions_in(channel, user_id)
        needed = int(required) or P.ADMINISTRATOR
        if perms != P.ALL and perms & needed != needed:
            raise ValueError(f"user {user_id} lacks the permissions /{command['name']} needs "
                             f"({required})")

    def _interaction_payload(self: FakeDiscord, kind: int, data: dict[str, Any],
                             channel: Channel, user: Ref, locale: str, *,
                             message: dict[str, Any] | None = None) -> dict[str, Any]:
        world = self.world
        u = world.user(user)
        payload: dict[str, Any] = {
            "id": world.ids.next(),
            "application_id": world.application_id,
            "type": kind,
            "data": data,
            "channel_id": channel.id,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96),
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if channel.guild_id is not None:
            guild = world.guilds[channel.guild_id]
            member = guild.members.get(u.id)
            if member is None:
                raise ValueError(f"user {u.id} is not a member of guild {guild.id}")
            perms = world.permissions_in(channel, u.id)
            if not perms & P.VIEW_CHANNEL:
                raise ValueError(f"user {u.id} cannot see channel {channel.id}")
            payload.update({
                "guild_id": guild.id,
                "guild": {"id": guild.id, "locale": guild.preferred_locale, "features": []},
                "guild_locale": guild.preferred_locale,
                "channel": {**channel.to_json(world), "permissions": str(perms)},
                "member": world.member_json(guild, member, channel=channel,
                                            with_permissions=True),
                "app_permissions": str(world.permissions_in(channel, world.bot.id)),
                "authorizing_integration_owners": {"0": guild.id},
                "context": GUILD_CONTEXT,
            })
        else:
            payload.update({
                "user": u.to_json(),
                "channel": channel.to_json(world),
                "app_permissions": str(P.DEFAULT_EVERYONE | P.EMBED_LINKS | P.ATTACH_FILES),
                "authorizing_integration_owners": {"0": "0"},
                "context": BOT_DM_CONTEXT,
            })
        if message is not None:
            payload["message"] = message
        return payload

    def _send_interaction(self: FakeDiscord, payload: dict[str, Any],
                          source_message_id: str | None = None) -> Interaction:
        handle = Interaction(self.world, payload, source_message_id=source_message_id,
                             response_deadline=self.response_deadline,
                             token_lifetime=self.token_lifetime)
        self.interactions.append(handle)
        self.interactions_by_id[handle.id] = handle
        self.interactions_by_token[handle.token] = handle
        # Serialized per session by the gateway: the bot gets its own copy to mutate.
        self.gateway.dispatch("INTERACTION_CREATE", copy.deepcopy(payload))
        return handle

    def _component_interaction(self: FakeDiscord, message: dict[str, Any], user: Ref,
                               data: dict[str, Any], locale: str) -> Interaction:
        channel = self.world.channel(message["channel_id"])
        payload = self._interaction_payload(MESSAGE_COMPONENT, data, channel, user, locale,
                                            message=message)
        return self._send_interaction(payload, message["id"])

    def _find_component(self: FakeDiscord, target: Ref, user: Ref, custom_id: str,
                        kinds: tuple[int, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
        world = self.world
        key = ref(target)
        if key in world.channels:
            candidates = list(reversed(world.channel_messages.get(key, [])))
        else:
            found = world._find_message(key)
            if found is None:
                raise ValueError(f"no message or channel {key!r}")
            candidates = [found]
        user_id = ref(user)
        for message in candidates:
            if message["flags"] & EPHEMERAL:
                owner = (message.get("interaction_metadata") or {}).get("user", {}).get("id")
                if owner != user_id:
                    continue  # someone else's ephemeral message
            for component in _components(message.get("components") or []):
                if component.get("custom_id") == custom_id and int(component["type"]) in kinds:
                    if component.get("disabled"):
                        raise ValueError(f"component {custom_id!r} is disabled")
                    if int(component.get("style", 0)) == LINK_STYLE:
                        raise ValueError(f"{custom_id!r} is a link button")
                    return copy.deepcopy(message), component
        raise ValueError(f"no component {custom_id!r} in {key}")

    def _typed_options(self: FakeDiscord, schema: list[dict[str, Any]], values: dict[str, Any],
                       resolved: dict[str, dict[str, Any]], channel: Channel,
                       user_id: str) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in schema}
        if unknown_names := [n for n in values if n not in by_name]:
            raise ValueError(f"no option(s) {unknown_names}; the command has {list(by_name)}")
        missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
        if missing:
            raise ValueError(f"required option(s) {missing} missing")
        result = []
        for option in schema:  # Discord sends options in the command's order
            if option["name"] not in values:
                continue
            kind = int(option.get("type", STRING))
            value = self._resolve(kind, values[option["name"]], resolved, channel, user_id)
            if option.get("choices") and value not in [c["value"] for c in option["choices"]]:
                raise ValueError(f"{value!r} is not a choice of option {option['name']!r}")
            result.append({"name": option["name"], "type": kind, "value": value})
        return result

    def _resolve(self: FakeDiscord, kind: int, value: Any,
                 resolved: dict[str, dict[str, Any]], channel: Channel,
                 user_id: str) -> Any:
        world = self.world
        if kind == INTEGER:
            return int(value)
        if kind == NUMBER:
            return float(value)
        if kind == BOOLEAN:
            return bool(value)
        if kind == ATTACHMENT:
            if isinstance(value, dict):
                filename, data = value["filename"], value["data"]
                content_type = value.get("content_type")
            else:
                filename, data = value
                content_type = None
            stored = world.store_file(filename, data, content_type,
                                      folder=f"ephemeral-attachments/{world.application_id}")
            resolved.setdefault("attachments", {})[stored.id] = world.attachment_json(
                stored, ephemeral=True)
            return stored.id
        if kind in (USER, ROLE, CHANNEL, MENTIONABLE):
            key = ref(value)
            guild = world.guilds.get(channel.guild_id or "")
            if kind in (USER, MENTIONABLE) and key in world.users:
                resolved.setdefault("users", {})[key] = world.users[key].to_json()
                if guild is not None and key in guild.members:
                    member = world.member_json(guild, guild.members[key], channel=channel,
                                               with_permissions=True)
                    member.pop("user")
                    resolved.setdefault("members", {})[key] = member
                return key
            if kind in (ROLE, MENTIONABLE) and guild is not None and key in guild.roles:
                resolved.setdefault("roles", {})[key] = guild.roles[key].to_json()
                return key
            if kind == CHANNEL and key in world.channels:
                target = world.channels[key]
                keep = ("id", "name", "type", "parent_id", "guild_id", "topic", "position",
                        "permission_overwrites", "nsfw", "flags", "last_message_id")
                data = {k: v for k, v in target.to_json(world).items() if k in keep}
                data["permissions"] = str(world.permissions_in(target, user_id))
                resolved.setdefault("channels", {})[key] = data
                return key
            raise ValueError(f"cannot resolve {value!r} as option type {kind}")
        return str(value)

    @staticmethod
    def _fill_modal(modal: dict[str, Any], values: Mapping[str, str]) -> list[dict[str, Any]]:
        rows = []
        used = set()
        for row in modal.get("components") or []:
            if int(row.get("type", 0)) == LABEL:
                field = row["component"]
                rows.append({"type": LABEL, "id": row.get("id"),
                             "component": _filled(field, values, used)})
            else:
                rows.append({"type": 1, "components": [_filled(f, values, used)
                                                       for f in row.get("components") or []]})
        if extra := set(values) - used:
            raise ValueError(f"the modal has no field(s) {sorted(extra)}")
        return rows


def _filled(field: dict[str, Any], values: Mapping[str, str], used: set[str]) -> dict[str, Any]:
    custom_id = field["custom_id"]
    if custom_id in values:
        value = str(values[custom_id])
        used.add(custom_id)
    elif field.get("required", True) and not field.get("value"):
        raise ValueError(f"modal field {custom_id!r} is required")
    else:
        value = str(field.get("value") or "")
    low, high = field.get("min_length"), field.get("max_length")
    if (low is not None and len(value) < int(low) and value) or (
            high is not None and len(value) > int(high)):
        raise ValueError(f"modal field {custom_id!r}: length must be {low}..{high}")
    return {"type": int(field.get("type", 4)), "custom_id": custom_id, "value": value}


def _components(rows: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for row in rows:
        yield row
        yield from _components(row.get("components") or [])
        if isinstance(row.get("component"), dict):
            yield row["component"]
        if isinstance(row.get("accessory"), dict):
            yield row["accessory"]

