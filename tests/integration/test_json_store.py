"""The store contract on both adapters (`store_factory`: the JSON store on a real temp directory,
PostgreSQL on a fresh database), then what only files can show: damage, journal, backup."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import orjson
import pytest

from astra.adapters.store.json import JsonStore, restore, verify_backup
from astra.adapters.store.json import state as state_module
from astra.ports.store import (
    DuplicateId,
    InvalidDomain,
    LockOrderError,
    NotFound,
    ReadOnlyUnitOfWork,
    StoreCorrupt,
    StoreError,
    StoreSchemaTooNew,
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(store, n: int, instance: str = "shop-1") -> None:
    for i in range(n):
        with store.instance(instance) as uow:
            uow.orders.put({"id": f"o{i}", "status": "pending", "total_cents": 100 + i})
            uow.commit()


def test_commit_rollback_and_isolation(store_backend, store_factory) -> None:
    store = store_factory()
    with store.instance("shop-1") as uow:
        uow.products.put({"id": "p1", "name": "Key", "active": True})
        assert uow.products.get("p1")["name"] == "Key"  # reads see own writes
        # no commit: discarded
    with store.instance("shop-1") as uow:
        assert uow.products.get("p1") is None
        uow.products.put({"id": "p1", "name": "Key", "active": True})
        uow.commit()
    other = store_factory()  # another "process" view
    with other.instance("shop-1", write=False) as uow:
        doc = uow.products.require("p1")
        doc["name"] = "changed"  # a copy: the cache is not touched
        assert uow.products.get("p1")["name"] == "Key"
        with pytest.raises(ReadOnlyUnitOfWork):
            uow.products.put(doc)
        with pytest.raises(NotFound):
            uow.products.require("nope")
    assert store.instance_ids() == other.instance_ids() == ["shop-1"]
    if store_backend.kind == "json":
        # the files of the original layout exist from the first commit
        for name in ("products.json", "stock.json", "orders.json", "journal.log"):
            assert (store_backend.data_dir / "instances" / "shop-1" / name).exists()


def test_indexes_follow_changes(store_factory) -> None:
    store = store_factory()
    with store.instance("shop-1") as uow:
        for i in range(10):
            uow.stock.put(
                {"id": f"k{i}", "variant_id": "v1" if i < 6 else "v2", "state": "available"}
            )
        uow.commit()
    with store.instance("shop-1") as uow:
        k = uow.stock.require("k0")
        k["state"] = "reserved"
        uow.stock.put(k)
        # pending changes are visible through indexed finds
        assert len(uow.stock.find(variant_id="v1", state="available")) == 5
        assert [d["id"] for d in uow.stock.find(variant_id="v1", state="reserved")] == ["k0"]
        uow.stock.delete("k9")
        assert uow.stock.count(variant_id="v2", state="available") == 3
        uow.commit()
    reader = store_factory()
    with reader.instance("shop-1", write=False) as uow:
        assert uow.stock.count(variant_id="v1", state="available") == 5
        assert uow.stock.count(state="reserved") == 1
        assert uow.stock.get("k9") is None
        assert uow.stock.first(variant_id="v2", state="available")["id"] == "k6"


def test_find_order_and_equality(store_factory) -> None:
    store = store_factory()
    with store.instance("shop-1") as uow:
        uow.stock.put({"id": "a", "state": "available", "cart_id": None, "meta": {"x": [1, 2]}})
        uow.stock.put({"id": "b", "state": "available"})  # no cart_id at all
        uow.stock.put({"id": "c", "state": "reserved", "cart_id": "c1", "n": 1.0})
        uow.commit()
    with store.instance("shop-1") as uow:
        # a missing field equals None, as doc.get(field) == None
        assert [d["id"] for d in uow.stock.find(cart_id=None)] == ["a", "b"]
        assert [d["id"] for d in uow.stock.find(meta={"x": [1, 2]})] == ["a"]
        assert [d["id"] for d in uow.stock.find(n=1)] == ["c"]  # 1 == 1.0
        assert uow.stock.find(state="nope") == [] and uow.stock.first(state="nope") is None
        a = uow.stock.require("a")
        a["state"] = "sold"
        uow.stock.put(a)
        uow.stock.delete("b")
        uow.stock.put({"id": "b", "state": "available"})
        assert uow.stock.count(state="available") == 1  # pending writes are seen
        assert sorted(uow.stock.ids()) == ["a", "b", "c"]
        uow.commit()
    with store.instance("shop-1") as uow:
        # an update, even a delete and put in one unit, keeps a document's place
        assert uow.stock.ids() == ["a", "b", "c"]
        uow.stock.delete("a")
        uow.commit()
    with store.instance("shop-1") as uow:
        uow.stock.put({"id": "a", "state": "available"})  # deleted before: now it is last
        uow.commit()
    with store_factory().instance("shop-1", write=False) as uow:
        assert uow.stock.ids() == ["b", "c", "a"]
        assert [d["id"] for d in uow.stock.all()] == ["b", "c", "a"]
        assert uow.stock.first(state="available")["id"] == "b"


def test_add_is_idempotency_guard_and_bad_documents_rejected(store_factory) -> None:
    store = store_factory()
    with store.portal() as uow:
        uow.ledger.add({"id": "sale:shop-1:o1", "user_id": "u1", "amount_cents": 940})
        with pytest.raises(DuplicateId):
            uow.ledger.add({"id": "sale:shop-1:o1", "user_id": "u1", "amount_cents": 940})
        with pytest.raises(StoreError):
            uow.ledger.put({"amount_cents": 1})
        with pytest.raises(StoreError):
            uow.ledger.put({"id": "x", "when": object()})
        uow.commit()
    with store.portal(write=False) as uow:
        assert uow.ledger.count(user_id="u1") == 1


def test_instance_ids_are_never_paths(store_backend, store_factory) -> None:
    store = store_factory()
    for bad in ("../etc", "a", "UPPER", "x/y", "", "portal"):
        with pytest.raises(InvalidDomain), store.instance(bad):
            pass
    assert not (store_backend.data_dir.parent / "etc").exists()
    assert store.instance_ids() == []


def test_instances_with_lists_only_the_instances_that_have_that_work(store_factory) -> None:
    store = store_factory()
    for shop, statuses in (("shop-a", ["delivered", "pending"]), ("shop-b", ["delivered"]),
                           ("shop-c", ["pending", "pending"]), ("shop-d", [])):
        with store.instance(shop) as uow:
            uow.settings.put({"id": "settings"})
            for n, status in enumerate(statuses):
                uow.deliveries.put({"id": f"o{n}", "order_id": f"o{n}", "status": status})
            uow.commit()
    with store.portal() as uow:  # the portal is never an instance
        uow.users.put({"id": "u1", "status": "pending"})
        uow.commit()
    assert store.instances_with("deliveries", status="pending") == ["shop-a", "shop-c"]
    assert store.instances_with("deliveries", status="delivered") == ["shop-a", "shop-b"]
    assert store.instances_with("deliveries", status="failed") == []
    assert store.instances_with("deliveries") == ["shop-a", "shop-b", "shop-c"]
    with store.instance("shop-b") as uow:  # work that appears is seen on the next look
        uow.deliveries.put({"id": "o9", "order_id": "o9", "status": "pending"})
        uow.commit()
    assert store.instances_with("deliveries", status="pending") == ["shop-a", "shop-b", "shop-c"]
    with pytest.raises(StoreError):
        store.instances_with("users")  # a portal collection


def test_lock_order_is_enforced(store_factory) -> None:
    store = store_factory()
    with store.instance("shop-1") as uow:
        with store.portal(write=False) as portal:  # instance then portal: allowed
            assert portal.users.count() == 0
        with pytest.raises(LockOrderError), store.instance("shop-2"):
            pass
        with pytest.raises(LockOrderError), store.instance("shop-1"):
            pass
        uow.rollback()
    with store.portal(), pytest.raises(LockOrderError), store.instance("shop-1"):
        pass


def test_threads_in_one_process_do_not_lose_updates(store_factory) -> None:
    store = store_factory()

    def work() -> None:
        for _ in range(200):
            with store.instance("shop-1") as uow:
                doc = uow.settings.get("counter") or {"id": "counter", "value": 0}
                doc["value"] += 1
                uow.settings.put(doc)
                uow.commit()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store_factory().instance("shop-1", write=False) as uow:
        assert uow.settings.require("counter")["value"] == 800


def test_compaction_keeps_everything_and_other_views_follow(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(state_module, "COMPACT_MIN_BYTES", 4096)
    writer, reader = JsonStore(data_dir), JsonStore(data_dir)
    with reader.instance("shop-1", write=False) as uow:
        assert uow.orders.count() == 0
    _fill(writer, 300)
    with reader.instance("shop-1", write=False) as uow:
        assert uow.orders.count() == 300
        assert uow.orders.require("o299")["total_cents"] == 399
    journal = (data_dir / "instances" / "shop-1" / "journal.log").read_bytes()
    assert journal.count(b"\n") < 100, "the journal was never compacted"
    fresh = JsonStore(data_dir)
    with fresh.instance("shop-1", write=False) as uow:
        assert uow.orders.count() == 300


def test_corrupt_snapshot_stops_startup_and_is_never_overwritten(data_dir: Path) -> None:
    store = JsonStore(data_dir)
    _fill(store, 3)
    with store.portal() as uow:
        uow.users.put({"id": "u1", "email": "a@b.c"})
        uow.commit()
    store.close()
    orders = data_dir / "instances" / "shop-1" / "orders.json"
    orders.write_bytes(orders.read_bytes()[:40])  # truncated snapshot
    before = _digest(orders)
    damaged = JsonStore(data_dir)
    with pytest.raises(StoreCorrupt) as err:
        damaged.open()
    assert str(orders) in str(err.value) and "truncated" in str(err.value)
    with pytest.raises(StoreCorrupt), damaged.instance("shop-1") as uow:
        uow.orders.put({"id": "new"})
        uow.commit()
    assert _digest(orders) == before
    problems = JsonStore(data_dir).check()
    assert [p.severity for p in problems] == ["error"]
    assert problems[0].path == str(orders)
    # the portal domain is unaffected
    with JsonStore(data_dir).portal(write=False) as uow:
        assert uow.users.get("u1")


def test_damaged_record_in_the_middle_of_the_journal_is_corruption(data_dir: Path) -> None:
    store = JsonStore(data_dir)
    _fill(store, 5)
    store.close()
    path = data_dir / "instances" / "shop-1" / "journal.log"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"pending"', b'"paid!!!"')
    path.write_bytes(b"\n".join(lines))
    before = _digest(path)
    with pytest.raises(StoreCorrupt) as err:
        JsonStore(data_dir).open()
    assert str(path) in str(err.value) and "checksum mismatch" in str(err.value)
    assert _digest(path) == before


def test_truncated_journal_header_is_reported(data_dir: Path) -> None:
    store = JsonStore(data_dir)
    _fill(store, 5)
    store.close()
    path = data_dir / "instances" / "shop-1" / "journal.log"
    path.write_bytes(path.read_bytes()[:30])
    before = _digest(path)
    with pytest.raises(StoreCorrupt) as err:
        JsonStore(data_dir).open()
    assert str(path) in str(err.value) and "header" in str(err.value)
    assert _digest(path) == before
    path.write_bytes(b"")
    with pytest.raises(StoreCorrupt, match="empty"):
        JsonStore(data_dir).open()


def test_missing_journal_beside_snapshots_is_reported(data_dir: Path) -> None:
    store = JsonStore(data_dir)
    _fill(store, 2)
    store.close()
    (data_dir / "instances" / "shop-1" / "journal.log").unlink()
    with pytest.raises(StoreCorrupt, match="journal is missing"):
        JsonStore(data_dir).open()


def test_torn_last_record_is_an_unacknowledged_commit(data_dir: Path) -> None:
    store = JsonStore(data_dir)
    _fill(store, 4)
    store.close()
    path = data_dir / "instances" / "shop-1" / "journal.log"
    data = path.read_bytes()
    end = len(data.rstrip(b"\0"))  # the journal is allocated ahead with zeros
    # the last record loses its tail, as a crash mid-write would
    cut = data[: end - 7] + b"\0" * (len(data) - end + 7)
    path.write_bytes(cut)
    reopened = JsonStore(data_dir)
    reopened.open()
    assert path.read_bytes() == cut  # opening changes nothing
    with reopened.instance("shop-1", write=False) as uow:
        assert sorted(uow.orders.ids()) == ["o0", "o1", "o2"]
    problems = reopened.check()
    assert [(p.severity, "interrupted commit" in p.message) for p in problems] == [
        ("warning", True)
    ]
    with reopened.instance("shop-1") as uow:
        uow.orders.put({"id": "o9", "status": "pending", "total_cents": 1})
        uow.commit()
    with JsonStore(data_dir).instance("shop-1", write=False) as uow:
        assert sorted(uow.orders.ids()) == ["o0", "o1", "o2", "o9"]
    assert JsonStore(data_dir).check() == []


def test_schema_migration_hook_and_too_new_files(data_dir: Path) -> None:
    store = JsonStore(data_dir)
    _fill(store, 3)
    store.close()

    def v1_to_v2(kind: str, collections: dict) -> None:
        if kind == "instance":
            for order in collections["orders"].values():
                order["currency"] = "BRL"

    upgraded = JsonStore(data_dir, schema_version=2, migrations={1: v1_to_v2})
    with upgraded.instance("shop-1", write=False) as uow:
        assert uow.orders.require("o1")["currency"] == "BRL"
    assert any(p.severity == "info" and "migrated" in p.message for p in upgraded.check())
    with upgraded.instance("shop-1") as uow:
        uow.orders.put({"id": "o3", "status": "pending", "total_cents": 1, "currency": "BRL"})
        uow.commit()
    header = orjson.loads((data_dir / "instances" / "shop-1" / "orders.json").read_bytes())
    assert header["schema"] == 2 and header["collections"]["orders"]["o0"]["currency"] == "BRL"
    journal_head = (data_dir / "instances" / "shop-1" / "journal.log").read_bytes().split(b"\n")[0]
    assert b'"schema":2' in journal_head
    with pytest.raises(StoreSchemaTooNew):
        JsonStore(data_dir).open()  # the old program refuses the newer files


def test_backup_during_writes_restores_consistently(data_dir: Path, tmp_path: Path) -> None:
    store = JsonStore(data_dir)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 5000:
            with store.instance("shop-1") as uow:
                uow.orders.put({"id": f"o{i}", "key_id": f"k{i}", "n": i})
                uow.stock.put({"id": f"k{i}", "state": "sold", "order_id": f"o{i}"})
                uow.commit()
            with store.portal() as uow:
                uow.ledger.put({"id": f"sale:{i}", "user_id": "u1", "amount_cents": 94})
                uow.commit()
            written.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    while len(written) < 50:
        pass
    backup_store = JsonStore(data_dir)
    manifest = backup_store.backup(tmp_path / "bk")
    stop.set()
    t.join()
    assert manifest["domains"]["shop-1"]["seq"] > 0
    verify_backup(tmp_path / "bk")
    with pytest.raises(StoreError, match="not empty"):
        restore(tmp_path / "bk", data_dir)
    target = tmp_path / "restored"
    restore(tmp_path / "bk", target)
    restored = JsonStore(target)
    restored.open()
    with restored.instance("shop-1", write=False) as uow:
        orders = uow.orders.all()
        keys = {k["id"]: k for k in uow.stock.all()}
    assert orders and len(orders) == len(keys)
    assert all(keys[o["key_id"]]["order_id"] == o["id"] for o in orders)
    with restored.portal(write=False) as uow:
        credits = uow.ledger.count()
    # the portal was copied after the instance, at one moment: every credit has its order
    assert credits == len(orders)
    # the backup restores over a non-empty dir only with force, keeping the old data aside
    restore(tmp_path / "bk", data_dir, force=True)
    assert any(p.name.startswith("data.pre-restore-") for p in tmp_path.iterdir())
    JsonStore(data_dir).open()


def test_damaged_backup_is_refused(data_dir: Path, tmp_path: Path) -> None:
    store = JsonStore(data_dir)
    _fill(store, 3)
    store.backup(tmp_path / "bk")
    journal = tmp_path / "bk" / "instances" / "shop-1" / "journal.log"
    journal.write_bytes(journal.read_bytes() + b"junk")
    with pytest.raises(StoreCorrupt, match="checksum"):
        restore(tmp_path / "bk", tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_closed_store_reopens_on_next_use(store_factory) -> None:
    store = store_factory()
    _fill(store, 2)
    store.close()
    with store.instance("shop-1", write=False) as uow:
        assert uow.orders.count() == 2
    _fill(store, 3)  # writes o0..o2 again: still works after the close
    with store_factory().instance("shop-1", write=False) as uow:
        assert uow.orders.count() == 3
