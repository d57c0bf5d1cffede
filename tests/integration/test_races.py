"""Concurrency: buyers racing for keys, sellers racing for their balance (several processes),
on both store adapters."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from astra.domain.errors import InsufficientBalance, NotFoundError
from bench.checkout import run_race
from tests.integration.sales_world import INSTANCE, OWNER, make_shop

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("store_backend")


@pytest.mark.slow
def test_thousand_buyers_in_two_processes_for_hundred_keys(data_dir: Path) -> None:
    result = run_race(data_dir, buyers=1000, keys=100, processes=2)
    assert result.sold == 100 and result.paid_orders == 100
    assert result.duplicates == 0 and result.lost == 0
    assert result.errors == []
    assert len(result.refused) == 900
    assert all("Sem estoque" in message for _, message in result.refused)


def _fund(shop, cents: int) -> None:
    buyer = "333333333333333333"
    shop.sales.add_item(INSTANCE, buyer, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, buyer)
    shop.settlement.confirm_payment(
        INSTANCE, order.id, amount_cents=order.total_cents, payment_id="fund"
    )
    assert shop.wallet.balance(OWNER) == cents


WITHDRAW_CHILD = """
import os
import sys
from pathlib import Path
from astra.container import build_container
from astra.domain.errors import InsufficientBalance, NotFoundError
from astra.settings import Settings, ensure_dev_secrets
c = build_container(ensure_dev_secrets(Settings(
    data_dir=Path(sys.argv[1]), database_url=os.environ.get("ASTRA_DATABASE_URL", ""))))
ok = 0
for _ in range(int(sys.argv[2])):
    try:
        c.wallet().request_withdrawal(sys.argv[3], 1500, "test@example.com")
        ok += 1
    except InsufficientBalance:
        pass
print(ok)
"""


def test_fifty_concurrent_withdrawals_against_one_balance(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=1)
    _fund(shop, 1871)  # covers one withdrawal of R$ 15,00, not two
    accepted: list[int] = []
    refused: list[int] = []

    def attempt() -> None:
        try:
            shop.wallet.request_withdrawal(OWNER, 1500, "test@example.com")
            accepted.append(1)
        except InsufficientBalance:
            refused.append(1)

    threads = [threading.Thread(target=attempt) for _ in range(26)]  # + 2 x 12 in processes = 50
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WITHDRAW_CHILD, str(data_dir), "12", OWNER],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from_children = sum(int(p.communicate(timeout=120)[0].strip()) for p in procs)
    assert len(accepted) + from_children == 1
    assert len(accepted) + len(refused) == 26
    assert shop.wallet.balance(OWNER) == 371
    withdrawals = shop.wallet.withdrawals(user_id=OWNER)
    assert len(withdrawals) == 1 and withdrawals[0]["status"] == "requested"


def test_withdrawal_lifecycle(data_dir: Path) -> None:
    shop = make_shop(data_dir, keys=1)
    _fund(shop, 1871)
    w = shop.wallet.request_withdrawal(OWNER, 1000, "+55 (11) 91234-5678")
    assert w.pix_key == "+5511912345678" and w.pix_key_type == "phone"
    assert shop.wallet.balance(OWNER) == 871
    shop.wallet.cancel_withdrawal(OWNER, w.id)
    assert shop.wallet.balance(OWNER) == 1871
    w2 = shop.wallet.request_withdrawal(OWNER, 1000, "529.982.247-25")
    assert w2.pix_key_type == "cpf"
    with pytest.raises(NotFoundError):  # someone else's withdrawal does not exist for them
        shop.wallet.cancel_withdrawal("usr_other", w2.id)
    shop.wallet.reject_withdrawal(w2.id, actor="admin:ops", reason="chave não confere")
    assert shop.wallet.balance(OWNER) == 1871
    w3 = shop.wallet.request_withdrawal(OWNER, 1871, "test@example.com")
    done = shop.wallet.complete_withdrawal(w3.id, actor="admin:ops")
    assert done.status == "paid" and shop.wallet.balance(OWNER) == 0
    statuses = sorted(x["status"] for x in shop.wallet.withdrawals(user_id=OWNER))
    assert statuses == ["cancelled", "paid", "rejected"]
    with shop.store.portal(write=False) as uow:
        actions = [a["action"] for a in uow.audit.all()]
    assert actions.count("withdrawal.requested") == 3
    assert {"withdrawal.cancelled", "withdrawal.rejected", "withdrawal.paid"} <= set(actions)
