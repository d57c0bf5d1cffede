"""`/internal/instances/{id}/...`: everything an instance runtime may ask of its platform.

A runtime is treated like the public internet. Each request must carry the runtime credential of
the instance in its path (`Authorization: Bearer rt_...`); the seller's instance key does not
open these routes. Then, per operation of the wire table (`adapters/instance_api/wire.py`):
the body is capped, every field is checked and unknown ones refused, and the call goes to the
same in-process adapter a one-process bot uses, bound to the calling instance, so any id it
names is looked up in that instance's data only. Money never comes from a runtime: a sale's
amount, owner and fee are the platform's own records, and a runtime can at most ask the
platform to re-check a charge with the gateway.

Per instance, requests are rate-limited (token bucket) and at most a few run at once, so one bot
cannot starve the others of the platform's threads. A write's `Idempotency-Key` is remembered
per instance for a while (in the coordination's replays: shared by every replica on PostgreSQL):
a retried write gets the first answer instead of being done again, also when a load balancer
sends the retry to another replica, and one instance's key never reaches another's answer.
Every refusal is logged for the operator.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from astra.adapters.coordination.local import LocalReplays
from astra.adapters.instance_api.inprocess import InProcessInstanceAPI
from astra.adapters.instance_api.wire import (
    OPERATIONS,
    FieldError,
    Operation,
    error_to_doc,
    validate,
)
from astra.domain.errors import DomainError, InvalidInput
from astra.entrypoints.instance_turns import InstanceTurns
from astra.logs import get_logger
from astra.ports.coordination import Replays
from astra.ports.instance_api import Heartbeat, InstanceAPIUnavailable
from astra.ports.store import INSTANCE_ID_PATTERN, StoreError, StoreUnavailable

log = get_logger("astra.internal_api")

CONTAINER_KEY = web.AppKey("container", object)
GUARDS_KEY = web.AppKey("instance_guards", object)
REPLAYS_KEY = web.AppKey("replays", object)

# Per instance: a burst of RATE_BURST requests, refilled at RATE_PER_SECOND (the defaults of
# ASTRA_INTERNAL_RATE_BURST and ASTRA_INTERNAL_RATE_PER_SECOND); at most
# CONCURRENT in progress, and a request waits QUEUE_WAIT seconds for a turn before a 503.
RATE_PER_SECOND = 40.0
RATE_BURST = 120.0
CONCURRENT = 6
QUEUE_WAIT = 5.0
# Idempotent replays: for how long an answer is given again (the housekeeping loop forgets them
# after that on PostgreSQL; the local adapter keeps a bounded number per instance).
IDEMPOTENCY_TTL = 15 * 60.0


@dataclass
class InstanceGuard:
    """One instance's share of the internal API."""

    tokens: float = RATE_BURST
    rate: float = RATE_PER_SECOND
    burst: float = RATE_BURST
    refilled_at: float = field(default_factory=time.monotonic)
    in_flight: dict[str, asyncio.Future[tuple[int, bytes]]] = field(default_factory=dict)

    def take_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled_at) * self.rate)
        self.refilled_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Guards:
    def __init__(self, rate: float = RATE_PER_SECOND, burst: float = RATE_BURST) -> None:
        self.rate, self.burst = rate, burst
        self._guards: dict[str, InstanceGuard] = {}
        # Each runtime's share of the request threads (instance_turns.py).
        self.turns = InstanceTurns(CONCURRENT, QUEUE_WAIT)

    def of(self, instance_id: str) -> InstanceGuard:
        guard = self._guards.get(instance_id)
        if guard is None:
            guard = self._guards[instance_id] = InstanceGuard(
                tokens=self.burst, rate=self.rate, burst=self.burst
            )
        return guard


class BodyCutShort(Exception):
    """The runtime's connection broke while its request body was being read."""


