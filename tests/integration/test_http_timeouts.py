"""Request timeouts of both apps: a client that trickles its body gets 408, a handler that
hangs gets 503, and neither holds the server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from astra.container import build_container
from astra.entrypoints import middleware
from astra.entrypoints.admin.app import create_admin_app
from astra.entrypoints.portal.app import create_portal_app
from astra.settings import Settings, ensure_dev_secrets

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")


async def _raw(port: int, head: bytes, body: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("app_factory,path", [
    (create_portal_app, "/auth/local/login"),
    (create_admin_app, "/admin/login"),
])
async def test_a_trickled_body_gets_408(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                        app_factory, path: str) -> None:
    monkeypatch.setattr(middleware, "REQUEST_TIMEOUT_SECONDS", 0.5)
    container = build_container(ensure_dev_secrets(Settings(data_dir=data_dir)))
    async with TestServer(app_factory(container), host="127.0.0.1") as server:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 1000\r\n\r\n").encode()
        answer = await _raw(server.port, head, b'{"email": "a')  # and then nothing
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"request_timeout" in answer and b"nosniff" in answer
    container.store().close()


async def test_a_hanging_handler_gets_503(data_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "REQUEST_TIMEOUT_SECONDS", 0.3)

    async def hangs(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application(middlewares=[middleware.errors_as_json, middleware.request_timeout])
    app.router.add_get("/slow", hangs)
    async with TestServer(app, host="127.0.0.1") as server:
        answer = await _raw(server.port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", b"")
        assert answer.startswith(b"HTTP/1.1 503") and b'"timeout"' in answer
