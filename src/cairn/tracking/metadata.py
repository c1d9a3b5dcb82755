"""Experiments, runs and what is recorded about them, as one caller may use them (the
:class:`~cairn.core.tracking_api.Tracking` service): the metadata store's operations,
decided by the caller's :class:`~cairn.core.authorizer.Authorizer`.

Reads check that the caller may read the project of what they touch; lists keep only
what it may read. What it may not read is not found, exactly as what does not exist: a
run id, an id prefix or an experiment of another project gets the answer a made-up one
gets, and a run's inputs list only the data versions it may read. Writes are made as the
caller's (``Authorizer.writing``): the store decides them inside the write's own
transaction on the caller's standing as it is then (``cairn.stores.metadata.grants``),
answering what the caller may not read as not found there too.

A server builds one per caller (``Session.tracking_for_callers``), with the objects the
caller holds, which every artifact it records must be; an embedded session builds one for
the local admin (``Session.metadata``), whose objects it stored itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cairn.core import missing
from cairn.core.access import Permission
from cairn.core.artifact import ArtifactEntry, check_entries, clean_artifact_path
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.lineage import DATA_VERSION, Node
from cairn.core.run import ViewType
from cairn.core.search import RunPage, RunQuery
from cairn.core.stored import check_stored
from cairn.errors import NotFound

if TYPE_CHECKING:
    from cairn.core.authorizer import Authorizer
    from cairn.core.ports import ArtifactStore, MetadataStore, ProjectScopes
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


class MetadataService:
    """The metadata ``store`` as the caller ``authorizer`` decides for may use it.

    ``scopes`` tells which project a run or an experiment belongs to. ``held`` is the
    artifact store as the caller holds it: each artifact recorded must be one of its
    objects, with its size. None: artifacts are taken as the caller names them (in
    process, the caller stored them itself).
    """

    def __init__(
        self,
        store: MetadataStore,
        scopes: ProjectScopes,
        authorizer: Authorizer,
        held: ArtifactStore | None = None,
    ) -> None:
        self._store, self._scopes, self.authorizer = store, scopes, authorizer
        self._held = held

    def __repr__(self) -> str:
        return f"MetadataService({self._store!r}, {self.authorizer!r})"

    def close(self) -> None:
        """The store belongs to whoever made it."""

    def _see_experiment(self, experiment_id: str) -> None:
        if self.authorizer.readable_projects() is not None:  # an admin needs no lookup
            project = self._scopes.experiment_project(experiment_id)
            self.authorizer.see(project, missing.experiment(experiment_id))

    def _see_run(self, run_id: str) -> None:
        if self.authorizer.readable_projects() is not None:  # an admin needs no lookup
            project = self._scopes.run_project(run_id)
            self.authorizer.see(project, missing.run(run_id))

    # experiments

    def create_experiment(self, name: str, project: str = DEFAULT_PROJECT) -> Experiment:
        with self.authorizer.writing():
            return self._store.create_experiment(name, project)

    def get_experiment(self, experiment_id: str) -> Experiment:
        experiment = self._store.get_experiment(experiment_id)
        self.authorizer.see(experiment.project, missing.experiment(experiment_id))
        return experiment

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """None, also for one of a project the caller may not read."""
        experiment = self._store.get_experiment_by_name(name)
        if experiment is None or not self.authorizer.readable(experiment.project):
            return None
        return experiment

    def list_experiments(self) -> list[Experiment]:
        return self.authorizer.only_readable(self._store.list_experiments())

    # runs

    def create_run(self, new: NewRun) -> Run:
        with self.authorizer.writing():
            return self._store.create_run(new)

    def get_run(self, run_id: str) -> Run:
        self._see_run(run_id)
        return self._store.get_run(run_id)

    def resolve_run_id(self, ref: str) -> str:
        """Among the runs the caller may read only: a prefix names no other run."""
        readable = self.authorizer.readable_projects()
        if readable is None:  # an admin
            return self._store.resolve_run_id(ref)
        return self._scopes.resolve_run_id(ref, readable)

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        with self.authorizer.writing():
            return self._store.end_run(run_id, status, end_time)

    def record_runs(self, records: Sequence[RunRecord]) -> list[Run]:
        with self.authorizer.writing():
            return self._store.record_runs(records)

    def set_run_deleted(self, run_id: str, deleted: bool) -> Run:
        with self.authorizer.writing():
            return self._store.set_run_deleted(run_id, deleted)

    def delete_run(self, run_id: str) -> Run:
        """Soft delete: the run is hidden from searches until it is restored."""
        return self.set_run_deleted(run_id, True)

    def restore_run(self, run_id: str) -> Run:
        return self.set_run_deleted(run_id, False)

    def search_runs(self, query: RunQuery) -> RunPage:
        readable = self.authorizer.readable_projects()
        if readable is None:  # an admin
            return self._store.search_runs(query)
        if query.experiment_ids:
            for experiment_id in query.experiment_ids:
                self._see_experiment(experiment_id)
            return self._store.search_runs(query)
        visible = self._scopes.experiments_in(readable)
        if not visible:
            return RunPage([], None)
        return self._store.search_runs(dataclasses.replace(query, experiment_ids=tuple(visible)))

    # recording

    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | Sequence[MetricPoint] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        batch_id: str | None = None,
    ) -> None:
        with self.authorizer.writing():
            self._store.log_batch(run_id, metrics, params, tags, batch_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._see_run(run_id)
        return self._store.get_metric_history(run_id, key)

    # pipelines

    def child_runs(self, run_id: str, view: ViewType = ViewType.ACTIVE) -> list[Run]:
        """Those the caller may read (a run may be nested in another project's)."""
        self._see_run(run_id)
        found = self._store.child_runs(run_id, view)
        readable = self.authorizer.readable_projects()
        if readable is None:  # an admin
            return found
        visible = set(self._scopes.experiments_in(readable))
        return [run for run in found if run.experiment_id in visible]

    def cached_output(
        self, experiment_id: str, cache_key: str, user: str | None = None
    ) -> Run | None:
        self._see_experiment(experiment_id)
        return self._store.cached_output(experiment_id, cache_key, user)

    # inputs and lineage

    def log_inputs(self, run_id: str, refs: Sequence[str]) -> list[str]:
        with self.authorizer.writing():
            return self._store.log_inputs(run_id, refs)

    def get_run_inputs(self, run_id: str) -> list[str]:
        """The data versions the run used that the caller may read (someone who may read
        both projects may record that a run used another project's data)."""
        self._see_run(run_id)
        found = self._store.get_run_inputs(run_id)
        if self.authorizer.readable_projects() is None:  # an admin
            return found
        nodes = [Node(DATA_VERSION, ref) for ref in found]
        shown = self._scopes.readable_nodes(self.authorizer.principal, nodes)
        return [ref for ref in found if Node(DATA_VERSION, ref) in shown]

    def log_lineage(self, run_id: str, used: Sequence[str], produced: Sequence[str]) -> None:
        with self.authorizer.writing():
            self._store.log_lineage(run_id, used, produced)

    def get_run_lineage(self, run_id: str) -> tuple[list[str], list[str]]:
        self._see_run(run_id)
        return self._store.get_run_lineage(run_id)

    # artifacts

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        """Add files to the run's manifest; a path logged again is replaced.

        Raises:
            NotFound: no run the caller may read has this id.
            PermissionDenied: the caller may read the run, not write to it.
            InvalidInput: an entry is malformed, or names an object the caller does not
                hold (stored and readable to it, or uploaded by it), or another size.
        """
        if self._held is not None:  # checked before the objects are (the store checks too)
            entries = check_entries(entries)
            # Who may not write to the run is refused before the objects are looked at (and
            # learns nothing of them); the store decides again as it records them.
            project = self._scopes.run_project(run_id)
            what = f"add artifacts to run {run_id}"
            self.authorizer.require(Permission.WRITE, project, what, missing.run(run_id))
            check_stored(self._held, entries)
        with self.authorizer.writing():
            self._store.add_artifacts(run_id, entries)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        self._see_run(run_id)
        return self._store.list_artifacts(run_id, prefix)

    def artifact_file(self, run_id: str, path: str) -> ArtifactEntry:
        """The manifest's entry of one file.

        Raises:
            InvalidInput: ``path`` is no artifact path.
            NotFound: no run the caller may read has this id, or the run no such file.
        """
        wanted = clean_artifact_path(path, "path")
        found = self.list_artifacts(run_id, wanted)
        entry = next((e for e in found if e.path == wanted and e.digest is not None), None)
        if entry is None:
            raise NotFound(
                f"run {run_id} has no artifact file {wanted!r} (see `cairn artifacts ls`)"
            )
        return entry
