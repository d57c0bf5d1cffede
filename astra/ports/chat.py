"""The chat platform port (Discord in production): what the domain, the plugins and the bot's
flows need from it. Messages are plain data; the adapter turns them into API payloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class ChatError(Exception):
    """The platform refused or failed a call; `retryable` says whether trying later may work."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class DirectMessagesClosed(ChatError):
    """The user does not accept DMs from the bot (Discord error 50007)."""

    def __init__(self, message: str = "direct messages closed") -> None:
        super().__init__(message, retryable=False)


class InvalidBotToken(ChatError):
    """The platform does not recognise the bot token (HTTP 401)."""

    def __init__(self, message: str = "invalid bot token") -> None:
        super().__init__(message, retryable=False)


class InteractionUnverified(ChatError):
    """Discord does not vouch for the interaction a caller named: unknown or expired token,
    another application's, or not the interaction it claims to be."""

    def __init__(self, message: str = "interaction not verified") -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class InteractionRef:
    """A Discord interaction a bot received (a click, a command, a modal): its id and token.

    What a runtime hands the platform when it acts for the person who clicked: the platform
    asks Discord who that was, so no runtime can name the user itself."""

    id: str
    token: str


@dataclass(frozen=True)
class InteractionUser:
    """Who made an interaction, in Discord's own words."""

    id: str
    username: str = ""
    bot: bool = False


ButtonStyle = Literal["primary", "secondary", "success", "danger", "link"]


@dataclass(frozen=True)
class Button:
    label: str
    custom_id: str = ""
    style: ButtonStyle = "secondary"
    url: str = ""  # for style "link"
    emoji: str = ""
    disabled: bool = False


@dataclass(frozen=True)
class SelectOption:
    label: str
    value: str
    description: str = ""
    emoji: str = ""


@dataclass(frozen=True)
class Select:
    custom_id: str
    options: list[SelectOption]
    placeholder: str = ""
    disabled: bool = False


Component = Button | Select


@dataclass(frozen=True)
class OutgoingMessage:
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    # (filename, bytes) pairs sent as attachments
    files: list[tuple[str, bytes]] = field(default_factory=list)
    # rows of components (a select fills a row on its own)
    components: list[list[Component]] = field(default_factory=list)
    # At most 25 characters. A new message with the nonce of a recent one from the same sender
    # is not sent again: the platform answers with the first (retries stay idempotent).
    nonce: str | None = None
    # Roles this message may ping (a staff alert); users mentioned always may, @everyone never.
    mention_roles: tuple[str, ...] = ()


class ChatPlatform(Protocol):
    async def send_message(self, channel_id: str, message: OutgoingMessage) -> str:
        """Post in a channel; returns the message id."""
        ...

    async def edit_message(
        self, channel_id: str, message_id: str, message: OutgoingMessage
    ) -> None:
        """Replace a message's content, embeds and components."""
        ...

    async def delete_message(self, channel_id: str, message_id: str) -> None: ...

    async def send_dm(self, user_id: str, message: OutgoingMessage) -> str:
        """DM a user; returns the message id. Raises DirectMessagesClosed or ChatError."""
        ...

    async def open_private_channel(
        self,
        guild_id: str,
        name: str,
        *,
        member_ids: list[str],
        staff_role_id: str | None = None,
        category_id: str | None = None,
        topic: str = "",
    ) -> str:
        """A text channel only the members, staff and the bot can see; returns its id."""
        ...

    async def close_channel(self, channel_id: str, reason: str = "") -> None:
        """Delete a channel (a cart channel when the sale is over)."""
        ...

    async def grant_role(self, guild_id: str, user_id: str, role_id: str) -> None: ...

    async def revoke_role(self, guild_id: str, user_id: str, role_id: str) -> None: ...

    async def list_channels(self, guild_id: str) -> list[dict[str, Any]]:
        """[{id, name, type, parent_id, topic}] of a guild."""
        ...

    async def list_roles(self, guild_id: str) -> list[dict[str, Any]]:
        """[{id, name, position, managed}] of a guild."""
        ...
