"""The Python API users import as ``cairn``: module-level functions over one session.

The session (settings, stores, services: ``cairn.session``) is opened on first use from
the configuration (see ``cairn.config``) and kept for the process; ``configure()``
replaces it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cairn.config import load_settings
from cairn.core.lineage import DATA_VERSION, Lineage
from cairn.core.model import parse_model_ref
from cairn.core.run import Experiment, Metric, Run, ViewType
from cairn.errors import CairnError, IntegrityError, InvalidInput, NotFound, StepFailed
from cairn.pipelines.definition import Graph, Pipeline, Step, pipeline, step, use_runner
from cairn.pipelines.environment import installed, remember_in
from cairn.pipelines.executors import (
    EXECUTORS,
    Executor,
    LocalExecutor,
    RayExecutor,
)
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
from cairn.session import Session, workspace
from cairn.tracking.run import ActiveRun
from cairn.tracking.service import RunStart
from cairn.tracking.source import git_commit, git_dirty

if TYPE_CHECKING:  # the registry loads when a model is first logged or loaded
    from cairn.core.ports import Releases
    from cairn.datasets.service import DataService
    from cairn.registry.service import ModelService

__all__ = ["Pipeline", "Step", "pipeline", "step"]  # re-exported as cairn.pipeline, cairn.step

_lock = threading.Lock()
_session: Session | None = None


class RunList(list[Run]):
    """Runs found by a search; ``next_page_token`` continues it when more matched."""

    next_page_token: str | None = None


def configure(
    *,
    home: str | None = None,
    uri: str | None = None,
    token: str | None = None,
    db: str | None = None,
    artifacts: str | None = None,
    experiment: str | None = None,
) -> None:
    """Point the SDK somewhere else; values not given come from the environment and
    ``cairn.yaml`` as usual (see ``cairn.config``)."""
    global _session
    settings = load_settings(
        home=home, uri=uri, token=token, db=db, artifacts=artifacts, experiment=experiment
    )
    with _lock:
        if _session is not None:
            _session.close()
        _session = Session(settings)


def session() -> Session:
    """The session the SDK uses (its stores and services), opened from the configuration
    on first use and kept until ``configure()`` replaces it."""
    global _session
    with _lock:
        if _session is None:
            _session = Session(load_settings())
        return _session


def close() -> None:
    """Close the SDK's session, if one is open (the next call opens it again)."""
    global _session
    with _lock:
        opened, _session = _session, None
    if opened is not None:
        opened.close()


def models() -> ModelService:
    """The model registry's service of the SDK's session."""
    return session().models


def releases() -> Releases:
    """Release governance of the SDK's session (environments, promotions, approvals,
    rollbacks)."""
    return session().releases


def data() -> DataService:
    """Data versioning of the SDK's session, in its workspace."""
    return session().data


def lineage(ref: str, downstream: bool = False) -> Lineage:
    """Where a model version, data version or run came from (upstream), or what was
    built on it (``downstream``): the runs, pipeline steps, data versions, outputs and
    model versions, with each run's commit, dirty flag and environment."""

    return session().lineage().lineage(ref, downstream)


def attest_model(ref: str) -> dict[str, Any]:
    """A signed attestation of a model version (an in-toto statement of SLSA provenance in
    a DSSE envelope, signed with the installation's key; see ``cairn.registry.attest``).

    Raises:
        NotFound: no such version. IntegrityError: its package does not verify.
    """
    from cairn.localfs.signing import load_or_create
    from cairn.registry.attest import provenance_of, sign, statement
    from cairn.registry.package import read_package

    opened, service = session(), models()
    version = service.registry.resolve(parse_model_ref(ref))
    folder = service.fetch(version)
    read_package(folder, version.files)  # what is attested is what was registered
    found = lineage(version.ref)
    digests = {n.id: data().version(n.id).digest for n in found.nodes if n.kind == DATA_VERSION}
    run = opened.metadata.get_run(version.run_id) if version.run_id else None
    provenance = provenance_of(version, run, found, digests)
    return sign(statement(version, folder, provenance), load_or_create(opened.settings.audit_key))


