"""Seller API: the wallet — balance and ledger, withdrawals by PIX and their cancellation."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from astra.domain.money import format_brl
from astra.domain.wallet import Withdrawal
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.reauth import sensitive_route
from astra.entrypoints.portal.seller_api import (
    blocking,
    container_of,
    read_body,
    respond,
    seller_route,
    user_id,
)


def withdrawal_json(w: Withdrawal | dict[str, Any]) -> dict[str, Any]:
    doc = w.to_doc() if isinstance(w, Withdrawal) else dict(w)
    doc["amount"] = format_brl(doc["amount_cents"])
    return doc


@seller_route(response=schemas.WALLET)
async def transactions(request: web.Request) -> web.Response:
    """Your balance and every ledger entry (sales, fees, withdrawals), newest first."""
    wallet = container_of(request).wallet()
    uid = user_id(request)
    balance = await blocking(wallet.balance, uid)
    entries = await blocking(wallet.ledger, uid)
    return respond({"balance_cents": balance, "balance": format_brl(balance), "entries": entries})


@seller_route(response=schemas.WITHDRAWAL_LIST)
async def list_withdrawals(request: web.Request) -> web.Response:
    """Your withdrawals and their status, newest first."""
    docs = await blocking(container_of(request).wallet().withdrawals, user_id=user_id(request))
    return respond({"withdrawals": [withdrawal_json(d) for d in docs]})


@sensitive_route(
    body=schemas.WITHDRAWAL_CREATE, response=schemas.WITHDRAWAL, status=201, errors=(409,)
)
async def request_withdrawal(request: web.Request) -> web.Response:
    """Ask to withdraw part of your balance to a PIX key.

    The PIX key is given with each withdrawal (there is no stored one to change), so this is
    the route that decides where money goes: it needs the session and your current password
    (`password`); API tokens are refused.
    """
    body = await read_body(request)
    w = await blocking(
        container_of(request).wallet().request_withdrawal,
        user_id(request),
        body["amount_cents"],
        body["pix_key"],
    )
    return respond(withdrawal_json(w), status=201)


@seller_route(response=schemas.WITHDRAWAL, errors=(409,))
async def cancel_withdrawal(request: web.Request) -> web.Response:
    """Cancel a withdrawal that was not paid yet (the amount returns to your balance)."""
    w = await blocking(
        container_of(request).wallet().cancel_withdrawal,
        user_id(request),
        request.match_info["withdrawal_id"],
    )
    return respond(withdrawal_json(w))
