"""Messages and uploaded files: how the fake stores, edits and deletes them, and the
MESSAGE_* gateway events that follow (with content hidden from bots without MESSAGE_CONTENT)."""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .entities import (
    DIRECT_MESSAGES,
    EPHEMERAL,
    GUILD_MESSAGES,
    LOADING,
    MESSAGE_CONTENT,
    Channel,
    StoredFile,
    User,
    content_type_for,
    normalize_embed,
)
from .snowflakes import iso

if TYPE_CHECKING:
    from .state import World

# Discord checks an enforced nonce "for uniqueness in the past few minutes".
NONCE_WINDOW = 300.0


class MessageStore:
    """Mixed into World."""

    def store_file(self: World, filename: str, data: bytes, content_type: str | None = None, *,
                   folder: str) -> StoredFile:
        """Keep uploaded bytes and give them a CDN-style URL served by the fake."""
        file_id = self.ids.next()
        signature = hashlib.sha256(data).hexdigest()
        url = (f"{self.cdn_base}/{folder}/{file_id}/{quote(filename)}"
               f"?ex={secrets.token_hex(4)}&is={secrets.token_hex(4)}&hm={signature}&")
        stored = StoredFile(file_id, filename, content_type or content_type_for(filename, data),
                            data, url)
        self.files[file_id] = stored
        return stored

    def attachment_json(self: World, stored: StoredFile, *, description: str | None = None,
                        ephemeral: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": stored.id,
            "filename": stored.filename,
            "size": len(stored.data),
            "url": stored.url,
            "proxy_url": stored.url.replace(self.cdn_base, f"{self.cdn_base}/media", 1),
            "content_type": stored.content_type,
        }
        if description:
            data["description"] = description
        if ephemeral:
            data["ephemeral"] = True
        return data

    def create_message(self: World, channel: Channel, author: User, payload: dict[str, Any], *,
                       attachments: list[dict[str, Any]] | None = None,
                       message_type: int = 0, flags: int | None = None,
                       interaction: dict[str, Any] | None = None,
                       emit: bool = True) -> dict[str, Any]:
        """Store a message (payload already validated) and emit MESSAGE_CREATE."""
        flags = int(payload.get("flags") or 0) if flags is None else flags
        content = payload.get("content") or ""
        message: dict[str, Any] = {
            "type": message_type,
            "content": content,
            "mentions": self._mentioned_users(content),
            "mention_roles": re.findall(r"<@&(\d+)>", content),
            "attachments": attachments or [],
            "embeds": [normalize_embed(e) for e in payload.get("embeds") or []],
            "timestamp": iso(),
            "edited_timestamp": None,
            "flags": flags,
            "components": copy.deepcopy(payload.get("components") or []),
            "id": self.ids.next(),
            "channel_id": channel.id,
            "author": author.to_json(),
            "pinned": False,
            "mention_everyone": "@everyone" in content or "@here" in content,
            "tts": bool(payload.get("tts", False)),
        }
        if payload.get("nonce") is not None:
            message["nonce"] = payload["nonce"]
            key = (channel.id, author.id, str(payload["nonce"]))
            self.nonces[key] = (time.monotonic(), message["id"])
        if payload.get("message_reference"):
            reference = dict(payload["message_reference"])
            reference.setdefault("channel_id", channel.id)
            if channel.guild_id:
                reference.setdefault("guild_id", channel.guild_id)
            message["message_reference"] = reference
        if interaction is not None:
            message["webhook_id"] = self.application_id
            message["application_id"] = self.application_id
            message["interaction_metadata"] = interaction
            message["interaction"] = {
                "id": interaction["id"], "type": interaction["type"],
                "name": interaction.get("name", ""), "user": interaction["user"],
            }
        self.channel_messages.setdefault(channel.id, []).append(message)
        self.message_channel[message["id"]] = channel.id
        if not flags & EPHEMERAL:
            channel.last_message_id = message["id"]
            if emit:
                self._emit_message("MESSAGE_CREATE", channel, message)
        return message

    def message_by_nonce(self: World, channel: Channel, author: User,
                         nonce: str | int) -> dict[str, Any] | None:
        """The message `author` created in `channel` with `nonce` within `nonce_window` seconds,
        if it still exists (what `enforce_nonce` returns instead of creating a new one)."""
        seen = self.nonces.get((channel.id, author.id, str(nonce)))
        if seen is None or time.monotonic() - seen[0] > self.nonce_window:
            return None
        return self._find_message(seen[1])

    def edit_message(self: World, message: dict[str, Any], payload: dict[str, Any],
                     new_attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        # Fields left out of an edit stay as they were.
        if payload.get("components") is not None:
            message["components"] = copy.deepcopy(payload["components"])
        if "content" in payload:
            message["content"] = payload["content"] or ""
            message["mentions"] = self._mentioned_users(message["content"])
        if payload.get("embeds") is not None:
            message["embeds"] = [normalize_embed(e) for e in payload["embeds"]]
        if payload.get("attachments") is not None:
            # Attachments listed by id are kept; the rest are dropped.
            keep = {str(a.get("id")) for a in payload["attachments"]}
            message["attachments"] = [a for a in message["attachments"] if a["id"] in keep]
        if new_attachments:
            message["attachments"].extend(new_attachments)
        if payload.get("flags") is not None:
            # Only SUPPRESS_EMBEDS can be changed by an edit; loading/ephemeral stay as they were.
            message["flags"] = (message["flags"] & ~(1 << 2)) | (int(payload["flags"]) & (1 << 2))
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = iso()
        if not message["flags"] & EPHEMERAL:
            channel = self.channels[message["channel_id"]]
            self._emit_message("MESSAGE_UPDATE", channel, message)
        return message

    def delete_message(self: World, message: dict[str, Any]) -> None:
        channel_id = message["channel_id"]
        self.channel_messages[channel_id].remove(message)
        self.message_channel.pop(message["id"], None)
        channel = self.channels[channel_id]
        if not message["flags"] & EPHEMERAL:
            data: dict[str, Any] = {"id": message["id"], "channel_id": channel_id}
            if channel.guild_id:
                data["guild_id"] = channel.guild_id
            self.emit("MESSAGE_DELETE", data,
                      GUILD_MESSAGES if channel.guild_id else DIRECT_MESSAGES)

    def _find_message(self: World, message_id: str) -> dict[str, Any] | None:
        channel_id = self.message_channel.get(message_id)
        if channel_id is None:
            return None
        for m in self.channel_messages.get(channel_id, []):
            if m["id"] == message_id:
                return m
        return None

    def _mentioned_users(self: World, content: str) -> list[dict[str, Any]]:
        found = []
        for uid in dict.fromkeys(re.findall(r"<@!?(\d+)>", content)):
            if uid in self.users:
                found.append(self.users[uid].to_json())
        return found

    def _emit_message(self: World, event: str, channel: Channel, message: dict[str, Any]) -> None:
        data = copy.deepcopy(message)
        if channel.guild_id:
            data["guild_id"] = channel.guild_id
            member = self.guilds[channel.guild_id].members.get(message["author"]["id"])
            if member is not None:
                data["member"] = member.to_json(self, with_user=False)
            intent = GUILD_MESSAGES
        else:
            intent = DIRECT_MESSAGES
        # Without the MESSAGE_CONTENT intent a bot sees no content of other users' guild
        # messages unless they mention it.
        private = (channel.guild_id is not None and data["author"]["id"] != self.bot.id
                   and not any(u["id"] == self.bot.id for u in data["mentions"]))

        def render(intents: int) -> dict[str, Any]:
            if private and not intents & MESSAGE_CONTENT:
                return {**data, "content": "", "embeds": [], "attachments": [],
                        "components": []}
            return data

        self.emit(event, render, intent)
