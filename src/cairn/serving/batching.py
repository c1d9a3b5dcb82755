"""Adaptive batching: concurrent requests to one model combined into one ``predict``.

A request's rows wait in the model's queue; the first to arrive opens a batch, which
closes when it holds ``max_rows`` rows, when ``max_wait`` seconds have passed, or at once
when no other request to the model is on its way (being received or decoded) — so a lone
request waits for nothing — and runs as one call in a worker thread while the next batch
gathers. Each caller gets exactly its own rows
of the answer back. Requests are checked against the signature before they join, so a bad
one is refused alone; and when a combined call fails, or answers other than one row per
row, each request of the batch is run on its own, so one that makes the model fail fails
alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool


def rows_of(data: Any) -> int:
    """How many rows a model's input holds (an array's first dimension, a table's rows, a
    dict of arrays' first one's)."""
    if isinstance(data, Mapping):
        data = next(iter(data.values()))
    return len(data)


def combined(parts: list[Any]) -> Any:
    """The inputs of several requests as one (all of one shape: they passed one check)."""
    first = parts[0]
    if isinstance(first, Mapping):
        return {key: np.concatenate([part[key] for part in parts]) for key in first}
    if hasattr(first, "iloc"):  # a pandas DataFrame
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    return np.concatenate([np.asarray(part) for part in parts])


def split(answer: Any, sizes: list[int]) -> list[Any] | None:
    """The answer of a combined call, cut into each request's rows; None when it is not
    one row per row (it cannot be cut)."""
    if isinstance(answer, Mapping):
        columns = {key: split(value, sizes) for key, value in answer.items()}
        if any(parts is None for parts in columns.values()):
            return None
        return [{key: parts[i] for key, parts in columns.items()  # type: ignore[index]
                 } for i in range(len(sizes))]  # fmt: skip
    to_numpy = getattr(answer, "to_numpy", None)
    values = np.asarray(to_numpy() if to_numpy is not None else answer)
    if values.ndim == 0 or len(values) != sum(sizes):
        return None
    edges = np.cumsum(sizes)[:-1]
    return list(np.split(values, edges))


@dataclass
class _Waiting:
    data: Any
    rows: int
    answer: asyncio.Future[Any]
    since: float = field(default_factory=time.perf_counter)


Observe = Callable[[int, float], None]  # (rows in the batch, seconds the oldest waited)


class Batcher:
    """One model's queue of requests (``predict`` is the model's, run in a thread)."""

    def __init__(
        self, predict: Callable[[Any], Any], max_rows: int, max_wait: float, observe: Observe
    ) -> None:
        self._predict, self._max_rows, self._max_wait = predict, max_rows, max_wait
        self._observe = observe
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._on_the_way = 0  # requests received, not yet queued

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Around a request from its start until it is queued (or refused): a batch waits
        for it."""
        self._on_the_way += 1
        try:
            yield
        finally:
            self._on_the_way -= 1

    async def predict(self, data: Any) -> Any:
        """The model's answer for ``data``'s rows, computed with other requests' rows.

        Raises:
            Exception: what the model raised on these rows alone.
        """
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue), name="cairn-batcher")
        waiting = _Waiting(data, rows_of(data), loop.create_future())
        self._queue.put_nowait(waiting)
        self._on_the_way -= 1  # queued: no longer on its way (``arriving`` gives it back)
        try:
            return await waiting.answer
        finally:
            self._on_the_way += 1

    async def _run(self, queue: asyncio.Queue[_Waiting]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            rows, closes = batch[0].rows, loop.time() + self._max_wait
            while rows < self._max_rows:
                if queue.empty():  # wait for more until the batch closes
                    left = closes - loop.time()
                    if left <= 0 or self._on_the_way == 0:
                        break
                    try:
                        waiting = await asyncio.wait_for(queue.get(), left)
                    except TimeoutError:
                        break
                else:
                    waiting = queue.get_nowait()
                batch.append(waiting)
                rows += waiting.rows
            await self._answer(batch, rows)

    async def _answer(self, batch: list[_Waiting], rows: int) -> None:
        self._observe(rows, time.perf_counter() - batch[0].since)
        if len(batch) > 1:
            try:
                answer = await run_in_threadpool(self._predict, combined([w.data for w in batch]))
            except Exception:  # noqa: BLE001  # each is run alone below: whose rows failed
                answer = None
            parts = None if answer is None else split(answer, [w.rows for w in batch])
            if parts is not None:
                for waiting, part in zip(batch, parts, strict=True):
                    _settle(waiting, part, None)
                return
        for waiting in batch:
            try:
                _settle(waiting, await run_in_threadpool(self._predict, waiting.data), None)
            except Exception as exc:  # noqa: BLE001  # the caller's to report
                _settle(waiting, None, exc)


def _settle(waiting: _Waiting, answer: Any, error: BaseException | None) -> None:
    if waiting.answer.done():  # the caller went away
        return
    if error is not None:
        waiting.answer.set_exception(error)
    else:
        waiting.answer.set_result(answer)
