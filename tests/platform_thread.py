"""The platform's internal API served from a background thread, for synchronous tests whose
bots, run by a real runtime, must reach their platform."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from astra.entrypoints.internal.app import create_internal_app
from tests.ports import free_port  # noqa: F401 - imported from here by tests


class InternalAPIThread:
    """`with InternalAPIThread(container, port):` serves the internal API on host:port
    (127.0.0.1 unless a test's runtimes live elsewhere, say on a Docker bridge's gateway)."""

    def __init__(self, container: Any, port: int, host: str = "127.0.0.1") -> None:
        self.container = container
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> InternalAPIThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._runner = web.AppRunner(create_internal_app(self.container))
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
