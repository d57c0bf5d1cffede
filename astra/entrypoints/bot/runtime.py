"""Runs one instance's bot until SIGTERM/SIGINT: interactions.py client + Astra's extensions.

The bot is a client of its platform: it gets an `InstanceAPI` (over HTTP in a tenant runtime,
in process in tests and one-process development) and its bot token, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import inspect
import logging
import signal
import warnings
from collections.abc import Callable
from typing import Any

from astra.logs import get_logger
from astra.ports.instance_api import InstanceAPI

log = get_logger("astra.bot")

with warnings.catch_warnings():
    # interactions.py imports audioop (voice), deprecated on 3.11+; we use no voice.
    warnings.simplefilter("ignore", DeprecationWarning)
    import interactions
    from interactions.api.http.route import Route

from astra.adapters.chat.discord.context import BotContext  # noqa: E402
from astra.adapters.chat.discord.platform import DiscordChat  # noqa: E402
from astra.adapters.chat.discord.seller import SellerExtension  # noqa: E402
from astra.adapters.chat.discord.shop import ShopExtension  # noqa: E402
from astra.adapters.chat.discord.subscriptions import SubscriptionsExtension  # noqa: E402
from astra.adapters.chat.discord.worker import WorkerExtension  # noqa: E402
from astra.entrypoints.bot import log_forwarder  # noqa: E402


def _per_client(extension: type[interactions.Extension]) -> type[interactions.Extension]:
    """A subclass of `extension` with its own copies of the command objects.

    interactions.py binds a class's command objects to the first instance of the class (it
    replaces their callbacks with partials of that instance), so a second client in the same
    process (tests, benchmarks) would call the first one's extension. Copies keep each client's
    commands its own."""
    own = {}
    for name, value in inspect.getmembers(extension):
        if isinstance(value, interactions.BaseCommand):
            clone = copy.copy(value)
            if isinstance(clone.callback, functools.partial):
                clone.callback = clone.callback.func
            own[name] = clone
    return type(extension.__name__, (extension,), own)


# How long a stop waits for interaction handlers in progress (a PIX charge takes one gateway
# call through the platform); it stays inside Docker's 10 s stop timeout.
HANDLER_GRACE = 6.0


def pooled_cache_limits() -> dict[str, Any]:
    """Cache sizes for a bot that shares its process with many others (a pool): what it keeps
    of Discord's objects expires and is capped, and is fetched again when needed. A bot of
    Astra reads members, channels and messages by id from its interactions; it never needs
    the whole guild in memory."""
    from interactions.client.smart_cache import create_cache

    return {
        "message_cache": create_cache(60, 50, 25),
        "user_cache": create_cache(300, 200, 100),
        "member_cache": create_cache(300, 200, 100),
        "channel_cache": create_cache(600, 200, 100),
        "dm_channels": create_cache(300, 100, 50),
        "role_cache": create_cache(600, 200, 100),
    }


class InvalidToken(Exception):
    """Discord refused the bot token: restarting will not help."""


SETTINGS_AT_START_SECONDS = 5.0


class InstanceBot:
    """The client and extensions of one instance; `run()` until `stop` is set."""

    def __init__(
        self,
        api: InstanceAPI,
        token: str,
        *,
        discord_api_base: str,
        member_events: bool = False,
        bounded_caches: bool = False,
        **worker_options: Any,
    ) -> None:
        """`member_events`: ask for the GUILD_MEMBERS intent (privileged: the seller turns on
        "Server Members Intent" for the bot first) so a subscriber who rejoins gets the role
        back at once."""
        # interactions.py reads the REST base from this class attribute on every request: the
        # setting lets staging or a test server stand in for discord.com.
        Route.BASE = discord_api_base
        instance_id = api.instance_id
        self.instance_id = instance_id
        self.api = api
        self.client = interactions.Client(
            token=token,
            intents=interactions.Intents.GUILDS
            | (interactions.Intents.GUILD_MEMBERS if member_events else 0),
            sync_interactions=True,
            delete_unused_application_cmds=True,
            send_command_tracebacks=False,
            disable_dm_commands=True,
            logger=logging.getLogger("interactions"),
            **(pooled_cache_limits() if bounded_caches else {}),
        )
        self.chat = DiscordChat(self.client)
        self.ctx = BotContext(instance_id=instance_id, api=api, chat=self.chat)
        self.shop = _per_client(ShopExtension)(self.client, bot_ctx=self.ctx)
        self.seller = _per_client(SellerExtension)(self.client, bot_ctx=self.ctx)
        self.worker = _per_client(WorkerExtension)(self.client, bot_ctx=self.ctx, **worker_options)
        self.subscriptions = _per_client(SubscriptionsExtension)(self.client, bot_ctx=self.ctx)
        self.ready = asyncio.Event()
        self.client.listen(interactions.events.Ready)(self._on_ready)
        for event in (
            interactions.events.CommandError,
            interactions.events.ComponentError,
            interactions.events.ModalError,
        ):
            self.client.listen(event)(self._on_error)

    async def _on_ready(self, event: Any) -> None:
        self.ready.set()

    async def _on_error(self, event: Any) -> None:
        log.error(
            "bot.callback_error",
            instance=self.instance_id,
            error=repr(getattr(event, "error", event)),
        )

    async def run(
        self, stop: asyncio.Event, on_ready: Callable[[InstanceBot], None] | None = None
    ) -> None:
        runner = asyncio.create_task(self._start_client(), name=f"bot-{self.instance_id}")
        waiter = asyncio.create_task(stop.wait())
        ready = asyncio.create_task(self.ready.wait())
        try:
            # SIGTERM before READY must stop it too (a runtime stopped while connecting).
            done, _ = await asyncio.wait({runner, ready, waiter},
                                         return_when=asyncio.FIRST_COMPLETED)
            if ready in done and on_ready is not None:
                on_ready(self)
            await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if runner.done() and runner.exception() is not None:
                error = runner.exception()
                if isinstance(error, interactions.errors.LoginError):
                    await self.worker.report_error("invalid_token")
                    raise InvalidToken(str(error)) from None
                raise error  # type: ignore[misc]
        finally:
            await self.shutdown(runner)
            for task in (waiter, ready):
                task.cancel()

    async def _start_client(self) -> None:
        """`Client.astart()` without its last step: astart closes the REST session as soon as
        the gateway stops (`finally: await self.stop()`), which would cut the handlers a stop
        lets finish (their REST calls fail with "server disconnected"). `shutdown` closes the
        session itself, after the drain."""
        client = self.client
        await client.login(client.token)
        if client.async_startup_tasks:
            try:
                await asyncio.gather(*[
                    task[0](*task[1] if len(task) > 1 else [],
                            **task[2] if len(task) == 3 else {})
                    for task in client.async_startup_tasks
                ])
            except Exception as exc:
                client.dispatch(interactions.events.Error(source="async-extension-loader",
                                                          error=exc))
        await client._connection_state.start()

    async def shutdown(self, runner: asyncio.Task[Any] | None = None) -> None:
        # The gateway first: no new interactions arrive, and stopping the client while its
        # gateway loop still runs makes interactions.py spin at 100% CPU. The REST session
        # stays open until the handlers in progress are done.
        with contextlib.suppress(Exception):
            await self.client._connection_state.stop()
        _, left = await asyncio.gather(self.worker.stop(), self.ctx.drain(HANDLER_GRACE))
        if left:
            log.warning("bot.handlers_cut", instance=self.instance_id, handlers=left)
        with contextlib.suppress(Exception):
            await self.client.stop()
        with contextlib.suppress(Exception):
            await self.api.close()
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
        log.info("bot.stopped", instance=self.instance_id)


async def wants_member_events(api: InstanceAPI) -> bool:
    """Whether to ask Discord for member joins (the instance's `member_join_events`). Asked
    briefly: a platform that is still starting must not hold the bot back; joins are then asked
    for on the next start."""
    try:
        settings = await asyncio.wait_for(api.settings(), SETTINGS_AT_START_SECONDS)
    except Exception:
        return False
    return bool(settings.get("member_join_events"))


async def run_instance(api: InstanceAPI, token: str, *, discord_api_base: str) -> None:
    """`astra instance run`: the bot until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    log.info("bot.starting", instance=api.instance_id, api=discord_api_base)
    member_events = await wants_member_events(api)
    bot = InstanceBot(api, token, discord_api_base=discord_api_base, member_events=member_events)
    forwarder, detach = log_forwarder.install(api)
    flusher = asyncio.create_task(forwarder.run(stop), name="log-forwarder")
    try:
        await bot.run(stop)
    finally:
        detach()
        await forwarder.flush_once()  # what the stop itself had to say (before the API closes)
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        with contextlib.suppress(Exception):
            await api.close()
