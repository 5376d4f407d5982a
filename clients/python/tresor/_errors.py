"""Errors of the tresor API (SPEC §6, §8), rebuilt from the daemon's error body.

The daemon never puts a secret value in an error body, and nothing here adds one: messages
carry codes, names and reasons only.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type

__all__ = [
    "TresorError",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "Locked",
    "InvalidArgument",
    "Conflict",
    "Ambiguous",
    "PayloadTooLarge",
    "TooManyRequests",
    "Integrity",
    "Internal",
    "Unavailable",
    "DaemonUnavailable",
    "error_from_body",
]


class TresorError(Exception):
    """An error answered by tresord (or met on the way to it).

    Attributes:
        code: the API's snake_case error code (``not_found``, ``permission_denied``, ...).
        status: the HTTP status, or ``None`` when no answer came.
        message: the daemon's human message (never a value).
        details: the rest of the error body (``name``, ``reason``, ``references``, ...).
    """

    default_code = "internal"
    default_status: Optional[int] = 500

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        details: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message: str = message
        self.code: str = code if code is not None else self.default_code
        self.status: Optional[int] = status if status is not None else self.default_status
        self.details: Dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class NotFound(TresorError):
    """``not_found`` (404): no such secret, version, field, principal or route."""

    default_code = "not_found"
    default_status = 404


class PermissionDenied(TresorError):
    """``permission_denied`` (403): the caller's principal may not do this."""

    default_code = "permission_denied"
    default_status = 403


class Unauthenticated(TresorError):
    """``unauthenticated`` (401): unknown peer, bad bearer token, or wrong passphrase."""

    default_code = "unauthenticated"
    default_status = 401


class Locked(TresorError):
    """``locked`` (423): the daemon's store is locked (``tresor unlock``)."""

    default_code = "locked"
    default_status = 423


class InvalidArgument(TresorError):
    """``invalid_argument`` (400): a bad name, query, body or option."""

    default_code = "invalid_argument"
    default_status = 400


class Conflict(TresorError):
    """``conflict`` (409): e.g. deleting a secret that grants or references name."""

    default_code = "conflict"
    default_status = 409


class Ambiguous(Conflict):
    """``ambiguous`` (409): the name exists in two teams' scopes; pass ``scope=``.

    A subclass of :class:`Conflict` since both are HTTP 409.
    """

    default_code = "ambiguous"
    default_status = 409


class PayloadTooLarge(InvalidArgument):
    """``payload_too_large`` (413): a request body over 1 MiB."""

    default_code = "payload_too_large"
    default_status = 413


class TooManyRequests(TresorError):
    """``too_many_requests`` (429): back off; ``retry_after`` is in seconds."""

    default_code = "too_many_requests"
    default_status = 429

    @property
    def retry_after(self) -> Optional[float]:
        ms = self.details.get("retry_after_ms")
        return ms / 1000.0 if isinstance(ms, (int, float)) else None


class Integrity(TresorError):
    """``integrity`` (500): a record of the store failed authentication."""

    default_code = "integrity"
    default_status = 500


class Internal(TresorError):
    """``internal`` (500), or an answer this client cannot understand."""

    default_code = "internal"
    default_status = 500


class Unavailable(TresorError):
    """``unavailable`` (503): the store's disk failing, or an upstream unreachable."""

    default_code = "unavailable"
    default_status = 503


class DaemonUnavailable(TresorError):
    """Nothing answers on the socket (no daemon, it stopped, or it did not answer in time).

    ``socket_path`` is the path tried; it is also named in the message.
    """

    default_code = "daemon_unavailable"
    default_status = None

    def __init__(self, message: str, *, socket_path: str) -> None:
        super().__init__(message, details={"socket": socket_path})
        self.socket_path: str = socket_path


_BY_CODE: Dict[str, Type[TresorError]] = {
    cls.default_code: cls
    for cls in (
        NotFound,
        PermissionDenied,
        Unauthenticated,
        Locked,
        InvalidArgument,
        Conflict,
        Ambiguous,
        PayloadTooLarge,
        TooManyRequests,
        Integrity,
        Internal,
        Unavailable,
    )
}

_BY_STATUS: Dict[int, Type[TresorError]] = {
    404: NotFound,
    403: PermissionDenied,
    401: Unauthenticated,
    423: Locked,
    400: InvalidArgument,
    409: Conflict,
    413: PayloadTooLarge,
    429: TooManyRequests,
    503: Unavailable,
}


def error_from_body(status: int, body: Any) -> TresorError:
    """The exception for an error response: by the body's ``code``, else by HTTP status."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        cls = _BY_STATUS.get(status, Internal)
        return cls(f"tresord answered HTTP {status} without an error body", status=status)
    code: str = err["code"]
    message = err.get("message")
    if not isinstance(message, str) or not message:
        message = code.replace("_", " ")
    details = {k: v for k, v in err.items() if k not in ("code", "message")}
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, TresorError)
    return cls(message, code=code, status=status, details=details)
