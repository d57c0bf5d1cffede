"""`astra instance`: create and list seller instances, give them a bot token, run their bot."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

from astra.entrypoints.cli.console import (
    ACTOR,
    EXIT_OK,
    CliError,
    add_json_flag,
    container_from,
    print_json,
    print_table,
    require_instance,
)

if TYPE_CHECKING:  # imported lazily at run time: keeps --help fast
    from astra.container import Container


def _find_or_create_user(
    container: Container, email: str, *, create: bool
) -> tuple[dict[str, Any], bool]:
    """The portal user with this e-mail, or (with `create`) a minimal new one that sets a
    password later. Without `create` an unknown e-mail is refused: a typo must not quietly give
    a shop to a user nobody can log in as."""
    from astra.domain.ids import new_id
    from astra.domain.timestamps import iso

    wanted = email.strip().lower()
    if (
        not wanted
        or len(wanted) > 254
        or any(c.isspace() for c in wanted)
        or wanted.count("@") != 1
        or not all(wanted.split("@"))
    ):
        raise CliError(f"invalid e-mail address: {email!r}")
    with container.store().portal() as uow:
        for user in uow.users.all():
            if str(user.get("email", "")).lower() == wanted:
                return user, False
        if not create:
            raise CliError(
                f"no portal user has the e-mail {wanted!r}; check it, or pass --create-owner "
                "to create that user (it sets a password through the portal later)"
            )
        user = {
            "id": new_id("usr"),
            "email": wanted,
            "name": "",
            "role": "customer",
            "created_at": iso(container.clock().now()),
            "password_hash": None,
            "plan": None,
        }
        uow.users.add(user)
        uow.commit()
    return user, True


def cmd_instance_create(args: argparse.Namespace) -> int:
    from astra.ports.store import INSTANCE_ID_PATTERN

    container = container_from(args)
    # Checked before a user is created, so a typo in the id leaves nothing behind.
    if not INSTANCE_ID_PATTERN.fullmatch(args.id):
        raise CliError(
            f"invalid instance id {args.id!r}: 3-40 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    with container.store().portal(write=False) as uow:
        if uow.instances.get(args.id) is not None:
            raise CliError(f"instance {args.id!r} already exists")
    if not 1 <= len(args.name.strip()) <= 80:
        raise CliError("--name must have 1 to 80 characters")
    user, created = _find_or_create_user(
        container, args.owner_email, create=args.create_owner
    )
    doc = container.instances().create(args.id, owner_id=user["id"], name=args.name, actor=ACTOR)
    owner = f"{user['email']} ({user['id']}{', new user' if created else ''})"
    print(f'created instance {doc["id"]} "{doc["name"]}", owner {owner}')
    return EXIT_OK


def cmd_instance_list(args: argparse.Namespace) -> int:
    container = container_from(args)
    with container.store().portal(write=False) as uow:
        instances = uow.instances.all()
        emails = {u["id"]: u.get("email") for u in uow.users.all()}
    rows = [
        {
            "id": d["id"],
            "name": d.get("name"),
            "owner_id": d.get("owner_id"),
            "owner_email": emails.get(d.get("owner_id")),
            "status": d.get("status"),
            "status_reason": d.get("status_reason"),
            "runtime_pool": d.get("runtime_pool"),
            "runtime_mode": d.get("runtime_mode"),
            "created_at": d.get("created_at"),
        }
        for d in instances
    ]
    if args.json:
        print_json(rows)
    elif not rows:
        print("no instances")
    else:
        print_table(
            ("ID", "NAME", "OWNER", "STATUS", "RUNS IN", "CREATED"),
            [
                (
                    r["id"],
                    r["name"],
                    r["owner_email"] or r["owner_id"],
                    r["status"],
                    r["runtime_pool"] or "alone",
                    r["created_at"],
                )
                for r in rows
            ],
        )
    return EXIT_OK


def cmd_instance_set_token(args: argparse.Namespace) -> int:
    """The token comes from ASTRA_BOT_TOKEN or standard input, never from the command line
    (where `ps` and shell history would keep it)."""
    from astra.adapters.chat.discord.token import fetch_bot_profile
    from astra.ports.chat import ChatError

    container = container_from(args)
    require_instance(container, args.id)
    token = os.environ.get("ASTRA_BOT_TOKEN") or sys.stdin.readline()
    token = token.strip()
    if not token:
        raise CliError("give the bot token on standard input or in ASTRA_BOT_TOKEN")
    try:
        profile = asyncio.run(fetch_bot_profile(token, container.settings().discord_api_base))
    except ChatError as exc:
        raise CliError(f"Discord refused the token: {exc}") from None
    container.instances().set_bot_token(args.id, token, profile, actor="cli")
    print(f"token set for {args.id}: bot {profile.get('username')} ({profile.get('id')})")
    return EXIT_OK


def cmd_instance_rotate_key(args: argparse.Namespace) -> int:
    container = container_from(args)
    require_instance(container, args.id)
    key = container.instances().rotate_instance_key(args.id, actor="cli")
    print(key)
    print("this key is shown once; the previous one no longer works", file=sys.stderr)
    return EXIT_OK


def cmd_instance_state(args: argparse.Namespace) -> int:
    """Start, stop or restart an instance's bot: recorded now, carried out by the runtime
    monitor of `astra serve` within seconds."""
    container = container_from(args)
    require_instance(container, args.id)
    state = {"start": "running", "stop": "stopped", "restart": "restart"}[args.action]
    container.instances().set_desired_state(args.id, state, actor="cli")
    print(f"instance {args.id}: {args.action} requested")
    return EXIT_OK


EXIT_INVALID_TOKEN = 3  # known to the runtimes: do not restart


def cmd_instance_run(args: argparse.Namespace) -> int:
    """One instance's bot.

    As a tenant runtime (ASTRA_TENANT=1, what the process and Docker runtimes start): the token
    comes from ASTRA_BOT_TOKEN and everything else through the platform's internal API
    (ASTRA_PLATFORM_URL, with the runtime credential ASTRA_INSTANCE_KEY); no store is opened, no
    data directory is needed. Otherwise (development, on the platform's own host) the bot runs
    on the platform's services in this process, with the instance's stored token."""
    from astra.entrypoints.bot.runtime import InvalidToken, run_instance
    from astra.logs import add_secret, configure_logging
    from astra.settings import Settings

    environ = dict(os.environ)
    if getattr(args, "data_dir", None):
        environ["ASTRA_DATA_DIR"] = str(args.data_dir)
    settings = Settings.from_env(environ)
    token = environ.get("ASTRA_BOT_TOKEN", "").strip()
    if settings.tenant:
        configure_logging(settings)
        if not token:
            raise CliError(f"instance {args.id}: no bot token was given to this runtime")
        if settings.instance_id and settings.instance_id != args.id:
            raise CliError(f"this runtime belongs to instance {settings.instance_id}")
        if not settings.platform_url or not settings.instance_key:
            raise CliError("a tenant runtime needs ASTRA_PLATFORM_URL and ASTRA_INSTANCE_KEY")
        from astra.adapters.instance_api.http import HttpInstanceAPI

        add_secret(token)
        add_secret(settings.instance_key)
        api: Any = HttpInstanceAPI(settings.platform_url, args.id, settings.instance_key)
    else:
        container = container_from(args)
        require_instance(container, args.id)
        token = token or container.instances().bot_token(args.id) or ""
        if not token:
            raise CliError(f"instance {args.id} has no bot token (astra instance set-token)")
        add_secret(token)
        # Its own data must read cleanly before the bot takes a single order (a damaged file
        # stops it here, naming the file).
        with container.store().instance(args.id, write=False):
            pass
        from astra.adapters.instance_api.inprocess import InProcessInstanceAPI

        api = InProcessInstanceAPI(container, args.id)
    try:
        asyncio.run(run_instance(api, token, discord_api_base=settings.discord_api_base))
    except InvalidToken:
        # A distinct exit code: the supervisor must not restart a bot Discord refuses.
        print(f"astra: Discord refused the bot token of instance {args.id}", file=sys.stderr)
        return EXIT_INVALID_TOKEN
    return EXIT_OK


def register(sub: Any) -> None:
    instance = sub.add_parser("instance", help="create and list seller instances (bots)")
    isub = instance.add_subparsers(dest="instance_command", metavar="ACTION", required=True)
    p = isub.add_parser("create", help="create an instance owned by a portal user")
    p.add_argument("id", metavar="ID", help="instance id: 3-40 of a-z, 0-9, '-'")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument(
        "--owner-email",
        required=True,
        metavar="EMAIL",
        help="owner's portal e-mail (an existing user, unless --create-owner)",
    )
    p.add_argument(
        "--create-owner",
        action="store_true",
        help="create the owner's portal user when no user has that e-mail",
    )
    p.set_defaults(func=cmd_instance_create)
    p = isub.add_parser(
        "set-token",
        help="store a bot token (read from stdin or ASTRA_BOT_TOKEN), checked against Discord",
    )
    p.add_argument("id")
    p.set_defaults(func=cmd_instance_set_token)
    p = isub.add_parser("rotate-key", help="print a new instance key (shown once)")
    p.add_argument("id")
    p.set_defaults(func=cmd_instance_rotate_key)
    p = isub.add_parser("run", help="run one instance's Discord bot (what its runtime runs)")
    p.add_argument("id")
    p.set_defaults(func=cmd_instance_run)
    for action, text in (
        ("start", "start the bot (the monitor of astra serve runs it)"),
        ("stop", "stop the bot and keep it stopped"),
        ("restart", "restart the bot"),
    ):
        p = isub.add_parser(action, help=text)
        p.add_argument("id")
        p.set_defaults(func=cmd_instance_state, action=action)
    p = isub.add_parser("list", help="every instance with its owner and status")
    add_json_flag(p)
    p.set_defaults(func=cmd_instance_list)
