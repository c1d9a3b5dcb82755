"""What a policy's gates decide on, for one model version (the gates' ``Facts``): the
metrics of the run that made it, the versions it would be compared with, fresh
evaluations, its signature, provenance, scan findings and card — each read from the
registry and the tracking store when a gate first asks, never taken from whoever asks.

Whoever may read the model reads its gates' evidence, so evidence comes only from what the
model's project holds: a run of another project (a version may name one its registrant
could read) counts as no run, and an evaluation reads only the project's data (the
evaluator sees to it). Provenance is read from system tags (``cairn.*``), which only a
run's own account writes, while it runs (``cairn.stores.metadata.system_tags``); a step
run counts only inside a pipeline run of the same account.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from cairn.core.gates.base import Evaluation, Provenance
from cairn.core.model import ModelCard, ModelRef, ModelVersion
from cairn.core.ports import MetadataStore, ModelRegistry
from cairn.core.run import Run
from cairn.errors import NotFound

# (the version, what the gate asks for) -> (the data version used, {metric: value})
Evaluate = Callable[[ModelVersion, Evaluation], tuple[str, dict[str, float]]]


class CandidateFacts:
    """The facts about one candidate, each looked up once, when a gate first asks: an
    evaluation runs only when an evaluate gate asks for one."""

    def __init__(
        self,
        version: ModelVersion,
        registry: ModelRegistry,
        metadata: MetadataStore,
        evaluate: Evaluate,
    ) -> None:
        self.version = version
        self._registry, self._metadata, self._evaluate = registry, metadata, evaluate
        self._champions: dict[str, ModelVersion | None] = {}

    @functools.cached_property
    def _project(self) -> str:
        return self._registry.get_model(self.version.name).project

    @functools.cached_property
    def _run(self) -> Run | None:
        return _run_of(self._metadata, self.version, self._project)

    @property
    def run_id(self) -> str | None:
        return self._run.id if self._run else None

    @functools.cached_property
    def metrics(self) -> Mapping[str, float]:
        return _metrics(self._run)

    @property
    def signature(self) -> Mapping[str, Any] | None:
        found: Mapping[str, Any] | None = self.version.manifest.get("signature")
        return found

    @property
    def unsafe_imports(self) -> tuple[str, ...]:
        return tuple(str(f) for f in self.version.findings)

    @functools.cached_property
    def card(self) -> ModelCard:
        return self._registry.get_card(self.version.name, self.version.version)

    @functools.cached_property
    def provenance(self) -> Provenance:
        return _provenance(self._metadata, self._run)

    def champion(self, environment: str) -> str | None:
        found = self._champion(environment)
        return found.ref if found else None

    def metrics_in(self, environment: str) -> Mapping[str, float]:
        found = self._champion(environment)
        return _metrics(_run_of(self._metadata, found, self._project)) if found else {}

    def signature_in(self, environment: str) -> Mapping[str, Any] | None:
        found = self._champion(environment)
        signature: Mapping[str, Any] | None = found.manifest.get("signature") if found else None
        return signature

    def evaluate(self, asked: Evaluation) -> tuple[str, Mapping[str, float]]:
        return self._evaluate(self.version, asked)

    def _champion(self, environment: str) -> ModelVersion | None:
        """The version in ``environment`` now (the model's alias of that name)."""
        if environment not in self._champions:
            number = self._aliases.get(environment)
            found = None if number is None else self._registry.resolve(
                ModelRef(self.version.name, version=number))  # fmt: skip
            self._champions[environment] = found
        return self._champions[environment]

    @functools.cached_property
    def _aliases(self) -> Mapping[str, int]:
        return self._registry.get_model(self.version.name).aliases


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


def _provenance(metadata: MetadataStore, run: Run | None) -> Provenance:
    """The commit, whether the tree was dirty, and whether a pipeline made it: a pipeline
    step's run has the commit; the pipeline's run (its parent) has the dirty flag."""
    if run is None:
        return Provenance()
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
        return Provenance(git_commit=run.git_commit)
    dirty = {"true": True, "false": False}.get(pipeline.tags.get("cairn.git.dirty", ""))
    return Provenance(True, run.git_commit or pipeline.git_commit, dirty)
