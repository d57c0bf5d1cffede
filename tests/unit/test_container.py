"""The DI container wires the real adapters and lets tests override providers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dependency_injector import providers

from astra.adapters.clock import FrozenClock, SystemClock
from astra.adapters.store.json import JsonStore
from astra.container import build_container
from astra.settings import Settings, ensure_dev_secrets


def test_container_builds_adapters_from_settings(tmp_path: Path) -> None:
    settings = ensure_dev_secrets(Settings(data_dir=tmp_path / "data"))
    container = build_container(settings)
    store = container.store()
    assert isinstance(store, JsonStore) and store.data_dir == (tmp_path / "data").resolve()
    assert container.store() is store  # one store per process
    assert isinstance(container.clock(), SystemClock)
    cipher = container.cipher()
    assert cipher.decrypt(cipher.encrypt("token", context="i1"), context="i1") == "token"
    assert container.hasher().fingerprint("x") == container.hasher().fingerprint("x")


def test_providers_can_be_overridden(tmp_path: Path) -> None:
    container = build_container(ensure_dev_secrets(Settings(data_dir=tmp_path / "data")))
    frozen = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    with container.clock.override(providers.Object(frozen)):
        assert container.clock().now() == datetime(2026, 1, 1, tzinfo=UTC)
    assert isinstance(container.clock(), SystemClock)
