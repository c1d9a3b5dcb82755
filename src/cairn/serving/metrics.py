"""What a model server counts, in Prometheus's exposition (prometheus-client): requests by
model, version, protocol and status; their latency; requests in flight; how long each
model took to load; and which version each reference resolves to.

A server of several worker processes counts in files under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multiprocess mode), and each worker's /metrics reads them all: a
scrape sees the whole server, whichever worker answers it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from cairn.serving.served import ServedModel

# Latency buckets, seconds: a small model answers in well under a millisecond.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """A registry of its own, so two servers in one process (a test's) count apart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._answered: dict[tuple[str, str, str, str], tuple[Callable[[float], None], ...]] = {}
        self._in_flight: dict[str, Gauge] = {}
        labels = ("model", "version", "protocol", "status")
        self.requests = Counter("cairn_serving_requests", "Requests answered.", labels,
                                registry=self.registry)  # fmt: skip
        self.latency = Histogram(
            "cairn_serving_request_seconds", "Time from a request's body read to its answer.",
            ("model", "version", "protocol"), buckets=_LATENCY, registry=self.registry,
        )  # fmt: skip
        self.in_flight = Gauge("cairn_serving_requests_in_flight", "Requests being answered.",
                               ("model",), registry=self.registry,
                               multiprocess_mode="livesum")  # fmt: skip
        self.batch_rows = Histogram(
            "cairn_serving_batch_rows", "Rows in each predict call.", ("model",),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=self.registry,
        )  # fmt: skip
        self.queue_seconds = Histogram(
            "cairn_serving_queue_seconds", "How long a batch's oldest request waited.",
            ("model",), buckets=_LATENCY, registry=self.registry,
        )  # fmt: skip
        self.shadowed = Counter(
            "cairn_serving_shadow_requests", "Requests copied to a shadow, by how its answer "
            "compared with the primary's: same, different or failed.",
            ("model", "version", "outcome"), registry=self.registry,
        )  # fmt: skip
        self.payloads = Counter(
            "cairn_serving_payloads", "Answered requests logged for monitoring, or dropped "
            "(the log could not keep up, or could not write).",
            ("model", "outcome"), registry=self.registry,
        )  # fmt: skip
        self.load_seconds = Gauge("cairn_serving_model_load_seconds",
                                  "How long loading the served version took.",
                                  ("model", "version"), registry=self.registry,
                                  multiprocess_mode="livemax")  # fmt: skip
        self.resolved = Gauge("cairn_serving_model_version",
                              "The version each served reference resolves to.",
                              ("model", "reference"), registry=self.registry,
                              multiprocess_mode="livemostrecent")  # fmt: skip

    def answered(self, model: str, version: str, protocol: str, status: str,
                 seconds: float) -> None:  # fmt: skip
        """Count one answered request and how long it took."""
        key = (model, version, protocol, status)
        counted = self._answered.get(key)
        if counted is None:  # looked up once per label set: labels() costs on every request
            counted = (self.requests.labels(*key).inc,
                       self.latency.labels(model, version, protocol).observe)  # fmt: skip
            self._answered[key] = counted
        counted[0](1)
        counted[1](seconds)

    def in_flight_of(self, model: str) -> Gauge:
        """The model's requests-in-flight gauge."""
        found = self._in_flight.get(model)
        if found is None:
            found = self._in_flight[model] = self.in_flight.labels(model)
        return found

    def loaded(self, models: Iterable[ServedModel]) -> None:
        """Record each model's load time and the version its reference resolves to."""
        for served in models:
            self.load_seconds.labels(served.name, served.version).set(served.load_seconds)
            self.resolved.labels(served.name, served.reference).set(int(served.version))

    def batched(self, model: str) -> Callable[[int, float], None]:
        """What a model's batcher reports each batch to."""
        rows, waited = self.batch_rows.labels(model), self.queue_seconds.labels(model)

        def observe(count: int, seconds: float) -> None:
            rows.observe(count)
            waited.observe(seconds)

        return observe

    def payloads_counted(self, model: str, outcome: str, count: int) -> None:
        self.payloads.labels(model, outcome).inc(count)

    def exposition(self) -> bytes:
        if MULTIPROCESS_DIR not in os.environ:
            return generate_latest(self.registry)
        together = CollectorRegistry()
        MultiProcessCollector(together)  # type: ignore[no-untyped-call]
        return generate_latest(together)
