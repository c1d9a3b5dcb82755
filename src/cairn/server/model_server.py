"""The model server: released models answering requests in the Open Inference Protocol v2
(``/v2/models/{name}/infer``, metadata, readiness, health) and MLflow's scoring protocol
(``/invocations``; with several models served, ``/models/{name}/invocations``), with
Prometheus metrics at ``/metrics``.

Every answer names the version that answered (``X-Model-Version: churn/3``, and the OIP
body's ``model_version``) and the request (``X-Request-Id``: the caller's, else a new one).
Bad input is a 4xx naming the field and what was expected — malformed JSON 400, a body over
the limit 413, an unknown model 404 — in each protocol's own error shape (OIP:
``{"error": …}``; MLflow: ``{"error_code": …, "message": …}``). A model that raises is a 500
with the request id and nothing of the traceback, which goes to the log; the server goes
on serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cairn._version import __version__
from cairn.errors import CairnError, InvalidInput, NotFound, PayloadTooLarge
from cairn.serving import mlflow_scoring, oip
from cairn.serving.batching import Batcher, rows_of
from cairn.serving.metrics import ServingMetrics
from cairn.serving.payloads import PayloadLog
from cairn.serving.served import ServedModel, ServedModels
from cairn.serving.tensors import as_list
from cairn.serving.traffic import new_request_id
from cairn.serving.traffic import request_id as request_id_of
from cairn.serving.watch import watch

logger = logging.getLogger(__name__)

OIP, MLFLOW = "oip", "mlflow"
DEFAULT_MAX_BODY = 16 * 1024 * 1024  # bytes
_INLINE_SECONDS = 0.002  # a prediction quicker than this (processor time) runs on the loop


class _Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def create_model_app(
    served: Mapping[str, ServedModel],
    metrics: ServingMetrics | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_batch: int = 1,
    max_wait_ms: float = 2.0,
    follow_seconds: float | None = None,
    sticky_header: str = "x-request-id",
    payloads: PayloadLog | None = None,
) -> ASGIApp:
    """A model server answering for ``served`` (by model name); the caller owns them.

    ``max_batch`` above 1 batches concurrent requests to a model (``cairn.serving.batching``)
    up to that many rows, waiting at most ``max_wait_ms`` for more. With
    ``follow_seconds``, the server resolves ``served``'s references again that often while
    it runs and switches to a version that moved (``cairn.serving.watch``). A canary's
    share of requests is chosen by ``sticky_header`` (else the request id): one value
    always goes to the same version. ``payloads`` logs each answered request (and each
    shadow's answer beside it) for monitoring; it is closed, what it gathered written, when
    the server stops.
    """
    metrics = metrics or ServingMetrics()
    metrics.loaded(served.values())
    if isinstance(served, ServedModels):
        traffic = served.traffic
        metrics.loaded([*(c.model for c in traffic.canaries.values()), *traffic.shadows.values()])
    score = _Scoring(served, metrics, max_body, max_batch, max_wait_ms / 1000, sticky_header,
                     payloads)  # fmt: skip

    @asynccontextmanager
    async def following(_: FastAPI) -> AsyncIterator[None]:
        stop = None
        if follow_seconds is not None and isinstance(served, ServedModels):
            stop = watch(served, follow_seconds, lambda new: metrics.loaded([new]))
        try:
            yield
        finally:
            if stop is not None:
                stop.set()
            if payloads is not None:
                await run_in_threadpool(payloads.close)

    app = FastAPI(title="Cairn model server", version=__version__, docs_url=None,
                  redoc_url=None, lifespan=following)  # fmt: skip

    @app.get("/v2/health/live")
    def live() -> Response:
        return _Json({"live": True})

    @app.get("/v2/health/ready")
    def ready() -> Response:
        return _Json({"ready": True})  # every model is loaded before the server listens

    @app.get("/v2")
    def server_metadata() -> Response:
        return _Json({"name": "cairn", "version": __version__, "extensions": []})

    @app.get("/v2/models/{name}")
    def model_metadata(name: str) -> Response:
        found = score.model(name, OIP)
        if isinstance(found, Response):
            return found
        body = oip.metadata(found.name, found.version, found.platform, found.signature)
        return _Json(body, headers={"X-Model-Version": found.ref})

    @app.get("/v2/models/{name}/ready")
    def model_ready(name: str) -> Response:
        found = score.model(name, OIP)
        if isinstance(found, Response):
            return found
        return _Json({"name": name, "ready": True}, headers={"X-Model-Version": found.ref})

    @app.get("/ping")
    def ping() -> Response:  # MLflow's health check
        return Response(status_code=200)

    @app.get("/metrics")
    def exposition() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return _ScoringFirst(app, score)


class _ScoringFirst:
    """The server's ASGI app: a scoring request (``POST /v2/models/{name}/infer``,
    ``/invocations``, ``/models/{name}/invocations``) goes straight to its handler, the rest
    to the FastAPI app. Scoring is the hot path, and each of FastAPI's layers (its
    middleware, its router's matching, its resolution of parameters) costs on every
    request; the handler reads the request and answers every error itself."""

    def __init__(self, app: FastAPI, score: _Scoring) -> None:
        self.app, self.score = app, score

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _scoring_route(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        name, protocol = found
        await (await self._answer(scope, receive, name, protocol))(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, name: str | None,
                      protocol: str) -> Response:  # fmt: skip
        if scope["method"] != "POST":
            return _Json({"error": f"{scope['path']} takes POST only"}, status_code=405,
                         headers={"Allow": "POST"})  # fmt: skip
        served = self.score.served
        if name is None:  # /invocations: the one model served
            if len(served) != 1:
                paths = ", ".join(f"/models/{n}/invocations" for n in served)
                refused = InvalidInput(f"this server serves {len(served)} models: post to "
                                       f"one of {paths}")  # fmt: skip
                return self.score.error(MLFLOW, refused, None)
            name = next(iter(served))
        return await self.score(Request(scope, receive), name, protocol)


def _scoring_route(scope: Scope) -> tuple[str | None, str] | None:
    """(model name, protocol) of a scoring route (name None: the one served); None: not
    one, which the FastAPI app answers."""
    path: str = scope["path"]
    if path == "/invocations":
        return None, MLFLOW
    for prefix, suffix, protocol in _SCORING:
        if path.startswith(prefix) and path.endswith(suffix):
            name = path[len(prefix) : len(path) - len(suffix)]
            if name and "/" not in name:
                return name, protocol
    return None


_SCORING = (("/v2/models/", "/infer", OIP), ("/models/", "/invocations", MLFLOW))


_DECODE: dict[str, Callable[[Any, Any], tuple[Any, str | None]]] = {
    OIP: oip.model_input,
    MLFLOW: lambda spec, body: (mlflow_scoring.model_input(spec, body), None),
}


class _Scoring:
    """Answering one request: read the body (within the limit), decode it in the request's
    protocol, predict in a worker thread, encode, and count it."""

    def __init__(self, served: Mapping[str, ServedModel], metrics: ServingMetrics,
                 max_body: int, max_batch: int, max_wait: float,
                 sticky_header: str, payloads: PayloadLog | None) -> None:  # fmt: skip
        self.served, self.metrics, self.max_body = served, metrics, max_body
        self.max_batch, self.max_wait = max_batch, max_wait
        self.batchers: dict[str, Batcher] = {}  # by version: a switch starts a new one
        self.traffic = served.traffic if isinstance(served, ServedModels) else None
        self.sticky = sticky_header
        self._shadowing: set[asyncio.Task[None]] = set()
        self.payloads = payloads
        # A few threads predict: the model holds the GIL most of the time, so more would
        # only take turns at it, each turn a switch (a thread per request thrashes).
        self._predicting = ThreadPoolExecutor(min(4, os.cpu_count() or 1), "cairn-predict")
        self._quick: dict[str, float] = {}  # seconds a version's predict takes, on average
        self._observers: dict[str, Callable[[int, float], None]] = {}  # batch sizes, by model

    def model(self, name: str, protocol: str) -> ServedModel | Response:
        found = self.served.get(name)
        if found is None:
            known = ", ".join(sorted(self.served))
            return self.error(protocol, NotFound(f"model {name!r} is not served here "
                                                 f"(served: {known})"), None)  # fmt: skip
        return found

    async def __call__(self, request: Request, name: str, protocol: str) -> Response:
        try:
            request_id = request_id_of(request.headers.get("x-request-id"), "X-Request-Id")
        except InvalidInput as exc:
            request_id = new_request_id()
            refused = self.error(protocol, exc, None)
            refused.headers["X-Request-Id"] = request_id
            return refused
        found = self.model(name, protocol)
        if isinstance(found, Response):
            found.headers["X-Request-Id"] = request_id
            return found
        if self.traffic is not None:  # a canary's share of the requests, by their key
            found = self.traffic.route(found, request.headers.get(self.sticky) or request_id)
        in_flight = self.metrics.in_flight_of(name)
        in_flight.inc()
        started = time.perf_counter()
        batcher = self._batcher(found)
        try:
            if batcher is None:
                response = await self._answer(request, found, protocol, request_id)
            else:
                with batcher.arriving():
                    response = await self._answer(request, found, protocol, request_id)
        finally:
            in_flight.dec()
        self.metrics.answered(name, found.version, protocol, str(response.status_code),
                              time.perf_counter() - started)  # fmt: skip
        response.headers["X-Request-Id"] = request_id
        response.headers["X-Model-Version"] = found.ref
        return response

    async def _answer(self, request: Request, served: ServedModel, protocol: str,
                      request_id: str) -> Response:  # fmt: skip
        try:
            body = orjson.loads(await self._body(request))
        except orjson.JSONDecodeError as exc:
            return self.error(protocol, InvalidInput(f"request body is not valid JSON ({exc})"),
                              request_id)  # fmt: skip
        except PayloadTooLarge as exc:
            return self.error(protocol, exc, request_id)
        try:
            data, oip_id = _DECODE[protocol](served.inputs, body)
            served.check(data)  # before it joins a batch: a bad request is refused alone
            predictions = await self._predict(served, data)
        except InvalidInput as exc:
            return self.error(protocol, exc, request_id)
        except Exception:  # the model's own failure: logged, never shown
            logger.exception("model %s failed on request %s", served.ref, request_id)
            return self.error(protocol, None, request_id)
        self._log(served, request_id, data, predictions)
        shadow = None if self.traffic is None else self.traffic.shadows.get(served.name)
        if shadow is not None:
            self._shadow(shadow, data, predictions, request_id)
        if protocol == OIP:
            return _Json(oip.answer(served.name, served.version, predictions, oip_id))
        return _Json(mlflow_scoring.answer(predictions))

    def _log(self, served: ServedModel, request_id: str, data: Any, answer: Any) -> None:
        if self.payloads is not None:
            version = served.model.version.version
            self.payloads.record(served.name, version, request_id, data, answer)

    def _shadow(self, shadow: ServedModel, data: Any, primary: Any, request_id: str) -> None:
        """Ask the shadow too, in the background, and count whether it answered the same;
        its answer is never returned."""

        async def ask() -> None:
            try:
                shadow.check(data)  # the primary's signature passed it; the shadow's may not
                found = await self._predict(shadow, data)
                outcome = "same" if _same(found, primary) else "different"
                self._log(shadow, request_id, data, found)  # beside the primary's
            except Exception:  # the shadow's failure is counted, not the caller's
                logger.exception("shadow %s failed", shadow.ref)
                outcome = "failed"
            self.metrics.shadowed.labels(shadow.name, shadow.version, outcome).inc()

        task = asyncio.get_running_loop().create_task(ask())
        self._shadowing.add(task)  # kept until done: the loop holds tasks weakly
        task.add_done_callback(self._shadowing.discard)

    def _batcher(self, served: ServedModel) -> Batcher | None:
        """The version's batcher (made on its first request); None: no batching."""
        if self.max_batch <= 1:
            return None
        found = self.batchers.get(served.ref)
        if found is None:
            observe = self.metrics.batched(served.name)
            found = Batcher(served.predict, self.max_batch, self.max_wait, observe)
            self.batchers[served.ref] = found
        return found

    async def _predict(self, served: ServedModel, data: Any) -> Any:
        batcher = self._batcher(served)
        if batcher is not None:
            return await batcher.predict(data)
        observe = self._observers.get(served.name)
        if observe is None:
            observe = self._observers[served.name] = self.metrics.batched(served.name)
        observe(rows_of(data), 0.0)
        if self._quick.get(served.ref, 1.0) < _INLINE_SECONDS:
            return self._timed(served, data)  # quicker than handing it to a thread
        return await asyncio.get_running_loop().run_in_executor(
            self._predicting, self._timed, served, data
        )

    def _timed(self, served: ServedModel, data: Any) -> Any:
        """Predict, and keep a moving average of how long the version takes: one that
        answers within two milliseconds predicts on the event loop, where a hand-off to a
        thread (a switch, and a wait for the interpreter lock) would cost a good part of
        the prediction; a slower one in a thread, so the loop stays free for other
        requests and health checks."""
        # The thread's own processor time: the wall clock would count the waits for the
        # interpreter lock under load, and send quick models to threads just when a
        # hand-off costs most.
        started = time.thread_time()
        try:
            return served.predict(data)
        finally:
            took = time.thread_time() - started
            before = self._quick.get(served.ref)
            self._quick[served.ref] = took if before is None else 0.9 * before + 0.1 * took

    async def _body(self, request: Request) -> bytes:
        """Raises:
        PayloadTooLarge: the body is over the server's limit (said before it is read, when
            its length is).
        """
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise _too_large(self.max_body)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(self.max_body)
            chunks.append(chunk)
        return b"".join(chunks)

    def error(self, protocol: str, error: CairnError | None, request_id: str | None) -> Response:
        """The protocol's error answer; ``error`` None: the model failed (500)."""
        if error is None:
            status = 500
            message = (
                f"the model failed on this request (request id {request_id}; see the server's log)"
            )
        else:
            status, message = error.http_status, error.message
        if protocol == OIP:
            return _Json({"error": message}, status_code=status)
        code = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST"}
        return _Json({"error_code": code.get(status, "INTERNAL_ERROR"), "message": message},
                     status_code=status)  # fmt: skip


def _same(one: Any, other: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(as_list(one)), np.asarray(as_list(other))))
    except (TypeError, ValueError):
        return False


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body: larger than this server takes ({limit:,} bytes; "
                        "see --max-body)")  # fmt: skip
