"""``cairn serve``: load the models named, then answer for them over HTTP until SIGINT or
SIGTERM (``cairn.server.model_server``)."""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from cairn.config import Settings
from cairn.core.gates.canary import serving_share
from cairn.core.release import RequestState
from cairn.errors import InvalidInput, ServerUnavailable
from cairn.server.model_server import DEFAULT_MAX_BODY, create_model_app
from cairn.serving.metrics import MULTIPROCESS_DIR, ServingMetrics
from cairn.serving.payloads import PayloadLog
from cairn.serving.served import CanaryOf, ServedModels, load_served
from cairn.session import Session


@dataclass(frozen=True)
class ServeOptions:
    """How ``cairn serve`` serves (its options; see ``cairn serve --help``)."""

    references: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = DEFAULT_MAX_BODY
    max_batch: int = 64
    max_wait_ms: float = 2.0
    follow_seconds: float | None = 5.0
    canaries: tuple[str, ...] = ()
    shadows: tuple[str, ...] = ()
    sticky_header: str = "x-request-id"
    log_sample: float = 1.0
    grpc_port: int | None = None
    workers: int = 1
    monitor: bool = False  # evaluate the monitors when due, in the serving process
    monitor_interval: float = 60.0


def serve_models(session: Session, options: ServeOptions) -> None:
    """Serve the models ``options.references`` name, from the session's stores (embedded,
    or a Cairn server's through ``CAIRN_URI``), loaded through its model service, until
    SIGINT or SIGTERM.

    With ``options.workers`` above 1, that many processes answer on the port, each with the
    models loaded (a worker that dies is replaced); /metrics counts for them all.

    Raises:
        InvalidInput, NotFound, UntrustedModel, IntegrityError: a model cannot be loaded
            (before the server listens).
    """
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if options.monitor and options.workers > 1:
        raise InvalidInput("--monitor: the monitors run in a server of one worker; beside "
                           "several, run `cairn monitor daemon`")  # fmt: skip
    served = load_served(session.models, options.references, options.canaries, options.shadows,
                         _environment_canaries(session))  # fmt: skip
    _announce(served, options)
    if options.workers == 1:
        metrics = ServingMetrics()
        app, grpc = _model_app(session, served, options, metrics)
        monitors = None
        if options.monitor:
            from cairn.monitoring.schedule import MonitorGauges, Scheduler

            gauges = MonitorGauges(metrics.registry)
            monitors = Scheduler(session.monitoring, options.monitor_interval, gauges,
                                 session.releases).start()  # fmt: skip
        try:
            uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
        finally:
            if grpc is not None:
                grpc.stop(5)
            if monitors is not None:
                monitors.stop()
        return
    # Each worker loads the models itself: the ones loaded here showed they load, before
    # anything listens, and go.
    del served
    with tempfile.TemporaryDirectory(prefix="cairn-serve-metrics-") as counted:
        # prometheus-client counts in files there, each worker its own, read together.
        os.environ.setdefault(MULTIPROCESS_DIR, counted)
        config = uvicorn.Config(partial(_worker_app, session.settings, options), factory=True,
                                host=options.host, port=options.port,
                                workers=options.workers, log_level="warning")  # fmt: skip
        Multiprocess(config, sockets=[config.bind_socket()]).run()


def _model_app(
    session: Session, served: ServedModels, options: ServeOptions, metrics: ServingMetrics
) -> tuple[ASGIApp, Any]:
    """The model server's app over ``served``, and its gRPC server (started) if asked."""
    payloads = None
    if options.log_sample > 0:
        payloads = PayloadLog(session.registry, session.artifacts, options.log_sample,
                              counted=metrics.payloads_counted)  # fmt: skip
    app = create_model_app(served, metrics, max_body=options.max_body,
                           max_batch=options.max_batch, max_wait_ms=options.max_wait_ms,
                           follow_seconds=options.follow_seconds,
                           sticky_header=options.sticky_header, payloads=payloads)  # fmt: skip
    grpc = None
    if options.grpc_port is not None:
        from cairn.server.model_grpc import start_grpc

        grpc = start_grpc(served, options.host, options.grpc_port, metrics, payloads)
    # The objects of the loaded models and libraries live as long as the server: keep them
    # out of the collector's full passes, which would otherwise pause answers for tens of
    # milliseconds now and then.
    gc.collect()
    gc.freeze()
    return app, grpc


def _worker_app(settings: Settings, options: ServeOptions) -> ASGIApp:
    """One worker's app (called in the worker's process): its own session and models."""
    session = Session(settings)
    served = load_served(session.models, options.references, options.canaries,
                         options.shadows, _environment_canaries(session))  # fmt: skip
    app, grpc = _model_app(session, served, options, ServingMetrics())
    if grpc is not None:
        atexit.register(grpc.stop, 5)
    atexit.register(mark_process_dead, os.getpid())  # its live gauges are no longer counted
    return app


def _environment_canaries(session: Session) -> CanaryOf:
    """The canary an environment runs for a model (a promotion request serving as one),
    looked up through the session's release governance, embedded or a server's."""

    def canary_of(model: str, environment: str) -> tuple[int, float] | None:
        found = session.releases.list_requests(environment, model, RequestState.CANARY)
        share = serving_share(found[0].gates) if found else None
        return None if share is None else (found[0].version, share)

    return canary_of


def _announce(served: ServedModels, options: ServeOptions) -> None:
    names = ", ".join(f"{s.name} ({s.ref})" for s in served.values())
    names += "".join(f", canary {c.model.ref} at {c.share:.0%}"
                     for c in served.traffic.canaries.values())  # fmt: skip
    names += "".join(f", shadow {m.ref}" for m in served.traffic.shadows.values())
    grpc_at = "" if options.grpc_port is None else f", gRPC on {options.host}:{options.grpc_port}"
    workers = "" if options.workers == 1 else f", {options.workers} workers"
    print(f"Cairn model server on http://{options.host}:{options.port}{grpc_at}{workers}\n"
          f"  serving: {names}", file=sys.stderr, flush=True)  # fmt: skip


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
