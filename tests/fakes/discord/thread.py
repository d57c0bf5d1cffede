"""FakeDiscord on an event loop thread of its own, for synchronous code."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Coroutine
from typing import Any

from .fake import FakeDiscord
from .handles import Interaction


class _OnLoop:
    """Proxy whose method calls run on the fake's loop thread and block for the result
    (coroutine methods are awaited there); attribute reads pass straight through."""

    def __init__(self, target: Any, runner: FakeDiscordThread) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_runner", runner)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or not inspect.ismethod(value):
            return value

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(value, *args, **kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return f"<on fake loop: {self._target!r}>"


class FakeDiscordThread(_OnLoop):
    """`runner = FakeDiscordThread(bot_token=..., ...)`; `base = runner.start()`; then
    `runner.add_guild(...)`, `handle = runner.slash(...)`, `handle.response(5)` — every method
    of the fake (and of the interaction handles it returns) runs on the fake's loop and blocks;
    `runner.call(coro)` runs any coroutine there; `runner.stop()`."""

    def __init__(self, fake: FakeDiscord | None = None, **kwargs: Any) -> None:
        object.__setattr__(self, "fake", fake if fake is not None else FakeDiscord(**kwargs))
        object.__setattr__(self, "_loop", None)
        object.__setattr__(self, "_thread", None)
        super().__init__(self.fake, self)

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        object.__setattr__(self, "_loop", loop)

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        thread = threading.Thread(target=serve, name="fake-discord", daemon=True)
        object.__setattr__(self, "_thread", thread)
        thread.start()
        ready.wait()
        return self.call(self.fake.start(port, host))

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """Run a coroutine on the fake's loop and wait for its result."""
        assert self._loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def run(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        async def invoke() -> Any:
            result = function(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        result = self.call(invoke(), timeout=float(kwargs.get("timeout", 10.0)) + 5.0)
        return _OnLoop(result, self) if isinstance(result, Interaction) else result

    def stop(self) -> None:
        if self._loop is None:
            return
        self.call(self.fake.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        object.__setattr__(self, "_loop", None)
        object.__setattr__(self, "_thread", None)
