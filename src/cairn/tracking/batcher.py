"""Background batching of a run's writes, so that logging never slows training.

``add_metric`` appends the point to its key's queue, a ``bytearray`` of fixed-size records
(value, step, timestamp), without taking a lock and returns in well under a microsecond.
A daemon thread takes up to ``batch_size`` points, a slice off the front of each key's
queue, and another sends them as one batch (one transaction, or one HTTP request) when
that many are waiting or every ``interval`` seconds. ``flush()`` sends whatever is queued
and returns once it is stored: that is the acknowledgement.

Records rather than a queue of tuples: forming a batch of 50,000 points is a few memory
copies, not 50,000 pops and three list builds in the interpreter the training loop shares.

The queues are bounded: a producer that outruns the store waits for room (back-pressure)
instead of growing memory without limit. A batch that fails because the server is
unreachable is retried with the same batch id (the store ignores a batch id it has
already stored), so a lost acknowledgement never duplicates points. A batch the store
refuses, or one that cannot be delivered before the retry deadline, is an error raised
by the next ``add_*``, ``flush()`` or ``close()``.
"""

from __future__ import annotations

import itertools
import struct
import threading
import time
import uuid
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

from cairn.core.limits import INT64_MAX, check_key, metric_step, metric_value
from cairn.core.run import MetricBatch, MetricPoint, MetricSeries
from cairn.errors import CairnError, InvalidInput, InvalidState, ServerUnavailable

_INT64 = INT64_MAX + 1  # the hot path checks -_INT64 <= n < _INT64 inline
_now_ns = time.time_ns


