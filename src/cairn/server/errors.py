"""Every exception leaves the server as ``{"error": {"code": …, "message": …}}``.

The status and code of a Cairn error come from the error class itself (``ERRORS_BY_CODE``
in ``cairn.errors`` is the one table), so the HTTP client can raise the same class again.
Anything unexpected becomes a 500 ``INTERNAL`` whose message reveals nothing; Starlette
re-raises it after the response is sent, so the ASGI server logs the traceback. A database
that cannot be reached is a 503 whose message does not name it (the log does).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from cairn._version import __version__
from cairn.errors import CairnError, InvalidInput, PermissionDenied, StoreUnavailable
from cairn.server.responses import JsonResponse

INTERNAL = "INTERNAL"
_LOCATIONS = {"body", "query", "path", "header", "cookie"}
# A 400 of Starlette's own is a body it could not parse (nested too deep for the JSON
# decoder, say): bad input like any other.
_HTTP_CODES = {
    400: InvalidInput.code,
    404: "NO_ROUTE",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",  # a request body that stopped arriving (BodyIdleTimeout)
}
_NO_ROUTE = {404, 405}
logger = logging.getLogger("cairn.server")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CairnError, _cairn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)


def error_response(
    code: str, message: str, status: int, headers: Mapping[str, str] | None = None
) -> JsonResponse:
    body = {"error": {"code": code, "message": message}}
    return JsonResponse(body, status_code=status, headers=headers)


async def _cairn_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, CairnError):  # pragma: no cover - registered for CairnError
        raise exc
    message = exc.message
    if exc.http_status >= 500:
        # Server-side trouble (a corrupt object, a schema too new): the operator must know.
        logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    if isinstance(exc, StoreUnavailable):  # its message names the database's host
        message = "the server's metadata database is unavailable; retry later"
    identity = request.app.state.identity
    if isinstance(exc, PermissionDenied) and identity is not None:
        # An authenticated caller was refused: the trail records who tried what.
        what = f"{request.method} {request.url.path}"
        await run_in_threadpool(identity.record_denial, what, exc.message)
    retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return error_response(exc.code, message, exc.http_status, retry)


async def _validation_error(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return error_response(InvalidInput.code, describe_validation_errors(errors), 400)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        raise exc
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    if exc.status_code in _NO_ROUTE:
        message += f" on this Cairn server (version {__version__}); is the client newer?"
    return error_response(code, message, exc.status_code, exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error_response(INTERNAL, "internal server error; the server log has the details", 500)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One line naming the first offending field, e.g. ``limit: Input should be…``."""
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"request body is not valid JSON ({first.get('ctx', {}).get('error', '')})"
    location = [str(part) for part in first.get("loc", ())]
    inside = location[1:] if location and location[0] in _LOCATIONS else location
    field = ".".join(inside) or ".".join(location) or "request"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{field}: {first.get('msg')}{more}"
