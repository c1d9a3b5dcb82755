"""Who is acting: recorded on every audit event of the writes made on their behalf.

The server sets the actor (and the request id) for the duration of each request; embedded
use acts as the operating-system user. A context variable carries both, so the store
that writes the audit event in the change's transaction needs no extra arguments, and
each thread or task sees its own.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Acting:
    actor: str
    request_id: str | None = None


_acting: ContextVar[Acting | None] = ContextVar("cairn_acting", default=None)


@contextmanager
def acting_as(actor: str, request_id: str | None = None) -> Iterator[Acting]:
    acting = Acting(actor, request_id)
    token = _acting.set(acting)
    try:
        yield acting
    finally:
        _acting.reset(token)


def set_actor(actor: str) -> None:
    """Name the actor for the rest of the current context (a request, once authenticated)."""
    _acting.set(Acting(actor, current().request_id))


def current() -> Acting:
    """The actor set by ``acting_as``, else the local user (embedded use)."""
    acting = _acting.get()
    return acting if acting is not None else Acting(local_user())


def local_user() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "local:unknown"
