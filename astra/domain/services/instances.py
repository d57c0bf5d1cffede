"""Instances: a seller's bot and its store. The record lives in the portal domain; the instance's
own settings (what its runtime needs) live in its domain, so its container can read them."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Any

from astra.domain import branding, templates
from astra.domain.errors import InvalidInput, LimitExceeded, NotFoundError
from astra.domain.messages import LANGUAGES
from astra.domain.services.audit_log import record
from astra.domain.services.plans import plan_state
from astra.domain.subscription import check_reminder_days
from astra.domain.timestamps import iso
from astra.ports.clock import Clock
from astra.ports.secrets import SecretHasher, TokenCipher
from astra.ports.store import INSTANCE_ID_PATTERN, Store

SETTINGS_ID = "instance"

DEFAULT_SETTINGS: dict[str, Any] = {
    "language": "pt-BR",
    "cart_ttl_seconds": 900,
    "min_order_cents": 0,
    "guild_id": None,
    "log_channel_id": None,
    "sales_channel_id": None,
    "feedback_channel_id": None,
    "staff_channel_id": None,
    "buyer_role_id": None,
    "staff_role_id": None,
    "cart_category_id": None,
    # A delivery that had to go to the cart channel (closed DMs) keeps that channel this long,
    # unless the buyer says they got it first.
    "delivery_channel_keep_days": 7,
    # -- subscriptions (issue 18): reminder DMs this many days before the end; card renewal
    # (Mercado Pago preapproval) offered to buyers when the seller turns it on.
    "subscription_reminder_days": [3, 1],
    "subscription_card_renewal": False,
    # The bot asks Discord for member joins (privileged GUILD_MEMBERS intent, which the seller
    # turns on for the bot first): a subscriber who rejoins gets the roles back at once.
    "member_join_events": False,
    # -- issue 15: branding, DM templates, staff notifications, carts --------------------------
    "branding": dict(branding.DEFAULT_BRANDING),
    "templates": {k: dict(templates.DEFAULT_TEMPLATE) for k in templates.KINDS},
    # Staff notifications go to the log channel (else the staff channel); the role mentioned
    # when a variant runs out of stock.
    "staff_notifications": True,
    "stock_alert_role_id": None,
    "products_channel_id": None,  # where products are usually posted (permcheck, the portal)
    # Staff may confirm a cart's payment by hand from Discord (audited; no wallet credit).
    "manual_confirmation": False,
    # A cart idle this long expires (0: only the hard limit, cart_ttl_seconds, applies).
    "cart_idle_seconds": 0,
}

# The settings record also carries what the bot needs about its instance (the shop's name for
# {loja}, its owner, when it was made); settings as a seller sees and changes them do not.
_RECORD_FIELDS = frozenset({"id", "owner_id", "name", "created_at"})


def public_settings(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**DEFAULT_SETTINGS, **doc}.items() if k not in _RECORD_FIELDS}


# What a seller may change, and how it is checked.
_SNOWFLAKE_FIELDS = (
    "guild_id",
    "log_channel_id",
    "sales_channel_id",
    "feedback_channel_id",
    "staff_channel_id",
    "buyer_role_id",
    "staff_role_id",
    "cart_category_id",
    "stock_alert_role_id",
    "products_channel_id",
)

# Settings a tenant runtime may not change at all (`/loja config` goes through the internal
# API): only the seller on the portal, or an operator, changes them. Each binds the bot or opens
# a way to money: the guild it sells in (and whose Manage Server makes staff), the staff role,
# confirming payments by hand, card renewals. A compromised runtime that could set the staff
# role to its own bot's role, or the guild to one it controls, would make itself staff.
PORTAL_ONLY_SETTINGS = frozenset(
    {"guild_id", "staff_role_id", "manual_confirmation", "subscription_card_renewal"}
)


def validate_settings_change(
    changes: dict[str, Any], current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a seller changes, checked. `branding` and `templates` are partial objects merged
    into `current`'s."""
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "branding":
            value = branding.validate_branding(value, (current or {}).get("branding"))
        elif key == "templates":
            value = templates.validate_templates(value, (current or {}).get("templates"))
        elif key in ("staff_notifications", "manual_confirmation"):
            if not isinstance(value, bool):
                raise InvalidInput("invalid_field", field=key)
        elif key == "cart_idle_seconds":
            if isinstance(value, bool) or not isinstance(value, int) or not (
                value == 0 or 120 <= value <= 86400
            ):
                raise InvalidInput("invalid_field", field=f"{key} (0, or 120 to 86400)")
        elif key == "language":
            if value not in LANGUAGES:
                raise InvalidInput("invalid_field", field="language")
        elif key == "cart_ttl_seconds":
            # Mercado Pago refuses a PIX that expires in less than 30 minutes... for its own
            # default; our carts may be shorter because the charge is cancelled with the cart.
            if isinstance(value, bool) or not isinstance(value, int) or not 60 <= value <= 86400:
                raise InvalidInput("invalid_field", field="cart_ttl_seconds")
        elif key == "delivery_channel_keep_days":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 30:
                raise InvalidInput("invalid_field", field=key)
        elif key == "min_order_cents":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
                raise InvalidInput("invalid_field", field="min_order_cents")
        elif key == "subscription_reminder_days":
            value = check_reminder_days(value)
        elif key in ("subscription_card_renewal", "member_join_events"):
            if not isinstance(value, bool):
                raise InvalidInput("invalid_field", field=key)
        elif key in _SNOWFLAKE_FIELDS:
            if value is not None and (
                not isinstance(value, str) or not value.isdigit() or not 5 <= len(value) <= 25
            ):
                raise InvalidInput("invalid_field", field=key)
        else:
            raise InvalidInput("invalid_field", field=key)
        clean[key] = value
    return clean


