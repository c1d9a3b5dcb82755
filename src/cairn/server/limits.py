"""What one caller may hold of a server, so that no token holder can take it down.

- Worker threads are pools of their own: blocking work of the routes runs in AnyIO's
  default pool (``ServerLimits.threads``), authentication in ``AUTH_THREADS`` of its own,
  and uploads store their bytes in a pool as large as the number of upload slots. Nothing
  in any pool waits on a client: request bodies are read on the event loop
  (``cairn.server.streams``), so a slow or stalled client holds a connection, never a
  thread, and authentication never queues behind uploads or slow routes.
- ``UploadSlots``: uploads received at once, in all and per account; one more is answered
  503 ``SERVER_BUSY`` with ``Retry-After`` at once rather than queued.
- ``FailedAuthentications``: per client address, the first failures of a window are
  audited one by one; further failures are answered 429 ``TOO_MANY_FAILURES`` and counted,
  and the count is audited once (``auth.throttled``) when the window has closed. A valid
  token is still checked and accepted from a throttled address: clients behind one proxy
  share an address, and a flood of bad tokens from one of them must not lock out the rest.

The limits come from ``cairn.config.ServerLimits`` (``CAIRN_SERVER_*``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI

from cairn.config import ServerLimits
from cairn.core.actor import acting_as
from cairn.errors import ServerBusy, TooManyFailures

AUTH_THREADS = 8  # enough for token lookups, which take a millisecond each
_BUSY_RETRY_SECONDS = 5
logger = logging.getLogger("cairn.server")


class UploadSlots:
    """Uploads in progress, in all and per account. Used from the event loop only, so the
    counts need no lock."""

    def __init__(self, total: int, per_account: int) -> None:
        self.total = total
        self.per_account = per_account
        self._held: dict[str | None, int] = {}  # None: callers that are no account

    @contextmanager
    def taken(self, account: str | None) -> Iterator[None]:
        """Hold a slot for the duration of one upload.

        Raises:
            ServerBusy: the server, or ``account``, holds every slot it may.
        """
        self._check_free(account)
        self._held[account] = self._held.get(account, 0) + 1
        try:
            yield
        finally:
            self._held[account] -= 1

    def _check_free(self, account: str | None) -> None:
        if sum(self._held.values()) >= self.total:
            raise ServerBusy(
                f"the server is receiving {self.total} uploads, the most it takes at once; "
                "retry in a few seconds",
                retry_after=_BUSY_RETRY_SECONDS,
            )
        if account is not None and self._held.get(account, 0) >= self.per_account:
            raise ServerBusy(
                f"{account} is sending {self.per_account} uploads, the most one account may "
                "send at once; retry when one has finished",
                retry_after=_BUSY_RETRY_SECONDS,
            )


@dataclass
class _Window:
    opened: float
    audited: int = 0  # failures audited one by one, and places held by checks under way
    refused: int = 0  # failures answered 429, counted


class FailedAuthentications:
    """Failed authentications per client address, in fixed windows (see the module)."""

    def __init__(
        self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def admit(self, source: str) -> _Window | None:
        """Before a token from ``source`` is checked: the window whose budget will audit its
        failure, a place in it held (``release`` it when the token is good); None when the
        budget is spent, and a failure will be refused (``refuse``). Holding the place
        before the check keeps concurrent attempts within the budget."""
        window = self._window(source)
        if window.audited >= self.limit:
            return None
        window.audited += 1
        return window

    @staticmethod
    def release(window: _Window) -> None:
        """The token checked after ``admit`` was good: its place is free again."""
        window.audited -= 1

    def refuse(self, source: str) -> TooManyFailures:
        """The error for a failure beyond the budget of ``source``, counted."""
        window = self._window(source)
        if window.refused == 0:
            logger.warning("refusing failed authentications from %s for a while", source)
        window.refused += 1
        wait = math.ceil(window.opened + self.seconds - self._clock())
        return TooManyFailures(
            f"too many failed authentications from {source}: retry in {wait} s with a valid "
            "token (an admin makes one with `cairn tokens create`)",
            retry_after=max(1, wait),
        )

    def closed(self, now: float | None = None) -> list[tuple[str, int]]:
        """Forget the windows that have ended by ``now`` (default: the clock's now);
        ``(address, refused)`` of those that refused something, for the audit trail.
        Windows are kept in the order they opened: this looks only at the ended ones."""
        now = self._clock() if now is None else now
        ended: list[str] = []
        for source, window in self._windows.items():
            if window.opened + self.seconds > now:
                break
            ended.append(source)
        refused = [(source, self._windows.pop(source).refused) for source in ended]
        return [(source, count) for source, count in refused if count]

    def _window(self, source: str) -> _Window:
        """The open window of ``source``, opened if it has none."""
        now = self._clock()
        window = self._windows.get(source)
        if window is None or window.opened + self.seconds <= now:
            # Re-inserted at the end: the windows stay in the order they opened.
            self._windows.pop(source, None)
            window = self._windows[source] = _Window(now)
        return window


def install_limits(app: FastAPI, limits: ServerLimits) -> None:
    """Give the app its slots, budgets and pools (``app.state``)."""
    state = app.state
    state.limits = limits
    state.upload_slots = UploadSlots(limits.uploads, limits.uploads_per_account)
    state.upload_threads = CapacityLimiter(limits.uploads)
    state.auth_threads = CapacityLimiter(AUTH_THREADS)
    state.auth_failures = FailedAuthentications(limits.auth_failures, limits.auth_window_seconds)


async def audit_throttled(app: Any, now: float | None = None) -> None:
    """Audit the failures refused in each window closed by ``now`` (``auth.throttled``)."""
    identity = app.state.identity
    due = app.state.auth_failures.closed(now)
    if identity is None or not due:
        return
    seconds = app.state.limits.auth_window_seconds

    def record() -> None:
        with acting_as("system:server"):
            for source, refused in due:
                identity.record_throttled(source, refused, seconds)

    await to_thread.run_sync(record, limiter=app.state.auth_threads)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Size the default thread pool; at shutdown, audit what the last windows refused."""
    to_thread.current_default_thread_limiter().total_tokens = app.state.limits.threads
    yield
    await audit_throttled(app, now=math.inf)  # every window closes with the server
