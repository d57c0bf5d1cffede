"""Many bots' Discord at one address: what a pool of bots (one REST base for all, as with
discord.com) talks to in tests and benchmarks.

Each bot is a `FakeDiscord` of its own (one application, one bot user, its own gateway); the
fleet's front server takes every REST call at one base URL and hands it to the fake it belongs
to, the way Discord tells applications apart:
- by the bot token in `Authorization: Bot <token>` (most routes, and GET /gateway, whose answer
  is that bot's own gateway URL, so the websocket goes straight to its fake);
- without a token, by the application id of `/webhooks/{application.id}/{token}/...`, or by
  the interaction id of `/interactions/{id}/{token}/callback`.
A token no fake knows gets Discord's 401 ({"message": "401: Unauthorized", "code": 0}).

    fleet = FakeDiscordFleet()
    await fleet.start()
    one = await fleet.add_bot()            # a started FakeDiscord; one.bot_token
    ...                                     # Route.BASE = fleet.api_url for every client
    await fleet.stop()
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from aiohttp import web

from .fake import FakeDiscord

API = "/api/v10"
_WEBHOOK = re.compile(r"^/webhooks/(\d+)/")
_INTERACTION = re.compile(r"^/interactions/(\d+)/")
# Application ids far from the ones a lone FakeDiscord picks, one per bot of the fleet.
_FIRST_APPLICATION = 1_100_000_000_000_000_000


def fleet_token(application_id: str) -> str:
    """A token shaped like Discord's: the bot id in base64, a timestamp part, an HMAC part."""
    head = base64.b64encode(application_id.encode()).decode().rstrip("=")
    return f"{head}.Fleet0.{secrets.token_urlsafe(27)}"


class FakeDiscordFleet:
    def __init__(self, **fake_options: Any) -> None:
        self.fake_options = fake_options
        self.fakes: list[FakeDiscord] = []
        self._by_token: dict[str, FakeDiscord] = {}
        self._by_application: dict[str, FakeDiscord] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.host = "127.0.0.1"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}{API}"

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        app = web.Application(client_max_size=26 * 1024 * 1024)
        app.router.add_route("*", API + "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.host = host  # each bot's fake (its gateway too) listens there as well
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def add_bot(self, **options: Any) -> FakeDiscord:
        """A new bot (application) in the fleet, started; its token is `fake.bot_token`."""
        application_id = str(_FIRST_APPLICATION + len(self.fakes))
        fake = FakeDiscord(bot_token=fleet_token(application_id),
                           application_id=application_id, **{**self.fake_options, **options})
        await fake.start(host=self.host)
        self.fakes.append(fake)
        self._by_token[fake.bot_token] = fake
        self._by_application[application_id] = fake
        return fake

    async def stop(self) -> None:
        for fake in self.fakes:
            await fake.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _fake_for(self, request: web.Request, path: str) -> FakeDiscord | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bot "):
            return self._by_token.get(auth[4:])
        if match := _WEBHOOK.match(path):
            return self._by_application.get(match[1])
        if match := _INTERACTION.match(path):
            for fake in self.fakes:
                if match[1] in fake.interactions_by_id:
                    return fake
        return None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len(API):]
        fake = self._fake_for(request, path)
        if fake is None:
            return web.Response(status=401, body=b'{"message": "401: Unauthorized", "code": 0}',
                                headers={"Content-Type": "application/json"})
        # Handed to the bot's fake in this process, not through a second HTTP hop: the fleet
        # stands for Discord, which costs a benchmark's machine nothing, so the fake should
        # cost it as little as it can (the hop was about 8% of bench/pool.py's main process).
        return await fake.app._handle(request)