def _error(status: int, code: str, message: str, domain: DomainError | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if domain is not None:
        error["domain"] = error_to_doc(domain)
    return orjson.dumps({"error": error})


def _respond(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=body, status=status, content_type="application/json", headers=headers
    )


def _refuse(
    request: web.Request, status: int, code: str, message: str, **context: Any
) -> web.Response:
    # Every refusal is the operator's business: a runtime that keeps being refused is broken
    # or compromised.
    log.warning(
        "internal.refused",
        instance=request.match_info.get("instance_id", "")[:64],
        path=request.path[:200],
        status=status,
        code=code,
        **context,
    )
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return _respond(status, _error(status, code, message), headers)


class _CannotCheck(Exception):
    """The credential could not be checked now (the database is down): 503, never a 401 that
    would tell a runtime its credential was revoked."""


async def _authorised(request: web.Request, guards: Guards) -> bool:
    instance_id = request.match_info["instance_id"]
    header = request.headers.get("Authorization", "")
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id) or not header.startswith("Bearer "):
        return False
    presented = header[7:].strip()
    if not presented.startswith("rt_") or len(presented) > 200:
        return False
    # Checked against the store on every request, never cached: a revocation (deletion,
    # suspension, key rotation) on any replica is in force from the next request on.
    container: Any = request.app[CONTAINER_KEY]
    instances = container.instances()
    try:
        return await asyncio.to_thread(
            instances.verify_runtime_credential, instance_id, presented
        )
    except StoreUnavailable as exc:
        raise _CannotCheck() from exc
    except StoreError:
        return False


