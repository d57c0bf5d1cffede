"""The runtime monitor with the process runtime: real `astra instance run` processes against
the fake Discord, statuses, plan suspension, seller stop/start, crash loops, least privilege."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dependency_injector import providers

from astra.adapters.runtime.process import ProcessRuntime
from astra.container import build_container
from astra.domain.timestamps import iso
from astra.settings import Settings, ensure_dev_secrets
from tests.fakes.discord import FakeDiscordThread
from tests.platform_thread import InternalAPIThread, free_port

TOKEN = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
WRONG = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"
SECRETS = ("MERCADOPAGO_", "PORTAL_SESSION_SECRET", "ADMIN_PANEL_TOKEN", "ASTRA_MASTER_KEY")


@pytest.fixture
def discord():
    fake = FakeDiscordThread(bot_token=TOKEN)
    fake.start()
    yield fake
    fake.stop()


def _world(data_dir: Path, discord, *, plan_days: int = 5, port: int = 0,
           discord_api_base: str | None = None):
    settings = ensure_dev_secrets(
        Settings(
            data_dir=data_dir,
            discord_api_base=discord_api_base or discord.api_url,
            runtime="process",
            # The runtimes' heartbeats arrive through the portal's internal API.
            platform_url=f"http://127.0.0.1:{port}" if port else "",
            # the fake Mercado Pago token is a secret the runtimes must never see
            mercadopago_access_token="APP_USR-1111111111111111-010101-abcdefabcdefabcdefabcdef-1",
            mercadopago_webhook_secret="whsec-never-in-a-runtime",
        )
    )
    container = build_container(settings)
    container.runtime.override(
        providers.Object(ProcessRuntime(data_dir, restart_limit=1, backoff=0.1))
    )
    now = datetime.now(UTC)
    with container.store().portal() as uow:
        uow.users.put(
            {
                "id": "usr_1",
                "email": "s@example.com",
                "plan": {"kind": "paid", "until": iso(now + timedelta(days=plan_days))},
            }
        )
        uow.commit()
    instances = container.instances()
    for name in ("loja-um", "loja-dois"):
        instances.create(name, owner_id="usr_1", name=name, actor="test")
        instances.rotate_instance_key(name, actor="test")
    instances.set_bot_token("loja-um", TOKEN, {"id": "1"}, actor="test")
    instances.set_bot_token("loja-dois", WRONG, {"id": "2"}, actor="test")
    return container


def _until(
    monitor, instance_id: str, status: str, reason: str | None = None, timeout: float = 30.0
):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = monitor.reconcile_once()[instance_id]
        if seen.status == status and (reason is None or seen.reason == reason):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{instance_id} never became {status}/{reason}; last {seen}")


@pytest.mark.slow
def test_monitor_runs_suspends_stops_and_reports(data_dir: Path, discord) -> None:
    port = free_port()
    container = _world(data_dir, discord, port=port)
    monitor = container.monitor()
    runtime = monitor.runtime
    with InternalAPIThread(container, port):
        _monitor_runs_suspends_stops_and_reports(container, monitor, runtime)


def _monitor_runs_suspends_stops_and_reports(container, monitor, runtime) -> None:
    try:
        _until(monitor, "loja-um", "online")
        _until(monitor, "loja-dois", "error", "invalid_token")
        state = runtime.status("loja-um")
        environ = Path(f"/proc/{runtime._runtimes['loja-um'].proc.pid}/environ").read_bytes()
        names = [kv.split(b"=", 1)[0].decode() for kv in environ.split(b"\0") if kv]
        assert not [n for n in names if n.startswith(SECRETS)]
        assert "ASTRA_BOT_TOKEN" in names and "ASTRA_INSTANCE_KEY" in names
        # No store, no key to its stock: its data is reached through the internal API.
        assert "ASTRA_VAULT_KEY" not in names and "ASTRA_DATA_DIR" not in names
        assert b"APP_USR-" not in environ and b"whsec-never" not in environ
        with container.store().portal(write=False) as uow:
            doc = uow.instances.require("loja-um")
            audit = [a for a in uow.audit.all() if a["action"] == "runtime.status_changed"]
        assert doc["status"] == "online" and audit
        assert any("bot.ready" in line for line in runtime.logs("loja-um", 200))
        assert not any(TOKEN in line for line in runtime.logs("loja-um", 200))

        # The seller stops it; then starts it again.
        container.instances().set_desired_state("loja-um", "stopped", actor="seller:1")
        assert monitor.reconcile_once()["loja-um"].reason == "stopped"
        assert runtime.status("loja-um").state == "missing"
        container.instances().set_desired_state("loja-um", "running", actor="seller:1")
        _until(monitor, "loja-um", "online")

        # The plan lapses: suspended and removed; renewed: back online.
        with container.store().portal() as uow:
            user = uow.users.require("usr_1")
            user["plan"]["until"] = iso(datetime.now(UTC) - timedelta(minutes=1))
            uow.users.put(user)
            uow.commit()
        assert monitor.reconcile_once()["loja-um"].status == "suspended"
        assert runtime.status("loja-um").state == "missing"
        with container.store().portal() as uow:
            user = uow.users.require("usr_1")
            user["plan"]["until"] = iso(datetime.now(UTC) + timedelta(days=30))
            uow.users.put(user)
            uow.commit()
        _until(monitor, "loja-um", "online")
        assert state.restarts == 0
    finally:
        runtime.shutdown()


@pytest.mark.slow
def test_a_runtime_that_crashes_at_start_ends_in_crash_loop(data_dir: Path, discord) -> None:
    # Nothing listens where Discord should be: the bot fails at login and exits.
    container = _world(data_dir, discord, discord_api_base=f"http://127.0.0.1:{free_port()}")
    monitor = container.monitor()
    try:
        status = _until(monitor, "loja-um", "error", "crash_loop")
        assert status.reason == "crash_loop"
        assert monitor.runtime.status("loja-um").restarts == 1
    finally:
        monitor.runtime.shutdown()
