"""The `astra` command as an operator runs it: a real process, real ports, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from astra import __version__
from astra.adapters.store.json import JsonStore
from tests.ports import free_port, free_ports  # noqa: F401 - imported from here by tests

ROOT = Path(__file__).resolve().parents[2]


def astra(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "astra.entrypoints.cli", *args],
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_every_command() -> None:
    out = astra("--help")
    assert out.returncode == 0
    for command in ("serve", "doctor", "backup", "restore"):
        assert command in out.stdout


def test_doctor_backup_restore_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = JsonStore(data)
    with store.instance("shop-1") as uow:
        uow.orders.put({"id": "o1", "status": "paid", "total_cents": 1990})
        uow.commit()
    store.close()
    ok = astra("--data-dir", str(data), "doctor")
    assert ok.returncode == 0 and "ok" in ok.stdout

    assert astra("--data-dir", str(data), "backup", str(tmp_path / "bk")).returncode == 0
    refused = astra("--data-dir", str(data), "restore", str(tmp_path / "bk"))
    assert refused.returncode == 1 and "--force" in refused.stderr
    fresh = tmp_path / "fresh"
    assert astra("--data-dir", str(fresh), "restore", str(tmp_path / "bk")).returncode == 0
    with JsonStore(fresh).instance("shop-1", write=False) as uow:
        assert uow.orders.require("o1")["total_cents"] == 1990

    orders = data / "instances" / "shop-1" / "orders.json"
    orders.write_bytes(b'{"format": "astra-json-store", "sch')
    bad = astra("--data-dir", str(data), "doctor")
    assert bad.returncode == 1
    assert str(orders) in bad.stdout and "ERROR" in bad.stdout
    as_json = orjson.loads(astra("--data-dir", str(data), "doctor", "--json").stdout)
    assert as_json[0]["severity"] == "error" and as_json[0]["path"] == str(orders)


def test_configuration_errors_are_clear(tmp_path: Path) -> None:
    out = astra(
        "--data-dir",
        str(tmp_path / "d"),
        "doctor",
        env={"ASTRA_PORTAL_PORT": "http", "ASTRA_MODE": "production"},
    )
    assert out.returncode == 2
    assert "ASTRA_PORTAL_PORT" in out.stderr and "Traceback" not in out.stderr


class Server:
    def __init__(self, data: Path, extra_env: dict[str, str] | None = None) -> None:
        self.portal, self.admin, self.internal = free_ports(3)
        env = {
            **os.environ,
            **(extra_env or {}),
            "ASTRA_DATA_DIR": str(data),
            "ASTRA_PORTAL_PORT": str(self.portal),
            "ASTRA_ADMIN_PORT": str(self.admin),
            "ASTRA_INTERNAL_PORT": str(self.internal),
            "ASTRA_HOST": "127.0.0.1",
            # Docker's runtime network is tested with its own scope (test_docker_network.py).
            "ASTRA_RUNTIME": "process",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "astra.entrypoints.cli", "serve"],
            cwd=data.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.proc.communicate()[1]}")
            try:
                with socket.create_connection(("127.0.0.1", self.admin), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("serve did not start")

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


async def test_serve_health_and_clean_shutdown(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data)
    try:
        server.wait_ready()
        async with aiohttp.ClientSession() as http:
            for port, service in ((server.portal, "portal"), (server.admin, "admin"),
                                  (server.internal, "internal")):
                async with http.get(f"http://127.0.0.1:{port}/health") as resp:
                    assert resp.status == 200
                    body = await resp.json()
                assert body["status"] == "ok" and body["service"] == service
                assert body["version"] == __version__ and body["store"]["ok"] is True
            async with http.get(f"http://127.0.0.1:{server.portal}/no-such-page") as resp:
                assert resp.status == 404
                assert (await resp.json())["error"] == "not_found"
            async with http.post(f"http://127.0.0.1:{server.portal}/health") as resp:
                assert resp.status == 405
            # One place for each: runtimes' routes only on the internal listener, and nothing
            # of the portal's or the admin's there.
            internal = f"http://127.0.0.1:{server.internal}"
            async with http.get(f"http://127.0.0.1:{server.portal}/internal/instances/"
                                "shop-1/settings") as resp:
                assert resp.status == 404
            async with http.get(f"{internal}/internal/instances/shop-1/settings") as resp:
                assert resp.status == 401  # there, and asking for a runtime credential
            for path in ("/api/me", "/admin", "/api/status", "/"):
                async with http.get(f"{internal}{path}") as resp:
                    assert resp.status == 404, path

            # The store becomes unusable under a running server: /health says so with a 503.
            journal = data / "portal.journal"
            store = JsonStore(data)
            with store.portal() as uow:
                uow.users.put({"id": "u1", "email": "a@b.c"})
                uow.commit()
            store.close()
            replacement = data / "portal.journal.new"
            replacement.write_bytes(b"garbage that is not a journal\n")
            os.replace(replacement, journal)
            async with http.get(f"http://127.0.0.1:{server.portal}/health") as resp:
                assert resp.status == 503
                body = await resp.json()
            assert body["store"]["ok"] is False and body["store"]["file"] == str(journal)
    finally:
        code, err = server.stop()
    assert code == 0, err
    assert "serve.stopped" in err and "Traceback" not in err


def test_serve_refuses_a_damaged_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = JsonStore(data)
    with store.portal() as uow:
        uow.users.put({"id": "u1", "email": "a@b.c"})
        uow.commit()
    store.close()
    snapshot = data / "portal.json"
    snapshot.write_bytes(snapshot.read_bytes()[:-20])
    before = snapshot.read_bytes()
    out = astra("--data-dir", str(data), "serve", timeout=30)
    assert out.returncode == 1
    assert str(snapshot) in out.stderr and "Traceback" not in out.stderr
    assert snapshot.read_bytes() == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    server = Server(tmp_path / "data")
    server.wait_ready()
    server.proc.send_signal(sig)
    _, err = server.proc.communicate(timeout=30)
    assert server.proc.returncode == 0, err
    assert "serve.stopped" in err


async def test_every_answer_carries_security_headers(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    try:
        server.wait_ready()
        async with aiohttp.ClientSession() as http:
            for port, path in ((server.portal, "/health"), (server.portal, "/api/me"),
                               (server.portal, "/nowhere"), (server.admin, "/api/orders")):
                async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                    assert resp.headers["X-Content-Type-Options"] == "nosniff", path
                    assert resp.headers["X-Frame-Options"] == "DENY"
                    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
                    assert resp.status < 500
            big = b"x" * (3 * 1024 * 1024)
            async with http.post(f"http://127.0.0.1:{server.portal}/auth/local/login",
                                 data=big, headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 413
    finally:
        server.stop()


def test_serve_holds_a_lock_that_restore_and_a_second_serve_respect(tmp_path: Path) -> None:
    """`serve` holds `<data>/.serve.lock` for its whole life, even while no unit of work is
    open: `restore --force` and a second `serve` on the same data refuse, naming its pid."""
    data = tmp_path / "data"
    server = Server(data)
    try:
        server.wait_ready()
        assert astra("--data-dir", str(data), "backup", str(tmp_path / "bk")).returncode == 0
        time.sleep(0.5)  # idle: no domain lock is held now, only the serve lock
        refused = astra("--data-dir", str(data), "restore", str(tmp_path / "bk"), "--force")
        assert refused.returncode == 1, refused.stdout
        assert f"astra serve (pid {server.proc.pid})" in refused.stderr
        assert "stop it first" in refused.stderr
        assert not list(tmp_path.glob("data.pre-restore-*"))  # nothing was moved
        portal, admin = free_ports(2)
        second = astra("--data-dir", str(data), "serve", env={
            "ASTRA_PORTAL_PORT": str(portal), "ASTRA_ADMIN_PORT": str(admin)},
            timeout=30)
        assert second.returncode == 1 and "stop it first" in second.stderr
        assert "Traceback" not in second.stderr
        assert server.proc.poll() is None  # the first one is untouched
    finally:
        code, err = server.stop()
    assert code == 0, err
    # Once it stopped, the same restore goes through (the old data kept aside).
    done = astra("--data-dir", str(data), "restore", str(tmp_path / "bk"), "--force")
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("data.pre-restore-*"))) == 1


async def test_a_fresh_install_prints_how_to_log_in_to_the_admin_panel_once(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    env_password = os.environ.pop("ADMIN_PANEL_PASSWORD", None)
    try:
        server = Server(data)
        server.wait_ready()
        code, err = server.stop()
        assert code == 0, err
        stored = orjson.loads((data / ".secrets.json").read_bytes())
        password = stored["ADMIN_PANEL_PASSWORD"]
        assert "/admin/login" in err and "user: admin" in err
        assert f"password: {password}" in err and "shown only now" in err
        assert err.count(password) == 1  # on the terminal once, never in a log line

        server = Server(data)
        server.wait_ready()
        async with aiohttp.ClientSession() as http:
            login = f"http://127.0.0.1:{server.admin}/admin/login"
            async with http.post(login, json={"user": "admin", "password": password}) as resp:
                assert resp.status == 200 and (await resp.json())["role"] == "admin"
            async with http.get(f"http://127.0.0.1:{server.admin}/admin") as resp:
                assert resp.status == 200
        code, err = server.stop()
        assert code == 0, err
        assert password not in err  # the second start says where it is, not what it is
        assert ".secrets.json (ADMIN_PANEL_PASSWORD)" in err
    finally:
        if env_password is not None:
            os.environ["ADMIN_PANEL_PASSWORD"] = env_password


PRODUCTION = {
    "ASTRA_MODE": "production",
    "PORTAL_SESSION_SECRET": "session-secret-value-0123456789",
    "ADMIN_PANEL_TOKEN": "admin-token-value-0123456789",
    "ASTRA_MASTER_KEY": "master-key-value-0123456789",
    "ADMIN_PANEL_PASSWORD": "admin-password-value-0123",
    "MERCADOPAGO_ACCESS_TOKEN": "",
}


def test_production_without_a_payments_token_does_not_start(tmp_path: Path) -> None:
    """Never simulated payments by a forgotten token: `serve` stops, naming ASTRA_PAYMENTS."""
    ports = free_ports(3)
    env = {**PRODUCTION, "ASTRA_PORTAL_PORT": str(ports[0]), "ASTRA_ADMIN_PORT": str(ports[1]),
           "ASTRA_INTERNAL_PORT": str(ports[2]), "ASTRA_RUNTIME": "process",
           "ASTRA_PAYMENTS": ""}
    out = astra("--data-dir", str(tmp_path / "d"), "serve", env=env, timeout=30)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "MERCADOPAGO_ACCESS_TOKEN is required in production mode" in out.stderr
    assert "ASTRA_PAYMENTS=sandbox" in out.stderr and "Traceback" not in out.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", ports[0])) != 0  # nothing listened


async def test_production_on_the_sandbox_when_told_so_starts_without_its_checkout_pages(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "data", {**PRODUCTION, "ASTRA_PAYMENTS": "sandbox"})
    try:
        server.wait_ready()
        async with aiohttp.ClientSession() as http:
            portal = f"http://127.0.0.1:{server.portal}"
            async with http.get(f"{portal}/health") as resp:
                assert resp.status == 200
            # Development would send an anonymous caller to the login page (303); here the
            # sandbox's checkout pages do not exist.
            async with http.get(f"{portal}/sandbox/checkout/pref_x", allow_redirects=False) as r:
                assert r.status == 404
    finally:
        code, err = server.stop()
    assert code == 0, err
    assert "PAYMENTS ARE SIMULATED" in err and "off in production" in err
