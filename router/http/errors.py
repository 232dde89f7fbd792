"""One error shape for every HTTP section: ``{"error": {"code", "field", "message"}}``.

A client that got something wrong learns what, and which field, from one JSON body
whatever section answered: 400 the body is not JSON (or not the shape asked for),
422 a field's value is invalid (``field`` names it, as a JSON path like
``messages[3].to``), 401 no token or an unknown one, 403 a token that may not do this,
404 nothing there, 405 wrong method, 413 the body is over ``[http] max_body_bytes``,
429 throttled, 503 the hub is stopping or overloaded. Sections raise
:class:`ApiError`; :func:`error_answer` turns it, aiohttp's own HTTP exceptions
and anything unexpected into that body, so no traceback ever reaches a client (an
unexpected one is logged with its traceback, and answered 500).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
import structlog
from aiohttp import web

__all__ = ["ApiError", "ErrorBody", "ErrorDetail", "error_answer", "error_response", "field_of",
           "decode_json"]

log = structlog.get_logger("smpphub.http")

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: the ``code`` of the errors aiohttp raises itself, by status
_CODES: dict[int, str] = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    408: "request_timeout", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid_field", 429: "throttled", 500: "internal", 503: "unavailable",
}


class ErrorDetail(msgspec.Struct, kw_only=True):
    code: str  # stable, for programs: "invalid_field", "unauthorized", "not_found", ...
    message: str  # for people
    field: str | None = None  # the JSON path of the field at fault, when one is


class ErrorBody(msgspec.Struct, kw_only=True):
    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success, raised anywhere below a handler."""

    def __init__(self, status: int, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or _CODES.get(status, "error")


_ENCODER = msgspec.json.Encoder()


def error_response(status: int, message: str, *, field: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code or _CODES.get(status, "error"), message=message, field=field))
    return web.Response(status=status, body=_ENCODER.encode(body), content_type="application/json",
                        headers=headers)


_AT = re.compile(r"^(?P<what>.*?) - at `\$(?P<path>[^`]*)`$", re.S)


def field_of(exc: msgspec.ValidationError, prefix: str = "") -> tuple[str | None, str]:
    """(field path, message) from msgspec's ``Expected `int`, got `str` - at `$.messages[3].to` ``.

    The path is written without the ``$.``: ``messages[3].to``; an unknown or missing
    field is named too (``messages[0].colour``).
    """
    text = str(exc)
    m = _AT.match(text)
    what, path = (m.group("what"), m.group("path").lstrip(".")) if m else (text, "")
    named = re.match(r"Object (?:contains unknown|missing required) field `(?P<name>[^`]*)`", what)
    if named:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    path = f"{prefix}{'.' if prefix and path and not path.startswith('[') else ''}{path}"
    return (path or None), what.replace("`", "")


def decode_json(body: bytes, type_: type[T]) -> T:
    """``body`` as a ``type_``: 400 when it is not JSON, 422 naming the field when a value is wrong.

    msgspec tells the two apart only by message: a body that is not JSON at all, or a
    JSON of the wrong shape at the top (an array for an object), is the client's
    malformed request (400); anything deeper is a field's fault (422).
    """
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        field, message = field_of(exc)
        if field is None:
            raise ApiError(400, f"the body is not the JSON object expected: {message}", code="bad_json") from None
        raise ApiError(422, f"{field}: {message}", field=field) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="bad_json") from None


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """``exc`` as the one JSON error shape (see the module docstring); raised again when it is not
    an error to answer (a redirect, a dropped connection). Call it from the ``except`` that caught
    ``exc``: an unexpected one is logged with its traceback."""
    if isinstance(exc, ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, field=exc.field, code=exc.code, headers=headers)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:  # redirects and the like pass as they are
            raise exc
        message = exc.reason if exc.status != 413 else "the request body is too large"
        allowed = exc.headers.get("Allow")
        return error_response(exc.status, message, headers={"Allow": allowed} if allowed else None)
    if isinstance(exc, ConnectionError):
        raise exc
    # a bug of ours: logged whole, answered without it
    log.exception("http_handler_failed", method=request.method, path=request.path)
    return error_response(500, "internal error (logged by the hub)")

