"""`astra serve`: the portal, the admin panel, the internal API and the workers in one process,
until SIGINT or SIGTERM.

Three listeners. The portal and the admin panel bind ASTRA_HOST (127.0.0.1 by default). The
internal API, the only thing instance runtimes call, binds its own address: with the Docker
runtime the runtime network's gateway (the one host address a bot container can route to), with
the process runtime 127.0.0.1, or ASTRA_INTERNAL_HOST when set; runtimes are pointed at it
(ASTRA_PLATFORM_URL, unless set). With the Docker runtime, the portal and the admin panel must
stay on loopback: a bridge container cannot reach the host's loopback, but it can reach every
other host address through its gateway, so any other ASTRA_HOST is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from dependency_injector import providers

from astra.adapters.store.json.locks import ServeLock
from astra.container import Container
from astra.entrypoints.admin.app import create_admin_app
from astra.entrypoints.courier import Courier
from astra.entrypoints.internal.app import create_internal_app
from astra.entrypoints.leadership import Leadership
from astra.entrypoints.notifier import Notifier
from astra.entrypoints.portal.app import create_portal_app
from astra.entrypoints.stock_importer import stock_importer_loop
from astra.entrypoints.subscription_keeper import SubscriptionKeeper
from astra.entrypoints.webhook_sender import webhook_sender_loop
from astra.entrypoints.workers import housekeeping_loop, monitor_loop, reconcile_loop
from astra.logs import get_logger
from astra.ports.runtime import RuntimeFailure, RuntimeUnavailable
from astra.settings import Settings, SettingsError

log = get_logger("astra.serve")

# Requests still running at shutdown get this long to finish.
SHUTDOWN_GRACE_SECONDS = 10.0
# Threads for store calls: on PostgreSQL the store's pool holds 20 connections, and a few more
# threads than that let calls that need no connection (gateway, Discord) go on meanwhile.
STORE_THREADS = 24
# With the Docker engine down at start-up, how often to try again to bind the runtime network.
GATEWAY_RETRY_SECONDS = 5.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class InternalListener:
    """The internal API's listener, on the address runtimes can reach."""

    def __init__(self, container: Container, runner: web.AppRunner) -> None:
        self.container = container
        self.runner = runner
        self.settings = container.settings()
        self.runtime: Any = container.runtime()
        self.port = self.settings.internal_port
        self.bound = False

    @property
    def docker(self) -> bool:
        return hasattr(self.runtime, "network_gateway")

    async def host(self) -> str:
        """Raises RuntimeUnavailable/RuntimeFailure while the runtime network cannot be made."""
        if self.settings.internal_host:
            return self.settings.internal_host
        if self.docker:
            return await asyncio.to_thread(self.runtime.network_gateway)
        return "127.0.0.1"

    async def bind(self) -> bool:
        try:
            host = await self.host()
        except (RuntimeUnavailable, RuntimeFailure) as exc:
            log.error("serve.internal_unbound", reason=str(exc),
                      message="instance runtimes cannot reach the platform until the runtime "
                      "network is ready; retrying")
            return False
        site = web.TCPSite(self.runner, host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        url = _url(host, self.port)
        self.container.internal_endpoint().url = url
        self.bound = True
        log.info("serve.listening", service="internal", url=url,
                 runtimes_use=self.settings.platform_url or url)
        return True

    async def keep_trying(self, stop: asyncio.Event) -> None:
        while not self.bound and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), GATEWAY_RETRY_SECONDS)
            except TimeoutError:
                await self.bind()


def _show_admin_login(settings: Settings, admin_port: int) -> None:
    """How to open the admin panel in a browser, on the terminal and not in the logs (which
    redact secrets). A generated password is shown this once; later starts say where it is."""
    if "admin_password" not in settings.dev_secrets:
        return
    url = f"http://{settings.host}:{admin_port}/admin/login"
    where = f"{settings.dev_secrets_path} (ADMIN_PANEL_PASSWORD)"
    if "admin_password" in settings.generated_secrets:
        lines = [
            f"Admin panel: {url}",
            f"  user: {settings.admin_user}",
            f"  password: {settings.admin_password}",
            f"  This password was just generated and is shown only now; it is kept in {where}.",
            "  Set ADMIN_PANEL_PASSWORD to choose your own (production requires it).",
        ]
    else:
        lines = [f"Admin panel: {url} (user {settings.admin_user}; password in {where})"]
    print("\n".join(lines), file=sys.stderr, flush=True)


async def serve(
    container: Container,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[dict[str, int]], None] | None = None,
) -> None:
    settings = container.settings()
    if settings.database_url:
        # Replicas on one database are the point: the data is the database's, not this
        # directory's, and what replicas must not do twice is guarded by leader leases.
        await _serve(container, stop=stop, on_ready=on_ready)
        return
    # Held until the end: a second serve on this data, or a restore moving it away, refuses.
    serve_lock = ServeLock(settings.data_dir)
    serve_lock.acquire()
    try:
        await _serve(container, stop=stop, on_ready=on_ready)
    finally:
        serve_lock.release()


