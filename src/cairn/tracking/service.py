"""The tracking service: what the SDK, the CLI and the server ask of tracking.

It works on the ports only, so the same code runs on the embedded store and against a
Cairn server. Names and abbreviations users type (experiment names, run id prefixes,
artifact paths) are resolved here, once, for every front end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.core import missing
from cairn.core.artifact import (
    ArtifactEntry,
    check_artifact_path,
    check_entries,
    clean_artifact_path,
    list_children,
)
from cairn.core.clock import now_ms
from cairn.core.limits import check_name, check_tags
from cairn.core.ports import ArtifactStore, MetadataStore
from cairn.core.run import Experiment, Metric, NewRun, Run, RunStatus, ViewType
from cairn.core.search import RunPage, RunQuery
from cairn.errors import AlreadyExists, InvalidInput, NotFound
from cairn.tracking import source

# Files are hashed and uploaded concurrently: the work is I/O and BLAKE3, both release the GIL.
_UPLOAD_THREADS = min(8, (os.cpu_count() or 2) * 2)

Progress = Callable[[int], None]  # called with the number of bytes just stored


@dataclass(frozen=True, slots=True)
class RunStart:
    experiment: str | None = None
    name: str | None = None
    tags: Mapping[str, Any] | None = None
    parent_id: str | None = None
    # Known already (a pipeline's steps share their run's); "" when there is none (not in a
    # git work tree); None: look it up.
    git_commit: str | None = None


class TrackingService:
    def __init__(
        self, metadata: MetadataStore, artifacts: ArtifactStore, default_experiment: str
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.default_experiment = default_experiment
        self._experiment_ids: dict[str, str] = {}  # name -> id, of experiments seen

    # experiments

    def experiment(self, name: str | None = None) -> Experiment:
        """The experiment called ``name`` (default: the configured one), created if new."""
        name = check_name(name or self.default_experiment, "experiment")
        found = self.metadata.get_experiment_by_name(name)
        if found is not None:
            return found
        try:
            return self.metadata.create_experiment(name)
        except AlreadyExists:  # another process created it a moment ago
            created = self.metadata.get_experiment_by_name(name)
            if created is None:
                raise
            return created

    def list_experiments(self) -> list[Experiment]:
        return self.metadata.list_experiments()

    def experiment_ids(self, names: str | Sequence[str] | None) -> list[str]:
        """Ids of existing experiments by name; none given means every experiment.

        Raises:
            NotFound: no experiment has one of these names.
        """
        if names is None:
            return []
        wanted = [names] if isinstance(names, str) else list(names)
        ids = []
        for name in wanted:
            known = self._experiment_ids.get(name)
            if known is None:
                found = self.metadata.get_experiment_by_name(name)
                if found is None:
                    raise missing.experiment(name)
                # An experiment keeps its name and id for good (there is no rename and no
                # hard delete), so a name once found need not be asked for again.
                known = self._experiment_ids[name] = found.id
            ids.append(known)
        return ids

    # runs

    def create_run(self, start: RunStart) -> Run:
        return self.metadata.create_run(self.new_run(start))

    def new_run(self, start: RunStart) -> NewRun:
        """What the store is told about a run starting now (its experiment created if new;
        the user, the commit and the entry point found out)."""
        experiment = check_name(start.experiment or self.default_experiment, "experiment")
        experiment_id = self._experiment_ids.get(experiment)
        if experiment_id is None:  # known ids need no lookup: see experiment_ids
            experiment_id = self._experiment_ids[experiment] = self.experiment(experiment).id
        started = now_ms()
        name = check_name(start.name, "run name") if start.name else _default_name(started)
        return NewRun(
            experiment_id=experiment_id,
            name=name,
            start_time=started,
            user=source.current_user(),
            parent_id=start.parent_id,
            git_commit=(
                source.git_commit() if start.git_commit is None else start.git_commit or None
            ),
            source=source.entry_point(),
            tags=check_tags(start.tags or {}),
        )

    def resolve(self, ref: str) -> str:
        """The full run id for an id or a unique prefix (8+ characters)."""
        return self.metadata.resolve_run_id(ref)

    def get_run(self, ref: str) -> Run:
        return self.metadata.get_run(self.resolve(ref))

    def end_run(self, run_id: str, status: RunStatus) -> Run:
        return self.metadata.end_run(run_id, status, now_ms())

    def delete_run(self, ref: str) -> Run:
        return self.metadata.set_run_deleted(self.resolve(ref), deleted=True)

    def restore_run(self, ref: str) -> Run:
        return self.metadata.set_run_deleted(self.resolve(ref), deleted=False)

    def get_metric_history(self, ref: str, key: str) -> list[Metric]:
        return self.metadata.get_metric_history(self.resolve(ref), key)

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str = "",  # the name users know from MLflow
        order_by: Sequence[str] = (),
        limit: int = 1000,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE,
    ) -> RunPage:
        query = RunQuery(
            experiment_ids=self.experiment_ids(experiment),
            filter=filter or "",
            order_by=tuple(order_by),
            limit=limit,
            page_token=page_token,
            view=view,
        )
        return self.metadata.search_runs(query)

    def child_runs(self, ref: str, view: ViewType = ViewType.ACTIVE) -> list[Run]:
        """The runs nested directly in a run (its id or a prefix), newest first."""
        return self.metadata.child_runs(self.resolve(ref), view)

    def cached_output(self, experiment: str, cache_key: str, user: str | None = None) -> Run | None:
        """The step run the experiment's cache holds for ``cache_key`` (see
        ``MetadataStore.cached_output``); None when there is none, or no such experiment
        (to the caller: nothing has been cached there yet)."""
        try:
            (experiment_id,) = self.experiment_ids(experiment)
            return self.metadata.cached_output(experiment_id, cache_key, user)
        except NotFound:
            return None

    # artifacts

    def log_files(
        self,
        run_id: str,
        files: Sequence[tuple[Path, str]],
        progress: Progress | None = None,
    ) -> list[ArtifactEntry]:
        """Store local files as the run's artifacts at the given run-relative paths."""

        def store(item: tuple[Path, str]) -> ArtifactEntry:
            local, path = item
            info = self.artifacts.put_file(local)
            if progress is not None:
                progress(info.size)
            return ArtifactEntry(path, info.digest, info.size)

        with ThreadPoolExecutor(_UPLOAD_THREADS) as pool:
            entries = list(pool.map(store, files))
        self.metadata.add_artifacts(run_id, entries)
        return entries

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactEntry:
        """Raises:
        InvalidInput: the file does not exist, or ``artifact_path`` would leave the run,
            or the path it makes is not one a manifest records (see ``check_artifact_path``).
        """
        local = Path(local_path)
        if not local.is_file():
            raise InvalidInput(f"log_artifact: {str(local)!r} is not a file")
        path = _join(clean_artifact_path(artifact_path or ""), local.name)
        return self.log_files(run_id, [(local, check_artifact_path(path, "artifact path"))])[0]

    def log_artifacts(
        self,
        run_id: str,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        progress: Progress | None = None,
    ) -> list[ArtifactEntry]:
        """Raises:
        InvalidInput: ``local_dir`` is not a folder, or ``artifact_path`` would leave the run.
        """
        folder = Path(local_dir)
        if not folder.is_dir():
            raise InvalidInput(f"log_artifacts: {str(folder)!r} is not a folder")
        base = clean_artifact_path(artifact_path or "")
        files = [
            (f, check_artifact_path(_join(base, f.relative_to(folder).as_posix()), "artifact path"))
            for f in _walk(folder)
        ]
        return self.log_files(run_id, files, progress)

    def list_artifacts(self, ref: str, path: str = "") -> list[ArtifactEntry]:
        """Files and folders directly under ``path`` in the run's artifacts."""
        folder = clean_artifact_path(path, "path")
        entries = self.metadata.list_artifacts(self.resolve(ref), folder)
        exact = [e for e in entries if folder and e.path == folder]
        return exact or list_children(entries, folder)

    def download_artifacts(
        self, ref: str, path: str, dest: Path, progress: Progress | None = None
    ) -> list[Path]:
        """Copy a file or a folder of the run's artifacts under ``dest``, verified.

        Raises:
            NotFound: the run has no artifact at ``path``.
            InvalidInput: a file cannot be written there, or the manifest names a path no
                file may have (recorded before manifests were checked): nothing is written.
        """
        run_id = self.resolve(ref)
        wanted = clean_artifact_path(path, "path")
        entries = self.metadata.list_artifacts(run_id, wanted)
        if not entries:
            raise NotFound(
                f"run {run_id} has no artifact {wanted!r} (see `cairn artifacts list {ref}`)"
            )
        try:
            check_entries(entries)
        except InvalidInput as exc:
            raise InvalidInput(f"run {run_id} cannot be downloaded: {exc.message}") from None
        parent = wanted.rpartition("/")[0]

        def fetch(entry: ArtifactEntry) -> Path:
            relative = entry.path[len(parent) + 1 :] if parent else entry.path
            target = dest / relative
            assert entry.digest is not None  # manifests list files only
            try:
                self.artifacts.get_file(entry.digest, target)
            except OSError as exc:  # the destination's disk: the caller's to fix
                raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from exc
            if progress is not None:
                progress(entry.size)
            return target

        with ThreadPoolExecutor(_UPLOAD_THREADS) as pool:
            return list(pool.map(fetch, entries))


def _walk(folder: Path) -> Iterable[Path]:
    for root, _dirs, names in os.walk(folder):
        for name in sorted(names):
            yield Path(root) / name


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _default_name(started_ms: int) -> str:
    import time

    return "run-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(started_ms / 1000))
