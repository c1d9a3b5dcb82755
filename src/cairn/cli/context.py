"""The session the CLI works on: the SDK's, opened once from the configuration; or, for
a command given ``--db``, a session over that database itself (never through a server),
opened once per database and closed when the command exits."""

from __future__ import annotations

import atexit
import dataclasses

from cairn.config import load_settings
from cairn.sdk import session as _sdk_session
from cairn.session import Session

__all__ = ["session"]

_direct: dict[str, Session] = {}


def session(db: str | None = None) -> Session:
    """The SDK's session; with ``db``, a session over that database directly."""
    if db is None:
        return _sdk_session()
    if db not in _direct:
        settings = dataclasses.replace(load_settings(db=db), uri=None)
        if not _direct:
            atexit.register(close_direct)
        _direct[db] = Session(settings)
    return _direct[db]


def close_direct() -> None:
    """Close the sessions of commands given ``--db``."""
    while _direct:
        _direct.popitem()[1].close()
