"""The payment gateway as an instance runtime sees it: the platform's internal API.

A tenant runtime holds no Mercado Pago token. It asks its platform (`ASTRA_PLATFORM_URL`) to
create, read and cancel charges for its own orders, authenticated by its instance key; the
platform checks each request against that instance's data before calling the real gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from astra.ports.payments import (
    Charge,
    ChargeChanges,
    ChargeRequest,
    GatewayError,
    GatewayUnavailable,
    Notification,
)

TIMEOUT_SECONDS = 15.0


def charge_from_doc(doc: dict[str, Any]) -> Charge:
    return Charge.from_doc(doc, default_provider="platform")


def request_to_doc(request: ChargeRequest) -> dict[str, Any]:
    return {
        "amount_cents": request.amount_cents,
        "description": request.description,
        "payer_email": request.payer_email,
        "expires_at": request.expires_at.isoformat(),
        "idempotency_key": request.idempotency_key,
        "external_reference": request.external_reference,
        "created_at": request.created_at.isoformat(),
        "metadata": dict(request.metadata),
    }


def request_from_doc(doc: Mapping[str, Any]) -> ChargeRequest:
    return ChargeRequest(
        amount_cents=int(doc["amount_cents"]),
        description=str(doc["description"]),
        payer_email=str(doc["payer_email"]),
        expires_at=datetime.fromisoformat(str(doc["expires_at"])),
        idempotency_key=str(doc["idempotency_key"]),
        external_reference=str(doc["external_reference"]),
        created_at=datetime.fromisoformat(str(doc["created_at"])),
        metadata={str(k): str(v) for k, v in dict(doc.get("metadata") or {}).items()},
    )


class PlatformGateway:
    """PaymentGateway over the platform's internal API (what a tenant runtime uses)."""

    name = "platform"

    def __init__(
        self, platform_url: str, instance_id: str, instance_key: str, *, simulated: bool = False
    ) -> None:
        self.base = f"{platform_url.rstrip('/')}/internal/instances/{instance_id}"
        self.simulated = simulated
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.headers["Authorization"] = f"Bearer {instance_key}"

    def __repr__(self) -> str:
        return f"PlatformGateway({self.base!r}, <key>)"

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any] | None:
        try:
            resp = self._session.request(
                method, self.base + path, json=body, timeout=TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise GatewayUnavailable(f"platform unreachable: {type(exc).__name__}") from None
        if resp.status_code == 404:
            return None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise GatewayUnavailable(f"platform answered {resp.status_code}")
        if resp.status_code >= 400:
            raise GatewayError(f"platform refused: {resp.status_code} {resp.text[:200]}")
        return resp.json()

    def create_charge(self, request: ChargeRequest) -> Charge:
        doc = self._call("POST", "/charges", request_to_doc(request))
        if doc is None:
            raise GatewayError("platform: the order is unknown")
        return charge_from_doc(doc)

    def get_charge(self, charge_id: str) -> Charge | None:
        doc = self._call("GET", f"/charges/{charge_id}")
        return charge_from_doc(doc) if doc else None

    def cancel_charge(self, charge_id: str) -> Charge | None:
        doc = self._call("POST", f"/charges/{charge_id}/cancel")
        return charge_from_doc(doc) if doc else None

    def refund_charge(self, charge_id: str, amount_cents: int | None = None) -> Charge:
        raise GatewayError("refunds are made by the platform, not by an instance runtime")

    def changed_charges(self, since: datetime, *, max_calls: int = 10) -> ChargeChanges:
        raise GatewayError("the platform reconciles payments, not an instance runtime")

    def parse_webhook(
        self, *, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Notification | None:
        raise GatewayError("webhooks reach the platform, not an instance runtime")
