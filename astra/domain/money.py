"""Money is int cents of BRL everywhere; these are the only conversions to and from text."""

from __future__ import annotations

import re

from astra.domain.errors import InvalidInput

MAX_CENTS = 100_000_000_00  # R$ 100 milhões: above this an amount is a typo, not a price

_AMOUNT_RE = re.compile(r"^(?:R\$)?\s*(\d{1,3}(?:\.\d{3})+|\d+)(?:[,.](\d{1,2}))?$")


def fee_cents(amount_cents: int, fee_bps: int) -> int:
    """Platform fee in cents, basis points rounded half up (6% of R$ 0,10 is 1 cent, not 0)."""
    return (amount_cents * fee_bps + 5_000) // 10_000


def percent_of(amount_cents: int, percent: int) -> int:
    """`percent`% of an amount, rounded half up."""
    return (amount_cents * percent + 50) // 100


def format_brl(cents: int) -> str:
    """R$ 1.234,56 (the Brazilian way, also used in English messages: it is the currency)."""
    sign = "-" if cents < 0 else ""
    reais, centavos = divmod(abs(cents), 100)
    return f"{sign}R$ {reais:,}".replace(",", ".") + f",{centavos:02d}"


def parse_brl(text: str) -> int:
    """'19,90', '19.90', 'R$ 1.234,56', '10' -> cents. Raises InvalidInput."""
    cleaned = str(text).strip()
    m = _AMOUNT_RE.fullmatch(cleaned)
    if not m:
        raise InvalidInput("invalid_amount", value=cleaned[:40])
    reais = int(m.group(1).replace(".", ""))
    frac = (m.group(2) or "0").ljust(2, "0")
    cents = reais * 100 + int(frac)
    if cents > MAX_CENTS:
        raise InvalidInput("invalid_amount", value=cleaned[:40])
    return cents


def check_cents(value: object, field: str, *, allow_zero: bool = False) -> int:
    """An amount given as int cents by an API or a command: int, not bool, in range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("invalid_field", field=field)
    if value < 0 or (value == 0 and not allow_zero) or value > MAX_CENTS:
        raise InvalidInput("invalid_field", field=field)
    return value
