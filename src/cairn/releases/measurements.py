"""Fresh evaluations as a process runs them for all its callers: a few at once, each one
measured once.

Each evaluation is a worker process, and a ``gate check`` needs only ``read``: without a
bound, callers who may only read could start as many processes as they send requests.
So at most ``slots`` measurements run at once, and one that finds none free waits for
one up to its time limit, then fails (:class:`~cairn.errors.ServerBusy`). The same
measurement (a key: the model's package digest, the table's digest and how it is scored)
is never run twice: asked while it runs, it waits for that run's answer, its result or
its failure; asked after it succeeded, it is answered from memory (the newest ``kept``).
A failure is not kept: it may have been the time limit, or the machine.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as StillRunning
from typing import Generic, TypeVar

from cairn.errors import ServerBusy

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
KEPT = 1024  # measurements remembered: a few floats each


class Measurements(Generic[K, V]):
    """Measurements by key, at most ``slots`` running at once, the newest ``kept`` of
    them remembered."""

    def __init__(self, slots: int, kept: int = KEPT) -> None:
        if slots < 1:
            raise ValueError("slots: expected 1 or more")
        self.slots, self._kept_most = slots, kept
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()  # guards the two maps
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._running: dict[K, Future[V]] = {}

    def get(self, key: K, measure: Callable[[], V], timeout: float) -> V:
        """The measurement of ``key``: remembered, awaited, or made now by ``measure``.

        Raises:
            ServerBusy: no slot came free, or the same measurement did not end, within
                ``timeout`` seconds.
            CairnError: what ``measure`` raised (for every caller that awaited it).
        """
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            running = self._running.get(key)
            mine = running is None
            if running is None:
                running = self._running[key] = Future()
        if not mine:
            return _awaited(running, timeout)
        try:
            value = self._measured(measure, timeout)
        except BaseException as exc:
            self._settle(key)
            running.set_exception(exc)
            raise
        self._settle(key, value)
        running.set_result(value)
        return value

    def _measured(self, measure: Callable[[], V], timeout: float) -> V:
        if not self._free.acquire(timeout=timeout):
            raise ServerBusy(
                f"no evaluation slot came free within {timeout:g} s ({self.slots} run at "
                "once, each in a worker process): try again later"
            )
        try:
            return measure()
        finally:
            self._free.release()

    def _settle(self, key: K, *value: V) -> None:
        """``key`` is no longer running; a measurement made is remembered."""
        with self._lock:
            del self._running[key]
            if value:
                self._kept[key] = value[0]
                while len(self._kept) > self._kept_most:
                    self._kept.popitem(last=False)


def _awaited(running: Future[V], timeout: float) -> V:
    try:
        return running.result(timeout=timeout)
    except StillRunning:
        raise ServerBusy(
            f"the same evaluation, asked for by another request, was still running after "
            f"{timeout:g} s: try again later"
        ) from None
