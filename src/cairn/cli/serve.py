"""``cairn serve``: released models answering requests."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.cli.context import session
from cairn.errors import MissingExtra


def serve(
    references: Annotated[
        list[str],
        typer.Argument(
            help="Models to serve: churn@production, churn@champion, churn/3 …", show_default=False
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    max_body: Annotated[
        int, typer.Option(help="The largest request body taken, in bytes (larger: 413).", min=1)
    ] = 16 * 1024 * 1024,
    max_batch: Annotated[
        int,
        typer.Option(
            help="Combine concurrent requests to a model, up to this many rows (1: no batching).",
            min=1,
        ),
    ] = 64,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a batch waits for more requests, in ms.", min=0)
    ] = 2.0,
    follow: Annotated[
        float,
        typer.Option(
            help="How often to resolve the references again and switch to a "
            "version that moved, in seconds (0: never).",
            min=0,
        ),
    ] = 5.0,
    canary: Annotated[
        list[str] | None,
        typer.Option(
            help="A version taking a share of its model's requests: churn/4=10% (repeatable).",
            show_default=False,
        ),
    ] = None,
    shadow: Annotated[
        list[str] | None,
        typer.Option(
            help="A version getting a copy of each of its model's requests, its "
            "answer compared and counted, never returned (repeatable).",
            show_default=False,
        ),
    ] = None,
    sticky_header: Annotated[
        str,
        typer.Option(
            help="The header whose value sends a request to the canary or "
            "not, the same way every time."
        ),
    ] = "X-Request-Id",
    log_sample: Annotated[
        float,
        typer.Option(
            help="The share of answered requests logged for monitoring (0: none, 1: all).",
            min=0,
            max=1,
        ),
    ] = 1.0,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes answering on the port, each with the models loaded (a worker "
            "that dies is replaced).",
            min=1,
        ),
    ] = 1,
    grpc_port: Annotated[
        int | None,
        typer.Option(help="Also answer OIP v2's gRPC service on this port.", show_default=False),
    ] = None,
    monitor: Annotated[
        bool,
        typer.Option(
            help="Also evaluate the monitors when due, in this process, with their drift "
            "gauges at /metrics (one worker; beside several, run `cairn monitor daemon`)."
        ),
    ] = False,
    db: Annotated[
        str | None, typer.Option(help="Metadata database (default: the embedded one).")
    ] = None,
) -> None:
    """Serve models over HTTP: the Open Inference Protocol v2 (/v2/models/NAME/infer) and
    MLflow's scoring protocol (/invocations), with Prometheus metrics at /metrics."""
    try:
        from cairn.server.serve_models import ServeOptions, serve_models
    except ModuleNotFoundError as exc:
        raise MissingExtra(
            f"serving needs {exc.name!r}: pip install 'cairn-mlops[serving]'"
        ) from exc
    serve_models(session(db), ServeOptions(
        tuple(references), host, port, max_body, max_batch, max_wait_ms,
        follow_seconds=follow or None, canaries=tuple(canary or ()),
        shadows=tuple(shadow or ()), sticky_header=sticky_header.lower(),
        log_sample=log_sample, grpc_port=grpc_port, workers=workers, monitor=monitor,
    ))  # fmt: skip
