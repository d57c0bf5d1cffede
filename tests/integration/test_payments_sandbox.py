"""PIX through the embedded sandbox gateway: charges, approval, cancellation, refunds, plans."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from astra.adapters.payments.brcode import crc16
from astra.domain.errors import InvalidTransition
from astra.entrypoints.workers import Reconciler
from tests.integration.sales_world import INSTANCE, OWNER, key_states, make_shop

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on both store adapters


def _child_env() -> dict[str, str]:
    """The CLI's environment: none of ours, but the store the test runs on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRA_", "MERCADOPAGO_"))}
    if os.environ.get("ASTRA_DATABASE_URL"):
        env["ASTRA_DATABASE_URL"] = os.environ["ASTRA_DATABASE_URL"]
    return env

BUYER = "111111111111111111"
ROOT = Path(__file__).resolve().parents[2]


def test_pay_cart_makes_one_real_looking_pix(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    assert shop.gateway.simulated
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 2)
    order, charge = shop.payments.pay_cart(INSTANCE, BUYER)
    again, same = shop.payments.pay_cart(INSTANCE, BUYER)  # "Pagar" twice
    assert same.id == charge.id and again.id == order.id
    assert charge.status == "pending" and charge.amount_cents == 3980
    code = charge.qr_code
    assert code.startswith("000201") and "br.gov.bcb.pix" in code and "540539.80" in code
    assert code[-4:] == crc16(code[:-4])
    png = base64.b64decode(charge.qr_code_png_base64)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    stored = shop.sales.get_order(INSTANCE, order.id)
    assert stored.charge_id == charge.id and stored.charge["qr_code"] == code
    # the charge lives at least 31 minutes even though the cart lives 15: the cart's end
    # cancels it instead
    assert charge.expires_at > stored.expires_at


