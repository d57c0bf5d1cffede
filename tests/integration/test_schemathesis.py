"""schemathesis against both apps' OpenAPI documents, on a real `astra serve`: whatever a client
sends, the answer is never a 5xx."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscordThread
from tests.ports import free_ports

pytestmark = pytest.mark.slow
ADMIN_TOKEN = "schemathesis-admin-token-0123456789"
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def _wait(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"astra serve exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("astra serve did not start")


def _fuzz(url: str, headers: dict[str, str], report: Path) -> subprocess.CompletedProcess:
    args = [SCHEMATHESIS, "run", url, "--checks", "not_a_server_error", "--max-examples", "12",
            "--request-timeout", "10", "--workers", "2", "--seed", "20261129"]
    for name, value in headers.items():
        args += ["--header", f"{name}: {value}"]
    return subprocess.run(args, capture_output=True, text=True, timeout=600,
                          cwd=report.parent)


@pytest.fixture
def served(tmp_path: Path):
    if not shutil.which(SCHEMATHESIS):
        pytest.fail("schemathesis is part of the test extra")
    discord = FakeDiscordThread(bot_token="MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe." + "x" * 38)
    discord.start()
    portal, admin = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRA_", "MERCADOPAGO"))}
    env.update({"ASTRA_DATA_DIR": str(tmp_path / "data"), "ASTRA_PORTAL_PORT": str(portal),
                "ASTRA_ADMIN_PORT": str(admin), "ASTRA_RUNTIME": "process",
                "ADMIN_PANEL_TOKEN": ADMIN_TOKEN, "DISCORD_API_BASE": discord.api_url,
                "ASTRA_LOG_LEVEL": "warning"})
    # Its log goes to a file: a pipe nobody reads fills up under a fuzzer's refusals (each one
    # logged for the operator) and the server blocks writing to it.
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "astra.entrypoints.cli", "serve"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=log, text=True)
    try:
        _wait(portal, proc)
        yield portal, admin, tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        discord.stop()


def test_portal_api_never_answers_5xx(served) -> None:
    portal, _, tmp_path = served
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    body = json.dumps({"email": "fuzz@example.com", "password": "senha-forte-123",
                       "name": "Fuzz"}).encode()
    answer = json.loads(opener.open(urllib.request.Request(
        f"http://127.0.0.1:{portal}/auth/local/register", data=body,
        headers={"Content-Type": "application/json"})).read())
    csrf = answer["csrf_token"]
    cookie = next(c for c in jar if c.name == "astra_session")
    opener.open(urllib.request.Request(f"http://127.0.0.1:{portal}/api/plans/trial", data=b"",
                                       headers={"X-CSRF-Token": csrf}, method="POST"))
    out = _fuzz(f"http://127.0.0.1:{portal}/api/openapi.json",
                {"Cookie": f"astra_session={cookie.value}", "X-CSRF-Token": csrf},
                tmp_path / "portal.report")
    assert out.returncode == 0, out.stdout[-6000:]


def test_admin_api_never_answers_5xx(served) -> None:
    _, admin, tmp_path = served
    out = _fuzz(f"http://127.0.0.1:{admin}/api/openapi.json",
                {"Authorization": f"Bearer {ADMIN_TOKEN}"}, tmp_path / "admin.report")
    assert out.returncode == 0, out.stdout[-6000:]