def verify_attestation(envelope: Mapping[str, Any], package: Path | None = None) -> dict[str, Any]:
    """The attested statement, once its signature is the installation's and every subject
    is the bytes of the package now: the registered version's, or the folder ``package``.

    Raises:
        IntegrityError: a signature that does not verify, or subjects that differ (named).
        InvalidInput: not an attestation.
    """
    from cairn.localfs.signing import load_verify_key
    from cairn.registry.attest import mismatched_subjects, opened

    settings = session().settings
    found = opened(envelope, load_verify_key(settings.audit_key))
    attested = found["predicate"]["buildDefinition"]["externalParameters"]
    ref = f"{attested['model']}/{attested['version']}"
    folder = package or models().fetch(models().registry.resolve(parse_model_ref(ref)))
    changed = mismatched_subjects(found, folder, ref)
    if changed:
        raise IntegrityError(
            f"attestation of {ref}: {', '.join(changed)} differ from what was attested"
        )
    return found


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: ActiveRun | Run | str | None = None,
) -> ActiveRun:
    """Start a run; use it as a context manager so it ends (and flushes) for sure.

    Args:
        experiment: experiment name, created if new (default: the configured one).
        name: a display name (default: one made from the start time).
        tags: tags set at creation.
        parent: the run this one is nested in (an active run, a run, or its id).

    Raises:
        InvalidInput: a name, key or value breaks the limits.
        NotFound: the parent run does not exist.
    """
    tracking = session().tracking
    parent_id = None
    if parent is not None:
        parent_id = tracking.resolve(parent if isinstance(parent, str) else parent.id)
        if experiment is None:
            experiment_id = tracking.metadata.get_run(parent_id).experiment_id
            experiment = tracking.metadata.get_experiment(experiment_id).name
    run = tracking.create_run(RunStart(experiment, name, tags, parent_id))
    return ActiveRun(tracking, run, models)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str = "",  # MLflow's name for it
    order_by: Sequence[str] = (),
    limit: int = 1000,
    page_token: str | None = None,
    view: ViewType | str = ViewType.ACTIVE,
) -> RunList:
    """Runs matching a filter such as ``"metrics.val_auc > 0.9 and params.lr = '0.1'"``.

    Raises:
        FilterSyntaxError: the filter or an ordering is malformed (the message points at it).
        NotFound: an experiment name does not exist.
    """
    page = session().tracking.search_runs(
        experiment, filter, order_by, limit, page_token, ViewType(view)
    )
    found = RunList(page.runs)
    found.next_page_token = page.next_page_token
    return found


