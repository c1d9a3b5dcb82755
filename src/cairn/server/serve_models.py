"""``cairn serve``: load the models named, then answer for them over HTTP until SIGINT or
SIGTERM (``cairn.server.model_server``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from cairn.server.model_server import DEFAULT_MAX_BODY, create_model_app
from cairn.serving.served import load_served
from cairn.session import Session


def serve_models(
    session: Session,
    references: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 8080,
    max_body: int = DEFAULT_MAX_BODY,
    max_batch: int = 1,
    max_wait_ms: float = 2.0,
) -> None:
    """Serve the models ``references`` name, from the session's stores (embedded, or a
    Cairn server's through ``CAIRN_URI``), loaded through its model service.

    Raises:
        InvalidInput, NotFound, UntrustedModel, IntegrityError: a model cannot be loaded
            (before the server listens).
    """
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    served = load_served(session.models, references)
    app = create_model_app(served, max_body=max_body, max_batch=max_batch,
                           max_wait_ms=max_wait_ms)  # fmt: skip
    names = ", ".join(f"{s.name} ({s.ref})" for s in served.values())
    print(f"Cairn model server on http://{host}:{port}\n  serving: {names}",
          file=sys.stderr, flush=True)  # fmt: skip
    uvicorn.run(app, host=host, port=port, loop="auto", http="auto", log_level="warning")
