"""Record a pipeline experiment's history fast: pipeline runs of 10 step runs each, through
the store's batch ingest (``record_runs``), as ``cairn run`` records them.

    python benchmarks/_step_history.py ~/.cairn trivial 100000

Run with the ``PYTHONPATH`` of the Cairn whose home it writes (its schema and its
bookkeeping), through that home's session as any command would: its audit trail is
signed as it goes and when the session closes. Every step run is finished, under a cache
key of its own, with an output; the runs start after everything already in the store,
one millisecond apart.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

from cairn.config import load_settings
from cairn.core.run import NewRun, RunRecord, RunStatus
from cairn.session import Session
from cairn.stores.metadata.sql import SqlMetadataStore
from cairn.tracking.source import current_user

STEPS = 10
BATCH = 1_000  # runs per transaction


def _digest() -> str:
    return "blake3:" + os.urandom(32).hex()


def _pipeline_runs(experiment_id: str, user: str, start: int, count: int) -> list[RunRecord]:
    tags = {"cairn.pipeline": "history", "cairn.run.kind": "pipeline"}
    new = [NewRun(experiment_id, "history", start + i, user, tags=tags) for i in range(count)]
    return [RunRecord(run, RunStatus.FINISHED, run.start_time + STEPS) for run in new]


def _step_runs(experiment_id: str, user: str, parent: str, start: int) -> Iterator[RunRecord]:
    for index in range(STEPS):
        tags = {
            "cairn.step": f"step{index}", "cairn.step.state": "ran", "cairn.cache_key": _digest(),
            "cairn.output.digest": _digest(), "cairn.output.format": "json",
        }  # fmt: skip
        new = NewRun(experiment_id, f"step{index}", start + index, user, parent, tags=tags)
        yield RunRecord(new, RunStatus.FINISHED, start + index + 1)


def record_history(home: str, experiment: str, step_runs: int) -> None:
    session = Session(load_settings(home=home))
    store, url = session.database, session.settings.db_url
    found = store.get_experiment_by_name(experiment)
    target = found.id if found is not None else store.create_experiment(experiment).id
    user, start = current_user(), time.time_ns() // 1_000_000
    per_batch = BATCH // STEPS
    for first in range(0, step_runs // STEPS, per_batch):
        count = min(per_batch, step_runs // STEPS - first)
        parents = store.record_runs(_pipeline_runs(target, user, start + first * STEPS, count))
        steps = [
            record
            for parent in parents
            for record in _step_runs(target, user, parent.id, parent.start_time)
        ]
        store.record_runs(steps)
    session.close()  # signs what is not signed yet
    SqlMetadataStore(url).close()  # opening it takes the statistics SQLite's planner uses


if __name__ == "__main__":
    record_history(sys.argv[1], sys.argv[2], int(sys.argv[3]))
