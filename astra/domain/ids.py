"""Identifiers: short, unguessable, prefixed by what they name (easy to read in logs)."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
