"""The labels that came in late for logged requests, matched to the rows of a window."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import orjson

from cairn.core.monitor_api import LABELS_AT_ONCE

if TYPE_CHECKING:
    from cairn.core.ports import Monitors


def labels_of(monitors: Monitors, model: str, ids: np.ndarray) -> np.ndarray:
    """Each row's label (None where none has come): a request's one label for each of
    its rows, or its list of labels, one a row. ``ids`` is each row's request id, a
    request's rows together."""
    asked = sorted(set(ids.tolist()))
    kept: dict[str, str] = {}
    for at in range(0, len(asked), LABELS_AT_ONCE):
        kept |= monitors.labels(model, asked[at : at + LABELS_AT_ONCE])
    found = np.full(len(ids), None, dtype=object)
    at = 0
    while at < len(ids):
        request = ids[at]
        end = at
        while end < len(ids) and ids[end] == request:
            end += 1
        text = kept.get(str(request))
        if text is not None:
            value = orjson.loads(text)
            if isinstance(value, list) and len(value) == end - at:
                found[at:end] = value
            elif not isinstance(value, list):
                found[at:end] = [value] * (end - at)
        at = end
    return found