def led_loops(container: Container) -> Leadership:
    """The loops that run on one replica at a time, by lease name. The courier is one of them:
    a courier that starts frees the delivery leases other holders left, which is only right
    when no other courier is running."""
    return Leadership(container.coordination().leases, {
        "housekeeping": lambda stop: housekeeping_loop(container, stop),
        "reconcile": lambda stop: reconcile_loop(container, stop),
        "monitor": lambda stop: monitor_loop(container, stop),
        "courier": lambda stop: Courier(container).run(stop),
        "subscriptions": lambda stop: SubscriptionKeeper(container).run(stop),
        "webhook-sender": lambda stop: webhook_sender_loop(container, stop),
        "notifier": lambda stop: Notifier(container).run(stop),
        "stock-importer": lambda stop: stock_importer_loop(container, stop),
    })


async def _serve(
    container: Container,
    *,
    stop: asyncio.Event | None,
    on_ready: Callable[[dict[str, int]], None] | None,
) -> None:
    settings = container.settings()
    store = container.store()
    # Load every domain first. A damaged portal file stops start-up here, naming the file; a
    # damaged instance is quarantined (left untouched, its bot stopped, shown as error/damaged
    # by the runtime monitor, Diagnóstico and `astra doctor`) and everyone else is served.
    damaged = await asyncio.to_thread(store.open, quarantine=True)
    for instance_id, problem in damaged.items():
        log.error("serve.instance_quarantined", instance=instance_id, file=problem.path,
                  problem=problem.problem)
    log.info(
        "serve.starting",
        mode=settings.mode,
        data_dir=str(settings.data_dir.resolve()),
        store="postgresql" if settings.database_url else "json",
        payments="sandbox" if settings.payments_sandbox else "mercadopago",
        coordination=container.coordination().name,
    )
    if container.gateway().simulated:
        log.warning(
            "payments.simulated",
            message="PAYMENTS ARE SIMULATED (sandbox): no money moves. Set "
            "MERCADOPAGO_ACCESS_TOKEN (and unset ASTRA_PAYMENTS=sandbox) to take real PIX "
            "payments. Approve test charges with `astra payments approve CHARGE_ID`"
            + (" (the portal's sandbox checkout pages are off in production)."
               if settings.is_production else "."),
        )

    if container.runtime().name == "docker" and not _is_loopback(settings.host):
        # A bot container routes to every host address but loopback: on any other address the
        # portal and the admin panel would be one request away from every tenant.
        raise SettingsError([
            f"ASTRA_HOST={settings.host} would let instance containers reach the portal and the "
            "admin panel: with the Docker runtime they listen on 127.0.0.1 (put a reverse proxy "
            "in front of the portal); only the internal API listens where containers reach it"
        ])

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    # Store calls run in threads (the port is sync). On PostgreSQL they mostly wait on the
    # network, so asyncio's default of cpu + 4 threads (6 on two cores) left the process idle
    # while requests queued; the store's connection pool bounds them instead. On either store,
    # a held instance keeps a few threads waiting for its lock (its request turns and one lane
    # per loop): six would leave the other sellers none.
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="astra-io")
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass

    leadership = led_loops(container)
    container.leadership.override(providers.Object(leadership))
    runners: list[web.AppRunner] = []
    ports: dict[str, int] = {}
    try:
        for name, app, port in (
            ("portal", create_portal_app(container), settings.portal_port),
            ("admin", create_admin_app(container), settings.admin_port),
        ):
            runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, settings.host, port)
            await site.start()
            bound = runner.addresses[0][1] if runner.addresses else port
            ports[name] = bound
            log.info("serve.listening", service=name, url=f"http://{settings.host}:{bound}")
        internal_runner = web.AppRunner(
            create_internal_app(container), shutdown_timeout=SHUTDOWN_GRACE_SECONDS
        )
        await internal_runner.setup()
        runners.append(internal_runner)
        internal = InternalListener(container, internal_runner)
        if await internal.bind():
            ports["internal"] = internal.port
        workers = [
            asyncio.create_task(internal.keep_trying(stop), name="internal-listener"),
            asyncio.create_task(leadership.run(stop), name="leadership"),
        ]
        _show_admin_login(settings, ports["admin"])
        if on_ready is not None:
            on_ready(ports)
        await stop.wait()
        log.info("serve.stopping")
        await asyncio.gather(*workers, return_exceptions=True)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        container.leadership.reset_override()
        await asyncio.to_thread(container.coordination().close)
        await asyncio.to_thread(store.close)
        log.info("serve.stopped")