def test_approval_settles_once_whatever_signals_it(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order, charge = shop.payments.pay_cart(INSTANCE, BUYER)
    shop.gateway.approve(charge.id)
    for _ in range(10):
        assert shop.payments.handle_notification(charge.id).action == "paid"
    # a just-paid order is watched for refunds, but not asked about again right away
    assert Reconciler(shop.container).pass_once() == {}
    assert shop.sales.get_order(INSTANCE, order.id).status == "paid"
    assert shop.wallet.balance(OWNER) == 1871
    assert shop.payments.handle_notification("999").action == "unknown_charge"


def test_reconcile_finds_a_payment_whose_webhook_was_lost(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order, charge = shop.payments.pay_cart(INSTANCE, BUYER)
    reconciler = Reconciler(shop.container)
    assert reconciler.pass_once() == {} and reconciler.open_pix
    shop.clock.advance(timedelta(seconds=1))
    shop.gateway.approve(charge.id)
    # the very next pass finds it, with one look at the sandbox's changed charges
    assert reconciler.pass_once() == {"paid": 1}
    assert reconciler.last_pass_calls == 1 and not reconciler.open_pix
    assert shop.sales.get_order(INSTANCE, order.id).status == "paid"
    assert reconciler.pass_once() == {}


def test_cancelled_cart_cancels_its_charge_and_a_late_payment_is_served(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=2)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order, charge = shop.payments.pay_cart(INSTANCE, BUYER)
    shop.sales.cancel_cart(INSTANCE, BUYER)
    assert shop.gateway.get_charge(charge.id).status == "cancelled"
    assert shop.sales.get_order(INSTANCE, order.id).status == "cancelled"
    assert key_states(shop) == {"available": 2}

    # A PIX that crossed the cancellation: the buyer paid, so the buyer is served from stock.
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order2, charge2 = shop.payments.pay_cart(INSTANCE, BUYER)
    shop.gateway.approve(charge2.id)  # paid just before...
    shop.sales.cancel_cart(INSTANCE, BUYER)  # ...the buyer pressed cancel
    assert shop.payments.handle_notification(charge2.id).action == "paid"
    served = shop.sales.get_order(INSTANCE, order2.id)
    assert served.status == "paid" and len(served.lines[0].key_ids) == 1


def test_expired_cart_cancels_its_charge(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=2)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order, charge = shop.payments.pay_cart(INSTANCE, BUYER)
    shop.clock.advance(timedelta(minutes=16))
    shop.sales.expire_due(INSTANCE)
    assert shop.gateway.get_charge(charge.id).status == "cancelled"
    assert shop.sales.get_order(INSTANCE, order.id).status == "expired"


def test_refund_and_chargeback_from_the_gateway(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    charges = []
    for buyer in (BUYER, "222222222222222222"):
        shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
        _, charge = shop.payments.pay_cart(INSTANCE, buyer)
        shop.gateway.approve(charge.id)
        shop.payments.handle_notification(charge.id)
        charges.append(charge)
    assert shop.wallet.balance(OWNER) == 2 * 1871
    shop.gateway.refund_charge(charges[0].id)
    assert shop.payments.handle_notification(charges[0].id).action == "refunded"
    shop.gateway.chargeback(charges[1].id)
    assert shop.payments.handle_notification(charges[1].id).action == "refunded"
    assert shop.wallet.balance(OWNER) == 0
    with shop.store.instance(INSTANCE, write=False) as uow:
        actions = [a["action"] for a in uow.audit.all()]
    assert "order.refund" in actions and "order.chargeback" in actions
    assert key_states(shop) == {"sold": 2, "available": 1}


def test_partial_refund_reduces_the_credit_in_proportion(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 2)
    order, charge = shop.payments.pay_cart(INSTANCE, BUYER)
    shop.gateway.approve(charge.id)
    shop.payments.handle_notification(charge.id)
    assert shop.wallet.balance(OWNER) == 3741
    shop.gateway.refund_charge(charge.id, 1990)  # one of two units
    assert shop.payments.handle_notification(charge.id).action == "partially_refunded"
    shop.payments.handle_notification(charge.id)  # replay: nothing more
    assert shop.wallet.balance(OWNER) == 3741 - 1870
    assert shop.sales.get_order(INSTANCE, order.id).status == "paid"


def test_plan_trial_once_then_paid_plan_extends(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=0)
    with shop.store.portal() as uow:
        uow.users.put({"id": "usr_seller", "email": "seller@example.com"})
        uow.commit()
    assert shop.plans.status("usr_seller")["active"] is False
    trial = shop.plans.start_trial("usr_seller")
    assert trial["active"] and trial["kind"] == "trial" and trial["days_left"] == 7
    with pytest.raises(InvalidTransition):
        shop.plans.start_trial("usr_seller")
    _tx, charge = shop.plans.checkout("usr_seller")
    assert charge.amount_cents == 4990 and shop.plans.checkout("usr_seller")[1].id == charge.id
    shop.gateway.approve(charge.id)
    assert shop.payments.handle_notification(charge.id).action == "paid"
    assert shop.payments.handle_notification(charge.id).action == "noted"  # once
    state = shop.plans.status("usr_seller")
    assert state["kind"] == "paid" and state["days_left"] == 37  # 7 trial days + 30
    catalog = {p["id"]: p for p in shop.plans.catalog()}
    assert catalog["monthly"]["price"] == "R$ 49,90" and catalog["trial"]["days"] == 7


def test_cli_settles_sandbox_charges(data_dir: Path) -> None:
    # The CLI runs on the wall clock: the shop must too, or its cart is long expired there.
    shop = make_shop(data_dir, keys=2, start=datetime.now(UTC))
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order, charge = shop.payments.pay_cart(INSTANCE, BUYER)
    env = _child_env()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "astra.entrypoints.cli",
            "--data-dir",
            str(data_dir),
            "payments",
            "approve",
            charge.id,
        ],
        cwd=data_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "approved" in out.stdout and "paid" in out.stdout
    assert shop.sales.get_order(INSTANCE, order.id).status == "paid"
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "astra.entrypoints.cli",
            "--data-dir",
            str(data_dir),
            "payments",
            "reject",
            charge.id,
        ],
        cwd=data_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "approved" in again.stderr and "Traceback" not in again.stderr


def test_cli_lists_charges_by_status(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=3, start=datetime.now(UTC))
    charges = []
    for buyer in (BUYER, "222222222222222222"):
        shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
        charges.append(shop.payments.pay_cart(INSTANCE, buyer))
    shop.gateway.approve(charges[0][1].id)
    shop.payments.handle_notification(charges[0][1].id)
    env = _child_env()

    def astra(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "astra.entrypoints.cli", "--data-dir", str(data_dir), *args],
            cwd=data_dir.parent, env=env, capture_output=True, text=True, timeout=60)

    everything = astra("payments", "list")
    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert lines[0].split() == ["CHARGE", "STATUS", "AMOUNT", "FOR", "ITS", "STATUS", "CREATED"]
    assert len(lines) == 3 and "R$ 19,90" in lines[1]
    pending = astra("payments", "list", "--status", "pending")
    assert charges[1][1].id in pending.stdout and charges[0][1].id not in pending.stdout
    assert f"order {INSTANCE}/{charges[1][0].id}" in pending.stdout
    approved = json.loads(astra("payments", "list", "--status", "approved", "--json").stdout)
    assert [(r["charge_id"], r["ref_status"]) for r in approved] == [
        (charges[0][1].id, "paid")]
    assert "no refunded charges" in astra("payments", "list", "--status", "refunded").stdout
    assert astra("payments", "list", "--status", "paid").returncode == 2  # not a charge status
