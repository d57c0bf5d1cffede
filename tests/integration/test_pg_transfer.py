"""Moving a platform between the JSON store and PostgreSQL (`astra db import|export`), and
`astra doctor` / `astra backup` on PostgreSQL, through the real CLI on a real server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from astra.adapters.store.json import JsonStore
from astra.adapters.store.postgresql import PostgresStore
from astra.adapters.store.postgresql.transfer import summarise_json, summarise_pg
from astra.entrypoints.cli import main
from tests.integration.sales_world import INSTANCE, OWNER, make_shop

BUYER = "111111111111111111"


def _sold_shop(data_dir: Path) -> None:
    """A JSON data directory with a sale paid and stock left, as a running platform has."""
    shop = make_shop(data_dir, keys=6)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 2)
    order = shop.sales.checkout(INSTANCE, BUYER)
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=order.total_cents,
                                    payment_id="mp-1")
    assert shop.wallet.balance(OWNER) > 0
    shop.store.close()


def test_json_to_postgres_to_json_round_trip_keeps_every_document(
    data_dir: Path, tmp_path: Path, pg_dsn: str, monkeypatch, capsys
) -> None:
    _sold_shop(data_dir)
    source = JsonStore(data_dir)
    before = summarise_json(source)
    source.close()
    with JsonStore(data_dir).instance(INSTANCE, write=False) as uow:
        sealed = [k["secret"] for k in uow.stock.all()]
    assert before.documents > 20

    monkeypatch.setenv("ASTRA_DATABASE_URL", pg_dsn)
    monkeypatch.setenv("ASTRA_DATA_DIR", str(tmp_path / "pg-data"))
    assert main(["db", "import", "--from-json", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"checksum source {before.checksum[:16]} = copy {before.checksum[:16]}" in out
    assert f"{INSTANCE}/stock  6  sha256:" in out
    assert ".secrets.json" in out  # the master key has to come along

    store = PostgresStore(pg_dsn)
    with store.connect() as conn:
        assert summarise_pg(conn).checksum == before.checksum
    assert store.instance_ids() == [INSTANCE]
    with store.instance(INSTANCE, write=False) as uow:
        assert [k["secret"] for k in uow.stock.all()] == sealed  # still encrypted, as they were
        assert not any(s.startswith("KEY-") for s in sealed)
    store.close()

    # a second import would mix two platforms: refused, nothing changed
    assert main(["db", "import", "--from-json", str(data_dir)]) == 1
    assert "empty database" in capsys.readouterr().err

    out_dir = tmp_path / "exported"
    assert main(["db", "export", "--to-json", str(out_dir)]) == 0
    capsys.readouterr()
    exported = JsonStore(out_dir)
    exported.open()
    assert exported.check() == []
    after = summarise_json(exported)
    assert after.checksum == before.checksum and after.differences(before) == []
    with exported.instance(INSTANCE, write=False) as uow:
        assert [k["secret"] for k in uow.stock.all()] == sealed
    exported.close()
    assert main(["db", "export", "--to-json", str(out_dir)]) == 1  # not into a non-empty dir
    assert "not empty" in capsys.readouterr().err


def test_the_platform_runs_on_the_imported_data(data_dir: Path, pg_dsn: str) -> None:
    _sold_shop(data_dir)
    store = PostgresStore(pg_dsn)
    from astra.adapters.store.postgresql.transfer import import_json

    import_json(store, data_dir)
    store.close()
    # the same master key (the source's .secrets.json), the data on PostgreSQL
    shop_dir = data_dir
    from astra.container import build_container
    from astra.settings import Settings, ensure_dev_secrets

    container = build_container(
        ensure_dev_secrets(Settings(data_dir=shop_dir, database_url=pg_dsn))
    )
    product = container.catalog().list_products(INSTANCE)[0]
    variant = product.variants[0]
    view = container.sales().add_item(INSTANCE, "777777777777777777", product.id, variant.id, 1)
    assert view.quote.total_cents == variant.price_cents
    container.store().close()


def test_doctor_on_postgres_finds_damage_and_backup_runs_pg_dump(
    tmp_path: Path, pg_dsn: str, pg_server, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("ASTRA_DATABASE_URL", pg_dsn)
    monkeypatch.setenv("ASTRA_DATA_DIR", str(tmp_path / "data"))
    store = PostgresStore(pg_dsn)
    with store.instance("shop-1") as uow:
        uow.orders.put({"id": "o1", "status": "paid"})
        uow.commit()
    assert main(["doctor"]) == 0
    assert "ok: connected, schema up to date" in capsys.readouterr().out

    assert main(["backup", str(tmp_path / "bk")]) == 0
    out = capsys.readouterr().out
    assert "pg_restore" in out and (tmp_path / "bk" / "astra.dump").stat().st_size > 0
    # the dump restores into an empty database with the same documents
    with pg_server.database(migrated=False) as other:
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={other}", str(tmp_path / "bk" / "astra.dump")],
            check=True, capture_output=True,
        )
        restored = PostgresStore(other)
        with restored.instance("shop-1", write=False) as uow:
            assert uow.orders.require("o1")["status"] == "paid"
        restored.close()

    # damage written behind Astra's back is reported, never repaired silently
    with store.connect() as conn:
        conn.execute("INSERT INTO docs_orders (domain, id, doc) "
                     """VALUES ('shop-1', 'o2', '{"id": "zz"}')""")
        conn.execute("INSERT INTO docs_users (domain, id, doc) "
                     """VALUES ('shop-2', 'u1', '{"id": "u1"}')""")
        conn.commit()
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "differs from their key" in out and "no 'users' collection" in out
    assert "not registered (shop-2)" in out
    store.close()


def test_doctor_and_backup_say_what_is_wrong_without_a_server(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from tests.ports import free_port

    monkeypatch.setenv("ASTRA_DATABASE_URL", f"postgresql://a:pw-XYZ@127.0.0.1:{free_port()}/x")
    monkeypatch.setenv("ASTRA_DATA_DIR", str(tmp_path / "data"))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "cannot connect" in out and "pw-XYZ" not in out
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["backup", str(tmp_path / "bk")]) == 1
    err = capsys.readouterr().err
    assert "pg_dump is not installed" in err and "postgresql-client" in err
    assert main(["restore", str(tmp_path / "bk")]) == 1
    assert "pg_restore" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["migrate"], ["db", "import", "--from-json", "x"],
                                  ["db", "export", "--to-json", "y"]])
def test_postgres_commands_need_a_database_url(argv, data_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("ASTRA_DATABASE_URL", raising=False)
    monkeypatch.setenv("ASTRA_DATA_DIR", str(data_dir))
    assert main(argv) == 1
    assert "ASTRA_DATABASE_URL" in capsys.readouterr().err
