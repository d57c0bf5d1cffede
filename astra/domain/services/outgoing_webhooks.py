"""Outgoing webhooks: the platform tells a seller's own system that an order was paid, delivered
or refunded, or that a variant's stock ran low.

One endpoint per instance: a URL, the event types wanted, a stock-low threshold and a secret
(`whsec_...`, shown once when it is made or rotated, kept sealed with the instance's key). Events
go into a durable outbox in the instance's store (`webhook_events`) in one commit, with an id
derived from what happened (`order.paid` of order X is always the same id), so a webhook replayed
to the platform, a redelivery or a restart never makes a second event; the receiver dedupes by
that id. The sender loop (`entrypoints/webhook_sender.py`) posts what is due, signs each attempt
like Mercado Pago signs its webhooks (`x-signature: ts=...,v1=...`, HMAC-SHA256 over a manifest;
ours adds the body's SHA-256 to it) and records every attempt here; a failure waits
`retry_base * 2^(attempts-1)` (capped) before the next, until `max_attempts`.

The URL is checked here (scheme, host, literal addresses); names are checked again when they are
resolved, by the sender, so DNS cannot point an accepted name at a private address later. Both
judge an address with `address_policy.address_allowed`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from astra.domain.address_policy import Address, address_allowed
from astra.domain.errors import InvalidInput, NotFoundError
from astra.domain.events import DomainEvent
from astra.domain.services.audit_log import record
from astra.domain.timestamps import iso, parse_iso
from astra.ports.clock import Clock
from astra.ports.secrets import InstanceVault
from astra.ports.store import DuplicateId, Store, StoreError

EVENT_TYPES = ("order.paid", "order.delivered", "order.refunded", "stock.low")
ENDPOINT_ID = "default"
SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "X-Astra-Signature"
MAX_URL_LENGTH = 500
HISTORY_KEPT = 10  # attempts remembered per event (the delivery log shows them)
# Settled events (delivered, failed, cancelled) stay this long for the delivery log and for
# redelivery, then go: the outbox would otherwise grow with every sale for ever. Longer than
# catch_up's window, so catching up never queues again an event that was pruned.
SETTLED_KEPT_DAYS = 30
SETTLED_STATUSES = ("delivered", "failed", "cancelled")
DEFAULT_STOCK_LOW = 5
SECRET_CONTEXT = "webhook-secret"

# scheme://authority[path?query#fragment]; the domain parses URLs itself (no urllib here).
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)$")
_HOST_PORT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d{1,5}))?$"
)


@dataclass(frozen=True)
class WebhookPolicy:
    # Development and tests: http:// and loopback/private receivers are allowed. Production:
    # https only, and only public addresses (no SSRF into the platform's own network).
    allow_private: bool = False
    max_attempts: int = 10
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 3600.0


def check_url(url: object, allow_private: bool) -> str:
    """The URL as kept, or InvalidInput naming why it is refused."""
    def refuse(reason: str) -> InvalidInput:
        return InvalidInput("webhook_url_refused", reason=reason)

    if not isinstance(url, str) or not url.strip():
        raise refuse("empty")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise refuse("malformed")
    match = _URL.match(url)
    if match is None:
        raise refuse("malformed")
    scheme, authority = match["scheme"].lower(), match["authority"]
    if scheme not in ("https", "http"):
        raise refuse("must be an https:// URL")
    if scheme == "http" and not allow_private:
        raise refuse("must be an https:// URL")
    if "@" in authority:
        raise refuse("credentials in the URL are not allowed")
    if "#" in match["rest"]:
        raise refuse("fragments are not allowed")
    where = _HOST_PORT.match(authority)
    if where is None or (where["port"] is not None and not 0 < int(where["port"]) < 65536):
        raise refuse("malformed")
    host = (where["v6"] or where["host"] or "").rstrip(".").lower()
    if not host:
        raise refuse("malformed")
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not address_allowed(literal, allow_private):
            raise refuse("private, loopback or link-local addresses are not allowed")
    elif not allow_private and (
        host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
        or "." not in host
        or re.fullmatch(r"[0-9.]+|0x[0-9a-f.x]+", host)  # 127.1, 0x7f.1: addresses in disguise
    ):
        raise refuse("the host must be a public name")
    return url


def manifest(event_id: str, request_id: str, ts: str, body: bytes) -> str:
    """What the signature covers: Mercado Pago's manifest plus the body's SHA-256."""
    digest = hashlib.sha256(body).hexdigest()
    return f"id:{event_id};request-id:{request_id};ts:{ts};sha256:{digest};"


def sign(secret: str, event_id: str, request_id: str, ts: str, body: bytes) -> str:
    """The `X-Astra-Signature` header value: `ts=<unix seconds>,v1=<hex HMAC-SHA256>`."""
    mac = hmac.new(secret.encode(), manifest(event_id, request_id, ts, body).encode(),
                   hashlib.sha256).hexdigest()
    return f"ts={ts},v1={mac}"


def event_id_for(instance_id: str, event_type: str, subject: str) -> str:
    digest = hashlib.sha256(f"{instance_id}|{event_type}|{subject}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def _order_payload(order: dict[str, Any]) -> dict[str, Any]:
    """What a receiver learns of an order: never its keys, nor the charge's QR."""
    return {
        "id": order.get("id"),
        "status": order.get("status"),
        "buyer_id": order.get("buyer_id"),
        "lines": [
            {k: line.get(k) for k in ("product_id", "variant_id", "product_name",
                                       "variant_name", "delivery_kind", "quantity",
                                       "unit_price_cents")}
            for line in order.get("lines") or []
        ],
        "coupon_code": order.get("coupon_code"),
        "subtotal_cents": order.get("subtotal_cents"),
        "discount_cents": order.get("discount_cents"),
        "total_cents": order.get("total_cents"),
        "fee_cents": order.get("fee_cents"),
        "net_cents": order.get("net_cents"),
        "refunded_cents": order.get("refunded_cents", 0),
        "charge_id": order.get("charge_id"),
        "created_at": order.get("created_at"),
        "paid_at": order.get("paid_at"),
        "delivered_at": order.get("delivered_at"),
        "refunded_at": order.get("refunded_at"),
    }


