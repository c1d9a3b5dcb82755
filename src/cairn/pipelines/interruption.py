"""A pipeline run stopped from outside ends honestly: the step runs it stopped are
recorded ``KILLED``, the pipeline run too, and the caller is told why.

Ctrl-C raises ``KeyboardInterrupt`` wherever the code is. SIGTERM and SIGHUP — what a
scheduler, a container runtime or a closed terminal sends — end a process on the spot by
default, with no chance to record anything; while a pipeline runs they are raised as
``Interrupted`` instead, in the main thread, unless the program installed a handler of
its own (or ignores them, as under ``nohup``). What no process can catch — SIGKILL,
``os._exit`` in the process that records the runs — still ends it on the spot.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_TERMINATING = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal. A KeyboardInterrupt, so that what stops on
    Ctrl-C stops on it too; ``message`` says which steps were killed."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        self.message = message or _cause(signum)
        super().__init__(self.message)

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process ended by the signal (130 for Ctrl-C)."""
        return 128 + self.signum


def stopped(interrupt: KeyboardInterrupt, killed: list[str], run_id: str) -> Interrupted:
    """The ``Interrupted`` that reports ``interrupt`` once the runs it stopped are ended:
    "interrupted: step train KILLED"."""
    if killed:
        what = f"step{'s' if len(killed) > 1 else ''} {', '.join(killed)} KILLED"
    else:  # between steps: only the pipeline run was open
        what = f"pipeline run {run_id[:12]} KILLED"
    return Interrupted(_signum(interrupt), f"{cause(interrupt)}: {what}")


def cause(interrupt: KeyboardInterrupt) -> str:
    """What stopped the run: "interrupted" (Ctrl-C), "terminated (SIGTERM)" …."""
    return _cause(_signum(interrupt))


@contextmanager
def terminating_interrupts() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise ``Interrupted`` (where they would end the
    process on the spot, and this is the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    replaced = {s: signal.getsignal(s) for s in _TERMINATING}
    for signum, handler in replaced.items():
        if handler is signal.SIG_DFL:
            signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, handler in replaced.items():
            if handler is signal.SIG_DFL:
                signal.signal(signum, handler)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _signum(interrupt: KeyboardInterrupt) -> int:
    return getattr(interrupt, "signum", signal.SIGINT)


def _cause(signum: int) -> str:
    if signum == signal.SIGINT:
        return "interrupted"
    return f"terminated ({signal.Signals(signum).name})"
