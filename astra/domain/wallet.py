"""The seller's wallet: an append-only ledger whose sum is the balance, and withdrawals by PIX."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from astra.domain.errors import InvalidInput


class EntryKind(StrEnum):
    SALE_CREDIT = "sale_credit"
    SALE_REVERSAL = "sale_reversal"  # refund or chargeback of a credited sale
    WITHDRAWAL_DEBIT = "withdrawal_debit"
    WITHDRAWAL_REVERSAL = "withdrawal_reversal"  # a cancelled or rejected withdrawal


@dataclass
class LedgerEntry:
    id: str  # deterministic where it must be idempotent: sale:<instance>:<order>
    user_id: str
    kind: EntryKind
    amount_cents: int  # signed
    at: str
    description: str = ""
    instance_id: str | None = None
    order_id: str | None = None
    withdrawal_id: str | None = None

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["kind"] = str(self.kind)
        return doc


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    PAID = "paid"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass
class Withdrawal:
    id: str
    user_id: str
    amount_cents: int
    pix_key: str
    pix_key_type: str
    status: WithdrawalStatus
    requested_at: str
    decided_at: str | None = None
    decided_by: str | None = None
    reason: str = ""

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["status"] = str(self.status)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Withdrawal:
        data = dict(doc)
        data["status"] = WithdrawalStatus(data["status"])
        return cls(**data)


@dataclass(frozen=True)
class Posting:
    """A wallet movement decided inside an instance, waiting to reach the portal's ledger."""

    id: str
    owner_id: str
    kind: EntryKind
    amount_cents: int
    order_id: str
    created_at: str
    description: str = ""

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["kind"] = str(self.kind)
        doc["status"] = "pending"
        return doc


_CPF = re.compile(r"^\d{11}$")
_CNPJ = re.compile(r"^\d{14}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+55\d{10,11}$")
_EVP = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _cpf_ok(d: str) -> bool:
    if d == d[0] * 11:
        return False
    for n in (9, 10):
        s = sum(int(d[i]) * (n + 1 - i) for i in range(n))
        if (s * 10 % 11) % 10 != int(d[n]):
            return False
    return True


def _cnpj_ok(d: str) -> bool:
    if d == d[0] * 14:
        return False
    for n, weights in (
        (12, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]),
        (13, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]),
    ):
        s = sum(int(d[i]) * weights[i] for i in range(n))
        r = s % 11
        if (0 if r < 2 else 11 - r) != int(d[n]):
            return False
    return True


def classify_pix_key(raw: object) -> tuple[str, str]:
    """(normalised key, type) for a PIX key: cpf, cnpj, email, phone or evp (random)."""
    if not isinstance(raw, str):
        raise InvalidInput("invalid_pix_key")
    key = raw.strip()
    digits = re.sub(r"[.\-/\s]", "", key)
    if _EMAIL.fullmatch(key) and len(key) <= 77:
        return key.lower(), "email"
    if _EVP.fullmatch(key.lower()):
        return key.lower(), "evp"
    phone = re.sub(r"[\s()\-]", "", key)
    if _PHONE.fullmatch(phone):
        return phone, "phone"
    if _CPF.fullmatch(digits) and _cpf_ok(digits):
        return digits, "cpf"
    if _CNPJ.fullmatch(digits) and _cnpj_ok(digits):
        return digits, "cnpj"
    raise InvalidInput("invalid_pix_key")
