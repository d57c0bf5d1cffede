"""Pure domain rules: money, PIX keys, templates, quotes, and the domain's import boundary."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from astra.domain.catalog import Product, Variant
from astra.domain.delivery import Delivery, DeliveryStatus
from astra.domain.errors import InvalidInput
from astra.domain.money import fee_cents, format_brl, parse_brl
from astra.domain.pricing import Adjustment, Quote
from astra.domain.stock import ImportReport, decode_stock_file, parse_keys
from astra.domain.templates import fill
from astra.domain.wallet import classify_pix_key

DOMAIN = Path(__file__).resolve().parents[2] / "astra" / "domain"


def test_domain_imports_no_adapter_or_io_library() -> None:
    forbidden = (
        "aiohttp",
        "docker",
        "interactions",
        "mercadopago",
        "requests",
        "astra.adapters",
        "astra.entrypoints",
        "astra.plugins",
        "pluggy",
        "dependency_injector",
        "socket",
        "subprocess",
        "sqlite3",
        "urllib",
        "http",
    )
    offenders = []
    for path in DOMAIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in forbidden or any(
                    name == f or name.startswith(f + ".") for f in forbidden
                ):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "R$ 0,00"),
        (5, "R$ 0,05"),
        (1990, "R$ 19,90"),
        (123456, "R$ 1.234,56"),
        (-1000, "-R$ 10,00"),
        (100000000, "R$ 1.000.000,00"),
    ],
)
def test_format_brl(cents: int, text: str) -> None:
    assert format_brl(cents) == text


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("19,90", 1990),
        ("19.90", 1990),
        ("R$ 1.234,56", 123456),
        ("10", 1000),
        ("0,5", 50),
    ],
)
def test_parse_brl(text: str, cents: int) -> None:
    assert parse_brl(text) == cents


@pytest.mark.parametrize("bad", ["", "abc", "-5", "1,234", "10,999", "1e5", "R$"])
def test_parse_brl_refuses(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_brl(bad)


def test_fee_rounds_half_up() -> None:
    assert fee_cents(1990, 600) == 119  # 119.4
    assert fee_cents(1000, 600) == 60
    assert fee_cents(25, 600) == 2  # 1.5 -> 2
    assert fee_cents(0, 600) == 0


@pytest.mark.parametrize(
    ("raw", "key", "kind"),
    [
        ("529.982.247-25", "52998224725", "cpf"),
        ("11.222.333/0001-81", "11222333000181", "cnpj"),
        ("Vendedor@Example.com", "vendedor@example.com", "email"),
        ("+55 11 91234-5678", "+5511912345678", "phone"),
        ("123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000", "evp"),
    ],
)
def test_pix_keys(raw: str, key: str, kind: str) -> None:
    assert classify_pix_key(raw) == (key, kind)


@pytest.mark.parametrize("bad", ["529.982.247-24", "11111111111", "not-a-key", "", "5511912345678"])
def test_bad_pix_keys(bad: str) -> None:
    with pytest.raises(InvalidInput):
        classify_pix_key(bad)


def test_template_fills_known_placeholders_only() -> None:
    # Portuguese names (the first templates') and English ones fill the same values.
    out = fill(
        "{produto} {chaves} {keys} {desconhecido} {", {"product": "Steam", "keys": "`K1`"}
    )
    assert out == "Steam `K1` `K1` {desconhecido} {"


def test_quote_never_negative() -> None:
    q = Quote(1000, [Adjustment("coupon", "c", -700), Adjustment("bulk", "b", -500)])
    assert q.total_cents == 0 and q.discount_cents == 1000


def test_product_validation() -> None:
    ok = Product(id="p", name=" Steam ", variants=[Variant("v", "Mensal", 1990)]).validate()
    assert ok.name == "Steam"
    for bad in (
        Product(id="p", name="", variants=[Variant("v", "a", 1)]),
        Product(id="p", name="x", variants=[Variant("v", "a", 1), Variant("w", "A", 2)]),
        Product(
            id="p",
            name="x",
            variants=[Variant("v", "a", 1)],
            delivery_kind="role",
            content="not-a-role",
        ),
        Product(id="p", name="x", variants=[Variant("v", "a", 1)], image_url="javascript:1"),
        Product(id="p", name="x", variants=[Variant("v", "a", 1, max_per_order=0)]),
    ):
        with pytest.raises(InvalidInput):
            bad.validate()


def test_stock_file_parsing() -> None:
    assert decode_stock_file(b"\xef\xbb\xbfK1\nK2") == "K1\nK2"  # BOM from Windows editors
    report = ImportReport()
    assert parse_keys(" K1 \r\n\n\tK2\n", report) == [(1, "K1"), (3, "K2")]
    assert report.blank == 1
    with pytest.raises(InvalidInput):
        decode_stock_file(b"K1\x00K2")


def test_delivery_backoff_schedule() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    d = Delivery(id="o", order_id="o", buyer_id="1", status=DeliveryStatus.PENDING, created_at="")
    expected = [1, 5, 30, 120, 720]
    for minutes in expected:
        d.attempts.append({"ok": False})
        assert d.next_retry(now) == now + timedelta(minutes=minutes)
    d.attempts.append({"ok": False})
    assert d.next_retry(now) is None


def test_delivery_stored_before_lease_holders_and_generations_still_loads() -> None:
    old = {
        "id": "o", "order_id": "o", "buyer_id": "1", "status": "pending", "created_at": "",
        "lease_until": "2026-01-01T00:02:00+00:00", "retry_from": 0,
    }
    d = Delivery.from_doc(old)
    assert d.lease_holder is None and d.generation == 0
    assert Delivery.from_doc(d.to_doc()) == d
