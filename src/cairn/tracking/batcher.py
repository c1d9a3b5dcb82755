"""Background batching of a run's writes, so that logging never slows training.

``add_*`` calls append to an in-memory buffer under a lock and return in about a
microsecond. A daemon thread sends the buffer as one batch (one transaction, or one HTTP
request) when it reaches ``batch_size`` points or every ``interval`` seconds. ``flush()``
sends whatever is buffered and returns once it is stored: that is the acknowledgement.

The buffer is bounded: a producer that outruns the store waits for room (back-pressure)
instead of growing memory without limit. A batch that fails because the server is
unreachable is retried with the same batch id (the store ignores a batch id it has
already stored), so a lost acknowledgement never duplicates points. A batch the store
refuses, or one that cannot be delivered before the retry deadline, is an error raised
by the next ``add_*``, ``flush()`` or ``close()``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cairn.core.run import MetricBatch, MetricPoint, MetricSeries
from cairn.errors import CairnError, InvalidState, ServerUnavailable


@dataclass(slots=True)
class Batch:
    # Points are grouped per key as they arrive, so the store receives one series per key
    # and never has to regroup a million points.
    metrics: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    count: int = 0
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.count or self.params or self.tags)

    def series(self) -> dict[str, MetricSeries]:
        return {
            key: MetricSeries([p[0] for p in ps], [p[1] for p in ps], [p[2] for p in ps])
            for key, ps in self.metrics.items()
        }


# (metrics, params, tags, batch_id) -> None; raises when the batch was not stored.
BatchWriter = Callable[[MetricBatch, Mapping[str, str], Mapping[str, str], str], None]


class Batcher:
    def __init__(
        self,
        write: BatchWriter,
        *,
        batch_size: int = 50_000,
        capacity: int = 500_000,
        interval: float = 1.0,
        retry_for: float = 60.0,
    ) -> None:
        self._write = write
        self._batch_size = batch_size
        self._capacity = capacity
        self._interval = interval
        self._retry_for = retry_for
        self._pending = Batch()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._send_lock = threading.Lock()  # one batch in flight, in order
        self._error: CairnError | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cairn-batcher", daemon=True)
        self._thread.start()

    def add_metric(self, key: str, value: float, step: int, timestamp: int) -> None:
        # The hot path: kept inline, one lock round trip, one lookup and one append.
        with self._lock:
            if self._error is not None or self._closed:
                self._raise_unusable()
            pending = self._pending
            points = pending.metrics.get(key)
            if points is None:
                points = pending.metrics[key] = []
            points.append((value, step, timestamp))
            pending.count += 1
            if pending.count >= self._batch_size:
                self._full()

    def add_metrics(self, points: Sequence[MetricPoint]) -> None:
        with self._lock:
            if self._error is not None or self._closed:
                self._raise_unusable()
            pending = self._pending
            for key, value, step, timestamp in points:
                pending.metrics.setdefault(key, []).append((value, step, timestamp))
            pending.count += len(points)
            if pending.count >= self._batch_size:
                self._full()

    def add_params(self, params: Mapping[str, str]) -> None:
        self._update(self._pending_params, params)

    def add_tags(self, tags: Mapping[str, str]) -> None:
        self._update(self._pending_tags, tags)

    def _pending_params(self) -> dict[str, str]:
        return self._pending.params

    def _pending_tags(self) -> dict[str, str]:
        return self._pending.tags

    def _update(self, target: Callable[[], dict[str, str]], values: Mapping[str, str]) -> None:
        with self._lock:
            if self._error is not None or self._closed:
                self._raise_unusable()
            target().update(values)

    def _full(self) -> None:
        """Wake the sender; if the buffer is at capacity, wait until it has room."""
        self._wake.notify()
        while self._pending.count >= self._capacity and self._error is None:
            self._room.wait()
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        """Store everything added so far; return once it is durable.

        Raises:
            CairnError: a batch could not be stored (the message says why).
        """
        self._send_pending()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Flush, then stop the background thread."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                self._wake.notify_all()
                self._room.notify_all()
            self._thread.join(timeout=self._interval + 5)

    def _raise_unusable(self) -> None:
        if self._error is not None:
            raise self._error
        raise InvalidState("this run has ended; start a new run to log more")

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._closed and self._pending.count < self._batch_size:
                    self._wake.wait(timeout=self._interval)
                if self._closed:
                    return
            self._send_pending()

    def _send_pending(self) -> None:
        with self._send_lock:
            with self._lock:
                batch, self._pending = self._pending, Batch()
                self._room.notify_all()
            if not batch or self._error is not None:
                return
            try:
                self._deliver(batch)
            except CairnError as exc:
                self._fail(exc, batch)

    def _deliver(self, batch: Batch) -> None:
        batch_id = uuid.uuid4().hex
        series = batch.series()
        deadline = time.monotonic() + self._retry_for
        delay = 0.1
        while True:
            try:
                self._write(series, batch.params, batch.tags, batch_id)
                return
            except ServerUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _fail(self, exc: CairnError, batch: Batch) -> None:
        lost = batch.count
        error = type(exc)(f"{exc.message} ({lost} metric points of this run were not stored)")
        with self._lock:
            self._error = error
            self._room.notify_all()
