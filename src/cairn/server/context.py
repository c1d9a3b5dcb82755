"""Each request's id and actor (and, once authenticated, its principal), set for
everything the request does.

The id comes from the client's ``X-Request-ID`` when it sends a sensible one (so a proxy's
id carries through), else it is made here; it is returned in the response's
``X-Request-ID`` and recorded on the audit events of the request's writes. A plain ASGI
middleware: it adds nothing measurable to a request, unlike ``BaseHTTPMiddleware``.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.core.access import Principal
from cairn.core.actor import acting_as

# Until its caller is authenticated, a request acts as this principal, which holds no
# role: a write reached before authentication is refused by the store (deny by default).
UNAUTHENTICATED = "unauthenticated"
_NOBODY = Principal(UNAUTHENTICATED)
_HEADER = b"x-request-id"
_SENSIBLE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(_HEADER)
        request_id = given.decode() if given and _SENSIBLE_ID.fullmatch(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        with acting_as(UNAUTHENTICATED, request_id, _NOBODY):
            await self.app(scope, receive, send_with_id)
