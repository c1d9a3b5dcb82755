"""Who is acting: recorded on every audit event of the writes made on their behalf, and
authorized inside each write's transaction.

The server sets the actor, its principal and the request id for the duration of each
request; embedded use acts as the operating-system account the process runs as, with no
principal to check (it is the installation's only user and its admin). That account is the
process's real user id, looked up in the account database: never ``$USER`` or ``$LOGNAME``,
which whoever starts a process sets as they like. A context variable carries them, so the
store that authorizes the write and appends its audit event in the change's transaction
needs no extra arguments, and each thread or task sees its own.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from cairn.core.access import Principal


@dataclass(frozen=True, slots=True)
class Acting:
    actor: str
    request_id: str | None = None
    # Whose permissions a write needs; None: a trusted caller in the installation's own
    # process (the embedded local user, `cairn` commands given the database itself).
    principal: Principal | None = None


_acting: ContextVar[Acting | None] = ContextVar("cairn_acting", default=None)


@contextmanager
def acting_as(
    actor: str, request_id: str | None = None, principal: Principal | None = None
) -> Iterator[Acting]:
    acting = Acting(actor, request_id, principal)
    token = _acting.set(acting)
    try:
        yield acting
    finally:
        _acting.reset(token)


def set_principal(principal: Principal) -> None:
    """Act as ``principal`` for the rest of the current context (a request, once
    authenticated): it is the actor, and its permissions are checked on every write."""
    _acting.set(Acting(principal.name, current().request_id, principal))


def on_behalf_of(principal: Principal) -> AbstractContextManager[Acting]:
    """Act as ``principal`` within the block, keeping the request id."""
    return acting_as(principal.name, current().request_id, principal)


def current() -> Acting:
    """The actor set by ``acting_as``, else the local user (embedded use)."""
    acting = _acting.get()
    return acting if acting is not None else Acting(local_user())


def local_user() -> str:
    """The actor of embedded use: ``local:<account>``."""
    return f"local:{os_account()}"


def os_account() -> str:
    """The name of the account this process runs as (its real user id), or ``uid-<n>``
    for a user id with no name (common in containers)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"
