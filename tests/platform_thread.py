"""The platform's portal app (and so its internal API) served from a background thread, for
synchronous tests whose bots, run by a real runtime, must reach their platform."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from aiohttp import web

from astra.entrypoints.portal.app import create_portal_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortalThread:
    """`with PortalThread(container, port):` serves the portal on 127.0.0.1:port."""

    def __init__(self, container: Any, port: int) -> None:
        self.container = container
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> PortalThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._runner = web.AppRunner(create_portal_app(self.container))
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
