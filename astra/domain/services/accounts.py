"""Portal accounts: sign-up, password login with throttling and lockout, Discord login and linking.

Login failures never tell an unknown e-mail from a wrong password: both run the same Argon2
verification (against a dummy hash when there is no user), both are throttled and locked alike,
both answer the same error.

Failures count per (account, source address), so a stranger who guesses wrong locks out only
their own address, never the owner. The addresses an account has logged in from (its known
sources) are only slowed down (a short wait) by failures, never locked, so an attacker sharing
the owner's address (a NAT, an office) cannot keep the owner out either. Against guessing
spread over many addresses, an account-wide ceiling locks the account for every unknown source
(known ones are still only slowed down). A known user's counters live in its document, so every
process sees them; an unknown e-mail's and a client's counters live in the throttles of the
coordination port (this process's memory with one process, the database with replicas, so
spreading guesses over replicas gains nothing).

Sign-up is limited per client, and more tightly in how often it may answer "this e-mail is
taken": that answer is an oracle for which e-mails have accounts, and must not serve in bulk.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from astra.domain.errors import DomainError, Forbidden, InvalidInput, NotFoundError
from astra.domain.ids import new_id
from astra.domain.services.audit_log import record
from astra.domain.timestamps import iso, parse_iso
from astra.ports.clock import Clock
from astra.ports.coordination import Throttles
from astra.ports.secrets import SecretHasher
from astra.ports.store import Store

PASSWORD_MIN = 8
PASSWORD_MAX = 128
NAME_MAX = 80
# Logged-out sessions remembered per user (until their cookies expire): a bound on the document.
MAX_ENDED_SESSIONS = 50
EMAIL_MAX = 254
# One "@", something on both sides, a dot in the domain, no spaces: what a person can mistype;
# whether the mailbox exists is not ours to check.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
_SNOWFLAKE = re.compile(r"[0-9]{5,25}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Fields of a user document that may leave the server.
PUBLIC_FIELDS = (
    "id",
    "email",
    "name",
    "role",
    "created_at",
    "plan",
    "trial_used_at",
    "discord_id",
    "discord_username",
)


@dataclass(frozen=True)
class AccountConfig:
    max_failures: int = 5  # per (e-mail, source), within failure_window
    failure_window: timedelta = timedelta(minutes=10)
    lockout: timedelta = timedelta(minutes=15)
    # A known source (one the account logged in from) is slowed down this long instead.
    known_source_delay: timedelta = timedelta(seconds=30)
    known_sources: int = 10  # remembered per account
    # Failures from all sources together that lock the account for unknown sources.
    account_max_failures: int = 50
    max_guards: int = 200  # per-source counters kept in a user document
    client_max_failures: int = 20  # per client (IP), within client_window
    client_window: timedelta = timedelta(minutes=10)
    client_max_registrations: int = 20  # attempts per client, within client_window
    # "E-mail taken" answers per client within taken_window: enough for a person who forgot
    # they had an account, too few to test a list of addresses.
    client_max_taken: int = 3
    taken_window: timedelta = timedelta(hours=1)
    # Bound on the in-memory counters, so a flood of made-up e-mails cannot exhaust memory.
    max_tracked_keys: int = 50_000


class InvalidCredentials(DomainError):
    http_status = 401

    def __init__(self) -> None:
        super().__init__("invalid_credentials")


class _Throttled(DomainError):
    retry_after: int

    def __init__(self, code: str, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(code, minutes=max(1, math.ceil(self.retry_after / 60)))


class AccountLocked(_Throttled):
    """Too many failed passwords for one e-mail: refused, even the right one, until it ends."""

    http_status = 423

    def __init__(self, retry_after: int) -> None:
        super().__init__("account_locked", retry_after)


class TooManyAttempts(_Throttled):
    """Too many failures (or sign-ups) from one client."""

    http_status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("too_many_attempts", retry_after)


class AccountConflict(DomainError):
    http_status = 409


class PasswordAttemptsLocked(_Throttled):
    """Too many wrong passwords given to confirm a sensitive change: the same lock as a login's,
    answered 429 (the person is logged in; the wait is what they need to know)."""

    http_status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("account_locked", retry_after)


def public_user(user: dict[str, Any]) -> dict[str, Any]:
    """What the portal may show of a user: never the hash, the lock state or the session version."""
    out = {name: user.get(name) for name in PUBLIC_FIELDS}
    out["has_password"] = bool(user.get("password_hash"))
    return out


def normalise_email(email: object) -> str:
    return email.strip().lower() if isinstance(email, str) else ""


def validate_email(email: object) -> str:
    value = normalise_email(email)
    if len(value) > EMAIL_MAX or not _EMAIL.fullmatch(value):
        raise InvalidInput("invalid_email")
    return value


def validate_password(password: object) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput("password_length", minimum=PASSWORD_MIN, maximum=PASSWORD_MAX)
    if len(set(password)) == 1:
        raise InvalidInput("password_too_simple")
    return password


def validate_name(name: object) -> str:
    value = " ".join(name.split()) if isinstance(name, str) else ""
    if not 1 <= len(value) <= NAME_MAX or _CONTROL.search(value):
        raise InvalidInput("invalid_name", maximum=NAME_MAX)
    return value


# -- the lock state, the same for a user's per-source guards and an unknown e-mail's ---------


def _locked_for(guard: dict[str, Any] | None, now: datetime) -> int:
    """Seconds the guard stays locked (0: not locked)."""
    until = parse_iso((guard or {}).get("locked_until"))
    if until is None or until <= now:
        return 0
    return math.ceil((until - now).total_seconds())


def _with_failure(
    guard: dict[str, Any] | None,
    now: datetime,
    config: AccountConfig,
    *,
    lockout: timedelta | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """The guard after one more failure; it locks (for `lockout`) on the `limit`th failure
    within the window."""
    since = now - config.failure_window
    failures = [
        f
        for f in (guard or {}).get("failures") or []
        if (t := parse_iso(f)) is not None and t > since
    ]
    failures.append(iso(now))
    if len(failures) >= (limit or config.max_failures):
        # A fresh start after the lock: the count does not carry over into the next window.
        return {"failures": [], "locked_until": iso(now + (lockout or config.lockout))}
    return {"failures": failures, "locked_until": None}


# The key of the account-wide counter among a user's per-source guards.
ANY_SOURCE = "*"


def _source_guards(user: dict[str, Any]) -> dict[str, dict[str, Any]]:
    guards = user.get("login_guards")
    return dict(guards) if isinstance(guards, dict) else {}


def _lock_for_source(user: dict[str, Any], client: str | None, now: datetime) -> int:
    """Seconds `client` must wait before trying this account's password again."""
    guards = _source_guards(user)
    source = client or "unknown"
    wait = _locked_for(guards.get(source), now)
    if source not in (user.get("known_sources") or []):
        wait = max(wait, _locked_for(guards.get(ANY_SOURCE), now))
    return wait


