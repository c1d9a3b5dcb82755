"""The HTTP transport of the client stores: one keep-alive pool, failures translated once.

Every failure leaves this module as a CairnError: an error response becomes the class the
server raised (through ``cairn.errors.error_from_code``), and a network failure becomes
ServerUnavailable. Nothing here retries: the SDK's flusher retries a batch with the same
``batch_id``, which the server stores once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from cairn._version import __version__
from cairn.errors import CairnError, InvalidInput, ServerUnavailable, error_from_code

CONNECT_TIMEOUT = 5.0  # seconds: a server that is down must not hang the caller
READ_TIMEOUT = 120.0  # seconds: a large batch or search may take a while to answer
API = "/api/v1"
_GATEWAY_ERRORS = {502, 503, 504}  # a proxy in front of a server that is down
_DNS_FAILURES = ("name or service not known", "nodename nor servname", "getaddrinfo")


def api_path(*parts: str) -> str:
    """``/api/v1/<parts>``, each part quoted."""
    return "/".join([API, *(quote(part, safe=":") for part in parts)])


class HttpTransport:
    """JSON and streaming requests to a Cairn server, with its errors mapped back."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInput(
                f"server URL {base_url!r}: expected http:// or https://, "
                "such as http://127.0.0.1:5000"
            )
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": f"cairn/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        content: Any = None,
    ) -> Any:
        """Send a request; return its decoded JSON body, or None when it has none.

        Raises:
            CairnError: the class the server reported, or ServerUnavailable.
        """
        headers = {}
        if json is not None:
            content = orjson.dumps(json)
            headers["Content-Type"] = "application/json"
        with self._translated():
            response = self._client.request(
                method, path, params=params, content=content, headers=headers
            )
        raise_for_error(response, self.base_url)
        return orjson.loads(response.content) if response.content else None

    @contextmanager
    def stream(self, method: str, path: str) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives; network failures while the caller
        reads it are translated too."""
        with self._translated(), self._client.stream(method, path) as response:
            if response.is_error:
                response.read()
                raise_for_error(response, self.base_url)
            yield response

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as exc:
            raise ServerUnavailable(unavailable_message(exc, self.base_url)) from exc


def raise_for_error(response: httpx.Response, base_url: str) -> None:
    """Raises:
    CairnError: the response is not a success; the class is the one the server named.
    """
    if response.is_success:
        return
    error = _error_body(response)
    if error is not None:
        found = error_from_code(*error)
        if (retry_after := response.headers.get("retry-after", "")).isdigit():
            found.retry_after = int(retry_after)
        raise found
    status = response.status_code
    if status in _GATEWAY_ERRORS:
        raise ServerUnavailable(
            f"the Cairn server at {base_url} is unavailable (HTTP {status} from a proxy); retry"
        )
    raise CairnError(
        f"unexpected HTTP {status} from {response.request.method} {response.request.url}: "
        f"{response.text[:200]!r}; is {base_url} a Cairn server?"
    )


def unavailable_message(exc: httpx.TransportError, base_url: str) -> str:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return (
            f"cannot reach the Cairn server at {base_url} ({_connect_failure(exc)}); "
            "is `cairn server` running? (set by CAIRN_URI)"
        )
    if isinstance(exc, httpx.ReadTimeout):
        return (
            f"the Cairn server at {base_url} did not answer within {READ_TIMEOUT:g} s; "
            "retry, or look at the server's log"
        )
    return (
        f"lost the connection to the Cairn server at {base_url} ({str(exc) or type(exc).__name__})"
    )


def _connect_failure(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if any(marker in text for marker in _DNS_FAILURES):
        return "host name not found"
    return str(exc) or type(exc).__name__


def _error_body(response: httpx.Response) -> tuple[str, str] | None:
    """``(code, message)`` from a Cairn error body, or None for any other body."""
    try:
        error = orjson.loads(response.content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return error["code"], str(error.get("message", ""))
    return None


class ServerStore:
    """A store that lives on a Cairn server.

    Args:
        server: the server's URL, e.g. ``http://127.0.0.1:5000`` (``CAIRN_URI``), over a
            connection pool of this store's own; or an open transport shared with other
            stores (a session's), which its owner closes.
        token: with a URL, sent as ``Authorization: Bearer <token>`` when given.
    """

    def __init__(self, server: str | HttpTransport, token: str | None = None) -> None:
        self._owned = not isinstance(server, HttpTransport)
        self._http = HttpTransport(server, token) if isinstance(server, str) else server

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._http.base_url!r})"

    def close(self) -> None:
        if self._owned:
            self._http.close()
