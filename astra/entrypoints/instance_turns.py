"""Each instance's share of a face's request threads.

A store call runs in a thread, and one whose instance is held (a stock import, a stuck
process) keeps its thread until the lock's deadline. Without a cap, a flood of requests for
that one instance would take every thread, and every other seller's requests would queue
behind it. So at most `concurrent` requests of an instance are in progress at once; the next
waits `wait` seconds for a turn, then gets 503 with Retry-After. The internal API (per
runtime) and the portal (per instance named in the path) both take turns here.

Requests that name no instance (sign-in, /api/me, the session) run their blocking calls on a
pool of their own (`run_blocking`): no instance's calls can take the threads they need.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from aiohttp import web

from astra.entrypoints.middleware import json_error

P = ParamSpec("P")
T = TypeVar("T")

# Threads for the blocking calls of requests that name no instance.
PORTAL_WIDE_THREADS = 8
# The portal: requests of one instance in progress at once, and how long the next waits.
PORTAL_CONCURRENT = 4
PORTAL_WAIT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 2

# The instance the request in progress is for ("" for none): set by `turns_middleware`.
_request_instance: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_instance", default=""
)
_portal_wide: ThreadPoolExecutor | None = None


class InstanceTurns:
    def __init__(self, concurrent: int, wait: float) -> None:
        self.concurrent = concurrent
        self.wait = wait
        # Only the instances with a request in progress or waiting: ids come from paths, so
        # a semaphore per id ever seen would be memory anyone can grow.
        self._turns: dict[str, tuple[asyncio.Semaphore, int]] = {}

    async def take(self, instance_id: str) -> bool:
        """A turn (True), or False when none came within `wait`; each True needs a
        `give_back`."""
        semaphore, users = self._turns.get(instance_id) or (
            asyncio.Semaphore(self.concurrent), 0)
        self._turns[instance_id] = (semaphore, users + 1)
        try:
            await asyncio.wait_for(semaphore.acquire(), self.wait)
        except TimeoutError:
            self._leave(instance_id)
            return False
        except BaseException:
            self._leave(instance_id)
            raise
        return True

    def give_back(self, instance_id: str) -> None:
        entry = self._turns.get(instance_id)
        if entry is not None:
            entry[0].release()
            self._leave(instance_id)

    def _leave(self, instance_id: str) -> None:
        semaphore, users = self._turns[instance_id]
        if users <= 1:
            del self._turns[instance_id]
        else:
            self._turns[instance_id] = (semaphore, users - 1)


def busy_response() -> web.Response:
    response = json_error(
        503, "busy", "Muitas requisições desta loja em andamento. Tente de novo em instantes.")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def turns_middleware(turns: InstanceTurns,
                     instance_of: Callable[[web.Request], str]) -> Callable[..., Awaitable[
                         web.StreamResponse]]:
    """A middleware that gives each request of an instance (`instance_of`, "" for none) a
    turn of that instance, and records which instance it is for `run_blocking`."""

    @web.middleware
    async def instance_turns(request: web.Request, handler: Handler) -> web.StreamResponse:
        instance_id = instance_of(request)
        if not instance_id:
            return await handler(request)
        if not await turns.take(instance_id):
            return busy_response()
        token = _request_instance.set(instance_id)
        try:
            return await handler(request)
        finally:
            _request_instance.reset(token)
            turns.give_back(instance_id)

    return instance_turns


def _portal_pool() -> ThreadPoolExecutor:
    global _portal_wide
    if _portal_wide is None:
        _portal_wide = ThreadPoolExecutor(max_workers=PORTAL_WIDE_THREADS,
                                          thread_name_prefix="astra-portal")
    return _portal_wide


async def run_blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A request's blocking call (the store, argon2), off the event loop: on the loop's
    default pool for a request of an instance (whose turns bound how many threads it holds),
    on the portal-wide pool for one that names none."""
    loop = asyncio.get_running_loop()
    executor = None if _request_instance.get() else _portal_pool()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await loop.run_in_executor(executor, call)
