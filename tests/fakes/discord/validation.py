"""The documented limits Discord checks on messages, components, modals and commands.

A violation is answered like Discord does: 400 with code 50035 "Invalid Form Body" and an error
tree naming the field (e.g. {"components": {"0": {"components": {"0": {"custom_id": ...}}}}}).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import empty_message, invalid_field

ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT = 1, 2, 3, 4
USER_SELECT, ROLE_SELECT, MENTIONABLE_SELECT, CHANNEL_SELECT = 5, 6, 7, 8
LABEL = 18
SELECTS = (STRING_SELECT, USER_SELECT, ROLE_SELECT, MENTIONABLE_SELECT, CHANNEL_SELECT)
LINK_STYLE, PREMIUM_STYLE = 5, 6
COMPONENTS_V2 = 1 << 15

COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def _too_long(path: list[str | int], limit: int) -> None:
    raise invalid_field(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _check_len(value: Any, limit: int, path: list[str | int]) -> None:
    if value is not None and len(str(value)) > limit:
        _too_long(path, limit)


def validate_message(payload: dict[str, Any], *, has_files: bool = False,
                     allow_empty: bool = False) -> None:
    """What POST /channels/{id}/messages and interaction responses accept."""
    content = payload.get("content")
    embeds = payload.get("embeds") or []
    components = payload.get("components") or []
    flags = int(payload.get("flags") or 0)
    if not allow_empty and not (content or embeds or components or has_files
                                or payload.get("sticker_ids") or payload.get("poll")):
        raise empty_message()
    _check_len(content, 2000, ["content"])
    if not isinstance(embeds, list):
        raise invalid_field(["embeds"], "LIST_TYPE_CONVERT",
                            "Only iterables may be used in a ListType")
    if len(embeds) > 10:
        raise invalid_field(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        total += _validate_embed(embed, ["embeds", i])
    if total > 6000:
        raise invalid_field(["embeds"], "MAX_EMBED_SIZE_EXCEEDED",
                            "Embed size exceeds maximum size of 6000")
    if flags & COMPONENTS_V2:
        return  # layout components (v2) are outside what this fake checks
    _validate_components(components, ["components"])


def validate_nonce(payload: dict[str, Any]) -> None:
    """A message nonce (an integer or a string) is at most 25 characters."""
    if isinstance(payload.get("nonce"), str):
        _check_len(payload["nonce"], 25, ["nonce"])


def _validate_embed(embed: dict[str, Any], path: list[str | int]) -> int:
    size = 0
    for key, limit in (("title", 256), ("description", 4096)):
        if embed.get(key) is not None:
            _check_len(embed[key], limit, [*path, key])
            size += len(str(embed[key]))
    fields = embed.get("fields") or []
    if len(fields) > 25:
        raise invalid_field([*path, "fields"], "BASE_TYPE_MAX_LENGTH",
                            "Must be 25 or fewer in length.")
    for j, fld in enumerate(fields):
        for key, limit in (("name", 256), ("value", 1024)):
            if not fld.get(key):
                raise invalid_field([*path, "fields", j, key], "BASE_TYPE_REQUIRED",
                                    "This field is required")
            _check_len(fld[key], limit, [*path, "fields", j, key])
            size += len(str(fld[key]))
    if (footer := embed.get("footer")) and footer.get("text") is not None:
        _check_len(footer["text"], 2048, [*path, "footer", "text"])
        size += len(str(footer["text"]))
    if (author := embed.get("author")) and author.get("name") is not None:
        _check_len(author["name"], 256, [*path, "author", "name"])
        size += len(str(author["name"]))
    return size


def _validate_components(rows: list[dict[str, Any]], path: list[str | int]) -> None:
    if len(rows) > 5:
        raise invalid_field(path, "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    custom_ids: set[str] = set()
    for i, row in enumerate(rows):
        if int(row.get("type", 0)) != ACTION_ROW:
            raise invalid_field([*path, i, "type"], "UNION_TYPE_CHOICES",
                                "Value of field \"type\" must be one of (1,).")
        children = row.get("components") or []
        if not children:
            raise invalid_field([*path, i, "components"], "BASE_TYPE_BAD_LENGTH",
                                "Must be between 1 and 5 in length.")
        kinds = {int(c.get("type", 0)) for c in children}
        if kinds & set(SELECTS) and len(children) != 1:
            raise invalid_field([*path, i, "components"], "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                                "The specified component exceeds the maximum width")
        if len(children) > 5:
            raise invalid_field([*path, i, "components"], "BASE_TYPE_BAD_LENGTH",
                                "Must be between 1 and 5 in length.")
        for j, comp in enumerate(children):
            _validate_component(comp, [*path, i, "components", j], custom_ids)


def _validate_component(comp: dict[str, Any], path: list[str | int], seen: set[str]) -> None:
    kind = int(comp.get("type", 0))
    custom_id = comp.get("custom_id")
    if kind == BUTTON:
        style = int(comp.get("style", 0))
        if style not in (1, 2, 3, 4, 5, 6):
            raise invalid_field([*path, "style"], "BASE_TYPE_CHOICES",
                                "Value must be one of {1, 2, 3, 4, 5, 6}.")
        _check_len(comp.get("label"), 80, [*path, "label"])
        if style == LINK_STYLE:
            if not comp.get("url"):
                raise invalid_field([*path, "url"], "BUTTON_COMPONENT_URL_REQUIRED",
                                    "A url is required")
            return
        if style == PREMIUM_STYLE:
            return
        if not custom_id:
            raise invalid_field([*path, "custom_id"], "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
                                "A custom id is required")
    elif kind in SELECTS:
        if not custom_id:
            raise invalid_field([*path, "custom_id"], "BASE_TYPE_REQUIRED",
                                "This field is required")
        _check_len(comp.get("placeholder"), 150, [*path, "placeholder"])
        if kind == STRING_SELECT:
            options = comp.get("options") or []
            if not 1 <= len(options) <= 25:
                raise invalid_field([*path, "options"], "BASE_TYPE_BAD_LENGTH",
                                    "Must be between 1 and 25 in length.")
            values = set()
            for k, opt in enumerate(options):
                for key in ("label", "value", "description"):
                    _check_len(opt.get(key), 100, [*path, "options", k, key])
                if opt.get("value") in values:
                    raise invalid_field([*path, "options", k, "value"],
                                        "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                                        "Select option values must be unique")
                values.add(opt.get("value"))
            max_values = int(comp.get("max_values", 1))
            if max_values > len(options):
                raise invalid_field([*path, "max_values"], "BASE_TYPE_MAX_VALUE",
                                    f"int value should be less than or equal to {len(options)}.")
    else:
        raise invalid_field([*path, "type"], "UNION_TYPE_CHOICES",
                            "Value of field \"type\" must be one of (2, 3, 5, 6, 7, 8).")
    _check_len(custom_id, 100, [*path, "custom_id"])
    if custom_id in seen:
        raise invalid_field([*path, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED",
                            "Component custom id cannot be duplicated")
    seen.add(custom_id)


def modal_inputs(modal: dict[str, Any]) -> list[dict[str, Any]]:
    """The text inputs of a modal, whether in action rows (classic) or in labels (type 18)."""
    found = []
    for row in modal.get("components") or []:
        kind = int(row.get("type", 0))
        if kind == ACTION_ROW:
            found.extend(row.get("components") or [])
        elif kind == LABEL and row.get("component"):
            found.append(row["component"])
    return found


def validate_modal(data: dict[str, Any]) -> None:
    if not data.get("custom_id"):
        raise invalid_field(["data", "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    _check_len(data.get("custom_id"), 100, ["data", "custom_id"])
    if not data.get("title"):
        raise invalid_field(["data", "title"], "BASE_TYPE_REQUIRED", "This field is required")
    _check_len(data.get("title"), 45, ["data", "title"])
    rows = data.get("components") or []
    if not 1 <= len(rows) <= 5:
        raise invalid_field(["data", "components"], "BASE_TYPE_BAD_LENGTH",
                            "Must be between 1 and 5 in length.")
    for i, comp in enumerate(modal_inputs(data)):
        path: list[str | int] = ["data", "components", i]
        if int(comp.get("type", 0)) == TEXT_INPUT:
            if not comp.get("custom_id"):
                raise invalid_field([*path, "custom_id"], "BASE_TYPE_REQUIRED",
                                    "This field is required")
            _check_len(comp.get("label"), 45, [*path, "label"])
            _check_len(comp.get("value"), 4000, [*path, "value"])
            if int(comp.get("style", 1)) not in (1, 2):
                raise invalid_field([*path, "style"], "BASE_TYPE_CHOICES",
                                    "Value must be one of {1, 2}.")


def validate_command(command: dict[str, Any], path: list[str | int]) -> None:
    name = command.get("name") or ""
    kind = int(command.get("type", 1))
    if kind == 1 and (not COMMAND_NAME.match(name) or name != name.lower()):
        raise invalid_field([*path, "name"], "APPLICATION_COMMAND_INVALID_NAME",
                            "Command name is invalid")
    if kind == 1:
        description = command.get("description") or ""
        if not 1 <= len(description) <= 100:
            raise invalid_field([*path, "description"], "BASE_TYPE_BAD_LENGTH",
                                "Must be between 1 and 100 in length.")
    options = command.get("options") or []
    if len(options) > 25:
        raise invalid_field([*path, "options"], "BASE_TYPE_MAX_LENGTH",
                            "Must be 25 or fewer in length.")
    for i, option in enumerate(options):
        if int(option.get("type", 3)) in (1, 2):
            validate_command({**option, "type": 1}, [*path, "options", i])
        elif not COMMAND_NAME.match(option.get("name") or ""):
            raise invalid_field([*path, "options", i, "name"],
                                "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