class InstanceService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        cipher: TokenCipher | None = None,
        hasher: SecretHasher | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.cipher = cipher
        self.hasher = hasher

    def get(self, instance_id: str) -> dict[str, Any]:
        """The portal's record of an instance, without its secrets."""
        with self.store.portal(write=False) as uow:
            doc = (
                uow.instances.get(instance_id)
                if INSTANCE_ID_PATTERN.fullmatch(instance_id or "")
                else None
            )
        if doc is None:
            raise NotFoundError("instância", instance_id)
        return public_instance(doc)

    # -- bot token -------------------------------------------------------------------------------

    def set_bot_token(
        self, instance_id: str, token: str, profile: dict[str, Any], *, actor: str
    ) -> dict[str, Any]:
        """Store a bot token checked against the chat platform (`profile` is what it answered).
        Encrypted at rest, bound to the instance; the same bot cannot serve two instances."""
        assert self.cipher is not None and self.hasher is not None
        token_hash, sealed = self._sealed_token(instance_id, token)
        now = self.clock.now()
        with self.store.portal() as uow:
            doc = uow.instances.get(instance_id)
            if doc is None:
                raise NotFoundError("instância", instance_id)
            other = uow.instances.first(token_hash=token_hash)
            if other is not None and other["id"] != instance_id:
                raise InvalidInput(
                    "invalid_field", field="bot token (already used by another instance)"
                )
            doc.update(
                token_encrypted=sealed,
                token_hash=token_hash,
                bot_profile=_bot_profile(profile),
                token_set_at=iso(now),
            )
            uow.instances.put(doc)
            record(
                uow,
                at=now,
                actor=actor,
                action="instance.token_set",
                target=f"instance:{instance_id}",
                bot_id=profile.get("id"),
            )
            uow.commit()
        return public_instance(doc)

    def clear_bot_token(self, instance_id: str, *, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        with self.store.portal() as uow:
            doc = uow.instances.get(instance_id)
            if doc is None:
                raise NotFoundError("instância", instance_id)
            doc.update(token_encrypted=None, token_hash=None, bot_profile=None, token_set_at=None)
            uow.instances.put(doc)
            record(
                uow,
                at=now,
                actor=actor,
                action="instance.token_cleared",
                target=f"instance:{instance_id}",
            )
            uow.commit()
        return public_instance(doc)

    def bot_token(self, instance_id: str) -> str | None:
        """The decrypted token, for the process that runs this instance's bot (never shown)."""
        assert self.cipher is not None
        with self.store.portal(write=False) as uow:
            doc = uow.instances.get(instance_id)
        if doc is None:
            raise NotFoundError("instância", instance_id)
        if not doc.get("token_encrypted"):
            return None
        return self.cipher.decrypt(doc["token_encrypted"], context=f"bot-token:{instance_id}")

    # -- instance key (what a seller types in /loja vincular; what a runtime shows the API) ----

    def rotate_instance_key(self, instance_id: str, *, actor: str) -> str:
        """A new instance key, returned once; only its hash is kept."""
        assert self.hasher is not None
        key = f"astra_{instance_id}_{secrets.token_urlsafe(24)}"
        now = self.clock.now()
        with self.store.portal() as uow:
            doc = uow.instances.get(instance_id)
            if doc is None:
                raise NotFoundError("instância", instance_id)
            doc["key_hash"] = self.hasher.fingerprint(f"instance-key:{key}")
            # A verifier for runtimes of the time when they checked keys themselves.
            doc.pop("key_verifier", None)
            doc["key_rotated_at"] = iso(now)
            # The runtime credential is derived from this: a rotation always changes it, even
            # two within one clock tick.
            doc["runtime_nonce"] = secrets.token_hex(16)
            uow.instances.put(doc)
            record(
                uow,
                at=now,
                actor=actor,
                action="instance.key_rotated",
                target=f"instance:{instance_id}",
            )
            uow.commit()
        return key

    def verify_instance_key(self, instance_id: str, key: str) -> bool:
        if not isinstance(key, str):
            return False
        assert self.hasher is not None
        with self.store.portal(write=False) as uow:
            doc = uow.instances.get(instance_id)
        if doc is None or not doc.get("key_hash") or not isinstance(key, str):
            return False
        return hmac.compare_digest(
            doc["key_hash"], self.hasher.fingerprint(f"instance-key:{key.strip()}")
        )

    def set_desired_state(self, instance_id: str, state: str, *, actor: str) -> dict[str, Any]:
        """The seller starts, stops or restarts the bot; the runtime monitor carries it out."""
        if state not in ("running", "stopped", "restart"):
            raise InvalidInput("invalid_field", field="state")
        now = self.clock.now()
        with self.store.portal() as uow:
            doc = uow.instances.get(instance_id)
            if doc is None:
                raise NotFoundError("instância", instance_id)
            if state == "restart":
                doc["desired_state"] = "running"
                doc["restart_requested_at"] = iso(now)
            else:
                doc["desired_state"] = state
            uow.instances.put(doc)
            record(
                uow,
                at=now,
                actor=actor,
                action=f"instance.{state}",
                target=f"instance:{instance_id}",
            )
            uow.commit()
        return public_instance(doc)

    def runtime_credential(self, instance_id: str) -> str:
        """What an instance's runtime shows the internal API: derived from the master key and
        the instance key's rotation, so rotating the key also revokes the running credential."""
        with self.store.portal(write=False) as uow:
            doc = uow.instances.get(instance_id)
        if doc is None:
            raise NotFoundError("instância", instance_id)
        return self._credential_of(doc)

    def _credential_of(self, doc: dict[str, Any]) -> str:
        assert self.hasher is not None
        stamp = doc.get("key_rotated_at") or doc.get("created_at") or ""
        # Instances not rotated since the nonce exists keep the credential they run with.
        nonce = doc.get("runtime_nonce")
        seed = f"runtime:{doc['id']}:{stamp}" + (f":{nonce}" if nonce else "")
        return "rt_" + self.hasher.fingerprint(seed)

    def verify_runtime_credential(self, instance_id: str, credential: str) -> bool:
        """Whether `credential` opens the internal API for this instance now.

        Read from the store on every call, never remembered, so a deleted instance, a rotated
        key and a suspended instance are refused by the very next request on every replica.
        Suspended is the runtime monitor's rule, applied here without waiting for its pass to
        record `status: suspended`: the owner is blocked or their plan has ended (an instance
        whose owner record is missing is refused once the monitor has suspended it)."""
        if not isinstance(credential, str):
            return False
        with self.store.portal(write=False) as uow:
            doc = uow.instances.get(instance_id)
            owner_id = doc.get("owner_id") if doc is not None else None
            owner = uow.users.get(owner_id) if owner_id else None
        if doc is None or doc.get("deleted_at"):
            return False
        if owner is None:
            if doc.get("status") == "suspended":
                return False
        elif owner.get("blocked") or not plan_state(owner, self.clock.now())["active"]:
            return False
        return hmac.compare_digest(
            self._credential_of(doc).encode(), credential.strip().encode()
        )

    def bind_guild(self, instance_id: str, guild_id: str, *, actor: str) -> dict[str, Any]:
        """The Discord server this instance sells in (set by /loja vincular). Kept in the
        instance's own settings: the runtime that sets it cannot write the portal's files."""
        return self.update_settings(instance_id, {"guild_id": guild_id}, actor=actor)

    def create(
        self,
        instance_id: str,
        *,
        owner_id: str,
        name: str,
        actor: str,
        token: str | None = None,
        profile: dict[str, Any] | None = None,
        max_per_owner: int | None = None,
    ) -> dict[str, Any]:
        """A new instance, with its bot token when one is given (checked with the chat platform
        by the caller: `profile`). All or nothing: a refusal (id taken, token refused or used by
        another instance, the owner's plan full) leaves no instance and no directory behind."""
        if not isinstance(instance_id, str) or not INSTANCE_ID_PATTERN.fullmatch(instance_id):
            raise InvalidInput("invalid_field", field="instance id (a-z, 0-9, -; 3-40)")
        name = (name or "").strip()
        if not 1 <= len(name) <= 80:
            raise InvalidInput("invalid_field", field="name")
        sealed = self._sealed_token(instance_id, token) if token is not None else None
        now = self.clock.now()
        # Every refusal is found before anything is written (no directory for a refused id)...
        with self.store.portal(write=False) as uow:
            self._check_new(uow, instance_id, owner_id, sealed, max_per_owner)
        # ...and checked again under the locks that the writes take, so a request racing this
        # one cannot slip in between. The instance's settings are committed before the portal
        # record: if the portal commit then fails, an orphan settings file is harmless, while a
        # record without settings would be a broken instance.
        with self.store.instance(instance_id) as iuow, self.store.portal() as uow:
            self._check_new(uow, instance_id, owner_id, sealed, max_per_owner)
            if iuow.settings.get(SETTINGS_ID) is None:
                iuow.settings.put(
                    {
                        "id": SETTINGS_ID,
                        "owner_id": owner_id,
                        "name": name,
                        "created_at": iso(now),
                        **DEFAULT_SETTINGS,
                    }
                )
                iuow.commit()
            doc: dict[str, Any] = {
                "id": instance_id,
                "owner_id": owner_id,
                "name": name,
                "created_at": iso(now),
                "status": "offline",
                "status_reason": None,
                "token_hash": None,
            }
            if sealed is not None:
                doc.update(
                    token_encrypted=sealed[1],
                    token_hash=sealed[0],
                    bot_profile=_bot_profile(profile or {}),
                    token_set_at=iso(now),
                )
            uow.instances.add(doc)
            record(
                uow,
                at=now,
                actor=actor,
                action="instance.created",
                target=f"instance:{instance_id}",
                owner_id=owner_id,
            )
            if sealed is not None:
                record(uow, at=now, actor=actor, action="instance.token_set",
                       target=f"instance:{instance_id}", bot_id=(profile or {}).get("id"))
            uow.commit()
        return doc

    def _sealed_token(self, instance_id: str, token: str) -> tuple[str, str]:
        """(fingerprint, ciphertext) of a bot token, or InvalidInput when it cannot be one."""
        assert self.cipher is not None and self.hasher is not None
        token = (token or "").strip()
        if not 50 <= len(token) <= 100 or any(c.isspace() for c in token):
            raise InvalidInput("invalid_field", field="bot token")
        return (
            self.hasher.fingerprint(f"bot-token:{token}"),
            self.cipher.encrypt(token, context=f"bot-token:{instance_id}"),
        )

    @staticmethod
    def _check_new(uow: Any, instance_id: str, owner_id: str,
                   sealed: tuple[str, str] | None, max_per_owner: int | None) -> None:
        if uow.instances.get(instance_id) is not None:
            raise InvalidInput("invalid_field", field="instance id (already taken)")
        if sealed is not None and uow.instances.first(token_hash=sealed[0]) is not None:
            raise TokenInUse("bot_token_in_use")
        if max_per_owner is not None:
            owned = sum(1 for d in uow.instances.find(owner_id=owner_id)
                        if not d.get("deleted_at"))
            if owned >= max_per_owner:
                raise LimitExceeded("instance_limit", limit=max_per_owner)

    def settings(self, instance_id: str) -> dict[str, Any]:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.settings.get(SETTINGS_ID)
        if doc is None:
            raise NotFoundError("instance", instance_id)
        return public_settings(doc)

    def update_settings(
        self, instance_id: str, changes: dict[str, Any], *, actor: str
    ) -> dict[str, Any]:
        with self.store.instance(instance_id) as uow:
            doc = uow.settings.get(SETTINGS_ID)
            if doc is None:
                raise NotFoundError("instance", instance_id)
            clean = validate_settings_change(changes, doc)
            doc.update(clean)
            uow.settings.put(doc)
            record(
                uow,
                at=self.clock.now(),
                actor=actor,
                action="instance.settings_changed",
                target=f"instance:{instance_id}",
                fields=sorted(clean),
            )
            uow.commit()
        return public_settings(doc)


SECRET_FIELDS = ("token_encrypted", "token_hash", "key_hash", "key_verifier")


class TokenInUse(LimitExceeded):
    """The bot already serves another instance (one bot, one instance)."""


def _bot_profile(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: profile.get(k) for k in ("id", "username", "avatar", "application_id")}


def public_instance(doc: dict[str, Any]) -> dict[str, Any]:
    """An instance record as APIs and pages may show it: no token, no hashes."""
    out = {k: v for k, v in doc.items() if k not in SECRET_FIELDS}
    out["has_token"] = bool(doc.get("token_encrypted"))
    out["has_key"] = bool(doc.get("key_hash"))
    return out


def settings_of(doc: dict[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULT_SETTINGS, **(doc or {})}


def now_iso(clock: Clock) -> tuple[datetime, str]:
    now = clock.now()
    return now, iso(now) or ""