@dataclass(slots=True)
class Batch:
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    count: int = 0
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.count or self.params or self.tags)


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
        # Producers only append to these queues and count what they added; the taker
        # thread only cuts points off their front and counts what it took. Neither needs a
        # lock for that: see _Queue.
        self._queues: dict[str, _Queue] = {}
        self._appenders: dict[str, Callable[[bytes], None]] = {}
        self._added = itertools.count(1)  # next() is atomic: the running total added
        self._taken = 0  # points the sender has taken; written under _lock
        self._wake_at = batch_size  # the total at which a producer wakes the sender
        self._rotation = 0  # which key a batch starts with, so no key starves
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._full_batch_waiting = False
        self._take_lock = threading.Lock()
        # At most one formed batch waits while another is being stored: memory stays bounded.
        self._outbox: Queue[Batch | None] = Queue(maxsize=1)
        self._error: CairnError | None = None
        self._closed = False
        self._unusable = False  # error or closed: the one flag the hot path reads
        self._taker = threading.Thread(target=self._take_loop, name="cairn-batcher", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name="cairn-sender", daemon=True)
        self._taker.start()
        self._sender.start()

    def add_metric(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        """Check one point of a metric and queue it; NaN and ±inf are kept as such.

        This is ``ActiveRun.log_metric`` itself (bound, not wrapped: a training loop calls
        it millions of times): one flag, one lookup, the checks, one append, one count.

        Raises:
            InvalidInput: the key, value or step is not valid.
            CairnError: an earlier batch could not be stored, or the run has ended.
        """
        if self._unusable:
            self._raise_unusable()
        try:
            append = self._appenders[key]
        except (KeyError, TypeError):  # a new key, or an unhashable one
            append = self._new_key(key)
        if type(value) is not float:
            value = metric_value(value, key)
        if type(step) is not int or not -_INT64 <= step < _INT64:
            step = metric_step(step, key)
        if timestamp is None:
            timestamp = _now_ns() // 1_000_000
        elif type(timestamp) is not int or not -_INT64 <= timestamp < _INT64:
            raise InvalidInput(
                f"metrics[{key!r}]: timestamp must be whole milliseconds since the epoch "
                f"(a 64-bit integer), got {timestamp!r}"
            )
        append(_record(value, step, timestamp))  # cannot fail: every field was checked
        added = next(self._added)
        if added >= self._wake_at:
            self._full(added)

    def _new_key(self, key: object) -> Callable[[bytes], None]:
        key = check_key(key, "metrics")
        with self._lock:  # two producers may meet a new key at once: one queue
            if key not in self._queues:
                queue = _Queue()
                self._queues[key] = queue
                self._appenders[key] = queue.records.extend
            return self._appenders[key]

    def add_metrics(self, points: Sequence[MetricPoint]) -> None:
        """Queue points checked beforehand, so that a bad one queues none of them."""
        add = self.add_metric
        for key, value, step, timestamp in points:
            add(key, value, step, timestamp)

    def add_params(self, params: Mapping[str, str]) -> None:
        with self._lock:
            self._check_usable()
            self._params.update(params)

    def add_tags(self, tags: Mapping[str, str]) -> None:
        with self._lock:
            self._check_usable()
            self._tags.update(tags)

    def _full(self, added: int) -> None:
        """Wake the sender; if the queues are at capacity, wait until they have room."""
        with self._lock:
            self._full_batch_waiting = True
            self._wake.notify()
            while added - self._taken >= self._capacity and self._error is None:
                self._room.wait()
            self._check_usable()
            # The next check comes after a batch more, or sooner if that would pass capacity.
            room = self._capacity - (added - self._taken)
            self._wake_at = added + min(self._batch_size, room)

    @property
    def queued(self) -> int:
        """Points added and not yet taken into a batch."""
        return sum(len(queue) for queue in list(self._queues.values()))

    def flush(self) -> None:
        """Store everything added so far; return once it is durable.

        Raises:
            CairnError: a batch could not be stored (the message says why).
        """
        self._take_queued(until_empty=True)
        self._outbox.join()  # every batch taken so far has been stored or has failed
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Flush, then stop the background threads."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = self._unusable = True
                self._wake.notify_all()
                self._room.notify_all()
            self._outbox.put(None)
            for thread in (self._taker, self._sender):
                thread.join(timeout=self._interval + 5)

    def _check_usable(self) -> None:
        if self._unusable:
            self._raise_unusable()

    def _raise_unusable(self) -> None:
        if self._error is not None:
            raise self._error
        raise InvalidState("this run has ended; start a new run to log more")

    # The taker thread forms batches; the sender thread stores them, one at a time and in
    # order. While a batch is on its way to the store, the next one is being formed.

    def _take_loop(self) -> None:
        while True:
            with self._lock:
                if not self._closed and not self._full_batch_waiting:
                    self._wake.wait(timeout=self._interval)
                if self._closed:
                    return
                self._full_batch_waiting = False
            self._take_queued(until_empty=False)

    def _take_queued(self, until_empty: bool) -> None:
        """Hand batches to the sender until one is not full; ``until_empty`` also hands
        over a last partial one.

        A batch that is not full took every point its queues held, so once it is stored,
        everything added before the call is stored.
        """
        with self._take_lock:  # batches reach the outbox in the order they were taken
            while self._error is None:
                batch = self._take()
                if batch:
                    self._outbox.put(batch)  # waits while one batch is already waiting
                if batch.count < self._batch_size and (until_empty or not batch.count):
                    return

    def _take(self) -> Batch:
        """Up to ``batch_size`` queued points, grouped per key, and the params and tags."""
        batch = Batch()
        keys = list(self._queues.items())
        start = self._rotation % len(keys) if keys else 0
        self._rotation += 1
        budget = self._batch_size
        for key, queue in keys[start:] + keys[:start]:
            count = min(len(queue), budget)
            if count:
                batch.metrics[key] = queue.take(count)
                budget -= count
                if not budget:
                    break
        batch.count = self._batch_size - budget
        with self._lock:
            batch.params, self._params = self._params, {}
            batch.tags, self._tags = self._tags, {}
            self._taken += batch.count
            self._room.notify_all()
        return batch

    def _send_loop(self) -> None:
        while (batch := self._outbox.get()) is not None:
            try:
                if self._error is None:  # after a failure, later batches are not sent
                    self._deliver(batch)
            except CairnError as exc:
                self._fail(exc, batch)
            except Exception as exc:  # noqa: BLE001  # producers must not wait forever
                self._fail(CairnError(f"sending a batch failed: {exc!r}"), batch)
            finally:
                self._outbox.task_done()
        self._outbox.task_done()

    def _deliver(self, batch: Batch) -> None:
        batch_id = uuid.uuid4().hex
        deadline = time.monotonic() + self._retry_for
        delay = 0.1
        while True:
            try:
                self._write(batch.metrics, batch.params, batch.tags, batch_id)
                return
            except ServerUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _fail(self, exc: CairnError, batch: Batch) -> None:
        # What is lost: this batch, the one that may wait behind it, and what is queued.
        waiting = sum(b.count for b in list(self._outbox.queue) if b is not None)
        lost = batch.count + waiting + self.queued
        error = type(exc)(f"{exc.message} ({lost} metric points of this run were not stored)")
        with self._lock:
            self._error = error
            self._unusable = True
            self._room.notify_all()


class _Queue:
    """One key's queued points: records of (value, step, timestamp), native-endian double
    and two 64-bit integers, back to back; appended at the end by the producers and cut
    from the front by the taker.

    No lock is needed: a point is one ``extend`` and a batch one slice and one ``del``,
    each a single C call during which the GIL is held, so a point is either wholly in the
    queue or not at all (even with several producers on one key), and what a producer
    appends while the taker works lies beyond the records it cuts.
    """

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records = bytearray()

    def __len__(self) -> int:
        return len(self.records) // _RECORD.size

    def take(self, count: int) -> MetricSeries:
        """The first ``count`` points (at most ``len(self)``), removed from the queue, as
        columns."""
        size = count * _RECORD.size
        records = memoryview(self.records[:size])  # a copy: the queue itself stays resizable
        del self.records[:size]
        doubles, ints = records.cast("d"), records.cast("q")
        return MetricSeries(
            _column("d", doubles[0::3]), _column("q", ints[1::3]), _column("q", ints[2::3])
        )


_RECORD = struct.Struct("=dqq")  # one queued point: value, step, timestamp
_record = _RECORD.pack


def _column(typecode: str, strided: memoryview[Any]) -> array[Any]:
    column = array(typecode)
    column.frombytes(strided.tobytes())
    return column
