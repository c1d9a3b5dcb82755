"""A canary's live evidence: what each of two versions of a model answered since the
canary started, read from the payload log, and how well, measured on the requests whose
labels have come in (``cairn.core.gates.canary`` decides on it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from cairn.core.gates.canary import Live
from cairn.monitoring.labels import labels_of
from cairn.monitoring.logged import LoggedWindow, logged_window
from cairn.monitoring.performance import performance
from cairn.monitoring.window import PREDICTION, REQUEST_ID

if TYPE_CHECKING:
    from cairn.core.ports import ArtifactStore, ModelRegistry, Monitors

# (model, versions, since in ms, metric) -> each version's live figures
LiveTraffic = Callable[[str, Sequence[int], int, str], Mapping[int, Live]]


def live_traffic(registry: ModelRegistry, artifacts: ArtifactStore,
                 monitors: Monitors) -> LiveTraffic:  # fmt: skip
    """What a release service asks for a canary's evidence, read from these stores."""

    def live(model: str, versions: Sequence[int], since: int, metric: str) -> dict[int, Live]:
        window = logged_window(registry, artifacts, model, since)
        return {version: _measured(monitors, model, window, version, metric)
                for version in versions}  # fmt: skip

    return live


def _measured(monitors: Monitors, model: str, window: LoggedWindow, version: int,
              metric: str) -> Live:  # fmt: skip
    mine = window.versions == version
    if not mine.any():
        return Live(0, 0, None)
    ids = window.columns[REQUEST_ID][mine]
    requests = len(set(ids.tolist()))
    predictions = window.columns.get(PREDICTION)
    if predictions is None:  # answers of several outputs a row: no one metric to measure
        return Live(requests, 0, None)
    measured = performance(np.asarray(predictions[mine]), labels_of(monitors, model, ids))
    value = measured.get("realised", {}).get(metric)
    return Live(requests, int(measured.get("labelled", 0)), value)