def _fail_source(user: dict[str, Any], client: str | None, now: datetime,
                 config: AccountConfig) -> dict[str, Any]:
    """Count one failure from `client` on `user` (in place); returns the guard that decides
    what the client is told (its own, or the account-wide one if that locked now)."""
    guards = _source_guards(user)
    source = client or "unknown"
    known = source in (user.get("known_sources") or [])
    guards[source] = _with_failure(
        guards.get(source), now, config,
        lockout=config.known_source_delay if known else config.lockout)
    guards[ANY_SOURCE] = _with_failure(
        guards.get(ANY_SOURCE), now, config, limit=config.account_max_failures)
    if len(guards) > config.max_guards:
        since = iso(now - config.failure_window) or ""
        guards = {k: g for k, g in guards.items()
                  if k == ANY_SOURCE or _locked_for(g, now)
                  or any(f > since for f in g.get("failures") or [])}
        while len(guards) > config.max_guards:
            oldest = next(k for k in guards if k != ANY_SOURCE)
            del guards[oldest]
    user["login_guards"] = guards
    user.pop("login_guard", None)  # the one-lock-per-account field of earlier versions
    if not known and _locked_for(guards[ANY_SOURCE], now):
        return guards[ANY_SOURCE]
    return guards[source]


class _Window:
    """Timestamps of events per key within a sliding window, in memory, thread-safe."""

    def __init__(self, window: timedelta, max_keys: int) -> None:
        self.window = window
        self.max_keys = max_keys
        self._events: dict[str, list[datetime]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, now: datetime, limit: int) -> int:
        """Seconds until `key` may try again (0: now)."""
        with self._lock:
            recent = self._recent(key, now)
            if len(recent) < limit:
                return 0
            oldest = recent[-limit]
            return math.ceil((oldest + self.window - now).total_seconds())

    def add(self, key: str, now: datetime) -> None:
        with self._lock:
            recent = self._recent(key, now)
            recent.append(now)
            self._events[key] = recent
            if len(self._events) > self.max_keys:
                self._prune(now)

    def _recent(self, key: str, now: datetime) -> list[datetime]:
        since = now - self.window
        return [t for t in self._events.get(key, ()) if t > since]

    def _prune(self, now: datetime) -> None:
        since = now - self.window
        for key in [k for k, v in self._events.items() if not v or v[-1] <= since]:
            del self._events[key]
        while len(self._events) > self.max_keys:
            # Oldest keys first: dicts keep insertion order.
            del self._events[next(iter(self._events))]



