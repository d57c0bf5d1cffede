"""FakeDiscord: the world (state.py), the REST API (rest*.py), the gateway (gateway.py) and the
user-side controls (controls.py) on one local aiohttp server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from .controls import InteractionControls
from .entities import GUILD_MEMBERS, MESSAGE_CONTENT, Ref, ref
from .gateway import Gateway
from .handles import Interaction
from .messages import NONCE_WINDOW
from .ratelimit import RateLimiter
from .rest import ForcedFailure, RestCall, build_app
from .rest_guilds import GuildRoutes
from .rest_interactions import InteractionRoutes
from .rest_messages import MessageRoutes
from .snowflakes import Snowflakes
from .state import World


class FakeDiscord(InteractionControls, World):
    """Discord (REST v10 + gateway) for one application and its bot, on 127.0.0.1.

    `await start()` returns the base URL; REST is at `api_url` (base + "/api/v10"), the gateway
    at `gateway_url` (ws://127.0.0.1:PORT/gw, also what GET /gateway answers), uploaded files at
    base + "/attachments/...". Point interactions.py at it with `with fake.routed(): ...`.
    """

    def __init__(self, bot_token: str = "fake-bot-token", application_id: Ref | None = None,
                 bot_user_id: Ref | None = None, *, bot_username: str = "Astra",
                 owner_id: Ref | None = None, heartbeat_interval: int = 41250,
                 privileged_intents: int = GUILD_MEMBERS | MESSAGE_CONTENT,
                 response_deadline: float = 3.0, token_lifetime: float = 900.0,
                 enforce_permissions: bool = True, nonce_window: float = NONCE_WINDOW) -> None:
        app_id = ref(application_id) if application_id is not None else Snowflakes(7).next()
        # A bot's user id is its application's id, unless told otherwise.
        World.__init__(self, bot_token=bot_token, application_id=app_id,
                       bot_user_id=ref(bot_user_id) if bot_user_id is not None else app_id,
                       bot_username=bot_username)
        self.world: World = self
        # The application's owner (a person; interactions.py adds it to client.owner_ids).
        owner = ref(owner_id) if owner_id is not None else None
        self.owner_id = self.add_user("app-owner", user_id=owner).id
        self.gateway = Gateway(self, heartbeat_interval=heartbeat_interval,
                               privileged_intents=privileged_intents)
        self.emit = self.gateway.dispatch
        self.rate_limiter = RateLimiter()
        self.forced_failures: list[ForcedFailure] = []
        self.lost_answers: list[dict[str, Any]] = []
        self.calls: list[RestCall] = []
        self.interactions: list[Interaction] = []
        self.interactions_by_id: dict[str, Interaction] = {}
        self.interactions_by_token: dict[str, Interaction] = {}
        self.response_deadline = response_deadline
        self.token_lifetime = token_lifetime
        self.enforce_permissions = enforce_permissions
        self.nonce_window = nonce_window
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    # --- life cycle -------------------------------------------------------------------------

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        routes = [GuildRoutes(self), MessageRoutes(self), InteractionRoutes(self)]
        app = build_app(self, [r.register for r in routes])
        app.router.add_get("/gw", self.gateway.handle)
        self.app = app  # a fleet hands it requests directly (tests/fakes/discord/fleet.py)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{bound}"
        self.cdn_base = self.base_url
        self.gateway.url = f"ws://{host}:{bound}/gw"
        return self.base_url

    async def stop(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def run_in_thread(self, port: int = 0) -> Any:
        """Serve from a thread of its own (for sync code); returns a started FakeDiscordThread."""
        from .thread import FakeDiscordThread

        runner = FakeDiscordThread(fake=self)
        runner.start(port)
        return runner

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    @contextlib.contextmanager
    def routed(self) -> Iterator[None]:
        """Point interactions.py's REST base (Route.BASE) and CDN base (Asset.BASE) here."""
        from interactions.api.http.route import Route
        from interactions.models.discord.asset import Asset

        saved = Route.BASE, Asset.BASE
        Route.BASE, Asset.BASE = self.api_url, self.base_url
        try:
            yield
        finally:
            Route.BASE, Asset.BASE = saved

    # --- gateway ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.gateway.connected

    @property
    def ready_count(self) -> int:
        return self.gateway.ready_count

    @property
    def resume_count(self) -> int:
        return self.gateway.resume_count

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Wait until a gateway session is connected and got READY (or RESUMED)."""
        await self.wait_for(lambda: self.gateway.connected, timeout, "the bot's gateway session")

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close the bot's websocket with `code`; with 4000 the client reconnects and resumes."""
        await self.gateway.drop(code)

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: the client reconnects (to resume_gateway_url) and resumes."""
        self.gateway.request_reconnect()

    def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION: with resumable=False the client identifies again."""
        self.gateway.invalidate_session(resumable)

    # --- REST faults ------------------------------------------------------------------------

    def rate_limit_next(self, n: int = 1, retry_after: float = 0.2,
                        path_contains: str | None = None, global_: bool = False) -> None:
        """Answer the next `n` matching REST calls with 429 (retry_after seconds)."""
        self.rate_limiter.add(n, retry_after, path_contains, global_)

    def limit_rate(self, limit: int, window: float, *, path_contains: str | None = None,
                   global_: bool = False) -> None:
        """Keep a steady limit from now on: `limit` requests per `window` seconds per bucket
        (or for the whole bot with `global_`), answered with 429 and `retry_after` past it."""
        from .ratelimit import SteadyLimit

        self.rate_limiter.steady.append(SteadyLimit(limit, window, path_contains, global_))

    @property
    def rate_limited(self) -> list[Any]:
        return list(self.rate_limiter.hits)

    def lose_answer_next(self, n: int = 1, *, method: str | None = None,
                         path_contains: str | None = None) -> None:
        """Carry out the next `n` matching REST calls, then drop the connection instead of
        answering (a keep-alive closed under the request, a reset): did it happen or not?"""
        self.lost_answers.append({"remaining": n, "method": method,
                                  "path_contains": path_contains})

    def fail_next(self, n: int = 1, status: int = 500, *, code: int = 0,
                  message: str | None = None, path_contains: str | None = None) -> None:
        """Answer the next `n` matching REST calls with `status` and {"message", "code"}."""
        self.forced_failures.append(ForcedFailure(
            n, status, code, message or f"{status}: fake failure", path_contains))

    # --- what the bot did -------------------------------------------------------------------

    def calls_to(self, method: str | None = None,
                 path_contains: str | None = None) -> list[RestCall]:
        return [c for c in self.calls
                if (method is None or c.method == method.upper())
                and (path_contains is None or path_contains in c.path)]

    async def wait_for_message(self, channel: Ref | None = None, *, dm_user: Ref | None = None,
                               check: Callable[[dict[str, Any]], Any] | None = None,
                               timeout: float = 5.0) -> dict[str, Any]:
        """Wait for a message in a channel (or in the bot's DM with `dm_user`) that passes
        `check`; returns the newest such message."""
        if (channel is None) == (dm_user is None):
            raise ValueError("pass a channel or dm_user")

        def found() -> dict[str, Any] | None:
            messages = self.dm_messages(dm_user) if dm_user is not None \
                else self.messages(channel)
            for message in reversed(messages):
                if check is None or check(message):
                    return message
            return None

        where = f"DM of {ref(dm_user)}" if dm_user is not None else f"channel {ref(channel)}"
        return await self.wait_for(found, timeout, f"a message in {where}")
