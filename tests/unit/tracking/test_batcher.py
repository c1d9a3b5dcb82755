"""The background batcher: durable on flush, bounded, retried safely, loud when it fails."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping

import pytest

from cairn.core.run import MetricBatch, MetricPoint, MetricSeries
from cairn.errors import CairnError, InvalidInput, InvalidState, ServerUnavailable
from cairn.tracking.batcher import Batcher


class Recorder:
    """A writer that stores batches, optionally slowly or failing the first attempts."""

    def __init__(self, delay: float = 0.0, fail_first: int = 0, error: Exception | None = None):
        self.batches: list[tuple[list[MetricPoint], dict[str, str], dict[str, str], str]] = []
        self.delay, self.fail_first, self.error = delay, fail_first, error
        self.attempts: list[str] = []

    def __call__(
        self,
        metrics: MetricBatch,
        params: Mapping[str, str],
        tags: Mapping[str, str],
        batch_id: str,
    ) -> None:
        self.attempts.append(batch_id)
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        if len(self.attempts) <= self.fail_first:
            raise ServerUnavailable("cannot reach the Cairn server")
        points = [p for key, series in metrics.items() for p in _points(key, series)]
        self.batches.append((points, dict(params), dict(tags), batch_id))

    @property
    def points(self) -> list[MetricPoint]:
        return [p for batch in self.batches for p in batch[0]]


def _points(key: str, series: MetricSeries) -> list[MetricPoint]:
    return [(m.key, m.value, m.step, m.timestamp) for m in series.points(key)]


def test_flush_stores_everything_added_in_order() -> None:
    writer = Recorder()
    batcher = Batcher(writer, batch_size=100, interval=10)
    for step in range(1_000):
        batcher.add_metric("loss", float(step), step, 0)
    batcher.add_params({"lr": "0.1"})
    batcher.add_tags({"t": "v"})
    batcher.flush()
    assert [p[2] for p in writer.points] == list(range(1_000))
    assert {"lr": "0.1"} in [b[1] for b in writer.batches]
    batcher.close()


def test_a_full_buffer_makes_the_producer_wait_instead_of_growing() -> None:
    writer = Recorder(delay=0.05)
    batcher = Batcher(writer, batch_size=10, capacity=20, interval=10)
    for step in range(200):
        batcher.add_metric("x", 1.0, step, 0)
        assert batcher.queued <= 20
    batcher.close()
    assert len(writer.points) == 200


def test_unreachable_server_is_retried_with_the_same_batch_id() -> None:
    writer = Recorder(fail_first=2)
    batcher = Batcher(writer, interval=10)
    batcher.add_metric("x", 1.0, 0, 0)
    batcher.flush()
    assert len(writer.attempts) == 3
    assert len(set(writer.attempts)) == 1
    assert len(writer.points) == 1
    batcher.close()


def test_server_down_past_the_deadline_is_reported_with_what_was_lost() -> None:
    writer = Recorder(fail_first=10**6)
    batcher = Batcher(writer, interval=10, retry_for=0.3)
    batcher.add_metric("x", 1.0, 0, 0)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="1 metric points of this run were not stored"):
        batcher.flush()
    assert time.monotonic() - started < 5
    with pytest.raises(ServerUnavailable):
        batcher.add_metric("x", 1.0, 1, 0)


def test_a_refused_batch_is_raised_by_the_next_call_not_retried() -> None:
    writer = Recorder(error=InvalidInput("metrics key 'x': bad"))
    batcher = Batcher(writer, interval=0.05)
    batcher.add_metric("x", 1.0, 0, 0)
    deadline = time.monotonic() + 5
    while batcher._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(InvalidInput, match="bad"):
        batcher.add_metric("x", 1.0, 1, 0)
    assert len(writer.attempts) == 1


def test_background_thread_sends_without_flush() -> None:
    writer = Recorder()
    batcher = Batcher(writer, interval=0.05)
    batcher.add_metric("x", 1.0, 0, 0)
    deadline = time.monotonic() + 5
    while not writer.points and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.points == [("x", 1.0, 0, 0)]
    batcher.close()


def test_closed_batcher_refuses_more() -> None:
    batcher = Batcher(Recorder())
    batcher.close()
    with pytest.raises(InvalidState, match="ended"):
        batcher.add_metric("x", 1.0, 0, 0)


def test_concurrent_producers_lose_nothing_and_keep_each_point_whole() -> None:
    # Threads switch every few microseconds, so batches are cut between the appends of
    # one point's value, step and timestamp: each point must still arrive whole.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        writer = Recorder()
        batcher = Batcher(writer, batch_size=500, interval=0.001)

        def produce(offset: int) -> None:
            for step in range(offset, offset + 5_000):
                batcher.add_metric("x", float(step), step, step)

        threads = [threading.Thread(target=produce, args=(i * 10_000,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        batcher.close()
    finally:
        sys.setswitchinterval(interval)
    assert sorted(p[2] for p in writer.points) == sorted(
        i * 10_000 + s for i in range(4) for s in range(5_000)
    )
    assert all(value == step == stamp for _, value, step, stamp in writer.points)
    assert len(writer.batches) > 1


def test_a_writer_that_breaks_fails_the_run_instead_of_hanging_it() -> None:
    writer = Recorder(error=RuntimeError("bug in a writer"))
    batcher = Batcher(writer, batch_size=10, capacity=20, interval=10)

    def log_until_refused() -> None:
        for step in range(1_000):  # would wait for room forever if the failure were lost
            batcher.add_metric("x", 1.0, step, 0)

    with pytest.raises(CairnError, match="bug in a writer"):
        log_until_refused()
    with pytest.raises(CairnError, match="not stored"):
        batcher.flush()


def test_points_of_every_key_arrive_in_logged_order_across_batches() -> None:
    writer = Recorder(delay=0.01)
    batcher = Batcher(writer, batch_size=7, capacity=50, interval=10)
    for step in range(300):
        batcher.add_metric("a", 1.0, step, 0)
        if step % 3 == 0:
            batcher.add_metric("b", 2.0, step, 0)
    batcher.close()
    assert [p[2] for p in writer.points if p[0] == "a"] == list(range(300))
    assert [p[2] for p in writer.points if p[0] == "b"] == list(range(0, 300, 3))
    assert all(len(batch[0]) <= 7 for batch in writer.batches)
