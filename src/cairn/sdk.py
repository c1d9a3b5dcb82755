"""The Python API users import as ``cairn``: module-level functions over one session.

The session (settings, stores, services: ``cairn.session``) is opened on first use from
the configuration (see ``cairn.config``) and kept for the process; ``configure()``
replaces it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.config import load_settings
from cairn.core.lineage import Lineage
from cairn.core.run import Experiment, Metric, Run, ViewType
from cairn.pipelines.definition import Graph, Pipeline, Step, pipeline, step, use_runner
from cairn.pipelines.reproduce import (
    Reproduction,
)
from cairn.pipelines.runner import (
    PipelineResult,
    StepResult,
)
from cairn.pipelines.sweep import SweepResult, Trial
from cairn.session import Session
from cairn.tracking.run import ActiveRun
from cairn.tracking.service import RunStart

if TYPE_CHECKING:  # the registry loads when a model is first logged or loaded
    from cairn.core.ports import Releases
    from cairn.data.service import DataService
    from cairn.models.service import ModelService

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
    a DSSE envelope, signed with the installation's key; see ``cairn.models.attest``).

    Raises:
        NotFound: no such version. IntegrityError: its package does not verify.
    """
    return session().attestations.attest(ref)


def verify_attestation(envelope: Mapping[str, Any], package: Path | None = None) -> dict[str, Any]:
    """The attested statement, once its signature is the installation's and every subject
    is the bytes of the package now: the registered version's, or the folder ``package``.

    Raises:
        IntegrityError: a signature that does not verify, or subjects that differ (named).
        InvalidInput: not an attestation.
    """
    return session().attestations.verify(envelope, package)


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
    return session().pipelines.run(
        graph, experiment=experiment, force=force, only=only, on_step=on_step,
        parent_id=parent_id, tags=tags, root=root, executor=executor, workers=workers,
        ray_address=ray_address, register=register,
    )  # fmt: skip


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
    return session().pipelines.sweep(
        pipeline, space, trials, objective, direction, params=params, experiment=experiment,
        seed=seed, on_trial=on_trial, executor=executor, ray_address=ray_address,
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
    return session().pipelines.reproduce(ref, tolerance, on_step)


use_runner(run_pipeline)
