"""`astra runtime`: run a pool of bots, and move every runtime to a new image."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from typing import Any

from astra.entrypoints.cli.console import ACTOR, EXIT_OK, CliError, container_from, require_instance

EXIT_NOTHING_TO_RUN = 1


def _pick(members: list[Any], wanted: list[str] | None) -> list[Any]:
    if wanted is None:
        return members
    by_id = {m.instance_id: m for m in members}
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise CliError(f"this runtime was given no token for: {', '.join(missing)}")
    return [by_id[i] for i in wanted]


def cmd_runtime_pool(args: argparse.Namespace) -> int:
    """Many instances' bots in one process.

    As a tenant runtime (ASTRA_TENANT=1, what the runtimes start): the members' tokens and
    runtime credentials come from ASTRA_POOL_MEMBERS, everything else through the platform's
    internal API (ASTRA_PLATFORM_URL), over one shared keep-alive session; no store is opened.
    Otherwise (development, on the platform's host) the named instances run on the
    platform's services in this process, with their stored tokens."""
    from astra.entrypoints.bot.pool import BotPool, Member, members_from_environment
    from astra.logs import add_secret, configure_logging
    from astra.ports.runtime import POOL_NAME_PATTERN, POOL_PREFIX
    from astra.settings import Settings

    wanted = [i.strip() for i in args.instances.split(",") if i.strip()] \
        if args.instances else None
    if args.pool is not None and not POOL_NAME_PATTERN.fullmatch(args.pool):
        raise CliError(f"invalid pool name {args.pool!r}")
    # The unit id the runtime adapters know it by (what its `pool.members` lines name).
    pool_id = f"{POOL_PREFIX}{args.pool or 'cli'}"
    environ = dict(os.environ)
    if getattr(args, "data_dir", None):
        environ["ASTRA_DATA_DIR"] = str(args.data_dir)
    settings = Settings.from_env(environ)
    session_box: dict[str, Any] = {}
    if settings.tenant:
        configure_logging(settings)
        if not settings.platform_url:
            raise CliError("a tenant runtime needs ASTRA_PLATFORM_URL")
        try:
            members = _pick(members_from_environment(environ.get("ASTRA_POOL_MEMBERS", "[]")),
                            wanted)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        from astra.adapters.instance_api.http import HttpInstanceAPI, shared_session

        for member in members:
            add_secret(member.token)
            add_secret(member.credential)

        def make_api(member: Member) -> Any:
            if "session" not in session_box:
                session_box["session"] = shared_session(limit=64)
            return HttpInstanceAPI(settings.platform_url, member.instance_id, member.credential,
                                   session=session_box["session"])
    else:
        if wanted is None:
            raise CliError("name the instances to run: --instances a,b,c")
        container = container_from(args)
        members = []
        for instance_id in wanted:
            require_instance(container, instance_id)
            token = container.instances().bot_token(instance_id) or ""
            if not token:
                raise CliError(f"instance {instance_id} has no bot token (astra instance "
                               "set-token)")
            add_secret(token)
            members.append(Member(instance_id, token, ""))
        from astra.adapters.instance_api.inprocess import InProcessInstanceAPI

        def make_api(member: Member) -> Any:
            return InProcessInstanceAPI(container, member.instance_id)
    if not members:
        raise CliError("no instance to run in this pool")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        pool = BotPool(pool_id, members, make_api=make_api,
                       discord_api_base=settings.discord_api_base,
                       restart_limit=settings.runtime_restart_limit)
        try:
            await pool.run(stop)
        finally:
            session = session_box.get("session")
            if session is not None:
                await session.close()

    asyncio.run(main())
    return EXIT_OK


def cmd_runtime_upgrade(args: argparse.Namespace) -> int:
    """Record the image every runtime runs; the runtime monitor of `astra serve` rolls the
    runtimes over to it (a Swarm service by rolling update, start-first)."""
    container = container_from(args)
    image = args.image.strip()
    if not image or len(image) > 255 or any(c.isspace() for c in image):
        raise CliError(f"invalid image reference {args.image!r}")
    from astra.domain.services.runtime_placement import set_runtime_image

    set_runtime_image(container.store(), container.clock(), image, actor=ACTOR)
    print(f"runtime image set to {image}; runtimes move to it at the monitor's next passes")
    return EXIT_OK


def cmd_runtime_mode(args: argparse.Namespace) -> int:
    """An instance's placement: in a pool, alone, or as the platform's setting says."""
    container = container_from(args)
    require_instance(container, args.id)
    from astra.domain.services.runtime_placement import set_instance_mode

    set_instance_mode(container.store(), container.clock(), args.id, args.mode, actor=ACTOR)
    print(f"instance {args.id}: runtime mode {args.mode}")
    return EXIT_OK


def register(sub: Any) -> None:
    runtime = sub.add_parser("runtime", help="bot runtimes: pools, placement, image upgrades")
    rsub = runtime.add_subparsers(dest="runtime_command", metavar="ACTION", required=True)
    p = rsub.add_parser("pool", help="run many instances' bots in one process (a pool)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--instances", metavar="A,B,C", help="the instances to run")
    group.add_argument("--pool", metavar="NAME",
                       help="the pool the platform assigned (its members are in this runtime's "
                            "environment)")
    p.set_defaults(func=cmd_runtime_pool)
    p = rsub.add_parser("upgrade", help="move every runtime to a new image (rolling)")
    p.add_argument("image", metavar="IMAGE")
    p.set_defaults(func=cmd_runtime_upgrade)
    p = rsub.add_parser("mode", help="run an instance in a pool, alone, or per the default")
    p.add_argument("id")
    p.add_argument("mode", choices=("pooled", "isolated", "default"))
    p.set_defaults(func=cmd_runtime_mode)
