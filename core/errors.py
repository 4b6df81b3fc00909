"""One error hierarchy for the gateway and core services; each protocol codec renders it in its own shape.

``code`` is the contract's code (OpenAI ``error.code``; named in the message in
the other shapes), ``kind`` the Anthropic ``error.type``. Whether an upstream
failure may be retried on another key or channel is decided in one place:
``is_retryable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict, Unpack

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "NOT_FOUND",  # Google answers an unsupported method on a known path as an unknown one
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}

ANTHROPIC_KIND = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class ErrorOptions(TypedDict, total=False):
    """``GatewayError``'s keyword arguments, for the subclasses that add their own."""

    status: int | None
    code: str | None
    param: str | None
    retry_after: int | None
    headers: Mapping[str, str] | None


class GatewayError(Exception):
    status = 500
    code = "internal_error"
    param: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if param is not None:
            self.param = param
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    @property
    def kind(self) -> str:
        """The Anthropic error type for this status."""
        return ANTHROPIC_KIND.get(self.status, "api_error" if self.status >= 500 else "invalid_request_error")

    @property
    def google_status(self) -> str:
        return GOOGLE_STATUS.get(self.status, "INTERNAL" if self.status >= 500 else "INVALID_ARGUMENT")


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_param"


class ContextTooLong(InvalidRequest):
    code = "context_length_exceeded"


class AuthError(GatewayError):
    status = 401
    code = "invalid_api_key"


class StalePrincipal(AuthError):
    """The key changed since the caller's copy was read: read it again and judge the call afresh."""

    code = "stale_key"


class InsufficientBalance(GatewayError):
    status = 402
    code = "insufficient_balance"


class QuotaExceeded(GatewayError):
    status = 402
    code = "quota_exceeded"


class PermissionDenied(GatewayError):
    status = 403
    code = "permission_denied"


class ModelNotInGroup(PermissionDenied):
    code = "model_not_in_group"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class TaskNotFound(NotFound):
    code = "task_not_found"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class TooLarge(GatewayError):
    status = 413
    code = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    code = "rate_limit_error"


class ConcurrencyLimited(RateLimited):
    code = "concurrency_limit"


class UpstreamError(GatewayError):
    """An upstream answered with an error or could not be reached.

    ``upstream_status`` is what the vendor said (None: no answer at all);
    ``status`` is what the caller will see once mapped. ``retry_after_s`` is
    how long the vendor asked before that key is tried again (its
    ``retry-after``; None: it did not say), which the router's key cooldown
    honours. Both are set where the vendor's answer is read, which may be after
    a codec built the error from the body alone.
    """

    status = 502
    code = "upstream_error"
    upstream_status: int | None
    retry_after_s: float | None  # the upstream's retry-after: how long the Router cools that key

    def __init__(self, message: str, *, upstream_status: int | None = None, retry_after_s: float | None = None,
                 **kw: Unpack[ErrorOptions]) -> None:
        super().__init__(message, **kw)
        self.upstream_status = upstream_status
        self.retry_after_s = retry_after_s


class NoChannel(GatewayError):
    status = 503
    code = "no_channel"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


RETRYABLE_UPSTREAM = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def is_retryable(err: BaseException) -> bool:
    """Whether another key or channel may be tried (only while no byte reached the client)."""
    if isinstance(err, UpstreamTimeout):
        return True
    if isinstance(err, UpstreamError):
        return err.upstream_status is None or err.upstream_status in RETRYABLE_UPSTREAM
    return False
