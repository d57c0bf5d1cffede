"""The payment gateway port: PIX charges, their status, refunds, and webhook verification.

Synchronous, like the store: the official Mercado Pago SDK is blocking, and the services that use
this port run in worker threads (`asyncio.to_thread`) called from the async entrypoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class ChargeStatus(StrEnum):
    """Mercado Pago's nine payment statuses, as Astra reads them."""

    PENDING = "pending"  # waiting for the PIX transfer
    APPROVED = "approved"  # money received
    AUTHORIZED = "authorized"  # reserved, not captured (not used by PIX)
    IN_PROCESS = "in_process"  # under review
    IN_MEDIATION = "in_mediation"  # a dispute is open
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # cancelled by us, or expired unpaid
    REFUNDED = "refunded"
    CHARGED_BACK = "charged_back"


PAID_CHARGE_STATUSES = (ChargeStatus.APPROVED,)
REVERSED_CHARGE_STATUSES = (ChargeStatus.REFUNDED, ChargeStatus.CHARGED_BACK)
FINAL_CHARGE_STATUSES = (
    ChargeStatus.REJECTED,
    ChargeStatus.CANCELLED,
    ChargeStatus.REFUNDED,
    ChargeStatus.CHARGED_BACK,
)


class GatewayError(Exception):
    """The gateway answered with an error that retrying will not fix (bad request, auth)."""


class GatewayUnavailable(GatewayError):
    """The gateway could not be reached or failed (timeout, 5xx): try again later."""


class InvalidWebhook(Exception):
    """A webhook whose signature, timestamp or shape is wrong. `status` is the HTTP answer."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class ChargeRequest:
    amount_cents: int
    description: str
    payer_email: str
    expires_at: datetime
    idempotency_key: str  # derived from what is paid for: a retried create never pays twice
    external_reference: str  # the order id, or the plan transaction id
    # When what is paid for was created: with expires_at it fixes the whole request, so a retry
    # sends the same bytes under the same idempotency key.
    created_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)  # kind, instance, order, buyer


@dataclass(frozen=True)
class CheckoutRequest:
    """A hosted card checkout (Mercado Pago Checkout Pro): one item, paid on the gateway's page,
    after which the payer comes back to `return_url` (with `?checkout=success|pending|failure`).
    The payment it produces carries `external_reference` and `metadata` like a PIX charge's, so
    it settles through the same webhook / reconcile path."""

    amount_cents: int
    title: str
    payer_email: str
    external_reference: str
    idempotency_key: str
    return_url: str  # absolute
    created_at: datetime
    expires_at: datetime
    item_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckoutLink:
    id: str  # the preference id
    init_point: str  # where to send the payer
    sandbox_init_point: str = ""  # the gateway's test checkout (test credentials)


@dataclass(frozen=True)
class Charge:
    id: str
    status: ChargeStatus
    amount_cents: int
    external_reference: str
    metadata: dict[str, Any]
    qr_code: str = ""  # PIX copy-paste code (BR Code)
    qr_code_png_base64: str = ""
    ticket_url: str = ""
    expires_at: str | None = None
    approved_at: str | None = None
    refunded_cents: int = 0
    provider: str = "mercadopago"
    raw_status_detail: str = ""

    @classmethod
    def from_doc(cls, doc: dict[str, Any], *, default_provider: str = "") -> Charge:
        """The inverse of `to_doc`: a charge as an order, a plan transaction or the internal
        API stored or sent it."""
        return cls(
            id=str(doc["id"]), status=ChargeStatus(doc["status"]),
            amount_cents=int(doc["amount_cents"]),
            external_reference=str(doc.get("external_reference") or ""),
            metadata=dict(doc.get("metadata") or {}), qr_code=doc.get("qr_code") or "",
            qr_code_png_base64=doc.get("qr_code_png_base64") or "",
            ticket_url=doc.get("ticket_url") or "", expires_at=doc.get("expires_at"),
            approved_at=doc.get("approved_at"),
            refunded_cents=int(doc.get("refunded_cents") or 0),
            provider=doc.get("provider") or default_provider,
            raw_status_detail=doc.get("status_detail") or "",
        )

    def to_doc(self, *, with_qr: bool = True) -> dict[str, Any]:
        doc = {
            "id": self.id,
            "status": str(self.status),
            "amount_cents": self.amount_cents,
            "external_reference": self.external_reference,
            "metadata": dict(self.metadata),
            "qr_code": self.qr_code,
            "ticket_url": self.ticket_url,
            "expires_at": self.expires_at,
            "approved_at": self.approved_at,
            "refunded_cents": self.refunded_cents,
            "provider": self.provider,
            "status_detail": self.raw_status_detail,
        }
        if with_qr:
            doc["qr_code_png_base64"] = self.qr_code_png_base64
        return doc


@dataclass(frozen=True)
class ChargeChanges:
    """What one look at the gateway's recently updated payments found."""

    charges: list[Charge]
    # The newest `date_last_updated` seen (None when nothing was found): where the next look
    # can start from.
    newest: datetime | None
    calls: int  # gateway requests it took (one, unless more changed than fit in a page)


