"""A canary's live evidence: what each of two versions of a model answered since the
canary started, read from the payload log, and how well, measured on the requests whose
labels have come in (``cairn.core.gates.canary`` decides on it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cairn.core.gates.canary import Live
from cairn.monitoring.labels import labels_of
from cairn.monitoring.performance import performance
from cairn.monitoring.window import PREDICTION, REQUEST_ID, window_columns
from cairn.serving.payloads import read_window

if TYPE_CHECKING:
    from cairn.core.ports import ArtifactStore, ModelRegistry, Monitors

# (model, versions, since in ms, metric) -> each version's live figures
LiveTraffic = Callable[[str, Sequence[int], int, str], Mapping[int, Live]]


def live_traffic(registry: ModelRegistry, artifacts: ArtifactStore,
                 monitors: Monitors) -> LiveTraffic:  # fmt: skip
    """What a release service asks for a canary's evidence, read from these stores."""

    def live(model: str, versions: Sequence[int], since: int, metric: str) -> dict[int, Live]:
        rows: dict[int, list[dict[str, Any]]] = {version: [] for version in versions}
        for row in read_window(registry, artifacts, model, since):
            if row["version"] in rows:
                rows[row["version"]].append(row)
        return {version: _measured(monitors, model, found, metric)
                for version, found in rows.items()}  # fmt: skip

    return live


def _measured(monitors: Monitors, model: str, rows: list[dict[str, Any]], metric: str) -> Live:
    if not rows:
        return Live(0, 0, None)
    columns = window_columns(rows)
    ids, predictions = columns[REQUEST_ID], columns.get(PREDICTION)
    if predictions is None:  # answers of several outputs a row: no one metric to measure
        return Live(len(rows), 0, None)
    measured = performance(np.asarray(predictions), labels_of(monitors, model, ids))
    value = measured.get("realised", {}).get(metric)
    return Live(len(rows), int(measured.get("labelled", 0)), value)
