"""The example plugin in examples/astra-bulk-discount, loaded through the entry point its pyproject
declares (without `pip install`: tests must not need the network)."""

from __future__ import annotations

import time
import tomllib
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from astra.adapters.clock import FrozenClock
from astra.adapters.store.json import JsonStore
from astra.domain.cart import Cart, CartLine, CartState
from astra.domain.hooks import SaleContext
from astra.domain.pricing import Adjustment, Quote
from astra.plugins.manager import ENTRY_POINT_GROUP, GLOBAL_TOGGLES_TTL_SECONDS, PluginManager

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "astra-bulk-discount"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def entry_point() -> EntryPoint:
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "astra-bulk-discount"
    assert "astra" in meta["project"]["dependencies"]
    declared = meta["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert declared == {"bulk_discount": "astra_bulk_discount"}
    return EntryPoint(
        name="bulk_discount", value=declared["bulk_discount"], group=ENTRY_POINT_GROUP
    )


def cart(*quantities: int) -> Cart:
    lines = [
        CartLine(f"p{i}", f"v{i}", f"Game {i}", "Steam", "key", q, 1999)
        for i, q in enumerate(quantities)
    ]
    return Cart("c1", "u1", CartState.OPEN, NOW.isoformat(), NOW.isoformat(), lines=lines)


def test_bulk_discount_changes_the_price_until_disabled(
    entry_point: EntryPoint, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    module = entry_point.load()  # what pluggy's entry point loading does once installed
    assert (module.NAME, module.DEFAULT_ENABLED) == ("bulk_discount", True)
    assert module.DESCRIPTION

    manager = PluginManager(JsonStore(data_dir), FrozenClock(NOW))
    assert manager.register(module, entry_point.name) == "bulk_discount"
    info = {p["name"]: p for p in manager.plugins()}["bulk_discount"]
    assert info["hooks"] == ["astra_cart_adjustments"]

    ctx = SaleContext(instance_id="shop-1", buyer_id="u1", now=NOW)
    c = cart(3, 2)  # 3 x 19,99 = 59,97 and 2 x 19,99 = 39,98
    adjustments = manager.for_instance("shop-1").cart_adjustments(ctx, c)
    # 10% of 5997 = 599.7 -> 600 (half up); the 2-unit line gets nothing
    assert adjustments == [Adjustment("bulk_discount", "10% off from 3 units", -600)]
    assert Quote(c.subtotal_cents, adjustments).total_cents == 9995 - 600

    # Disabled from another manager on the same data: once this one reads the global toggles
    # again (they are kept GLOBAL_TOGGLES_TTL_SECONDS), it prices at full price.
    admin = PluginManager(JsonStore(data_dir), FrozenClock(NOW))
    admin.register(module, entry_point.name)  # as its own entry point scan would
    admin.set_global("bulk_discount", False, "admin:ops")
    later = time.monotonic() + GLOBAL_TOGGLES_TTL_SECONDS
    manager.monotonic = lambda: later
    adjustments = manager.for_instance("shop-1").cart_adjustments(ctx, c)
    assert adjustments == []
    assert Quote(c.subtotal_cents, adjustments).total_cents == 9995

    manager.set_instance("shop-1", "bulk_discount", True, "seller:ana")
    assert manager.for_instance("shop-1").cart_adjustments(ctx, c)[0].amount_cents == -600
    assert manager.for_instance("shop-2").cart_adjustments(ctx, c) == []


def test_half_cent_rounds_up(entry_point: EntryPoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    module = entry_point.load()
    ctx = SaleContext(instance_id="shop-1", buyer_id="u1", now=NOW)
    c = cart(5)
    c.lines[0].unit_price_cents = 1001  # 5005 -> 500.5 -> 501
    assert module.astra_cart_adjustments(ctx, c)[0].amount_cents == -501
