"""Stock keys: each is available, reserved by one cart, or sold to one order — never two at once.

The key text itself is stored encrypted (`secret`) and recognised by a keyed fingerprint, so the
files never hold a sellable key in clear and duplicates are found without decrypting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from astra.domain.errors import InvalidInput

MAX_STOCK_FILE_BYTES = 5 * 1024 * 1024
MAX_KEY_LENGTH = 500
MAX_KEYS_PER_IMPORT = 50_000


class KeyState(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    SOLD = "sold"


@dataclass
class StockItem:
    id: str
    product_id: str
    variant_id: str
    fingerprint: str
    secret: str
    state: KeyState = KeyState.AVAILABLE
    cart_id: str | None = None
    reserved_until: str | None = None
    order_id: str | None = None
    added_at: str | None = None
    sold_at: str | None = None

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["state"] = str(self.state)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> StockItem:
        data = dict(doc)
        data["state"] = KeyState(data["state"])
        return cls(**data)


@dataclass
class ImportReport:
    """What a stock import did, line by line, so the seller knows what was skipped and why."""

    added: int = 0
    duplicate_in_file: int = 0
    already_in_stock: int = 0
    blank: int = 0
    too_long: int = 0
    invalid: int = 0
    skipped_lines: list[int] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.duplicate_in_file + self.already_in_stock + self.too_long + self.invalid

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["skipped"] = self.skipped
        doc["skipped_lines"] = self.skipped_lines[:200]
        return doc


def decode_stock_file(data: bytes | str) -> str:
    """Text of an uploaded stock file, or a clear error (too large, not UTF-8)."""
    if isinstance(data, str):
        raw_len = len(data.encode("utf-8", "surrogatepass"))
        text = data
    else:
        raw_len = len(data)
        text = None
    if raw_len > MAX_STOCK_FILE_BYTES:
        raise InvalidInput(
            "stock_file_too_large", limit=f"{MAX_STOCK_FILE_BYTES // (1024 * 1024)} MB"
        )
    if text is None:
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("stock_file_encoding") from None
    if "\x00" in text:
        raise InvalidInput("stock_file_encoding")
    return text


def parse_keys(text: str, report: ImportReport) -> list[tuple[int, str]]:
    """(line number, key) for each usable line; blank, oversized and control-character lines are
    counted in the report. Duplicates are the caller's business (they need the fingerprints)."""
    keys: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        key = line.strip()
        if not key:
            report.blank += 1
            continue
        if len(key) > MAX_KEY_LENGTH:
            report.too_long += 1
            report.skipped_lines.append(number)
            continue
        if any(ord(c) < 32 or ord(c) == 127 for c in key):
            report.invalid += 1
            report.skipped_lines.append(number)
            continue
        keys.append((number, key))
    if len(keys) > MAX_KEYS_PER_IMPORT:
        raise InvalidInput("stock_file_too_large", limit=f"{MAX_KEYS_PER_IMPORT} chaves")
    return keys
