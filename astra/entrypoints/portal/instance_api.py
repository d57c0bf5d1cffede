"""Seller API: the seller's instances — create, rename, delete, bot token, bot start/stop,
instance key, live status, invite link.

A bot token is checked against Discord before it is kept, stored encrypted by InstanceService,
and never sent back: responses carry `has_token` and the bot's public profile only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from astra.adapters.chat.discord.rest import INVITE_PERMISSIONS, invite_url
from astra.adapters.chat.discord.token import fetch_bot_profile
from astra.domain.services.audit_log import record
from astra.domain.services.instances import SETTINGS_ID, public_instance
from astra.domain.timestamps import iso
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.reauth import sensitive_route
from astra.entrypoints.portal.seller_api import (
    ApiError,
    actor,
    blocking,
    container_of,
    owned_instance,
    read_body,
    respond,
    seller_route,
    user_id,
)
from astra.ports.chat import ChatError, InvalidBotToken
from astra.ports.runtime import RuntimeFailure, RuntimeUnavailable

LOG_LINES = 50


# -- what InstanceService does not do (yet): list by owner, rename, delete ------------------------


def _owned(container: Any, owner_id: str) -> list[dict[str, Any]]:
    with container.store().portal(write=False) as uow:
        docs = [d for d in uow.instances.all() if d.get("owner_id") == owner_id]
    return [public_instance(d) for d in docs if not d.get("deleted_at")]


def _rename(container: Any, instance_id: str, name: str, *, who: str) -> None:
    now = container.clock().now()
    # The instance's own settings carry the name too: its bot shows it to buyers ({loja}).
    with container.store().instance(instance_id) as uow:
        settings = uow.settings.get(SETTINGS_ID)
        if settings is not None:
            settings["name"] = name
            uow.settings.put(settings)
            uow.commit()
    with container.store().portal() as uow:
        doc = uow.instances.require(instance_id)
        doc["name"] = name
        uow.instances.put(doc)
        record(uow, at=now, actor=who, action="instance.renamed", target=f"instance:{instance_id}")
        uow.commit()


def _mark_deleted(container: Any, instance_id: str, *, who: str) -> None:
    """Stopped, hidden and its token forgotten (so the bot can serve a new instance); its
    store, orders and audit stay on disk, and the id stays taken."""
    now = container.clock().now()
    with container.store().portal() as uow:
        doc = uow.instances.require(instance_id)
        doc.update(
            deleted_at=iso(now),
            desired_state="stopped",
            token_encrypted=None,
            token_hash=None,
            bot_profile=None,
            token_set_at=None,
        )
        uow.instances.put(doc)
        record(uow, at=now, actor=who, action="instance.deleted", target=f"instance:{instance_id}")
        uow.commit()


def _token_in_use(container: Any, token: str, instance_id: str | None) -> bool:
    # The same fingerprint InstanceService.set_bot_token keys tokens by; checked before an
    # instance is created so a refused token leaves nothing behind.
    token_hash = container.hasher().fingerprint(f"bot-token:{token}")
    with container.store().portal(write=False) as uow:
        other = uow.instances.first(token_hash=token_hash)
    return other is not None and other["id"] != instance_id


def _remove_runtime(container: Any, instance_id: str) -> None:
    try:
        container.runtime().remove(instance_id)
    except (RuntimeUnavailable, RuntimeFailure):
        pass  # the monitor removes it on its next pass


# -- checks ------------------------------------------------------------------------------------


async def require_active_plan(request: web.Request) -> None:
    plan = await blocking(container_of(request).plans().status, user_id(request))
    if plan["active"]:
        return
    if plan["trial_used"] or plan["kind"] != "none":
        message = "Seu plano expirou. Renove o plano para criar e ligar bots."
    else:
        message = (
            "Você precisa de um plano ativo para isso. Comece o teste grátis ou assine um plano."
        )
    raise ApiError(402, "plan_required", message)


def _clean_token(raw: str) -> str:
    token = raw.strip()
    if not token or len(token) > 200 or any(c.isspace() or ord(c) < 32 for c in token):
        raise ApiError(422, "invalid_bot_token", "Token do bot inválido.")
    return token


async def checked_bot_profile(request: web.Request, token: str) -> dict[str, Any]:
    """The bot behind `token` as Discord tells it: 422 if Discord refuses it, 502 if Discord
    cannot be reached."""
    settings = container_of(request).settings()
    try:
        return await fetch_bot_profile(token, settings.discord_api_base)
    except InvalidBotToken:
        raise ApiError(
            422,
            "invalid_bot_token",
            "O Discord recusou este token. Copie o token do bot no Discord Developer Portal "
            "(Bot > Reset Token) e tente de novo.",
        ) from None
    except (ChatError, TimeoutError, ValueError, KeyError, TypeError):
        raise ApiError(
            502,
            "discord_unavailable",
            "Não foi possível falar com o Discord agora. Tente novamente em instantes.",
        ) from None


async def _store_token(request: web.Request, instance_id: str, token: str) -> dict[str, Any]:
    container = container_of(request)
    profile = await checked_bot_profile(request, token)
    if await blocking(_token_in_use, container, token, instance_id):
        raise ApiError(409, "bot_token_in_use", "Este bot já está ligado a outra instância.")
    return await blocking(
        container.instances().set_bot_token, instance_id, token, profile, actor=actor(request)
    )


async def _with_settings(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    settings = await blocking(container_of(request).instances().settings, doc["id"])
    return {**doc, "settings": settings}


# -- routes ------------------------------------------------------------------------------------


@seller_route(response=schemas.INSTANCE_LIST)
async def list_instances(request: web.Request) -> web.Response:
    """Your instances (bots)."""
    docs = await blocking(_owned, container_of(request), user_id(request))
    return respond({"instances": docs})


@seller_route(
    body=schemas.INSTANCE_CREATE, response=schemas.INSTANCE, status=201, errors=(402, 409, 502)
)
async def create_instance(request: web.Request) -> web.Response:
    """Create an instance (needs an active plan or trial); the bot token may come now or later."""
    await require_active_plan(request)
    body = await read_body(request)
    container = container_of(request)
    token = _clean_token(body["bot_token"]) if body.get("bot_token") else None
    profile = await checked_bot_profile(request, token) if token else None
    if token and await blocking(_token_in_use, container, token, None):
        raise ApiError(409, "bot_token_in_use", "Este bot já está ligado a outra instância.")
    # One call that creates the instance with its token, or refuses and leaves nothing.
    doc = public_instance(
        await blocking(
            container.instances().create,
            body["id"],
            owner_id=user_id(request),
            name=body["name"],
            actor=actor(request),
            token=token,
            profile=profile,
            # The cap of the seller's plan (the trial allows fewer): 409 instance_limit.
            max_per_owner=await blocking(container.plans().instance_cap, user_id(request)),
        )
    )
    return respond(await _with_settings(request, doc), status=201)


@seller_route(response=schemas.INSTANCE)
async def get_instance(request: web.Request) -> web.Response:
    """One instance, with its settings."""
    doc = await owned_instance(request)
    return respond(await _with_settings(request, doc))


@seller_route(body=schemas.INSTANCE_UPDATE, response=schemas.INSTANCE)
async def update_instance(request: web.Request) -> web.Response:
    """Rename an instance and/or change its settings (language, cart time, channels)."""
    doc = await owned_instance(request)
    body = await read_body(request)
    container = container_of(request)
    name = body["name"].strip() if "name" in body else None
    if name == "":
        raise ApiError(422, "invalid_field", "Campo inválido: name.")
    if "settings" in body:
        await blocking(
            container.instances().update_settings, doc["id"], body["settings"], actor=actor(request)
        )
    if name is not None:
        await blocking(_rename, container, doc["id"], name, who=actor(request))
    doc = await blocking(container.instances().get, doc["id"])
    return respond(await _with_settings(request, doc))


@seller_route()
async def delete_instance(request: web.Request) -> web.Response:
    """Delete an instance: its bot stops and it leaves your list; its data is kept."""
    doc = await owned_instance(request)
    container = container_of(request)
    await blocking(_mark_deleted, container, doc["id"], who=actor(request))
    await blocking(_remove_runtime, container, doc["id"])
    return respond({"id": doc["id"], "deleted": True})


@sensitive_route(body=schemas.BOT_TOKEN, response=schemas.INSTANCE, errors=(409, 502))
async def set_bot_token(request: web.Request) -> web.Response:
    """Set the bot token: checked with Discord, stored encrypted, never shown again.

    The bot is the one that delivers the keys by DM (and can read those DMs), so choosing it
    needs the session and your current password (`password`); API tokens are refused.
    """
    doc = await owned_instance(request)
    body = await read_body(request)
    updated = await _store_token(request, doc["id"], _clean_token(body["token"]))
    return respond(updated)


@sensitive_route(response=schemas.INSTANCE)
async def clear_bot_token(request: web.Request) -> web.Response:
    """Forget the bot token (the bot stops).

    Needs the session and your current password (`password`); API tokens are refused.
    """
    doc = await owned_instance(request)
    updated = await blocking(
        container_of(request).instances().clear_bot_token, doc["id"], actor=actor(request)
    )
    return respond(updated)


async def _desired(request: web.Request, state: str) -> web.Response:
    doc = await owned_instance(request)
    if state != "stopped":
        await require_active_plan(request)
        if not doc.get("has_token"):
            raise ApiError(409, "bot_token_missing", "Cadastre o token do bot antes de ligá-lo.")
    updated = await blocking(
        container_of(request).instances().set_desired_state,
        doc["id"],
        state,
        actor=actor(request),
    )
    return respond(updated)


@seller_route(response=schemas.INSTANCE, errors=(402, 409))
async def start_bot(request: web.Request) -> web.Response:
    """Start the bot (the runtime monitor brings it online in a few seconds)."""
    return await _desired(request, "running")


@seller_route(response=schemas.INSTANCE)
async def stop_bot(request: web.Request) -> web.Response:
    """Stop the bot."""
    return await _desired(request, "stopped")


@seller_route(response=schemas.INSTANCE, errors=(402, 409))
async def restart_bot(request: web.Request) -> web.Response:
    """Restart the bot."""
    return await _desired(request, "restart")


@sensitive_route(response=schemas.INSTANCE_KEY)
async def rotate_key(request: web.Request) -> web.Response:
    """A new instance key, shown only in this answer (the old one stops working).

    Needs the session and your current password (`password`); API tokens are refused.
    """
    doc = await owned_instance(request)
    key = await blocking(
        container_of(request).instances().rotate_instance_key, doc["id"], actor=actor(request)
    )
    return respond(
        {
            "key": key,
            "message": "Guarde esta chave agora: ela não será mostrada de novo.",
        }
    )


def _logs(container: Any, instance_id: str) -> list[str] | None:
    try:
        return container.runtime().logs(instance_id, LOG_LINES)
    except (RuntimeUnavailable, RuntimeFailure):
        return None


@seller_route(response=schemas.INSTANCE_STATUS)
async def instance_status(request: web.Request) -> web.Response:
    """The bot's live status, why, and the last lines of its log."""
    doc = await owned_instance(request)
    logs = await blocking(_logs, container_of(request), doc["id"])
    return respond(
        {
            "status": doc.get("status") or "offline",
            "reason": doc.get("status_reason"),
            "status_at": doc.get("status_at"),
            "desired_state": doc.get("desired_state") or "running",
            "has_token": doc.get("has_token", False),
            "logs": logs or [],
            "logs_available": logs is not None,
        }
    )


@seller_route(response=schemas.INVITE, errors=(409,))
async def invite(request: web.Request) -> web.Response:
    """The link that adds your bot to a Discord server with the permissions it needs."""
    doc = await owned_instance(request)
    profile = doc.get("bot_profile") or {}
    application_id = profile.get("application_id") or profile.get("id")
    if not application_id:
        raise ApiError(409, "bot_token_missing", "Cadastre o token do bot para gerar o convite.")
    settings = container_of(request).settings()
    return respond(
        {
            "url": invite_url(str(application_id), oauth_base=settings.discord_oauth_base),
            "application_id": str(application_id),
            "permissions": str(INVITE_PERMISSIONS),
        }
    )