async def _read_body(request: web.Request, cap: int) -> bytes:
    """The whole body, up to `cap` bytes; HTTPRequestEntityTooLarge past it.

    One read() returns what has arrived so far, which for a body sent in chunks or slowly is
    only its start: reading stops at the end of the body or one byte past the cap."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=declared)
    parts: list[bytes] = []
    size = 0
    try:
        while size <= cap:
            chunk = await request.content.read(cap + 1 - size)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except (ConnectionError, asyncio.IncompleteReadError):
        # Nobody is left to answer, and the answer must not be remembered for the
        # Idempotency-Key: the runtime's retry (a new connection, the same key) is served.
        raise BodyCutShort() from None
    if size > cap:
        raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=size)
    return b"".join(parts)


async def _read_fields(request: web.Request, op: Operation) -> dict[str, Any]:
    values: dict[str, Any] = dict(request.match_info)
    values.pop("instance_id", None)
    if op.write:
        raw = await _read_body(request, op.max_body)
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise FieldError("body", "is not JSON") from None
            if not isinstance(body, dict):
                raise FieldError("body", "must be a JSON object")
            clash = set(body) & set(values)
            if clash:
                raise FieldError(sorted(clash)[0], "belongs in the path")
            values.update(body)
    else:
        for name, value in request.query.items():
            if name in values:
                raise FieldError(name, "belongs in the path")
            values[name] = value
    return values


async def _call(api: InProcessInstanceAPI, op: Operation, fields: dict[str, Any]) -> Any:
    if op.name == "heartbeat":
        return await api.heartbeat(Heartbeat(**fields))
    # No field names who acted: the adapter learns it from Discord through `interaction`.
    return await getattr(api, op.name)(**fields)


def _handler(op: Operation):
    async def handle(request: web.Request) -> web.Response:
        guards: Guards = request.app[GUARDS_KEY]
        try:
            authorised = await _authorised(request, guards)
        except _CannotCheck:
            return _refuse(request, 503, "store_unavailable", "The platform's database is "
                           "unavailable; retry.")
        if not authorised:
            return _refuse(request, 401, "unauthorized", "Invalid runtime credential.")
        instance_id = request.match_info["instance_id"]
        guard = guards.of(instance_id)
        if not guard.take_token():
            return _refuse(request, 429, "rate_limited", "Too many requests.", op=op.name)
        key = request.headers.get("Idempotency-Key", "") if op.write else ""
        if key and (len(key) > 64 or not key.replace("-", "").replace("_", "").isalnum()):
            return _refuse(request, 400, "bad_request", "Malformed Idempotency-Key.")
        replays: Replays = request.app[REPLAYS_KEY]
        if key:
            try:
                seen = await _replays_io(replays, replays.get, instance_id, key,
                                         time.time() - IDEMPOTENCY_TTL)
            except StoreUnavailable as exc:
                # The operation below will be refused the same way; no traceback per request.
                log.warning("internal.replays_unavailable", instance=instance_id, op=op.name,
                            error=str(exc)[:200])
                seen = None
            except Exception:
                # The database is down: the operation itself will say so (a 503) if it needs it.
                log.exception("internal.replays_unavailable", instance=instance_id, op=op.name)
                seen = None
            if seen is not None:
                return _respond(*seen)
            running = guard.in_flight.get(key)
            if running is not None:
                return _respond(*await asyncio.shield(running))
        if not await guards.turns.take(instance_id):
            return _refuse(request, 503, "busy", "This instance has too many requests running.")
        future: asyncio.Future[tuple[int, bytes]] | None = None
        if key:
            future = asyncio.get_running_loop().create_future()
            guard.in_flight[key] = future
        try:
            status, body = await _serve(request, op, instance_id)
        except BodyCutShort:
            if future is not None and not future.done():
                future.set_result((503, _error(503, "busy", "Interrupted; retry.")))
            log.info("internal.body_cut_short", instance=instance_id, op=op.name)
            return _respond(400, _error(400, "bad_request", "Request body cut short."))
        except BaseException:
            # Cut short (the request's timeout): a retry with the same key waiting on this one
            # gets "try again", never a wait without end.
            if future is not None and not future.done():
                future.set_result((503, _error(503, "busy", "Interrupted; retry.")))
            raise
        finally:
            guards.turns.give_back(instance_id)
            if key and future is not None:
                guard.in_flight.pop(key, None)
        if key and future is not None:
            future.set_result((status, body))
            if status < 500:
                try:
                    await _replays_io(replays, replays.put, instance_id, key, status, body,
                                      time.time())
                except Exception:
                    # The write is done and answered; a retry of it would be done again,
                    # which the domain's own checks (one charge per cart...) mostly absorb.
                    log.exception("internal.replay_not_kept", instance=instance_id, op=op.name)
        if status >= 400:
            log.info("internal.refused", instance=instance_id, op=op.name, status=status)
        # 503: nothing was done, try again shortly (a bot's client retries with backoff).
        return _respond(status, body, {"Retry-After": str(StoreUnavailable.retry_after)}
                        if status == 503 else None)

    return handle


async def _serve(request: web.Request, op: Operation, instance_id: str) -> tuple[int, bytes]:
    container: Any = request.app[CONTAINER_KEY]
    try:
        fields = validate(op, await _read_fields(request, op))
        api = InProcessInstanceAPI(container, instance_id)
        result = await _call(api, op, fields)
        return 200, orjson.dumps({"result": op.result.encode(result)})
    except FieldError as exc:
        domain = InvalidInput("invalid_field", field=exc.field)
        return 422, _error(422, "invalid_field", str(exc), domain)
    except DomainError as exc:
        return exc.http_status, _error(exc.http_status, exc.code, exc.message(), exc)
    except web.HTTPRequestEntityTooLarge:
        return 413, _error(413, "payload_too_large", "Request body too large.")
    except InstanceAPIUnavailable as exc:
        # Discord did not answer who acted: nothing was done, the bot may try again.
        log.warning("internal.discord_unavailable", instance=instance_id, op=op.name,
                    error=str(exc)[:200])
        return 503, _error(503, "discord_unavailable", "Discord did not answer; retry.")
    except StoreUnavailable as exc:
        log.warning("internal.database_unavailable", instance=instance_id, op=op.name,
                    error=str(exc)[:300])
        return 503, _error(503, "store_unavailable", "The platform's database is unavailable; "
                           "retry.")
    except StoreError as exc:
        log.error("internal.store_unavailable", instance=instance_id, op=op.name, error=str(exc))
        return 503, _error(503, "store_unavailable", "This instance's data is unavailable.")
    except BodyCutShort:
        raise  # the caller answers it (a 400 nobody reads), never as an internal error
    except Exception:
        log.exception("internal.failed", instance=instance_id, op=op.name)
        return 500, _error(500, "internal_error", "Internal error.")


async def _replays_io(replays: Replays, fn: Any, *args: Any) -> Any:
    # In memory (one process) it is a dict look-up; shared, it is a database round trip, made
    # off the event loop.
    if isinstance(replays, LocalReplays):
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def add_routes(app: web.Application, container: Any) -> None:
    app[CONTAINER_KEY] = container
    app[REPLAYS_KEY] = container.coordination().replays
    settings = container.settings()
    app[GUARDS_KEY] = Guards(float(settings.internal_rate_per_second),
                             float(settings.internal_rate_burst))
    base = "/internal/instances/{instance_id}"
    for op in OPERATIONS.values():
        app.router.add_route(op.method, base + op.path, _handler(op))