@dataclass(frozen=True)
class Notification:
    """What a verified webhook says: only *which* payment changed. Its state is always fetched
    again from the gateway, never taken from the request body."""

    charge_id: str
    topic: str = "payment"
    action: str = ""


class PaymentGateway(Protocol):
    name: str
    simulated: bool  # True for the sandbox: panels show "approve" buttons, logs say so

    def create_charge(self, request: ChargeRequest) -> Charge:
        """Create a PIX charge. The same idempotency key returns the same charge."""
        ...

    def get_charge(self, charge_id: str) -> Charge | None:
        """The charge as the gateway sees it now, or None if it does not exist."""
        ...

    def create_checkout(self, request: CheckoutRequest) -> CheckoutLink:
        """A hosted card checkout (Mercado Pago: a Checkout Pro preference). The payment it
        produces is read like any charge (`get_charge`, `changed_charges`, webhooks)."""
        ...

    def cancel_charge(self, charge_id: str) -> Charge | None:
        """Cancel a pending charge (a no-op for one that is not pending)."""
        ...

    def refund_charge(self, charge_id: str, amount_cents: int | None = None) -> Charge:
        """Refund in full (None) or in part."""
        ...

    def changed_charges(self, since: datetime, *, max_calls: int = 10) -> ChargeChanges:
        """Every charge whose state changed at or after `since`, oldest change first, in as
        few requests as the gateway allows (Mercado Pago's `/v1/payments/search`, ranged and
        sorted by `date_last_updated`, paged). Its cost grows with what changed, not with how
        many charges are open; past `max_calls` requests the rest is left for the next look
        (`newest` tells where to resume)."""
        ...

    def parse_webhook(
        self, *, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Notification | None:
        """Verify and read a webhook request. None for a notification about something that is
        not a payment (ignored with 200); InvalidWebhook for a forged or malformed one."""
        ...


# -- recurring card charges (subscriptions, issue 18) ------------------------------------------
# A gateway that can renew a subscription by card offers these too (Mercado Pago's preapproval);
# the sandbox does not, and the platform then does not offer card renewal.

RECURRING_TOPIC = "subscription_preapproval"
RECURRING_CHARGE_TOPIC = "subscription_authorized_payment"


@dataclass(frozen=True)
class RecurringRequest:
    reason: str
    payer_email: str
    amount_cents: int
    frequency_days: int
    start_at: datetime  # the first charge: the end of the period already paid
    external_reference: str  # "sub:<instance>:<subscription id>"
    back_url: str
    idempotency_key: str


@dataclass(frozen=True)
class Recurring:
    id: str
    status: str  # pending | authorized | paused | cancelled | finished
    external_reference: str
    amount_cents: int
    frequency_days: int
    init_point: str = ""  # where the buyer authorises the card


@dataclass(frozen=True)
class RecurringCharge:
    """One charge of a recurring authorisation, with the status of its payment."""

    id: str
    recurring_id: str
    payment_id: str
    payment_status: str  # approved | rejected | refunded | charged_back | ...
    amount_cents: int


class RecurringGateway(Protocol):
    def create_recurring(self, request: RecurringRequest) -> Recurring: ...

    def get_recurring(self, recurring_id: str) -> Recurring | None: ...

    def cancel_recurring(self, recurring_id: str) -> Recurring: ...

    def get_recurring_charge(self, charge_id: str) -> RecurringCharge | None: ...
