"""A webhook receiver on a local port, for the tests: it keeps what it is sent, and answers
with the status codes it is told to (then 200)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar


class Receiver(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []  # the next answers, then 200
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []  # headers and body

    def do_POST(self) -> None:  # the handler's protocol
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).answers.pop(0) if type(self).answers else 200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass

    @classmethod
    def wait_for(cls, count: int, seconds: float = 30.0) -> None:
        """Until ``count`` posts arrived (a server posts in the background)."""
        deadline = time.monotonic() + seconds
        while len(cls.received) < count:
            assert time.monotonic() < deadline, f"{len(cls.received)} of {count} posts arrived"
            time.sleep(0.05)


@contextmanager
def receiving() -> Iterator[tuple[str, type[Receiver]]]:
    """The receiver's URL and its class (with its own lists)."""
    handler = type("Receiving", (Receiver,), {"answers": [], "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()
