"""Domain errors: a stable code (for APIs and tests) and parameters (for the message)."""

from __future__ import annotations

from astra.domain.messages import DEFAULT_LANGUAGE, render


class DomainError(Exception):
    """A rule of the business said no. Nothing was changed."""

    http_status = 400

    def __init__(self, code: str, /, **params: object) -> None:
        self.code = code
        self.params = params
        super().__init__(self.message())

    def message(self, language: str = DEFAULT_LANGUAGE) -> str:
        return render(self.code, language, **self.params)


class InvalidInput(DomainError):
    http_status = 422


class NotFoundError(DomainError):
    http_status = 404

    def __init__(self, what: str, ident: str = "") -> None:
        super().__init__("not_found", what=what, ident=ident)


class OutOfStock(DomainError):
    http_status = 409


class LimitExceeded(DomainError):
    http_status = 409


class Forbidden(DomainError):
    http_status = 403


class CouponRejected(DomainError):
    http_status = 422


class CheckoutVetoed(DomainError):
    http_status = 409


class InvalidTransition(DomainError):
    http_status = 409


class InsufficientBalance(DomainError):
    http_status = 409


class PaymentUnavailable(DomainError):
    """The gateway could not make the charge now; the buyer can press "Pagar" again."""

    http_status = 503

    def __init__(self) -> None:
        super().__init__("payment_unavailable")
