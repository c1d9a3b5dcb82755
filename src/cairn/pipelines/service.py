"""Running, sweeping and reproducing pipelines over the stores and services of a session.

What calling a pipeline does, what ``cairn run``, ``cairn sweep`` and ``cairn reproduce``
do: the runner (``runner``) over the session's tracking and artifact store, data versions
resolved through data versioning, steps' models registered through the registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cairn.core.model import parse_model_ref
from cairn.core.ports import ArtifactStore
from cairn.core.run import Run
from cairn.errors import CairnError, InvalidInput, NotFound, StepFailed
from cairn.pipelines.definition import Graph, Pipeline
from cairn.pipelines.environment import installed, remember_in
from cairn.pipelines.executors import EXECUTORS, Executor, LocalExecutor, RayExecutor
from cairn.pipelines.loading import load_pipeline
from cairn.pipelines.reproduce import (
    Reproduction,
    check_tolerance,
    code_at,
    compare,
    environment_changes,
)
from cairn.pipelines.runner import (
    ENVIRONMENT,
    PARAMS,
    STEP_DATA,
    TARGET,
    PipelineResult,
    Runner,
    StepResult,
)
from cairn.pipelines.sweep import SweepResult, SweepRuns, Trial, parse_dimension, run_sweep
from cairn.pipelines.trust import Vetting, home_secret
from cairn.tracking.service import RunStart, TrackingService
from cairn.tracking.source import git_commit, git_dirty

if TYPE_CHECKING:  # the registry and data versioning load when a step first needs them
    from cairn.data.service import DataService
    from cairn.models.service import ModelService


class PipelineService:
    """Pipelines run as tracked runs. ``data`` and ``models`` are called when first needed;
    ``reopen_artifacts`` opens the artifact store again in a worker process."""

    def __init__(
        self,
        tracking: TrackingService,
        data: Callable[[], DataService],
        models: Callable[[], ModelService],
        home: Path,
        workspace: Path,
        reopen_artifacts: Callable[[], ArtifactStore],
    ) -> None:
        self.tracking = tracking
        self.artifacts = tracking.artifacts
        self._data, self._models = data, models
        self._home, self._workspace = home, workspace
        self._reopen_artifacts = reopen_artifacts

    def run(
        self,
        graph: Graph,
        *,
        experiment: str | None = None,
        force: bool = False,
        only: frozenset[str] | None = None,
        on_step: Callable[[StepResult], None] | None = None,
        parent_id: str | None = None,
        tags: dict[str, str] | None = None,
        root: Path | None = None,
        executor: str = "local",
        workers: int = 1,
        ray_address: str | None = None,
        register: bool = True,
    ) -> PipelineResult:
        """Run a built pipeline graph over the configured stores (what calling a pipeline
        does; ``cairn run`` passes the options). ``register=False``: steps with ``register=``
        register nothing (a reproduction checks outputs; it makes no versions).

        Raises:
            StepFailed: a step raised on its last attempt; the run is recorded as failed.
            InvalidInput: ``only`` names a step the pipeline lacks, or is not cached upstream.
            Interrupted: Ctrl-C, SIGTERM or SIGHUP stopped the run (a KeyboardInterrupt,
                raised once the runs it stopped are recorded KILLED).
        """
        remember_in(self._home / "cache")

        def resolve(ref: str) -> str | None:
            try:
                return self._data().version(ref).digest
            except NotFound:
                return None

        folder = root or self._workspace
        runs_on = self._executor(folder, executor, workers, ray_address)
        registrar = self._models if register else None
        runner = Runner(self.tracking, self.artifacts, resolve, folder, runs_on, registrar,
                        secret=home_secret(self._home))  # fmt: skip
        return runner.run(
            graph,
            experiment=experiment,
            force=force,
            only=only,
            on_step=on_step,
            parent_id=parent_id,
            tags=tags,
        )

    def sweep(
        self,
        pipeline: Pipeline,
        space: Sequence[str],
        trials: int,
        objective: str,
        direction: str = "max",
        *,
        params: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        seed: int | None = None,
        on_trial: Callable[[Trial], None] | None = None,
        executor: str = "local",
        ray_address: str | None = None,
    ) -> SweepResult:
        """Search the pipeline's parameters with Optuna: ``space`` as ``cairn sweep --param``
        takes them (``"lr=loguniform(1e-4,1e-1)"``); each trial a pipeline run nested in the
        sweep run; the best tagged ``cairn.sweep.best``.

        Raises:
            InvalidInput: a bad dimension, direction or trial count.
            MissingExtra: Optuna is not installed.
            Interrupted: Ctrl-C or a signal stopped a trial; the sweep run is recorded KILLED.
        """
        dimensions = [parse_dimension(spec) for spec in space]
        tracking = self.tracking
        where = experiment or pipeline.name

        def run_graph(graph: Graph, parent_id: str, tags: dict[str, str]) -> PipelineResult:
            try:
                return self.run(
                    graph, experiment=where, parent_id=parent_id, tags=tags, executor=executor,
                    ray_address=ray_address,
                )  # fmt: skip
            except StepFailed:
                raise
            except CairnError as exc:  # a trial that cannot start: record it as failed
                raise StepFailed(exc.message) from exc

        def start(name: str) -> str:
            tags = {"cairn.run.kind": "sweep", "cairn.pipeline": pipeline.name}
            return tracking.create_run(RunStart(where, name, tags)).id

        def log(run_id: str, logged: dict[str, str], metrics: dict[str, float]) -> None:
            points = [(k, v, 0, int(time.time() * 1000)) for k, v in metrics.items()]
            tracking.metadata.log_batch(run_id, points, logged, {})

        def tag(run_id: str, tags: dict[str, str]) -> None:
            tracking.metadata.log_batch(run_id, [], {}, tags)

        runs = SweepRuns(start, tag, log, tracking.end_run)
        fixed = pipeline.parameters(params or {})
        searched = {d.name for d in dimensions}
        fixed = {k: v for k, v in fixed.items() if k not in searched or k in (params or {})}
        return run_sweep(
            pipeline, fixed, dimensions, trials, objective, direction, run_graph, runs, seed,
            on_trial,
        )  # fmt: skip

    def reproduce(
        self,
        ref: str,
        tolerance: float = 0.0,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> Reproduction:
        """Run a recorded pipeline run again, cache off, from its recorded commit, parameters
        and data versions; compare each step's output with the recorded one. ``ref`` is a run
        (its id or a prefix) or a model version (``churn@champion``, ``churn/3``): the
        pipeline run that made it.

        Raises:
            NotFound: no such run or model version.
            InvalidInput: the run is not a pipeline run, or did not record how to find its
                pipeline again (one defined in a script run as ``__main__``).
            InvalidState: its commit cannot be checked out here.
            StepFailed: a step failed this time.
        """
        check_tolerance(tolerance)
        tracking = self.tracking
        run = self._pipeline_run_of_model(ref) if _names_a_model(ref) else tracking.get_run(ref)
        if run.tags.get("cairn.run.kind") != "pipeline":
            raise InvalidInput(
                f"run {run.id[:12]} is not a pipeline run: cairn reproduce takes a run that "
                "`cairn run` (or calling a pipeline) made"
            )
        target, params = run.tags.get(TARGET), run.tags.get(PARAMS)
        if not target or params is None:
            raise InvalidInput(
                f"run {run.id[:12]} does not record how to find its pipeline again (a pipeline "
                "defined in a script run as __main__ cannot be imported): put it in a module"
            )
        experiment = tracking.metadata.get_experiment(run.experiment_id).name
        steps = [s for s in tracking.child_runs(run.id) if s.experiment_id == run.experiment_id]
        pinned = {
            s.tags.get("cairn.step", s.name): orjson.loads(s.tags[STEP_DATA])
            for s in steps if STEP_DATA in s.tags
        }  # fmt: skip
        root = self._workspace
        commit = run.git_commit
        with code_at(root, commit, git_commit(root), git_dirty(root)) as (folder, where):
            graph = load_pipeline(target, folder).build(**orjson.loads(params))
            for name, node in graph.nodes.items():
                node.params.update(pinned.get(name, {}))  # customers@latest was customers@3
            result = self.run(
                graph, experiment=experiment, force=True, tags={"cairn.reproduces": run.id},
                root=folder, on_step=on_step, register=False,
            )  # fmt: skip
            # Compared here, where a pickle's classes import from the recorded code; a recorded
            # output is read only if it is safe to (cairn.pipelines.trust).
            vetting = Vetting(self.artifacts, home_secret(self._home), result.user)
            recorded = {s.tags.get("cairn.step", s.name): vetting.recorded(s) for s in steps}
            found = Reproduction(run.id, result.run_id, commit, where)
            found.steps = [
                compare(done.node, recorded.get(done.node), done.output, vetting, tolerance)
                for done in result.steps
            ]
        environment = self._recorded_environment(run.id)
        if environment is not None:
            found.environment = environment_changes(environment, installed())
        return found

    def _executor(self, root: Path, name: str, workers: int, ray_address: str | None) -> Executor:
        """Raises:
        InvalidInput: an unknown executor, a bad worker count, an unreachable Ray address.
        MissingExtra: Ray is not installed.
        """
        if name == "local":
            if ray_address is not None:
                raise InvalidInput("--ray-address goes with --executor ray")
            return LocalExecutor(self.artifacts, workers, self._reopen_artifacts)
        if name == "ray":
            return RayExecutor(self._reopen_artifacts, root, ray_address)
        raise InvalidInput(f"--executor {name!r}: expected one of {', '.join(EXECUTORS)}")

    def _pipeline_run_of_model(self, ref: str) -> Run:
        """The pipeline run that made a model version (the run of the step that returned it,
        or the run that logged it, if that is a pipeline run itself)."""
        version = self._models().registry.resolve(parse_model_ref(ref))
        if version.run_id is None:
            raise InvalidInput(
                f"model {version.ref} records no run that made it: nothing to reproduce"
            )
        run = self.tracking.get_run(version.run_id)
        if run.parent_id is not None and run.tags.get("cairn.step"):
            return self.tracking.get_run(run.parent_id)
        return run

    def _recorded_environment(self, run_id: str) -> dict[str, str] | None:
        listed = self.tracking.list_artifacts(run_id)
        found_at = [e.digest for e in listed if e.path == ENVIRONMENT]
        if not found_at or found_at[0] is None:
            return None
        with self.artifacts.open(found_at[0]) as chunks:
            found: dict[str, str] = orjson.loads(b"".join(chunks))
        return found


def _names_a_model(ref: str) -> bool:
    """Whether a reference is a model version's, not a run id (runs are named in hex)."""
    if ref.startswith("models:/") or "/" in ref or "@" in ref:
        return True
    return not all(c in "0123456789abcdef" for c in ref)