def get_run(run_id: str) -> Run:
    """A run by id or unique id prefix (8+ characters)."""
    return session().tracking.get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every recorded point of one metric of a run, by step."""
    return session().tracking.get_metric_history(run_id, key)


def list_experiments() -> list[Experiment]:
    return session().tracking.list_experiments()


def delete_run(run_id: str) -> Run:
    return session().tracking.delete_run(run_id)


def restore_run(run_id: str) -> Run:
    return session().tracking.restore_run(run_id)


def run_pipeline(
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
    opened = session()
    remember_in(opened.settings.home / "cache")

    def resolve(ref: str) -> str | None:
        try:
            return data().version(ref).digest
        except NotFound:
            return None

    folder = root or workspace(opened.settings)
    runs_on = _executor(opened, folder, executor, workers, ray_address)
    registrar = models if register else None
    runner = Runner(opened.tracking, opened.artifacts, resolve, folder, runs_on, registrar,
                    secret=home_secret(opened.settings.home))  # fmt: skip
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
    tracking = session().tracking
    where = experiment or pipeline.name

    def run_graph(graph: Graph, parent_id: str, tags: dict[str, str]) -> PipelineResult:
        try:
            return run_pipeline(
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

    runs = SweepRuns(start, lambda run_id, tags: tracking.metadata.log_batch(run_id, [], {}, tags),
                     log, tracking.end_run)  # fmt: skip
    fixed = pipeline.parameters(params or {})
    searched = {d.name for d in dimensions}
    fixed = {k: v for k, v in fixed.items() if k not in searched or k in (params or {})}
    return run_sweep(
        pipeline, fixed, dimensions, trials, objective, direction, run_graph, runs, seed,
        on_trial,
    )  # fmt: skip


def reproduce(
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
    opened = session()
    tracking = opened.tracking
    run = _pipeline_run_of_model(ref) if _names_a_model(ref) else tracking.get_run(ref)
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
    nested = f"attributes.parent_run_id = '{run.id}'"
    steps = tracking.search_runs(experiment, nested, limit=1000).runs
    pinned = {
        s.tags.get("cairn.step", s.name): orjson.loads(s.tags[STEP_DATA])
        for s in steps if STEP_DATA in s.tags
    }  # fmt: skip
    root = workspace(opened.settings)
    commit = run.git_commit
    with code_at(root, commit, git_commit(root), git_dirty(root)) as (folder, where):
        graph = load_pipeline(target, folder).build(**orjson.loads(params))
        for name, node in graph.nodes.items():
            node.params.update(pinned.get(name, {}))  # customers@latest was customers@3
        result = run_pipeline(
            graph, experiment=experiment, force=True, tags={"cairn.reproduces": run.id},
            root=folder, on_step=on_step, register=False,
        )  # fmt: skip
        # Compared here, where a pickle's classes import from the recorded code; a recorded
        # output is read only if it is safe to (cairn.pipelines.trust).
        vetting = Vetting(opened.artifacts, home_secret(opened.settings.home), result.user)
        recorded = {s.tags.get("cairn.step", s.name): vetting.recorded(s) for s in steps}
        found = Reproduction(run.id, result.run_id, commit, where)
        found.steps = [
            compare(done.node, recorded.get(done.node), done.output, vetting, tolerance)
            for done in result.steps
        ]
    environment = _recorded_environment(run.id)
    if environment is not None:
        found.environment = environment_changes(environment, installed())
    return found


def _executor(
    opened: Session, root: Path, name: str, workers: int, ray_address: str | None
) -> Executor:
    """Raises:
    InvalidInput: an unknown executor, a bad worker count, an unreachable Ray address.
    MissingExtra: Ray is not installed.
    """
    if name == "local":
        if ray_address is not None:
            raise InvalidInput("--ray-address goes with --executor ray")
        return LocalExecutor(opened.artifacts, workers, opened.artifact_store_opener())
    if name == "ray":
        return RayExecutor(opened.artifact_store_opener(), root, ray_address)
    raise InvalidInput(f"--executor {name!r}: expected one of {', '.join(EXECUTORS)}")


def _names_a_model(ref: str) -> bool:
    """Whether a reference is a model version's, not a run id (runs are named in hex)."""
    if ref.startswith("models:/") or "/" in ref or "@" in ref:
        return True
    return not all(c in "0123456789abcdef" for c in ref)


def _pipeline_run_of_model(ref: str) -> Run:
    """The pipeline run that made a model version (the run of the step that returned it,
    or the run that logged it, if that is a pipeline run itself)."""
    version = models().registry.resolve(parse_model_ref(ref))
    if version.run_id is None:
        raise InvalidInput(f"model {version.ref} records no run that made it: nothing to reproduce")
    run = session().tracking.get_run(version.run_id)
    if run.parent_id is not None and run.tags.get("cairn.step"):
        return session().tracking.get_run(run.parent_id)
    return run


def _recorded_environment(run_id: str) -> dict[str, str] | None:
    opened = session()
    found_at = [e.digest for e in opened.tracking.list_artifacts(run_id) if e.path == ENVIRONMENT]
    if not found_at or found_at[0] is None:
        return None
    with opened.artifacts.open(found_at[0]) as chunks:
        found: dict[str, str] = orjson.loads(b"".join(chunks))
    return found


use_runner(run_pipeline)
