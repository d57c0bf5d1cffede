"""The chat platform port (Discord in production): what the domain and plugins need from it.

Issue-by-issue this grows (posting products, cart channels, components); delivery needs only
direct messages, channel messages and roles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ChatError(Exception):
    """The platform refused or failed a call; `retryable` says whether trying later may work."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class DirectMessagesClosed(ChatError):
    """The user does not accept DMs from the bot (Discord error 50007)."""

    def __init__(self, message: str = "direct messages closed") -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class OutgoingMessage:
    content: str
    embeds: list[dict] = field(default_factory=list)
    # (filename, bytes) pairs sent as attachments
    files: list[tuple[str, bytes]] = field(default_factory=list)


class ChatPlatform(Protocol):
    async def send_dm(self, user_id: str, message: OutgoingMessage) -> str:
        """DM a user; returns the message id. Raises DirectMessagesClosed or ChatError."""
        ...

    async def send_message(self, channel_id: str, message: OutgoingMessage) -> str:
        """Post in a channel; returns the message id."""
        ...

    async def grant_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        """Give a guild role to a member."""
        ...
