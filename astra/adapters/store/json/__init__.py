"""The embedded JSON store: per-domain journals compacted into the original's JSON files."""

from .store import JsonStore, restore, verify_backup

__all__ = ["JsonStore", "restore", "verify_backup"]
