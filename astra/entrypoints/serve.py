"""`astra serve`: the portal and the admin apps (and, as later issues add them, the workers) in
one process, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from astra.adapters.store.json.locks import ServeLock
from astra.container import Container
from astra.entrypoints.admin.app import create_admin_app
from astra.entrypoints.courier import Courier
from astra.entrypoints.portal.app import create_portal_app
from astra.entrypoints.workers import housekeeping_loop, monitor_loop, reconcile_loop
from astra.logs import get_logger
from astra.settings import Settings

log = get_logger("astra.serve")

# Requests still running at shutdown get this long to finish.
SHUTDOWN_GRACE_SECONDS = 10.0


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
    # Held until the end: a second serve on this data, or a restore moving it away, refuses.
    serve_lock = ServeLock(settings.data_dir)
    serve_lock.acquire()
    try:
        await _serve(container, stop=stop, on_ready=on_ready)
    finally:
        serve_lock.release()


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
        payments="sandbox" if settings.payments_sandbox else "mercadopago",
    )
    if container.gateway().simulated:
        log.warning(
            "payments.simulated",
            message="PAYMENTS ARE SIMULATED (sandbox): no money moves. Set "
            "MERCADOPAGO_ACCESS_TOKEN to take real PIX payments. Approve test charges with "
            "`astra payments approve CHARGE_ID`.",
        )

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass

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
        workers = [
            asyncio.create_task(housekeeping_loop(container, stop), name="housekeeping"),
            asyncio.create_task(reconcile_loop(container, stop), name="reconcile"),
            asyncio.create_task(monitor_loop(container, stop), name="monitor"),
            asyncio.create_task(Courier(container).run(stop), name="courier"),
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
        await asyncio.to_thread(store.close)
        log.info("serve.stopped")
