"""Time as Cairn records it: integer milliseconds since the epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from cairn.errors import InvalidInput


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_time(text: str, where: str) -> int:
    """``2026-10-01T12:00`` (UTC unless it says otherwise: ``…+02:00``) or ``2026-10-01``
    as milliseconds since the epoch.

    Raises:
        InvalidInput: not an ISO 8601 date or time, naming ``where`` (the option).
    """
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{where} {text!r}: expected an ISO 8601 time such as 2026-10-01T12:00 (UTC "
            "unless it says otherwise, as in 2026-10-01T12:00+02:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
