"""The subscription entity alone: periods, take-backs, reminders, validation (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astra.domain.catalog import Product, Variant
from astra.domain.errors import InvalidInput
from astra.domain.subscription import (
    PeriodKind,
    Subscription,
    SubscriptionStatus,
    monthly_cents,
    parse_role_ids,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _sub() -> Subscription:
    return Subscription(id="sub_p_1", buyer_id="1", product_id="p", variant_id="v",
                        product_name="P", variant_name="V", role_ids=["12345"], period_days=30,
                        price_cents=3000, status=SubscriptionStatus.ENDED,
                        started_at=T0.isoformat(), ends_at=T0.isoformat(),
                        created_at=T0.isoformat())


def test_periods_chain_and_a_take_back_moves_the_later_ones() -> None:
    sub = _sub()
    sub.add_period(order_id="o1", line=0, kind=PeriodKind.PURCHASE, days=30, cents=3000, now=T0)
    sub.add_period(order_id="o2", line=0, kind=PeriodKind.RENEWAL, days=30, cents=3000,
                   now=T0 + 5 * DAY)
    assert sub.end() == T0 + 60 * DAY and sub.renewals == 1
    taken = sub.take_back("o1", T0 + 10 * DAY)
    assert taken == 20 * DAY and sub.end() == T0 + 40 * DAY
    assert sub.periods[1]["start"] == (T0 + 10 * DAY).isoformat()
    assert sub.take_back("o1", T0 + 11 * DAY) == timedelta(0)  # once
    # A period already used up takes nothing back.
    assert sub.take_back("o2", T0 + 50 * DAY) == timedelta(0)


def test_reminders_once_per_end_and_the_nearest_supersedes() -> None:
    sub = _sub()
    sub.add_period(order_id="o1", line=0, kind=PeriodKind.PURCHASE, days=7, cents=1, now=T0)
    assert sub.due_reminder(T0 + 3 * DAY, [3, 1]) is None
    assert sub.due_reminder(T0 + 4.5 * DAY, [3, 1]) == 3
    # Down across both: only the nearest is sent, and the farther one is then done too.
    late = T0 + 6.5 * DAY
    assert sub.due_reminder(late, [3, 1]) == 1
    sub.mark_reminded(1, [3, 1])
    assert sub.due_reminder(late, [3, 1]) is None
    assert sub.due_reminder(T0 + 8 * DAY, [3, 1]) is None  # ended: no reminder


def test_roles_and_periods_are_validated() -> None:
    assert parse_role_ids("123456, 654321 123456") == ["123456", "654321"]
    for bad in ("", "abc", "1" * 30, " ".join(str(10**6 + i) for i in range(11))):
        with pytest.raises(InvalidInput):
            parse_role_ids(bad)
    product = Product(id="p", name="VIP", delivery_kind="subscription", content="123456",
                      variants=[Variant(id="v", name="Mensal", price_cents=100)])
    with pytest.raises(InvalidInput, match="period_days"):
        product.validate()
    product.variants[0].period_days = 30
    assert product.validate().content == "123456"
    assert monthly_cents(990, 7) == 4242 and monthly_cents(9000, 90) == 3000
