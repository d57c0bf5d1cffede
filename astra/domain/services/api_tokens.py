"""Sellers' personal API tokens: automation that calls the same /api/* routes as the portal.

A token is `astra_pat_<43 random characters>`, shown once when it is made. The store keeps only
its keyed fingerprint (the hasher's HMAC with the master key, the same way bot tokens are keyed),
so a copy of the data files opens nothing. Each token has a name, a scope (`read`: safe methods
only; `read-write`: everything a logged-in seller can do through /api/*), when it was last used,
and can be revoked; a revoked token is refused from the next request on, in every process.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from astra.domain.errors import InvalidInput, LimitExceeded, NotFoundError
from astra.domain.ids import new_id
from astra.domain.services.audit_log import record
from astra.domain.timestamps import iso, parse_iso
from astra.ports.clock import Clock
from astra.ports.secrets import SecretHasher
from astra.ports.store import Store

PREFIX = "astra_pat_"
SCOPES = ("read", "read-write")
MAX_TOKENS_PER_USER = 20
MAX_NAME_LENGTH = 60
# `last_used_at` is written at most this often per token: a busy script must not turn every
# request into a commit of the portal domain.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def looks_like_token(value: str) -> bool:
    return value.startswith(PREFIX) and 20 <= len(value) <= 100 and value.isascii()


def public_token(doc: dict[str, Any]) -> dict[str, Any]:
    """What pages and the API show of a token: never the token nor its fingerprint."""
    return {
        "id": doc["id"],
        "name": doc["name"],
        "scope": doc["scope"],
        "hint": doc.get("hint") or "",
        "created_at": doc.get("created_at"),
        "last_used_at": doc.get("last_used_at"),
        "revoked_at": doc.get("revoked_at"),
        "active": not doc.get("revoked_at"),
    }


class ApiTokenService:
    def __init__(self, store: Store, clock: Clock, hasher: SecretHasher) -> None:
        self.store = store
        self.clock = clock
        self.hasher = hasher

    def _fingerprint(self, token: str) -> str:
        return self.hasher.fingerprint(f"api-token:{token}")

    def create(self, user_id: str, name: object, scope: object) -> tuple[dict[str, Any], str]:
        """A new token: (its public document, the token itself, to show once)."""
        clean = str(name or "").strip() if isinstance(name, str) else ""
        if not clean or len(clean) > MAX_NAME_LENGTH or any(ord(c) < 32 for c in clean):
            raise InvalidInput("invalid_field", field="name")
        if scope not in SCOPES:
            raise InvalidInput("invalid_field", field="scope")
        token = PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.store.portal() as uow:
            if uow.users.get(user_id) is None:
                raise NotFoundError("usuário", user_id)
            live = [t for t in uow.api_tokens.find(user_id=user_id) if not t.get("revoked_at")]
            if len(live) >= MAX_TOKENS_PER_USER:
                raise LimitExceeded("api_token_limit", limit=MAX_TOKENS_PER_USER)
            doc = {
                "id": new_id("tok"),
                "user_id": user_id,
                "name": clean,
                "scope": scope,
                "token_hash": self._fingerprint(token),
                # Enough to tell tokens apart in a list, far too little to guess the rest.
                "hint": token[len(PREFIX) : len(PREFIX) + 4],
                "created_at": iso(now),
                "last_used_at": None,
                "revoked_at": None,
            }
            uow.api_tokens.add(doc)
            record(uow, at=now, actor=f"user:{user_id}", action="api_token.created",
                   target=f"api_token:{doc['id']}", scope=scope)
            uow.commit()
        return public_token(doc), token

    def list(self, user_id: str) -> list[dict[str, Any]]:
        with self.store.portal(write=False) as uow:
            docs = uow.api_tokens.find(user_id=user_id)
        docs.sort(key=lambda d: d.get("created_at") or "", reverse=True)
        return [public_token(d) for d in docs]

    def revoke(self, user_id: str, token_id: str) -> dict[str, Any]:
        now = self.clock.now()
        with self.store.portal() as uow:
            doc = uow.api_tokens.get(token_id)
            # Someone else's token is the same 404 as no token at all.
            if doc is None or doc.get("user_id") != user_id:
                raise NotFoundError("token", token_id)
            if not doc.get("revoked_at"):
                doc["revoked_at"] = iso(now)
                uow.api_tokens.put(doc)
                record(uow, at=now, actor=f"user:{user_id}", action="api_token.revoked",
                       target=f"api_token:{token_id}")
                uow.commit()
        return public_token(doc)

    def authenticate(self, token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(user, token document) for a live token of a user who may log in; else None."""
        if not looks_like_token(token):
            return None
        fingerprint = self._fingerprint(token)
        now = self.clock.now()
        with self.store.portal(write=False) as uow:
            doc = uow.api_tokens.first(token_hash=fingerprint)
            user = uow.users.get(doc["user_id"]) if doc else None
        if doc is None or user is None or doc.get("revoked_at") or user.get("blocked"):
            return None
        last = parse_iso(doc.get("last_used_at"))
        if last is None or now - last >= LAST_USED_RESOLUTION:
            self._touch(doc["id"], now)
        return user, doc

    def _touch(self, token_id: str, now: datetime) -> None:
        with self.store.portal() as uow:
            doc = uow.api_tokens.get(token_id)
            if doc is None or doc.get("revoked_at"):
                return
            doc["last_used_at"] = iso(now)
            uow.api_tokens.put(doc)
            uow.commit()
