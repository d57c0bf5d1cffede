"""REST routes for application commands, interaction callbacks and the interaction webhook
(original response, followups)."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from .entities import EPHEMERAL, LOADING
from .errors import ApiError, already_acknowledged, invalid_field, no_content, unknown
from .handles import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_MESSAGE,
    DEFERRED_UPDATE,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    Interaction,
    SentFile,
)
from .rest import API, Body, RestCore, body_of, json_of, ok
from .validation import validate_command, validate_message, validate_modal

ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, MODAL, 10, 12},
    MESSAGE_COMPONENT: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE,
                        MODAL, 10, 12},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, 10},
}
# Fields Discord keeps for a command; anything else sent is dropped.
COMMAND_FIELDS = ("name", "name_localizations", "description", "description_localizations",
                  "options", "default_member_permissions", "dm_permission", "nsfw",
                  "integration_types", "contexts", "type", "handler")


class InteractionRoutes(RestCore):
    def register(self, r: web.UrlDispatcher) -> None:
        for scope in ("/applications/{app_id}", "/applications/{app_id}/guilds/{guild_id}"):
            r.add_get(API + scope + "/commands", self.list_commands)
            r.add_put(API + scope + "/commands", self.overwrite_commands)
            r.add_post(API + scope + "/commands", self.create_command)
            r.add_get(API + scope + "/commands/{command_id}", self.get_command)
            r.add_patch(API + scope + "/commands/{command_id}", self.edit_command)
            r.add_delete(API + scope + "/commands/{command_id}", self.delete_command)
        r.add_post(API + "/interactions/{interaction_id}/{token}/callback", self.callback)
        hook = API + "/webhooks/{app_id}/{token}"
        r.add_post(hook, self.followup)
        r.add_get(hook + "/messages/{message_id}", self.get_hook_message)
        r.add_patch(hook + "/messages/{message_id}", self.edit_hook_message)
        r.add_delete(hook + "/messages/{message_id}", self.delete_hook_message)

    # --- application commands ---------------------------------------------------------------

    def _scope(self, request: web.Request) -> str:
        if request.match_info["app_id"] != self.world.application_id:
            raise ApiError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return "global"
        if guild_id not in self.world.guilds:
            raise ApiError(403, 50001, "Missing Access")
        return guild_id

    def _stored(self, data: dict[str, Any], scope: str,
                existing: dict[str, Any] | None) -> dict[str, Any]:
        cmd = {k: copy.deepcopy(v) for k, v in data.items() if k in COMMAND_FIELDS}
        cmd.setdefault("type", 1)
        cmd.setdefault("description", "")
        cmd.setdefault("default_member_permissions", None)
        cmd.setdefault("nsfw", False)
        cmd["id"] = existing["id"] if existing else self.world.ids.next()
        cmd["application_id"] = self.world.application_id
        if scope != "global":
            cmd["guild_id"] = scope
        unchanged = existing is not None and all(
            existing.get(k) == v for k, v in cmd.items() if k != "version")
        cmd["version"] = existing["version"] if unchanged and existing else self.world.ids.next()
        return cmd

    async def list_commands(self, request: web.Request) -> web.Response:
        return ok(self.world.commands.get(self._scope(request), []))

    async def overwrite_commands(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        data = body_of(request).json
        if not isinstance(data, list):
            raise invalid_field([], "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        if len(data) > 100:
            raise invalid_field([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        seen: set[tuple[str, int]] = set()
        for i, command in enumerate(data):
            validate_command(command, [i])
            key = (command.get("name"), int(command.get("type", 1)))
            if key in seen:
                raise invalid_field([i, "name"], "APPLICATION_COMMANDS_DUPLICATE_NAME",
                                    f"Application command names must be unique: {key[0]}")
            seen.add(key)
        # Commands keep their id when one with the same name and type is overwritten.
        old = {(c["name"], int(c["type"])): c for c in self.world.commands.get(scope, [])}
        stored = [self._stored(c, scope, old.get((c["name"], int(c.get("type", 1)))))
                  for c in data]
        self.world.commands[scope] = stored
        return ok(stored)

    async def create_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        data = json_of(request)
        validate_command(data, [])
        commands = self.world.commands.setdefault(scope, [])
        key = (data.get("name"), int(data.get("type", 1)))
        existing = next((c for c in commands if (c["name"], int(c["type"])) == key), None)
        stored = self._stored(data, scope, existing)
        if existing is not None:
            commands[commands.index(existing)] = stored
            return ok(stored)
        commands.append(stored)
        return ok(stored, 201)

    def _command(self, request: web.Request) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        commands = self.world.commands.get(self._scope(request), [])
        for cmd in commands:
            if cmd["id"] == request.match_info["command_id"]:
                return commands, cmd
        raise unknown("command")

    async def get_command(self, request: web.Request) -> web.Response:
        return ok(self._command(request)[1])

    async def edit_command(self, request: web.Request) -> web.Response:
        commands, cmd = self._command(request)
        merged = {**cmd, **json_of(request)}
        validate_command(merged, [])
        stored = self._stored(merged, self._scope(request), cmd)
        commands[commands.index(cmd)] = stored
        return ok(stored)

    async def delete_command(self, request: web.Request) -> web.Response:
        commands, cmd = self._command(request)
        commands.remove(cmd)
        return no_content()

    # --- interaction callback ---------------------------------------------------------------

    def _interaction_for_callback(self, request: web.Request) -> Interaction:
        handle = self.fake.interactions_by_id.get(request.match_info["interaction_id"])
        if handle is None or handle.token != request.match_info["token"] or handle.too_late():
            raise unknown("interaction")
        return handle

    def _metadata(self, handle: Interaction, **extra: Any) -> dict[str, Any]:
        payload = handle.payload
        user = (payload.get("member") or payload)["user"]
        data: dict[str, Any] = {
            "id": handle.id,
            "type": handle.type,
            "user": copy.deepcopy(user),
            "authorizing_integration_owners": copy.deepcopy(
                payload.get("authorizing_integration_owners", {})),
        }
        if handle.type == APPLICATION_COMMAND:
            data["name"] = handle.name
            data["command_type"] = 1
        if handle.source_message_id:
            data["interacted_message_id"] = handle.source_message_id
        data.update(extra)
        return data

    def _response_message(self, handle: Interaction, payload: dict[str, Any],
                          attachments: list[dict[str, Any]], flags: int) -> dict[str, Any]:
        channel = self.world.channels[handle.channel_id]
        message_type = 20 if handle.type == APPLICATION_COMMAND else 0
        return self.world.create_message(channel, self.world.bot, payload,
                                         attachments=attachments, message_type=message_type,
                                         flags=flags, interaction=self._metadata(handle))

    def _files(self, body: Body, sink: list[SentFile]) -> None:
        for upload in sorted(body.files, key=lambda f: f.index):
            sink.append(SentFile(upload.filename, upload.content_type, upload.data))

    async def callback(self, request: web.Request) -> web.Response:
        handle = self._interaction_for_callback(request)
        if handle.callback is not None:
            raise already_acknowledged()
        body = body_of(request)
        payload = json_of(request)
        kind = int(payload.get("type") or 0)
        if kind not in ALLOWED_CALLBACKS.get(handle.type, set()) or (
                kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and handle.source_message_id is None):
            raise invalid_field(["type"], "INTERACTION_RESPONSE_TYPE_INVALID",
                                "Interaction response type is invalid for this interaction.")
        data = payload.get("data") or {}
        if not isinstance(data, dict):
            raise invalid_field(["data"], "MODEL_TYPE_CONVERT",
                                "Only dictionaries may be used in a ModelType")
        flags = int(data.get("flags") or 0)
        # interactions.py puts the upload metadata next to "data" rather than in it.
        meta = {"attachments": data.get("attachments") or payload.get("attachments") or []}
        if kind == CHANNEL_MESSAGE:
            validate_message(data, has_files=bool(body.files))
            attachments = self.attachments_from(
                body, meta, folder=f"attachments/{handle.channel_id}",
                ephemeral=bool(flags & EPHEMERAL))
            message = self._response_message(handle, data, attachments, flags & (EPHEMERAL | 4))
            handle.original_message_id = message["id"]
        elif kind == DEFERRED_MESSAGE:
            message = self._response_message(handle, {}, [], LOADING | (flags & EPHEMERAL))
            handle.original_message_id = message["id"]
        elif kind == DEFERRED_UPDATE:
            handle.original_message_id = handle.source_message_id
        elif kind == UPDATE_MESSAGE:
            validate_message(data, has_files=bool(body.files), allow_empty=True)
            source = self.world._find_message(handle.source_message_id or "")
            if source is None:
                raise unknown("message")
            added = self.attachments_from(body, meta, folder=f"attachments/{handle.channel_id}")
            self.world.edit_message(source, data, added)
            handle.original_message_id = source["id"]
        elif kind == MODAL:
            validate_modal(data)
        handle.callback = copy.deepcopy(payload)
        self._files(body, handle.callback_files)
        if request.query.get("with_response") in ("true", "1", "True"):
            message = handle.message
            resource: dict[str, Any] = {"type": kind}
            if message is not None and kind in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
                resource["message"] = message
            return ok({
                "interaction": {
                    "id": handle.id, "type": handle.type,
                    "response_message_id": handle.original_message_id,
                    "response_message_loading": kind == DEFERRED_MESSAGE,
                    "response_message_ephemeral": bool(flags & EPHEMERAL),
                },
                "resource": resource,
            })
        return no_content()

    # --- the interaction webhook ------------------------------------------------------------

    def _interaction_for_hook(self, request: web.Request) -> Interaction:
        if request.match_info["app_id"] != self.world.application_id:
            raise unknown("webhook")
        handle = self.fake.interactions_by_token.get(request.match_info["token"])
        if handle is None or handle.expired():
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return handle

    def _hook_message(self, handle: Interaction, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            message_id = handle.original_message_id or ""
        elif message_id not in handle.followup_ids and message_id != handle.original_message_id:
            raise unknown("message")
        message = self.world._find_message(message_id)
        if message is None:
            raise unknown("message")
        return message

    async def followup(self, request: web.Request) -> web.Response:
        handle = self._interaction_for_hook(request)
        if handle.callback is None:
            raise unknown("webhook")
        body = body_of(request)
        payload = json_of(request)
        validate_message(payload, has_files=bool(body.files))
        flags = int(payload.get("flags") or 0)
        handle.followups.append(copy.deepcopy(payload))
        attachments = self.attachments_from(body, payload,
                                            folder=f"attachments/{handle.channel_id}",
                                            ephemeral=bool(flags & EPHEMERAL))
        original = handle.message
        if original is not None and original["flags"] & LOADING:
            # The first followup after a deferred response replaces the "thinking…" message.
            stored = self.world._find_message(original["id"])
            assert stored is not None
            message = self.world.edit_message(stored, payload, attachments)
            message["edited_timestamp"] = None
        else:
            channel = self.world.channels[handle.channel_id]
            message = self.world.create_message(
                channel, self.world.bot, payload, attachments=attachments,
                flags=flags & (EPHEMERAL | 4), interaction=self._metadata(
                    handle, original_response_message_id=handle.original_message_id))
        handle.followup_ids.append(message["id"])
        return ok(message)

    async def get_hook_message(self, request: web.Request) -> web.Response:
        handle = self._interaction_for_hook(request)
        return ok(self._hook_message(handle, request.match_info["message_id"]))

    async def edit_hook_message(self, request: web.Request) -> web.Response:
        handle = self._interaction_for_hook(request)
        message = self._hook_message(handle, request.match_info["message_id"])
        body = body_of(request)
        payload = json_of(request)
        validate_message(payload, allow_empty=True)
        handle.edits.append(copy.deepcopy(payload))
        ephemeral = bool(message["flags"] & EPHEMERAL)
        added = self.attachments_from(body, payload, folder=f"attachments/{handle.channel_id}",
                                      ephemeral=ephemeral)
        return ok(self.world.edit_message(message, payload, added))

    async def delete_hook_message(self, request: web.Request) -> web.Response:
        handle = self._interaction_for_hook(request)
        message = self._hook_message(handle, request.match_info["message_id"])
        self.world.delete_message(message)
        handle.deleted.append(message["id"])
        return no_content()
