from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fixtures shared by the replica tests (a Mercado Pago and a Discord per module).
pytest_plugins = ["tests.replica_fakes"]

ARTIFACTS = Path(
    os.environ.get("ASTRA_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)


# -- shards ----------------------------------------------------------------------------------------
# scripts/test.sh runs the suite as two pytest processes at once (`--shard engines` and
# `--shard rest`): most of the long tests wait on a Docker engine, subprocesses or sleeps, not on
# the CPU. "engines" holds everything that needs the Docker engine (one process owns it and the
# swarm) and the kill/race suites that would fight the rest's servers for the same moments;
# "rest" holds the other suites. The split keeps the two near the same length.
ENGINE_SHARD_FILES = {"test_torture.py", "test_store_crash.py", "test_races.py"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shard", choices=("engines", "rest"), default=None,
                     help="run one of scripts/test.sh's two shards (default: every test)")


def in_engine_shard(item: pytest.Item) -> bool:
    return item.get_closest_marker("docker") is not None or item.path.name in ENGINE_SHARD_FILES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("--shard")
    if shard is None:
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (keep if in_engine_shard(item) == (shard == "engines") else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# -- PostgreSQL -------------------------------------------------------------------------------
# A real server (tests/pg.py): ASTRA_TEST_DATABASE_URL, or a throwaway cluster started on first
# use and stopped at the end of the run. Without one, PostgreSQL tests are skipped, except under
# CI=true, where that is a failure.


@pytest.fixture(scope="session")
def pg_server():
    from tests.pg import PostgresUnavailable, start_server

    try:
        server = start_server()
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(f"no PostgreSQL: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server, monkeypatch) -> str:
    """A fresh, empty, migrated database of this test's own (dropped afterwards). Every
    PostgresStore the test opened (containers make their own) is closed first, so no pool
    keeps reconnecting to a dropped database."""
    from astra.adapters.store.postgresql import PostgresStore

    opened: list[PostgresStore] = []
    init = PostgresStore.__init__

    def tracking_init(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(PostgresStore, "__init__", tracking_init)
    with pg_server.database() as dsn:
        yield dsn
        for store in opened:
            store.close()


class StoreBackend:
    """One of the two store adapters, on this test's own data (a temp dir or a fresh database).

    `store()` is another view of the same data each call (as another process would have);
    `settings` are the Settings fields that select this backend for a container."""

    def __init__(self, kind: str, data_dir: Path, dsn: str = "") -> None:
        self.kind = kind
        self.data_dir = data_dir
        self.dsn = dsn
        self._opened: list = []

    @property
    def settings(self) -> dict:
        return {"database_url": self.dsn} if self.dsn else {}

    @property
    def env(self) -> dict[str, str]:
        return {"ASTRA_DATABASE_URL": self.dsn} if self.dsn else {}

    def store(self):
        if self.kind == "postgresql":
            from astra.adapters.store.postgresql import PostgresStore

            store = PostgresStore(self.dsn, pool_max=8)
        else:
            from astra.adapters.store.json import JsonStore

            store = JsonStore(self.data_dir)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()


@pytest.fixture(params=["json", "postgresql"])
def store_backend(request, data_dir: Path, monkeypatch):
    """Runs a test once per store adapter. ASTRA_DATABASE_URL is set for the PostgreSQL run, so
    containers built from the environment and child processes use it too."""
    if request.param == "postgresql":
        dsn = request.getfixturevalue("pg_dsn")
        monkeypatch.setenv("ASTRA_DATABASE_URL", dsn)
        backend = StoreBackend("postgresql", data_dir, dsn)
    else:
        monkeypatch.delenv("ASTRA_DATABASE_URL", raising=False)
        backend = StoreBackend("json", data_dir)
    yield backend
    backend.close()


@pytest.fixture
def store_factory(store_backend: StoreBackend):
    """A new view of this test's store per call (the adapter chosen by `store_backend`)."""
    return store_backend.store
