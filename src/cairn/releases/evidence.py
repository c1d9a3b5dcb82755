"""Gathering what a policy's gates decide on, for one model version: the metrics of the
run that made it, the versions it would be compared with, fresh evaluations, its
signature, provenance, scan findings and card — each read from the registry and the
tracking store, never taken from whoever asks.

Whoever may read the model reads its gates' evidence, so evidence comes only from what the
model's project holds: a run of another project (a version may name one its registrant
could read) counts as no run, and an evaluation reads only the project's data (the
evaluator sees to it). Provenance is read from system tags (``cairn.*``), which only a
run's own account writes, while it runs (``cairn.stores.metadata.system_tags``); a step
run counts only inside a pipeline run of the same account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cairn.core.model import ModelRef, ModelVersion
from cairn.core.policy import Evaluation, Evidence, Policy, evaluation_key
from cairn.core.ports import MetadataStore, ModelRegistry
from cairn.core.run import Run
from cairn.errors import CairnError, NotFound

# (the version, what the gate asks for) -> (the data version used, {metric: value})
Evaluate = Callable[[ModelVersion, Evaluation], tuple[str, dict[str, float]]]


def gather(
    policy: Policy,
    version: ModelVersion,
    registry: ModelRegistry,
    metadata: MetadataStore,
    evaluate: Evaluate,
) -> Evidence:
    """The evidence the policy's gates need, and only that: an evaluation runs only when a
    gate asks for one. A failed evaluation is kept as its reason (the gate fails with it)."""
    project = registry.get_model(version.name).project
    run = _run_of(metadata, version, project)
    kinds = {gate.kind for gate in policy.gates}
    compared = {g.spec["champion"] for g in policy.gates if g.kind == "champion"} | {
        g.spec["environment"] for g in policy.gates if g.kind == "signature_compatible_with"
    }
    aliases = registry.get_model(version.name).aliases if compared else {}
    champions, champion_metrics, champion_signatures = {}, {}, {}
    for environment in sorted(compared):
        number = aliases.get(environment)
        if number is None:
            continue
        theirs = registry.resolve(ModelRef(version.name, version=number))
        champions[environment] = theirs.ref
        champion_metrics[environment] = _metrics(_run_of(metadata, theirs, project))
        champion_signatures[environment] = theirs.manifest.get("signature")
    evaluations, evaluated, errors = {}, {}, {}
    for gate in policy.gates:
        if gate.kind != "evaluate":
            continue
        asked, key = Evaluation.of(gate), evaluation_key(gate.spec)
        try:
            used, measured = evaluate(version, asked)
        except CairnError as exc:  # the model's failure too: a failed gate, never a crash
            errors[key] = f"could not evaluate on {asked.data}: {exc.message}"
            continue
        evaluations[key], evaluated[key] = measured, used
    commit, dirty, pipeline = _provenance(metadata, run) if "provenance" in kinds else (
        None, None, False)  # fmt: skip
    return Evidence(
        metrics=_metrics(run),
        champion_metrics=champion_metrics,
        evaluations=evaluations,
        signature=version.manifest.get("signature"),
        champion_signatures=champion_signatures,
        pipeline_run=pipeline,
        git_commit=commit,
        git_dirty=dirty,
        unsafe_imports=[str(f) for f in version.findings],
        card=registry.get_card(version.name, version.version),
        run_id=run.id if run else None,
        champions=champions,
        evaluated=evaluated,
        evaluation_errors=errors,
    )


def _run_of(metadata: MetadataStore, version: ModelVersion, project: str) -> Run | None:
    """The run that made the version, if it is one of ``project``'s."""
    if version.run_id is None:
        return None
    try:
        run = metadata.get_run(version.run_id)
    except NotFound:
        return None
    return run if metadata.get_experiment(run.experiment_id).project == project else None


def _metrics(run: Run | None) -> Mapping[str, float]:
    return {k: m.value for k, m in run.metrics.items()} if run else {}


def _provenance(metadata: MetadataStore, run: Run | None) -> tuple[str | None, bool | None, bool]:
    """The commit, whether the tree was dirty, and whether a pipeline made it: a pipeline
    step's run has the commit; the pipeline's run (its parent) has the dirty flag."""
    if run is None:
        return None, None, False
    pipeline: Run | None = None
    if run.tags.get("cairn.run.kind") == "pipeline":
        pipeline = run
    elif "cairn.step" in run.tags and run.parent_id:
        parent = metadata.get_run(run.parent_id)
        # A pipeline's step runs are its runner's: another account's run nested in it
        # (whose tags are its own to write) borrows nothing from it.
        ours = parent.user == run.user and parent.tags.get("cairn.run.kind") == "pipeline"
        pipeline = parent if ours else None
    if pipeline is None:
        return run.git_commit, None, False
    dirty = {"true": True, "false": False}.get(pipeline.tags.get("cairn.git.dirty", ""))
    return run.git_commit or pipeline.git_commit, dirty, True
