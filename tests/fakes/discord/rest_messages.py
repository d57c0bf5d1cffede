"""REST routes for channel messages (JSON or multipart uploads) and the CDN that serves the
uploaded files back."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import permissions as P
from .entities import CATEGORY, DM, VOICE, Channel
from .errors import ApiError, cannot_dm, invalid_field, unknown
from .rest import API, RestCore, body_of, json_of, ok
from .validation import validate_message, validate_nonce


class MessageRoutes(RestCore):
    def register(self, r: web.UrlDispatcher) -> None:
        r.add_get(API + "/channels/{channel_id}/messages", self.list_messages)
        r.add_post(API + "/channels/{channel_id}/messages", self.create_message)
        r.add_get(API + "/channels/{channel_id}/messages/{message_id}", self.get_message)
        r.add_patch(API + "/channels/{channel_id}/messages/{message_id}", self.edit_message)
        r.add_delete(API + "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        # The CDN (cdn.discordapp.com) shapes, plus the short /attachments/{id}/{filename}.
        r.add_get("/attachments/{a}/{filename}", self.download)
        r.add_get("/attachments/{a}/{b}/{filename}", self.download)
        r.add_get("/ephemeral-attachments/{a}/{b}/{filename}", self.download)
        r.add_get("/media/attachments/{a}/{b}/{filename}", self.download)
        r.add_get("/media/ephemeral-attachments/{a}/{b}/{filename}", self.download)

    def _channel(self, request: web.Request) -> Channel:
        channel = self.world.channels.get(request.match_info["channel_id"])
        if channel is None:
            raise unknown("channel")
        return channel

    def _message(self, channel: Channel, message_id: str) -> dict[str, Any]:
        for message in self.world.channel_messages.get(channel.id, []):
            if message["id"] == message_id and not message["flags"] & 64:
                return message
        raise unknown("message")

    def _check_can_post(self, channel: Channel, has_files: bool) -> None:
        if channel.type == DM:
            user = self.world.users[channel.recipient_id or ""]
            shares_guild = any(user.id in g.members and self.world.bot.id in g.members
                               for g in self.world.guilds.values())
            if user.dms_closed or user.bot or not shares_guild:
                raise cannot_dm()
            return
        if channel.type in (CATEGORY, VOICE):
            raise ApiError(400, 50008, "Cannot send messages in a non-text channel")
        self.require_channel(channel, P.SEND_MESSAGES | (P.ATTACH_FILES if has_files else 0))

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body = body_of(request)
        payload = json_of(request)
        self._check_can_post(channel, bool(body.files))
        validate_message(payload, has_files=bool(body.files))
        validate_nonce(payload)
        if payload.get("enforce_nonce") and payload.get("nonce") is not None:
            # Discord: the same author's message with this nonce from the past few minutes is
            # returned, and no new message is created.
            earlier = self.world.message_by_nonce(channel, self.world.bot, payload["nonce"])
            if earlier is not None:
                return ok(earlier)
        reference = payload.get("message_reference")
        if reference and reference.get("message_id"):
            found = self.world._find_message(str(reference["message_id"]))
            if found is None and reference.get("fail_if_not_exists", True):
                raise invalid_field(["message_reference"], "REPLIES_UNKNOWN_MESSAGE",
                                    "Unknown message")
        attachments = self.attachments_from(body, payload, folder=f"attachments/{channel.id}")
        # Only SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS and IS_COMPONENTS_V2 can be set here.
        flags = int(payload.get("flags") or 0) & ((1 << 2) | (1 << 12) | (1 << 15))
        message = self.world.create_message(channel, self.world.bot, payload,
                                            attachments=attachments, flags=flags)
        return ok(message)

    async def list_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self.require_channel(channel, P.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        visible = [m for m in self.world.channel_messages.get(channel.id, [])
                   if not m["flags"] & 64]
        if "before" in request.query:
            visible = [m for m in visible if int(m["id"]) < int(request.query["before"])]
        if "after" in request.query:
            visible = [m for m in visible if int(m["id"]) > int(request.query["after"])]
            return ok(list(reversed(visible[:limit])))
        return ok(list(reversed(visible[-limit:])))

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self.require_channel(channel, P.READ_MESSAGE_HISTORY)
        return ok(self._message(channel, request.match_info["message_id"]))

    async def edit_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self.require_channel(channel)
        message = self._message(channel, request.match_info["message_id"])
        if message["author"]["id"] != self.world.bot.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        body = body_of(request)
        payload = json_of(request)
        validate_message(payload, allow_empty=True)
        added = self.attachments_from(body, payload, folder=f"attachments/{channel.id}")
        return ok(self.world.edit_message(message, payload, added))

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(channel, request.match_info["message_id"])
        own = message["author"]["id"] == self.world.bot.id
        self.require_channel(channel, 0 if own or channel.type == DM else P.MANAGE_MESSAGES)
        if channel.type == DM and not own:
            raise ApiError(403, 50003, "Cannot execute action on a DM channel")
        self.world.delete_message(message)
        return web.Response(status=204)

    async def download(self, request: web.Request) -> web.Response:
        info = request.match_info
        for key in ("b", "a"):
            stored = self.world.files.get(info.get(key, ""))
            if stored is not None and stored.filename == info["filename"]:
                return web.Response(body=stored.data,
                                    headers={"Content-Type": stored.content_type})
        return web.Response(status=404, text="Not Found")