def public_endpoint(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {
        "url": doc["url"],
        "events": list(doc.get("events") or EVENT_TYPES),
        "stock_low_threshold": doc.get("stock_low_threshold", DEFAULT_STOCK_LOW),
        "active": bool(doc.get("active", True)),
        "created_at": doc.get("created_at"),
        "secret_rotated_at": doc.get("secret_rotated_at"),
    }


def public_event(doc: dict[str, Any]) -> dict[str, Any]:
    """A delivery log row: the event and what its attempts got, not the payload."""
    return {
        "id": doc["id"],
        "type": doc["type"],
        "status": doc["status"],
        "attempts": doc.get("attempts", 0),
        "created_at": doc.get("created_at"),
        "next_attempt_at": doc.get("next_attempt_at") if doc["status"] == "pending" else None,
        "last_attempt_at": doc.get("last_attempt_at"),
        "last_status_code": doc.get("last_status_code"),
        "last_error": doc.get("last_error"),
        "delivered_at": doc.get("delivered_at"),
        "history": list(doc.get("history") or []),
    }


@dataclass(frozen=True)
class DueDelivery:
    instance_id: str
    event_id: str
    url: str
    secret: str
    body: dict[str, Any]
    attempt: int
    due_at: str = ""  # when it was scheduled (ISO; "" for a first attempt)


class OutgoingWebhookService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        vaults: Callable[[str], InstanceVault],
        policy: WebhookPolicy,
    ) -> None:
        self.store = store
        self.clock = clock
        self.vaults = vaults
        self.policy = policy
        # Set by the sender loop: called (from any thread) after an event is queued.
        self.on_enqueued: Callable[[], None] | None = None

    # -- the seller's endpoint ------------------------------------------------------------------

    def endpoint(self, instance_id: str) -> dict[str, Any] | None:
        with self.store.instance(instance_id, write=False) as uow:
            return public_endpoint(uow.webhook_endpoints.get(ENDPOINT_ID))

    def configure(
        self,
        instance_id: str,
        url: object,
        *,
        events: list[str] | None = None,
        stock_low_threshold: int | None = None,
        active: bool = True,
        actor: str,
    ) -> tuple[dict[str, Any], str | None]:
        """Set the endpoint; (its public view, the new secret when one was made now)."""
        clean = check_url(url, self.policy.allow_private)
        wanted = list(dict.fromkeys(events)) if events is not None else None
        if wanted is not None and (not wanted or any(e not in EVENT_TYPES for e in wanted)):
            raise InvalidInput("invalid_field", field="events")
        if stock_low_threshold is not None and not 0 <= stock_low_threshold <= 100_000:
            raise InvalidInput("invalid_field", field="stock_low_threshold")
        now = self.clock.now()
        secret = None
        with self.store.instance(instance_id) as uow:
            doc = uow.webhook_endpoints.get(ENDPOINT_ID)
            if doc is None:
                secret = SECRET_PREFIX + secrets.token_urlsafe(32)
                doc = {
                    "id": ENDPOINT_ID,
                    "created_at": iso(now),
                    "secret_sealed": self._seal(instance_id, secret),
                    "secret_rotated_at": iso(now),
                    "low_stock": {},
                }
            # Events not given: the ones chosen before (all, for a new endpoint).
            wanted = wanted or list(doc.get("events") or EVENT_TYPES)
            doc.update(url=clean, events=wanted, active=bool(active))
            if stock_low_threshold is not None:
                doc["stock_low_threshold"] = stock_low_threshold
            doc.setdefault("stock_low_threshold", DEFAULT_STOCK_LOW)
            uow.webhook_endpoints.put(doc)
            record(uow, at=now, actor=actor, action="webhook.configured",
                   target=f"instance:{instance_id}", url=clean, events=wanted)
            uow.commit()
        return public_endpoint(doc) or {}, secret

    def rotate_secret(self, instance_id: str, *, actor: str) -> str:
        now = self.clock.now()
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        with self.store.instance(instance_id) as uow:
            doc = uow.webhook_endpoints.get(ENDPOINT_ID)
            if doc is None:
                raise NotFoundError("webhook", instance_id)
            doc["secret_sealed"] = self._seal(instance_id, secret)
            doc["secret_rotated_at"] = iso(now)
            uow.webhook_endpoints.put(doc)
            record(uow, at=now, actor=actor, action="webhook.secret_rotated",
                   target=f"instance:{instance_id}")
            uow.commit()
        return secret

    def remove(self, instance_id: str, *, actor: str) -> None:
        """Forget the endpoint; events still waiting are cancelled (the log keeps them)."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            if uow.webhook_endpoints.get(ENDPOINT_ID) is None:
                raise NotFoundError("webhook", instance_id)
            uow.webhook_endpoints.delete(ENDPOINT_ID)
            for doc in uow.webhook_events.find(status="pending"):
                doc.update(status="cancelled", cancelled_at=iso(now), next_attempt_at=None)
                uow.webhook_events.put(doc)
            record(uow, at=now, actor=actor, action="webhook.removed",
                   target=f"instance:{instance_id}")
            uow.commit()

    def deliveries(self, instance_id: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.store.instance(instance_id, write=False) as uow:
            docs = uow.webhook_events.all()
        docs.sort(key=lambda d: (d.get("created_at") or "", d["id"]), reverse=True)
        return [public_event(d) for d in docs[:limit]]

    def redeliver(self, instance_id: str, event_id: str, *, actor: str) -> dict[str, Any]:
        """Send a failed (or delivered) event again, as soon as the sender next looks."""
        now = self.clock.now()
        with self.store.instance(instance_id) as uow:
            doc = uow.webhook_events.get(event_id)
            if doc is None:
                raise NotFoundError("evento", event_id)
            if uow.webhook_endpoints.get(ENDPOINT_ID) is None:
                raise NotFoundError("webhook", instance_id)
            doc.update(status="pending", next_attempt_at=iso(now), attempts=0)
            uow.webhook_events.put(doc)
            record(uow, at=now, actor=actor, action="webhook.redeliver",
                   target=f"webhook_event:{event_id}")
            uow.commit()
        self._wake()
        return public_event(doc)

    def _seal(self, instance_id: str, secret: str) -> str:
        return self.vaults(instance_id).encrypt(secret, context=SECRET_CONTEXT)

    def _unseal(self, instance_id: str, sealed: str) -> str:
        return self.vaults(instance_id).decrypt(sealed, context=SECRET_CONTEXT)

    def _wake(self) -> None:
        if self.on_enqueued is not None:
            self.on_enqueued()

    # -- events in ----------------------------------------------------------------------------

    def enqueue(self, instance_id: str, event_type: str, subject: str,
                data: dict[str, Any], *, event_id: str | None = None) -> bool:
        """Queue one event for the instance's endpoint (if it has one that wants it). False when
        there is none, or when this event was queued before (its id is the same)."""
        now = self.clock.now()
        eid = event_id or event_id_for(instance_id, event_type, subject)
        with self.store.instance(instance_id) as uow:
            endpoint = uow.webhook_endpoints.get(ENDPOINT_ID)
            if not _wants(endpoint, event_type):
                return False
            try:
                uow.webhook_events.add(_event_doc(eid, instance_id, event_type, data, now))
            except DuplicateId:
                return False
            uow.commit()
        self._wake()
        return True

    def on_event(self, instance_id: str, event: DomainEvent) -> None:
        """The publisher's subscriber: domain events that a seller's system may want."""
        order = event.data.get("order") if isinstance(event.data.get("order"), dict) else None
        if not order or event.name not in ("order.paid", "order.delivered", "order.refunded"):
            return
        # Most sellers have no endpoint: one read says so, instead of two writing units that
        # would each take the instance's lock on every sale. An endpoint saved at this very
        # moment misses this event as it misses every event before it was saved.
        with self.store.instance(instance_id, write=False) as uow:
            endpoint = uow.webhook_endpoints.get(ENDPOINT_ID)
        if not (_wants(endpoint, event.name) or _wants(endpoint, "stock.low")):
            return
        data = {"order": _order_payload(order)}
        if event.name == "order.delivered":
            data["channel"] = event.data.get("channel")
        subject = str(order.get("id"))
        if event.name == "order.refunded":
            data["kind"] = event.data.get("kind")
            data["amount_cents"] = event.data.get("amount_cents")
            if data["kind"] == "partial":
                # Each partial refund is an event of its own (named by the total refunded so
                # far), and the whole refund that may follow is one more.
                subject = f"{subject}:partial:{order.get('refunded_cents')}"
        self.enqueue(instance_id, event.name, subject, data)
        if event.name in ("order.paid", "order.delivered"):
            variants = {str(line.get("variant_id")): line for line in order.get("lines") or []}
            self.check_stock(instance_id, variants)

    def check_stock(self, instance_id: str, lines: dict[str, dict[str, Any]] | None) -> int:
        """Queue `stock.low` for variants whose available keys fell to the threshold, once per
        fall: the flag clears when a later sale finds the variant above it again (stock was
        added), or for every flagged variant when `lines` is None. Returns events queued."""
        now = self.clock.now()
        queued = 0
        with self.store.instance(instance_id) as uow:
            endpoint = uow.webhook_endpoints.get(ENDPOINT_ID)
            if not _wants(endpoint, "stock.low"):
                return 0
            assert endpoint is not None
            threshold = int(endpoint.get("stock_low_threshold", DEFAULT_STOCK_LOW))
            flags = dict(endpoint.get("low_stock") or {})
            if lines is None:  # after an import: every flagged variant may be back up
                lines = {vid: {} for vid in flags}
            changed = False
            for variant_id, line in lines.items():
                available = uow.stock.count(variant_id=variant_id, state="available")
                if available > threshold:
                    if flags.pop(variant_id, None) is not None:
                        changed = True
                    continue
                if line.get("delivery_kind") not in (None, "key") or variant_id in flags:
                    continue
                sequence = int(endpoint.get("low_stock_seq", 0)) + 1
                endpoint["low_stock_seq"] = sequence
                flags[variant_id] = iso(now)
                changed = True
                eid = event_id_for(instance_id, "stock.low", f"{variant_id}:{sequence}")
                data = {
                    "product_id": line.get("product_id"),
                    "product_name": line.get("product_name"),
                    "variant_id": variant_id,
                    "variant_name": line.get("variant_name"),
                    "available": available,
                    "threshold": threshold,
                }
                try:
                    uow.webhook_events.add(_event_doc(eid, instance_id, "stock.low", data, now))
                    queued += 1
                except DuplicateId:
                    pass
            if changed:
                endpoint["low_stock"] = flags
                uow.webhook_endpoints.put(endpoint)
                uow.commit()
        if queued:
            self._wake()
        return queued

    def catch_up(self, window: timedelta = timedelta(days=1)) -> int:
        """Queue again what a crash could have lost: an order's change is committed first and
        its event right after (by the publisher's subscriber), so a process killed in between
        leaves an order paid, delivered or refunded with no event. Run when the sender starts:
        orders changed within `window` (and since the endpoint was set) get their events, under
        the same ids, so the ones queued already are not queued twice. Returns events queued."""
        now = self.clock.now()
        queued = 0
        for instance_id in self.store.instance_ids():
            try:
                with self.store.instance(instance_id, write=False) as uow:
                    endpoint = uow.webhook_endpoints.get(ENDPOINT_ID)
                    if endpoint is None:
                        continue
                    orders = [o for o in uow.orders.all()
                              if o.get("paid_at") or o.get("refunded_at")]
            except StoreError:
                # Busy or damaged: the other instances are caught up all the same.
                continue
            since = max(parse_iso(endpoint.get("created_at")) or now, now - window)
            for order in orders:
                for event_type, stamp, statuses in _ORDER_EVENTS:
                    at = parse_iso(order.get(stamp))
                    if at is None or at < since or order.get("status") not in statuses:
                        continue
                    if self.enqueue(instance_id, event_type, str(order.get("id")),
                                    {"order": _order_payload(order)}):
                        queued += 1
        return queued

    def prune_settled(self, kept_days: int = SETTLED_KEPT_DAYS) -> int:
        """Delete settled events older than `kept_days` (by when they settled) in every
        instance; pending ones are never touched. Returns how many went."""
        cutoff = self.clock.now() - timedelta(days=kept_days)
        targets = sorted({i for status in SETTLED_STATUSES
                          for i in self.store.instances_with("webhook_events", status=status)})
        pruned = 0
        for instance_id in targets:
            try:
                pruned += self._prune_instance(instance_id, cutoff)
            except StoreError:
                continue  # busy or damaged: pruned next time, the others now
        return pruned

    def _prune_instance(self, instance_id: str, cutoff: datetime) -> int:
        pruned = 0
        with self.store.instance(instance_id, write=False) as uow:
            old = [d["id"] for status in SETTLED_STATUSES
                   for d in uow.webhook_events.find(status=status)
                   if _settled_before(d, cutoff)]
        if not old:
            return 0  # the usual case: no write unit, no lock taken
        with self.store.instance(instance_id) as uow:
            for event_id in old:
                doc = uow.webhook_events.get(event_id)
                # Redelivered since it was read: pending again, so it stays.
                if doc is not None and _settled_before(doc, cutoff):
                    uow.webhook_events.delete(event_id)
                    pruned += 1
            uow.commit()
        return pruned

    # -- the sender's side --------------------------------------------------------------------

    def pending_instances(self) -> list[str]:
        """The instances with an event still to send (the store may list more: see its
        `instances_with`)."""
        return sorted(self.store.instances_with("webhook_events", status="pending"))

    def due_in(self, instance_id: str, now: datetime | None = None,
               limit: int = 100) -> list[DueDelivery]:
        """One instance's attempts to make now, oldest first (none without an active
        endpoint)."""
        now = now or self.clock.now()
        with self.store.instance(instance_id, write=False) as uow:
            endpoint = uow.webhook_endpoints.get(ENDPOINT_ID)
            if endpoint is None or not endpoint.get("active", True):
                return []
            pending = uow.webhook_events.find(status="pending")
        if not pending:
            return []
        secret = self._unseal(instance_id, endpoint["secret_sealed"])
        found: list[DueDelivery] = []
        for doc in pending:
            at = parse_iso(doc.get("next_attempt_at"))
            if at is not None and at > now:
                continue
            body = {
                "id": doc["id"],
                "type": doc["type"],
                "created_at": doc["created_at"],
                "instance_id": instance_id,
                "data": doc.get("data") or {},
            }
            found.append(DueDelivery(
                instance_id, doc["id"], endpoint["url"], secret, body,
                int(doc.get("attempts", 0)) + 1, doc.get("next_attempt_at") or ""))
        found.sort(key=lambda d: d.due_at)
        return found[:limit]

    def due(self, now: datetime | None = None, limit: int = 100) -> list[DueDelivery]:
        """Attempts to make now, oldest first, across every instance with an endpoint."""
        now = now or self.clock.now()
        found = [d for i in self.pending_instances() for d in self.due_in(i, now, limit)]
        found.sort(key=lambda d: d.due_at)
        return found[:limit]

    def next_due_in(self, instance_id: str) -> datetime | None:
        """When the instance's earliest waiting attempt is due (None: nothing waits, or no
        active endpoint to send to); now for an event queued since its last look."""
        earliest: datetime | None = None
        now = self.clock.now()
        with self.store.instance(instance_id, write=False) as uow:
            endpoint = uow.webhook_endpoints.get(ENDPOINT_ID)
            if endpoint is None or not endpoint.get("active", True):
                return None
            for doc in uow.webhook_events.find(status="pending"):
                at = parse_iso(doc.get("next_attempt_at")) or now
                if earliest is None or at < earliest:
                    earliest = at
        return earliest

    def next_due_at(self, exclude: frozenset[str] = frozenset()) -> datetime | None:
        """When the earliest waiting attempt is due (None: nothing waits), leaving out the
        instances in `exclude` (the sender's, while it is sending to them)."""
        dues = [self.next_due_in(i) for i in self.pending_instances() if i not in exclude]
        return min((d for d in dues if d is not None), default=None)

    def record_attempt(
        self,
        instance_id: str,
        event_id: str,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> dict[str, Any] | None:
        """Keep what one attempt got; schedule the next one or give up."""
        now = self.clock.now()
        ok = status_code is not None and 200 <= status_code < 300
        with self.store.instance(instance_id) as uow:
            doc = uow.webhook_events.get(event_id)
            if doc is None or doc["status"] != "pending":
                return None
            attempts = int(doc.get("attempts", 0)) + 1
            history = list(doc.get("history") or [])
            history.append({"at": iso(now), "status_code": status_code,
                            "error": (error or "")[:200] or None, "duration_ms": duration_ms})
            doc.update(attempts=attempts, history=history[-HISTORY_KEPT:],
                       last_attempt_at=iso(now), last_status_code=status_code,
                       last_error=(error or "")[:200] or None)
            if ok:
                doc.update(status="delivered", delivered_at=iso(now), next_attempt_at=None)
            elif attempts >= self.policy.max_attempts:
                doc.update(status="failed", next_attempt_at=None)
            else:
                delay = min(self.policy.retry_base_seconds * 2 ** (attempts - 1),
                            self.policy.retry_max_seconds)
                doc["next_attempt_at"] = iso(now + timedelta(seconds=delay))
            uow.webhook_events.put(doc)
            uow.commit()
        return public_event(doc)


# (event, the order's timestamp that says it happened, the statuses it can be in since)
_ORDER_EVENTS = (
    ("order.paid", "paid_at", ("paid", "delivered", "waiting_stock", "refunded")),
    ("order.delivered", "delivered_at", ("delivered", "refunded")),
    ("order.refunded", "refunded_at", ("refunded",)),
)


def _settled_before(doc: dict[str, Any], cutoff: datetime) -> bool:
    if doc.get("status") not in SETTLED_STATUSES:
        return False
    at = parse_iso(doc.get("delivered_at") or doc.get("cancelled_at")
                   or doc.get("last_attempt_at") or doc.get("created_at"))
    return at is not None and at < cutoff


def _wants(endpoint: dict[str, Any] | None, event_type: str) -> bool:
    return (
        endpoint is not None
        and bool(endpoint.get("active", True))
        and event_type in (endpoint.get("events") or EVENT_TYPES)
    )


def _event_doc(eid: str, instance_id: str, event_type: str, data: dict[str, Any],
               now: datetime) -> dict[str, Any]:
    return {
        "id": eid,
        "type": event_type,
        "instance_id": instance_id,
        "data": data,
        "created_at": iso(now),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": iso(now),
        "history": [],
    }
