"""The metadata store over SQL: SQLite by default, PostgreSQL for teams.

:class:`SqlMetadataStore` opens the database (migrating it to the current schema) and
hands each method of the ports to the module that holds its aggregate:

- ``runs.py``: experiments and the lifecycle of runs, resolving id prefixes;
- ``recording.py``: ``log_batch`` (the ingest hot path) and metric history;
- ``search.py``: run searches, compiled to one SQL query;
- ``scopes.py``: which project an experiment, run, object or lineage node belongs to;
- ``run_artifacts.py``, ``inputs.py``: a run's artifact listing, inputs and lineage;
- ``pipelines.py``: cached step outputs and a run's child runs.

Writes happen in one transaction each (``engine.write_transaction``), so a failing batch
leaves nothing behind; the driver's errors are translated once, for every statement
(``driver_errors.py``). Every write appends to the audit trail; the store signs its head
when checkpoints are enabled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.run import ViewType
from cairn.stores.metadata import search
from cairn.stores.metadata.audit import (
    CHECKPOINT_EVERY_EVENTS,
    CHECKPOINT_EVERY_SECONDS,
    AuditLog,
    Checkpointer,
)
from cairn.stores.metadata.engine import open_engine
from cairn.stores.metadata.inputs import SqlRunInputs
from cairn.stores.metadata.migrate import ensure_schema
from cairn.stores.metadata.pipelines import SqlPipelineRuns
from cairn.stores.metadata.planner import PlannerStatistics
from cairn.stores.metadata.recording import SqlRecording
from cairn.stores.metadata.run_artifacts import SqlRunArtifacts
from cairn.stores.metadata.runs import SqlRuns
from cairn.stores.metadata.scopes import SqlProjectScopes

if TYPE_CHECKING:  # annotations only; cryptography loads when a key is used
    from cairn.core.access import Principal
    from cairn.core.artifact import ArtifactEntry
    from cairn.core.audit import AuditEvent
    from cairn.core.lineage import Node
    from cairn.core.run import (
        Experiment,
        Metric,
        MetricBatch,
        MetricPoint,
        NewRun,
        Run,
        RunRecord,
        RunStatus,
    )
    from cairn.core.search import RunPage, RunQuery
    from cairn.localfs.signing import SigningKey


class SqlMetadataStore:
    """The :class:`~cairn.core.ports.MetadataStore` and
    :class:`~cairn.core.ports.ProjectScopes` over a SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = open_engine(url)
        ensure_schema(self.engine, where=_safe_url(url))
        self._checkpointer: Checkpointer | None = None
        statistics = PlannerStatistics(self.engine)
        statistics.refresh()
        self._runs = SqlRuns(self.engine, self._audited, statistics.runs_added)
        self._recording = SqlRecording(self.engine, self._audited)
        self._artifacts = SqlRunArtifacts(self.engine, self._audited)
        self._inputs = SqlRunInputs(self.engine, self._audited)
        self._scopes = SqlProjectScopes(self.engine)
        self._pipelines = SqlPipelineRuns(self.engine)

    def enable_checkpoints(
        self,
        key: Callable[[], SigningKey],
        export_to: str,
        every_events: int = CHECKPOINT_EVERY_EVENTS,
        every_seconds: float = CHECKPOINT_EVERY_SECONDS,
    ) -> None:
        """Sign and export the audit trail's head every so many events, so many seconds
        after an unsigned write, and at close, with the key ``key()`` returns (called when
        the first checkpoint is due)."""
        self._checkpointer = Checkpointer(
            AuditLog(self.engine), key, export_to, every_events, every_seconds
        )

    def _audited(self, event: AuditEvent) -> None:
        """After the transaction that appended ``event`` has committed."""
        if self._checkpointer is not None:
            self._checkpointer.written(event)

    def __repr__(self) -> str:
        return f"SqlMetadataStore({_safe_url(self.url)!r})"

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()  # sign what was written since the last checkpoint
        self.engine.dispose()

    # experiments and runs (runs.py)

    def create_experiment(self, name: str, project: str = DEFAULT_PROJECT) -> Experiment:
        return self._runs.create_experiment(name, project)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._runs.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._runs.get_experiment_by_name(name)

    def list_experiments(self) -> list[Experiment]:
        return self._runs.list_experiments()

    def create_run(self, new: NewRun) -> Run:
        return self._runs.create_run(new)

    def record_runs(self, records: Sequence[RunRecord]) -> list[Run]:
        return self._runs.record_runs(records)

    def get_run(self, run_id: str) -> Run:
        return self._runs.get_run(run_id)

    def resolve_run_id(self, ref: str, projects: frozenset[str] | None = None) -> str:
        return self._runs.resolve_run_id(ref, projects)

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        return self._runs.end_run(run_id, status, end_time)

    def set_run_deleted(self, run_id: str, deleted: bool) -> Run:
        return self._runs.set_run_deleted(run_id, deleted)

    # recording (recording.py) and search (search.py)

    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | Sequence[MetricPoint] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        batch_id: str | None = None,
    ) -> None:
        self._recording.log_batch(run_id, metrics, params, tags, batch_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self._recording.get_metric_history(run_id, key)

    def search_runs(self, query: RunQuery) -> RunPage:
        return search.search_runs(self.engine, query)

    # artifacts (run_artifacts.py), inputs and lineage (inputs.py)

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        self._artifacts.add_artifacts(run_id, entries)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        return self._artifacts.list_artifacts(run_id, prefix)

    def log_inputs(self, run_id: str, refs: Sequence[str]) -> list[str]:
        return self._inputs.log_inputs(run_id, refs)

    def get_run_inputs(self, run_id: str) -> list[str]:
        return self._inputs.get_run_inputs(run_id)

    def log_lineage(self, run_id: str, used: Sequence[str], produced: Sequence[str]) -> None:
        self._inputs.log_lineage(run_id, used, produced)

    def get_run_lineage(self, run_id: str) -> tuple[list[str], list[str]]:
        return self._inputs.get_run_lineage(run_id)

    # pipelines (pipelines.py)

    def cached_output(
        self, experiment_id: str, cache_key: str, user: str | None = None
    ) -> Run | None:
        return self._pipelines.cached_output(experiment_id, cache_key, user)

    def child_runs(self, run_id: str, view: ViewType = ViewType.ACTIVE) -> list[Run]:
        return self._pipelines.child_runs(run_id, view)

    # project scopes (scopes.py; see cairn.core.ports.ProjectScopes)

    def experiment_project(self, experiment_id: str) -> str:
        return self._scopes.experiment_project(experiment_id)

    def run_project(self, run_id: str) -> str:
        return self._scopes.run_project(run_id)

    def experiments_in(self, projects: frozenset[str]) -> list[str]:
        return self._scopes.experiments_in(projects)

    def readable_objects(self, principal: Principal, digests: Iterable[str]) -> set[str]:
        return self._scopes.readable_objects(principal, digests)

    def readable_nodes(self, principal: Principal, nodes: Iterable[Node]) -> set[Node]:
        return self._scopes.readable_nodes(principal, nodes)

    def held_objects(self, principal: Principal, digests: Iterable[str]) -> set[str]:
        return self._scopes.held_objects(principal, digests)

    def record_upload(self, digest: str, principal: Principal) -> None:
        self._scopes.record_upload(digest, principal)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