class _SharedWindow:
    """The same counter, kept in the coordination port's throttles under `scope`."""

    def __init__(self, window: timedelta, throttles: Throttles, scope: str) -> None:
        self.window = window
        self.throttles = throttles
        self.scope = scope

    def retry_after(self, key: str, now: datetime, limit: int) -> int:
        recent = self.throttles.recent(
            f"{self.scope}:{key}", (now - self.window).timestamp()
        )
        if len(recent) < limit:
            return 0
        oldest = recent[-limit]
        return math.ceil(oldest + self.window.total_seconds() - now.timestamp())

    def add(self, key: str, now: datetime) -> None:
        self.throttles.add(f"{self.scope}:{key}", now.timestamp(),
                           self.window.total_seconds())


def _audit_failure(uow: Any, now: datetime, actor: str, action: str, target: str,
                   guard: dict[str, Any], client: str | None) -> int:
    """Audit one failed password, and the lock it caused if it did; returns the lock's
    remaining seconds (0 when not locked)."""
    locked = _locked_for(guard, now)
    record(uow, at=now, actor=actor, action=action, target=target, client=client)
    if locked:
        record(uow, at=now, actor="system", action="account.locked", target=target,
               until=guard["locked_until"], client=client)
    return locked

class AccountService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        hasher: SecretHasher,
        config: AccountConfig | None = None,
        throttles: Throttles | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.hasher = hasher
        self.config = config or AccountConfig()
        # None: counters in this object (what a test or a CLI command needs).
        self.throttles = throttles

        def window(span: timedelta, scope: str) -> _Window | _SharedWindow:
            if throttles is not None:
                return _SharedWindow(span, throttles, scope)
            return _Window(span, self.config.max_tracked_keys)

        self._client_failures = window(self.config.client_window, "login-client")
        self._client_signups = window(self.config.client_window, "signup-client")
        self._client_taken = window(self.config.taken_window, "signup-taken")
        self._unknown: dict[str, dict[str, Any]] = {}  # e-mail -> guard, for e-mails with no user
        self._memory_lock = threading.Lock()
        # Attempts on one e-mail run one at a time in this process, so parallel guesses cannot
        # slip past the count; striped so that the memory used stays fixed.
        self._stripes = [threading.Lock() for _ in range(64)]
        self._dummy_hash: str | None = None

    # -- sign-up ----------------------------------------------------------------------------

    def register(
        self, email: object, password: object, name: object, *, client: str | None = None
    ) -> dict[str, Any]:
        now = self.clock.now()
        if client is not None:
            wait = self._client_signups.retry_after(
                client, now, self.config.client_max_registrations
            )
            if wait:
                raise TooManyAttempts(wait)
            wait = self._client_taken.retry_after(client, now, self.config.client_max_taken)
            if wait:
                raise TooManyAttempts(wait)
            self._client_signups.add(client, now)
        email_ = validate_email(email)
        password_ = validate_password(password)
        name_ = validate_name(name)
        with self.store.portal(write=False) as uow:
            if uow.users.first(email=email_) is not None:
                if client is not None:
                    self._client_taken.add(client, now)
                raise InvalidInput("email_taken")
        password_hash = self.hasher.hash_password(password_)
        user = self._new_user(email_, name_, now, password_hash=password_hash)
        with self.store.portal() as uow:
            # Checked again under the write lock: two sign-ups of one e-mail, one account.
            if uow.users.first(email=email_) is not None:
                raise InvalidInput("email_taken")
            uow.users.add(user)
            record(
                uow,
                at=now,
                actor=f"user:{user['id']}",
                action="account.registered",
                target=f"user:{user['id']}",
                via="password",
                client=client,
            )
            uow.commit()
        return user

    # -- password login -----------------------------------------------------------------------

    def authenticate(self, email: object, password: object, *, client: str) -> dict[str, Any]:
        """The user, or InvalidCredentials / AccountLocked / TooManyAttempts / Forbidden."""
        now = self.clock.now()
        wait = self._client_failures.retry_after(client, now, self.config.client_max_failures)
        if wait:
            raise TooManyAttempts(wait)
        key = normalise_email(email)[:EMAIL_MAX]
        # Longer than any password we accept: cannot match, but costs the same to refuse.
        secret = password[: PASSWORD_MAX + 1] if isinstance(password, str) else ""
        with self._stripe(key):
            with self.store.portal(write=False) as uow:
                user = uow.users.first(email=key) if key else None
            if user is not None:
                locked = _lock_for_source(user, client, now)
            else:
                locked = _locked_for(self._unknown_guard(f"{key}\0{client}"), now)
            if locked:
                self._client_failures.add(client, now)
                raise AccountLocked(locked)
            stored = (user or {}).get("password_hash")
            ok = self.hasher.verify_password(secret, stored or self._dummy())
            if ok and user is not None and stored:
                return self._login_succeeded(user["id"], now, client)
            self._client_failures.add(client, now)
            locked = self._login_failed(key, user, now, client)
        if locked:
            raise AccountLocked(locked)
        raise InvalidCredentials()

    def _login_succeeded(self, user_id: str, now: datetime, client: str) -> dict[str, Any]:
        with self.store.portal() as uow:
            user = uow.users.require(user_id)
            # Another process may have locked it while the hash was being checked.
            locked = _lock_for_source(user, client, now)
            if locked:
                raise AccountLocked(locked)
            if user.get("blocked"):
                raise Forbidden("account_blocked")
            guards = _source_guards(user)
            guards.pop(client, None)
            user["login_guards"] = guards
            user.pop("login_guard", None)
            known = [s for s in user.get("known_sources") or [] if s != client] + [client]
            user["known_sources"] = known[-self.config.known_sources:]
            user["last_login_at"] = iso(now)
            uow.users.put(user)
            record(
                uow,
                at=now,
                actor=f"user:{user_id}",
                action="account.login",
                target=f"user:{user_id}",
                via="password",
                client=client,
            )
            uow.commit()
        return user

    def _login_failed(
        self, key: str, user: dict[str, Any] | None, now: datetime, client: str
    ) -> int:
        """Count the failure (and audit it); returns the lock's seconds if this one locked."""
        with self.store.portal() as uow:
            if user is not None:
                fresh = uow.users.get(user["id"]) or user
                guard = _fail_source(fresh, client, now, self.config)
                uow.users.put(fresh)
                target = f"user:{user['id']}"
            else:
                unknown_key = f"{key}\0{client}"
                guard = _with_failure(self._unknown_guard(unknown_key), now, self.config)
                self._set_unknown_guard(unknown_key, guard)
                target = f"email:{key}"
            locked = _audit_failure(uow, now, "anonymous", "account.login_failed", target,
                                    guard, client)
            uow.commit()
        return locked

    def _unknown_guard(self, key: str) -> dict[str, Any] | None:
        if self.throttles is not None:
            now = self.clock.now()
            shared = f"login-unknown:{key}"
            since = (now - self.config.failure_window).timestamp()
            until = self.throttles.locked_until(shared)
            return {
                "failures": [iso(datetime.fromtimestamp(t, UTC))
                             for t in self.throttles.recent(shared, since)],
                "locked_until": iso(datetime.fromtimestamp(until, UTC)) if until else None,
            }
        with self._memory_lock:
            return self._unknown.get(key)

    def _set_unknown_guard(self, key: str, guard: dict[str, Any]) -> None:
        now = self.clock.now()
        if self.throttles is not None:
            # `guard` is the one _with_failure made: one failure more, or a lock (which starts
            # the count afresh).
            shared = f"login-unknown:{key}"
            until = parse_iso(guard.get("locked_until"))
            if until is not None:
                self.throttles.lock(shared, until.timestamp())
                self.throttles.clear(shared)
            else:
                self.throttles.add(shared, now.timestamp(),
                                   self.config.failure_window.total_seconds())
            return
        with self._memory_lock:
            self._unknown.pop(key, None)
            self._unknown[key] = guard
            if len(self._unknown) > self.config.max_tracked_keys:
                since = iso(now - self.config.failure_window) or ""
                for k in [
                    k
                    for k, g in self._unknown.items()
                    if not _locked_for(g, now) and all(f <= since for f in g["failures"])
                ]:
                    del self._unknown[k]
                while len(self._unknown) > self.config.max_tracked_keys:
                    del self._unknown[next(iter(self._unknown))]

    @contextmanager
    def _stripe(self, key: str) -> Iterator[None]:
        lock = self._stripes[zlib.crc32(key.encode()) % len(self._stripes)]
        with lock:
            yield

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash_password(secrets.token_urlsafe(24))
        return self._dummy_hash

    # -- password change ----------------------------------------------------------------------

    def change_password(
        self, user_id: str, old: object, new: object, *, client: str | None = None
    ) -> dict[str, Any]:
        """Set a new password and end every session (the session version moves on).

        The current password must be given when the account has one; a Discord-only account sets
        its first password here. Wrong current passwords count toward the lockout."""
        now = self.clock.now()
        new_ = validate_password(new)
        with self.store.portal(write=False) as uow:
            user = uow.users.get(user_id)
        if user is None:
            raise NotFoundError("usuário", user_id)
        key = normalise_email(user.get("email"))
        with self._stripe(key):
            stored = user.get("password_hash")
            if stored:
                if not self._current_password_ok(user, old, now, client):
                    raise InvalidInput("wrong_current_password")
            else:
                locked = _lock_for_source(user, client, now)
                if locked:
                    raise AccountLocked(locked)
            password_hash = self.hasher.hash_password(new_)
            with self.store.portal() as uow:
                user = uow.users.require(user_id)
                user["password_hash"] = password_hash
                user["session_version"] = int(user.get("session_version") or 0) + 1
                user["password_changed_at"] = iso(now)
                user["login_guards"] = {}
                user.pop("login_guard", None)
                uow.users.put(user)
                record(
                    uow,
                    at=now,
                    actor=f"user:{user_id}",
                    action="account.password_changed",
                    target=f"user:{user_id}",
                    first=not stored,
                    client=client,
                )
                uow.commit()
        return user

    def update_profile(
        self,
        user_id: str,
        password: object,
        *,
        name: object = None,
        email: object = None,
        client: str | None = None,
    ) -> dict[str, Any]:
        """Change the account's name and/or e-mail, confirmed with the current password (a
        wrong one counts toward the lockout, as in change_password). The e-mail is how the
        account logs in, so a Discord-only account sets a password first."""
        now = self.clock.now()
        changes: dict[str, str] = {}
        if name is not None:
            changes["name"] = validate_name(name)
        if email is not None:
            changes["email"] = validate_email(email)
        if not changes:
            raise InvalidInput("invalid_field", field="name / email")
        with self.store.portal(write=False) as uow:
            user = uow.users.get(user_id)
        if user is None:
            raise NotFoundError("usuário", user_id)
        stored = user.get("password_hash")
        if not stored:
            raise InvalidInput("password_first")
        if not isinstance(password, str) or not password:
            raise InvalidInput("password_needed")
        key = normalise_email(user.get("email"))
        with self._stripe(key):
            if not self._current_password_ok(user, password, now, client):
                raise InvalidInput("wrong_current_password")
            with self.store.portal() as uow:
                if "email" in changes:
                    # Checked under the write lock: two accounts never share an e-mail.
                    other = uow.users.first(email=changes["email"])
                    if other is not None and other["id"] != user_id:
                        raise InvalidInput("email_taken")
                user = uow.users.require(user_id)
                before = {k: user.get(k) for k in changes}
                user.update(changes)
                uow.users.put(user)
                record(
                    uow,
                    at=now,
                    actor=f"user:{user_id}",
                    action="account.profile_changed",
                    target=f"user:{user_id}",
                    fields=sorted(k for k in changes if before[k] != changes[k]),
                    client=client,
                )
                uow.commit()
        return user

    def confirm_password(self, user_id: str, password: object, *,
                         client: str | None = None) -> None:
        """Check that a logged-in person still knows the account's password, before a sensitive
        change (money, keys, tokens). Same check, same lockout as update_profile: a wrong
        password counts toward it. Refusals: Forbidden `password_first` (a Discord-only account
        has none yet), `password_needed`, `wrong_password`; PasswordAttemptsLocked (429)."""
        now = self.clock.now()
        with self.store.portal(write=False) as uow:
            user = uow.users.get(user_id)
        if user is None:
            raise NotFoundError("usuário", user_id)
        if not user.get("password_hash"):
            raise Forbidden("password_first_sensitive")
        if not isinstance(password, str) or not password:
            raise Forbidden("password_needed_sensitive")
        with self._stripe(normalise_email(user.get("email"))):
            try:
                ok = self._current_password_ok(user, password, now, client)
            except AccountLocked as exc:
                raise PasswordAttemptsLocked(exc.retry_after) from None
        if not ok:
            raise Forbidden("wrong_password")

    def _current_password_ok(self, user: dict[str, Any], password: object, now: datetime,
                             client: str | None) -> bool:
        """Whether `password` is the account's (which has one); a wrong one is counted toward
        the lockout. AccountLocked when `client` is locked out, before any check. Runs under
        the account's stripe."""
        locked = _lock_for_source(user, client, now)
        if locked:
            raise AccountLocked(locked)
        secret = password[: PASSWORD_MAX + 1] if isinstance(password, str) else ""
        if self.hasher.verify_password(secret, user["password_hash"]):
            return True
        locked = self._password_change_failed(user["id"], now, client)
        if locked:
            raise AccountLocked(locked)
        return False

    def _password_change_failed(self, user_id: str, now: datetime, client: str | None) -> int:
        with self.store.portal() as uow:
            user = uow.users.require(user_id)
            guard = _fail_source(user, client, now, self.config)
            uow.users.put(user)
            target = f"user:{user_id}"
            locked = _audit_failure(uow, now, target, "account.password_change_failed",
                                    target, guard, client)
            uow.commit()
        return locked

    # -- sessions -----------------------------------------------------------------------------

    def end_session(self, user_id: str, session_id: str, until: int) -> None:
        """Remember that one session ended (a logout) until its cookie would have expired
        (`until`, epoch seconds). Ended sessions that expired anyway are forgotten; past
        MAX_ENDED_SESSIONS live ones, every session of the user ends (the version moves on)."""
        now = self.clock.now()
        with self.store.portal() as uow:
            user = uow.users.get(user_id)
            if user is None:
                return
            ended = {
                sid: exp
                for sid, exp in (user.get("revoked_sessions") or {}).items()
                if isinstance(exp, int) and exp > now.timestamp()
            }
            ended[session_id] = until
            if len(ended) > MAX_ENDED_SESSIONS:
                user["session_version"] = int(user.get("session_version") or 0) + 1
                ended = {}
            user["revoked_sessions"] = ended
            uow.users.put(user)
            record(uow, at=now, actor=f"user:{user_id}", action="account.logout",
                   target=f"user:{user_id}")
            uow.commit()

    # -- Discord ------------------------------------------------------------------------------

    def login_with_discord(self, profile: dict[str, Any]) -> dict[str, Any]:
        """The user of this Discord account: already linked, else the user with its verified
        e-mail (linked now), else a new one."""
        discord_id, username, email, display = _profile(profile)
        now = self.clock.now()
        with self.store.portal() as uow:
            user = uow.users.first(discord_id=discord_id)
            if user is not None:
                if user.get("blocked"):
                    raise Forbidden("account_blocked")
                user["discord_username"] = username
                user["last_login_at"] = iso(now)
                uow.users.put(user)
                record(
                    uow,
                    at=now,
                    actor=f"user:{user['id']}",
                    action="account.login",
                    target=f"user:{user['id']}",
                    via="discord",
                )
                uow.commit()
                return user
            if email is None:
                raise Forbidden("discord_email_unverified")
            user = uow.users.first(email=email)
            if user is not None:
                if user.get("discord_id"):
                    raise AccountConflict("discord_email_conflict")
                if user.get("blocked"):
                    raise Forbidden("account_blocked")
                user.update(
                    discord_id=discord_id, discord_username=username, last_login_at=iso(now)
                )
                uow.users.put(user)
                record(
                    uow,
                    at=now,
                    actor=f"user:{user['id']}",
                    action="account.discord_linked",
                    target=f"user:{user['id']}",
                    discord_id=discord_id,
                    via="verified_email",
                )
                uow.commit()
                return user
            user = self._new_user(email, display, now, password_hash=None)
            user.update(discord_id=discord_id, discord_username=username, last_login_at=iso(now))
            uow.users.add(user)
            record(
                uow,
                at=now,
                actor=f"user:{user['id']}",
                action="account.registered",
                target=f"user:{user['id']}",
                via="discord",
                discord_id=discord_id,
            )
            uow.commit()
        return user

    def link_discord(self, user_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Attach a Discord account to a logged-in user (replacing the one it had, if any)."""
        discord_id, username, _, _ = _profile(profile)
        now = self.clock.now()
        with self.store.portal() as uow:
            other = uow.users.first(discord_id=discord_id)
            if other is not None and other["id"] != user_id:
                raise AccountConflict("discord_linked_elsewhere")
            user = uow.users.get(user_id)
            if user is None:
                raise NotFoundError("usuário", user_id)
            previous = user.get("discord_id")
            user.update(discord_id=discord_id, discord_username=username)
            uow.users.put(user)
            if previous != discord_id:
                record(
                    uow,
                    at=now,
                    actor=f"user:{user_id}",
                    action="account.discord_linked",
                    target=f"user:{user_id}",
                    discord_id=discord_id,
                    previous=previous,
                    via="link",
                )
            uow.commit()
        return user

    # -- reading ------------------------------------------------------------------------------

    def get(self, user_id: str) -> dict[str, Any] | None:
        with self.store.portal(write=False) as uow:
            return uow.users.get(user_id)

    @staticmethod
    def _new_user(
        email: str, name: str, now: datetime, *, password_hash: str | None
    ) -> dict[str, Any]:
        return {
            "id": new_id("usr"),
            "email": email,
            "name": name,
            "password_hash": password_hash,
            "role": "customer",
            "created_at": iso(now),
            "plan": None,
            "trial_used_at": None,
            "discord_id": None,
            "discord_username": None,
            "session_version": 0,
            "blocked": False,
            "login_guards": {},
            "known_sources": [],
        }


def _profile(profile: object) -> tuple[str, str, str | None, str]:
    """(discord id, username, verified e-mail or None, display name) of a `/users/@me` answer."""
    if not isinstance(profile, dict):
        raise InvalidInput("invalid_discord_profile")
    discord_id = profile.get("id")
    username = profile.get("username")
    if not isinstance(discord_id, str) or not _SNOWFLAKE.fullmatch(discord_id):
        raise InvalidInput("invalid_discord_profile")
    if not isinstance(username, str) or not username.strip():
        raise InvalidInput("invalid_discord_profile")
    username = username.strip()[:NAME_MAX]
    email: str | None = None
    if profile.get("verified") is True:
        try:
            email = validate_email(profile.get("email"))
        except InvalidInput:
            email = None
    global_name = profile.get("global_name")
    display = global_name if isinstance(global_name, str) and global_name.strip() else username
    try:
        display = validate_name(display[:NAME_MAX])
    except InvalidInput:
        display = username
    return discord_id, username, email, display
