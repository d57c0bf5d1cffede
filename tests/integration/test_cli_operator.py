"""The operator's commands (`astra plugins|instance|product|stock|coupon|orders`) as real processes
on a real data directory; what they write is checked through the store and the services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from astra.adapters.store.json import JsonStore
from astra.container import build_container
from astra.settings import Settings, ensure_dev_secrets

BUYER = "123456789012345678"
# Variables that would point the CLI at other secrets than the in-process container's.
_SETTINGS_PREFIXES = ("ASTRA_", "PORTAL_", "ADMIN_PANEL_", "MERCADOPAGO_", "DISCORD_")


class Cli:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}

    def __call__(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        raw = subprocess.run(
            [sys.executable, "-m", "astra.entrypoints.cli", "--data-dir", str(self.data), *args],
            cwd=self.data.parent,  # no stray .env
            env=self.env,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=60,
        )
        out = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode()
        )
        assert "Traceback" not in out.stderr, out.stderr
        return out

    def ok(self, *args: str, stdin: bytes | None = None) -> str:
        out = self(*args, stdin=stdin)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout

    def json(self, *args: str) -> Any:
        return orjson.loads(self.ok(*args, "--json"))

    def fails(self, *args: str, code: int = 1) -> str:
        out = self(*args)
        assert out.returncode == code, (args, out.stdout, out.stderr)
        assert out.stderr.strip(), "a failure must say why"
        return out.stderr


def container_on(data: Path):
    return build_container(ensure_dev_secrets(Settings(data_dir=data)))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


@pytest.fixture
def shop(cli: Cli) -> dict[str, Any]:
    """An instance with one key product, made in-process (the CLI's own setup is tested below)."""
    container = container_on(cli.data)
    with container.store().portal() as uow:
        uow.users.add({"id": "usr_seed", "email": "seller@example.com"})
        uow.commit()
    container.instances().create("shop-1", owner_id="usr_seed", name="Shop", actor="test")
    product = container.catalog().create_product(
        "shop-1", {"name": "Game", "variants": [{"name": "Std", "price_cents": 1000}]}, actor="test"
    )
    container.store().close()
    return {"product": product.id, "variant": product.variants[0].id}


def test_help_lists_the_operator_commands(cli: Cli) -> None:
    out = cli.ok("--help")
    for command in ("plugins", "instance", "product", "stock", "coupon", "orders"):
        assert command in out


def test_instance_create_refuses_an_unknown_owner_unless_told_to_create_it(cli: Cli) -> None:
    err = cli.fails("instance", "create", "shop-1", "--name", "Loja", "--owner-email",
                    "typo@example.com")
    assert "typo@example.com" in err and "--create-owner" in err
    with JsonStore(cli.data).portal(write=False) as uow:
        assert uow.users.all() == []
    out = cli.ok("instance", "create", "shop-1", "--name", "Loja", "--owner-email",
                 "typo@example.com", "--create-owner")
    assert "new user" in out


def test_catalog_stock_coupons_and_orders(cli: Cli, tmp_path: Path) -> None:
    out = cli.ok(
        "instance", "create", "shop-1", "--name", "Loja Um", "--owner-email", "Ana@Example.COM",
        "--create-owner",
    )
    assert "created instance shop-1" in out and "ana@example.com" in out and "new user" in out
    # The same owner (whatever the case of the e-mail) is found, not created twice.
    out = cli.ok(
        "instance", "create", "shop-2", "--name", "Loja Dois", "--owner-email", "ana@example.com"
    )
    assert "new user" not in out
    instances = cli.json("instance", "list")
    assert [i["id"] for i in instances] == ["shop-1", "shop-2"]
    assert {i["owner_email"] for i in instances} == {"ana@example.com"}
    assert instances[0]["owner_id"].startswith("usr_") and instances[0]["status"] == "offline"
    with JsonStore(cli.data).portal(write=False) as uow:
        users = uow.users.all()
    assert len(users) == 1 and users[0]["role"] == "customer"
    assert users[0]["password_hash"] is None and users[0]["id"] == instances[0]["owner_id"]

    product = cli.json(
        "product",
        "create",
        "shop-1",
        "--name",
        "Game key",
        "--variant",
        "Monthly=19,90:5",
        "--variant",
        "Yearly=R$ 1.199,00",
        "--description",
        "Steam key",
    )
    pid = product["id"]
    monthly, yearly = (v["id"] for v in product["variants"])
    assert [(v["name"], v["price_cents"], v["max_per_order"]) for v in product["variants"]] == [
        ("Monthly", 1990, 5),
        ("Yearly", 119900, 10),
    ]
    assert product["description"] == "Steam key" and product["delivery_kind"] == "key"

    keys = tmp_path / "keys.txt"
    keys.write_bytes(b"AAAA-1111\nBBBB-2222\n\nAAAA-1111\n  CCCC-3333  \nBBBB-2222\n")
    out = cli.ok("stock", "import", "shop-1", pid, monthly, str(keys))
    assert "added 3 key(s)" in out
    assert "skipped 2: 2 duplicate(s) in the file, 0 already in stock" in out
    assert "blank lines ignored: 1" in out and "skipped lines: 4, 6" in out
    assert "AAAA" not in out  # keys are never printed
    report = orjson.loads(
        cli.ok(
            "stock", "import", "shop-1", pid, yearly, "-", "--json", stdin=b"CCCC-3333\nDDDD-4444\n"
        )
    )
    assert report["added"] == 1 and report["already_in_stock"] == 1
    assert report["skipped_lines"] == [1]

    listed = cli.json("product", "list", "shop-1")
    stock = {v["name"]: v["stock"] for v in listed[0]["variants"]}
    assert stock == {
        "Monthly": {"available": 3, "reserved": 0, "sold": 0},
        "Yearly": {"available": 1, "reserved": 0, "sold": 0},
    }
    out = cli.ok("product", "list", "shop-1")
    assert "Game key" in out and "R$ 19,90" in out and "R$ 1.199,00" in out
    monthly_row = next(line for line in out.splitlines() if monthly in line)
    assert monthly_row.split()[-3:] == ["3", "0", "0"]

    out = cli.ok(
        "coupon",
        "create",
        "shop-1",
        "promo10",
        "--percent",
        "10",
        "--min-order",
        "50,00",
        "--max-uses",
        "100",
        "--per-buyer",
        "1",
        "--expires",
        "2026-12-31T23:59:59-03:00",
        "--product",
        pid,
    )
    assert "created coupon PROMO10" in out and "10% off" in out
    cli.ok("coupon", "create", "shop-1", "FIX5", "--fixed", "5,00")
    assert "coupon PROMO10 disabled" in cli.ok("coupon", "disable", "shop-1", "Promo10")
    coupons = {c["code"]: c for c in cli.json("coupon", "list", "shop-1")}
    assert coupons["PROMO10"]["active"] is False and coupons["FIX5"]["active"] is True
    assert coupons["PROMO10"]["kind"] == "percent" and coupons["PROMO10"]["value"] == 10
    assert coupons["PROMO10"]["min_order_cents"] == 5000
    assert coupons["PROMO10"]["max_uses"] == 100 and coupons["PROMO10"]["per_buyer_limit"] == 1
    assert coupons["PROMO10"]["product_ids"] == [pid]
    assert coupons["FIX5"]["kind"] == "fixed" and coupons["FIX5"]["value"] == 500
    out = cli.ok("coupon", "list", "shop-1")
    assert "PROMO10" in out and "R$ 5,00" in out

    assert "no orders in instance shop-1" in cli.ok("orders", "list", "shop-1")

    # A purchase, in this process, through the same services the bot uses.
    container = container_on(cli.data)
    sales = container.sales()
    sales.set_item("shop-1", BUYER, pid, monthly, 2, username="buyer")
    sales.apply_coupon("shop-1", BUYER, "fix5")
    order = sales.checkout("shop-1", BUYER)
    assert order.total_cents == 2 * 1990 - 500
    container.settlement().confirm_payment(
        "shop-1", order.id, amount_cents=order.total_cents, payment_id="test-payment-1"
    )
    container.store().close()

    out = cli.ok("orders", "list", "shop-1")
    row = next(line for line in out.splitlines() if order.id in line)
    assert "paid" in row and BUYER in row and "R$ 34,80" in row
    orders = cli.json("orders", "list", "shop-1", "--status", "paid")
    assert [o["id"] for o in orders] == [order.id]
    assert orders[0]["total_cents"] == 3480 and "charge" not in orders[0]
    assert cli.json("orders", "list", "shop-1", "--status", "pending") == []
    counts = {v["name"]: v["stock"] for v in cli.json("product", "list", "shop-1")[0]["variants"]}
    assert counts["Monthly"] == {"available": 1, "reserved": 0, "sold": 2}


def test_a_big_stock_import_shows_its_progress(
    cli: Cli, shop: dict[str, Any], tmp_path: Path
) -> None:
    keys = tmp_path / "many.txt"
    keys.write_text("\n".join(f"MANY-{i:05d}-KEY" for i in range(5000)) + "\nMANY-00001-KEY\n")
    out = cli("stock", "import", "shop-1", shop["product"], shop["variant"], str(keys))
    assert out.returncode == 0, out.stderr
    assert "added 5000 key(s)" in out.stdout and "1 duplicate(s) in the file" in out.stdout
    # On stderr (not a terminal here): a line per tenth, the last one at 100%.
    progress = [line for line in out.stderr.splitlines() if line.startswith("importing:")]
    assert progress[-1] == "importing: 5000/5000 keys (100%)"
    assert 3 <= len(progress) <= 11
    assert "MANY-" not in out.stdout + out.stderr  # keys are never printed
    with JsonStore(cli.data).instance("shop-1", write=False) as uow:
        assert uow.stock.count() == 5000 and uow.stock_jobs.count(state="done") == 1


def test_plugin_toggles(cli: Cli, shop: dict[str, Any]) -> None:
    out = cli.ok("plugins", "list")
    for name in ("sales", "coupons", "delivery"):
        assert f"{name}: enabled globally" in out
    assert "astra_coupon_evaluate" in out
    listed = {p["name"]: p for p in cli.json("plugins", "list")}
    assert {"sales", "coupons", "delivery"} <= set(listed)
    assert listed["coupons"]["default_enabled"] is True and listed["coupons"]["global"] is None
    assert listed["coupons"]["description"] and listed["coupons"]["errors"] == 0

    assert "disabled globally" in cli.ok("plugins", "disable", "coupons")
    assert "enabled for instance shop-1" in cli.ok(
        "plugins", "enable", "coupons", "--instance", "shop-1"
    )
    per_instance = {p["name"]: p for p in cli.json("plugins", "list", "--instance", "shop-1")}
    coupons = per_instance["coupons"]
    assert (coupons["global"], coupons["instance_override"], coupons["effective"]) == (
        False,
        True,
        True,
    )
    assert per_instance["sales"]["effective"] is True
    assert per_instance["sales"]["instance_override"] is None
    out = cli.ok("plugins", "list", "--instance", "shop-1")
    assert "coupons: enabled for instance shop-1" in out
    assert "global off, instance override on" in out
    assert "coupons: disabled globally" in cli.ok("plugins", "list")

    # What the CLI wrote is what a running platform reads, without a restart.
    container = container_on(cli.data)
    assert container.plugins().effective("shop-1")["coupons"] is True
    assert container.plugins().effective()["coupons"] is False

    out = cli.ok("plugins", "reset", "coupons", "--instance", "shop-1")
    assert "follows the global state (off)" in out
    assert container.plugins().effective("shop-1")["coupons"] is False
    container.store().close()

    assert "unknown plugin 'nope'" in cli.fails("plugins", "enable", "nope")
    assert "installed: coupons, delivery, sales" in cli.fails(
        "plugins", "disable", "nope", "--instance", "shop-1"
    )
    assert "'ghost' not found" in cli.fails("plugins", "list", "--instance", "ghost")
    cli.fails("plugins", "reset", "coupons", code=2)  # --instance is required


def test_bad_inputs_fail_cleanly(cli: Cli, shop: dict[str, Any], tmp_path: Path) -> None:
    pid, vid = shop["product"], shop["variant"]
    assert "Invalid amount: -5" in cli.fails(
        "product", "create", "shop-1", "--name", "X", "--variant", "Basic=-5"
    )
    assert "Invalid amount: abc" in cli.fails(
        "product", "create", "shop-1", "--name", "X", "--variant", "Basic=abc"
    )
    assert "NAME=PRICE" in cli.fails(
        "product", "create", "shop-1", "--name", "X", "--variant", "Basic"
    )
    assert "'nowhere' not found" in cli.fails(
        "product", "create", "nowhere", "--name", "X", "--variant", "Basic=10"
    )
    assert not (cli.data / "instances" / "nowhere").exists()

    binary = tmp_path / "keys.bin"
    binary.write_bytes(b"\xff\xfe\x00K\x00E\x00Y\n\xc3\x28\n")
    assert "UTF-8" in cli.fails("stock", "import", "shop-1", pid, vid, str(binary))
    assert "cannot read" in cli.fails(
        "stock", "import", "shop-1", pid, vid, str(tmp_path / "missing.txt")
    )
    assert "variant 'var_x' not found" in cli.fails(
        "stock", "import", "shop-1", pid, "var_x", str(binary)
    )

    assert "invalid --expires" in cli.fails(
        "coupon", "create", "shop-1", "SOON", "--percent", "10", "--expires", "tomorrow"
    )
    assert "coupon 'NOPE' not found" in cli.fails("coupon", "disable", "shop-1", "nope")
    # Usage errors are argparse's: exit 2.
    cli.fails("coupon", "create", "shop-1", "BOTH", "--percent", "10", "--fixed", "1", code=2)
    cli.fails("product", "create", "shop-1", "--name", "No variant", code=2)

    # Nothing of the above changed the instance.
    with JsonStore(cli.data).instance("shop-1", write=False) as uow:
        assert uow.products.count() == 1 and uow.stock.count() == 0 and uow.coupons.count() == 0
