"""``cairn serve``: load the models named, then answer for them over HTTP until SIGINT or
SIGTERM (``cairn.server.model_server``)."""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import uvicorn

from cairn.errors import InvalidInput, ServerUnavailable
from cairn.server.model_server import DEFAULT_MAX_BODY, create_model_app
from cairn.serving.metrics import ServingMetrics
from cairn.serving.payloads import PayloadLog
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
    follow_seconds: float | None = 5.0,
    canaries: Sequence[str] = (),
    shadows: Sequence[str] = (),
    sticky_header: str = "x-request-id",
    log_sample: float = 1.0,
    grpc_port: int | None = None,
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
    served = load_served(session.models, references, canaries, shadows)
    metrics = ServingMetrics()
    payloads = None
    if log_sample > 0:
        payloads = PayloadLog(session.registry, session.artifacts, log_sample,
                              counted=metrics.payloads_counted)  # fmt: skip
    app = create_model_app(served, metrics, max_body=max_body, max_batch=max_batch,
                           max_wait_ms=max_wait_ms, follow_seconds=follow_seconds,
                           sticky_header=sticky_header, payloads=payloads)  # fmt: skip
    grpc = None
    if grpc_port is not None:
        from cairn.server.model_grpc import start_grpc

        grpc = start_grpc(served, host, grpc_port, metrics, payloads)
    names = ", ".join(f"{s.name} ({s.ref})" for s in served.values())
    names += "".join(f", canary {c.model.ref} at {c.share:.0%}"
                     for c in served.traffic.canaries.values())  # fmt: skip
    names += "".join(f", shadow {m.ref}" for m in served.traffic.shadows.values())
    grpc_at = "" if grpc_port is None else f", gRPC on {host}:{grpc_port}"
    print(f"Cairn model server on http://{host}:{port}{grpc_at}\n  serving: {names}",
          file=sys.stderr, flush=True)  # fmt: skip
    # The objects of the loaded models and libraries live as long as the server: keep them
    # out of the collector's full passes, which would otherwise pause answers for tens of
    # milliseconds now and then.
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(app, host=host, port=port, loop="auto", http="auto", log_level="warning")
    finally:
        if grpc is not None:
            grpc.stop(5)


def trial(session: Session, reference: str, rows: list[list[float]]) -> tuple[str, Any]:
    """Serve ``reference`` on a loopback port just long enough to score ``rows`` once over
    HTTP, as a client of ``cairn serve`` would (MLflow's protocol), and stop.

    Returns:
        The version that answered, and its predictions.
    Raises:
        CairnError: the model cannot be loaded, or the answer is an error.
    """
    import socket
    import threading

    import httpx

    app = create_model_app(load_served(session.models, [reference]), follow_seconds=None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, name="cairn-serve-trial", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise ServerUnavailable(f"the model server did not start on port {port}")
            time.sleep(0.01)
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"instances": rows})
        if answer.status_code != 200:
            raise InvalidInput(f"the model server answered {answer.status_code}: {answer.text}")
        return answer.headers["X-Model-Version"], answer.json()["predictions"]
    finally:
        server.should_exit = True
        thread.join(10)
