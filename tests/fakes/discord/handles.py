"""An interaction the fake sent to the bot, and everything the bot answered to it."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .entities import EPHEMERAL, LOADING

if TYPE_CHECKING:
    from .state import World

APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9


@dataclass
class SentFile:
    """A file uploaded with a callback, an edit or a followup."""

    filename: str
    content_type: str
    data: bytes


class Interaction:
    """Handle on one INTERACTION_CREATE: `await response()`, then `message`, `followups`, ...

    The bot's answers are recorded as they arrive over REST:
    - `callback` — the body of POST /interactions/{id}/{token}/callback ({"type", "data"});
    - `message` — the original response message as it is now (after edits), or None;
    - `followups` — bodies POSTed to /webhooks/{app}/{token} (flags 64 = ephemeral);
    - `followup_messages` — the messages those created (current state);
    - `edits` — bodies PATCHed to .../messages/@original (or a followup id);
    - `modal` — the modal's data when the bot answered with type 9.
    """

    def __init__(self, world: World, payload: dict[str, Any], *,
                 source_message_id: str | None = None, response_deadline: float = 3.0,
                 token_lifetime: float = 900.0) -> None:
        self._world = world
        self.payload = copy.deepcopy(payload)  # exactly what was sent (the bot got a copy)
        self.id: str = payload["id"]
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.guild_id: str | None = payload.get("guild_id")
        self.channel_id: str = payload["channel_id"]
        self.user_id: str = (payload.get("member") or payload)["user"]["id"]
        self.source_message_id = source_message_id
        self.created = time.monotonic()
        self.response_deadline = response_deadline
        self.token_lifetime = token_lifetime
        self.callback: dict[str, Any] | None = None
        self.callback_files: list[SentFile] = []
        self.original_message_id: str | None = None
        self.followups: list[dict[str, Any]] = []
        self.followup_ids: list[str] = []
        self.edits: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def __repr__(self) -> str:
        return (f"<Interaction {self.id} type={self.type} name={self.name!r} "
                f"callback={self.callback_type}>")

    @property
    def name(self) -> str:
        """The command name (with subcommands) or the component/modal custom_id."""
        data = self.payload.get("data", {})
        if self.type in (APPLICATION_COMMAND, AUTOCOMPLETE):
            parts = [data.get("name", "")]
            options = data.get("options") or []
            while options and options[0].get("type") in (1, 2):
                parts.append(options[0]["name"])
                options = options[0].get("options") or []
            return " ".join(parts)
        return data.get("custom_id", "")

    @property
    def callback_type(self) -> int | None:
        return None if self.callback is None else int(self.callback.get("type", 0))

    @property
    def acknowledged(self) -> bool:
        return self.callback is not None

    @property
    def modal(self) -> dict[str, Any] | None:
        if self.callback_type == MODAL:
            return copy.deepcopy(self.callback.get("data"))  # type: ignore[union-attr]
        return None

    @property
    def message(self) -> dict[str, Any] | None:
        """The original response message now (None before a response or after deletion)."""
        if self.original_message_id is None:
            return None
        return self._world.message(self.original_message_id)

    @property
    def followup_messages(self) -> list[dict[str, Any]]:
        found = (self._world.message(mid) for mid in self.followup_ids)
        return [m for m in found if m is not None]

    @property
    def ephemeral(self) -> bool:
        """Whether the original response is only visible to the user who interacted."""
        message = self.message
        if message is not None:
            return bool(message["flags"] & EPHEMERAL)
        data = (self.callback or {}).get("data") or {}
        return bool(int(data.get("flags") or 0) & EPHEMERAL)

    def expired(self) -> bool:
        return time.monotonic() - self.created > self.token_lifetime

    def too_late(self) -> bool:
        return time.monotonic() - self.created > self.response_deadline

    async def response(self, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the bot's initial response; returns the callback body."""
        await self._world.wait_for(lambda: self.callback is not None, timeout,
                                   f"a response to {self!r}")
        return copy.deepcopy(self.callback)  # type: ignore[arg-type]

    async def wait_message(self, check: Callable[[dict[str, Any]], Any] | None = None,
                           timeout: float = 5.0) -> dict[str, Any]:
        """Wait until the original response exists, is not "thinking…" any more (a deferred
        response edited or followed up), and passes `check`; returns it."""

        def ready() -> dict[str, Any] | None:
            message = self.message
            if message is None or message["flags"] & LOADING:
                return None
            return message if check is None or check(message) else None

        return await self._world.wait_for(ready, timeout, f"the response message of {self!r}")

    async def wait_followups(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `count` followups were posted; returns their bodies."""
        await self._world.wait_for(lambda: len(self.followups) >= count, timeout,
                                   f"{count} followup(s) to {self!r}")
        return copy.deepcopy(self.followups)
