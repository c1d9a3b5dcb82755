"""Running a pipeline's graph: each step cached, tracked and retried.

A pipeline run is a run (tags ``cairn.pipeline``, the git commit, ``cairn.git.dirty``);
each step call is a run nested in it, with its parameters, duration and status, its
output as an artifact, and the numbers of a returned dict as metrics (also logged on the
pipeline run, where sweeps look for their objective). Lineage edges link each step run to
the data versions it read, the outputs of earlier steps it took (``used``) and its own
output (``produced``), so a walk from a data version reaches every output made from it.

A step's cache key is the digest of its code fingerprint (``cairn.pipelines.fingerprint``),
its parameters as canonical JSON, the digests of its inputs (the outputs of earlier steps,
and the manifests of the data versions its string parameters name, such as
``customers@latest``), the environment's digest and the output formats' version. A step
whose key a finished step run of the same pipeline already has, and whose output the store
still holds, is not run again: its run is recorded as ``cached`` and its output reused —
if that output is a pickle, only when ``cairn.pipelines.trust`` says it is safe to load
(your own, sealed; or passing the registry's scan); otherwise the step runs again and the
run says why, in one warning. A failed pipeline run again re-runs only what did not
finish. What a step's code reads but its fingerprint cannot follow is said, once per step,
in a warning (also a tag of its run, ``cairn.cache.warning``), whether it ran or came
from the cache.

However a run stops, no run is left ``RUNNING``: a step that raised or called
``sys.exit`` is ``FAILED``; on Ctrl-C or SIGTERM the steps running are ``KILLED``, and the
pipeline run too (``cairn.pipelines.interruption``); when Cairn itself fails mid-run, the
runs it had open are ``FAILED`` before the error goes on.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cairn.core.artifact import ArtifactEntry
from cairn.core.clock import now_ms
from cairn.core.data import parse_data_ref
from cairn.core.limits import MAX_TAG_VALUE
from cairn.core.pipeline import (
    CACHE_KEY,
    OUTPUT_DIGEST,
    PIPELINE,
    PIPELINE_KIND,
    RUN_KIND,
    STEP,
    STEP_STATE,
)
from cairn.core.ports import ArtifactStore
from cairn.core.run import MetricPoint, Run, RunRecord, RunStatus
from cairn.errors import InvalidInput, StepFailed
from cairn.localfs.digest import digest_of, hasher
from cairn.pipelines.definition import Graph, Node
from cairn.pipelines.environment import environment_digest, installed
from cairn.pipelines.executors import (
    Executor,
    LocalExecutor,
    Outcome,
    StepTask,
    Stored,
    load,
    metrics_of,
    one_line,
)
from cairn.pipelines.fingerprint import code_fingerprint
from cairn.pipelines.interruption import cause, stopped, terminating_interrupts
from cairn.pipelines.materialize import FORMATS_VERSION, MODEL
from cairn.pipelines.trust import (
    HAS_METRICS,
    OUTPUT_FORMAT,
    SEAL,
    Recorded,
    Vetting,
)
from cairn.tracking import source
from cairn.tracking.service import RunStart, TrackingService

if TYPE_CHECKING:  # the registry loads when a step registers a model
    from cairn.models.service import ModelService

TARGET = "cairn.pipeline.target"
PARAMS = "cairn.pipeline.params"  # the parameters as JSON, with their types
STEP_DATA = "cairn.step.data"
ENVIRONMENT = "environment.json"
CACHE_WARNING = "cairn.cache.warning"  # what the step's key does not cover
STEP_ERROR = "cairn.step.error"
_SHOWN_NOTES = 5  # of what a key does not cover, in a step's warning


@dataclass
class StepResult:
    node: str
    state: str  # ran, cached, failed, killed, skipped (an earlier step did not finish)
    seconds: float = 0.0
    run_id: str = ""
    output: Stored | None = None
    attempts: int = 0
    error: str = ""  # after the step's name: "failed: …", "called sys.exit(3)", "KILLED: …"
    model: str = ""  # the model version its output was registered as (register=)
    warning: str = ""  # what its cache key does not cover, as one line


@dataclass
class PipelineResult:
    pipeline: str
    run_id: str
    steps: list[StepResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # logged on the pipeline run
    user: str = ""  # the account the run is recorded as (whose outputs are its own)

    @property
    def failed(self) -> StepResult | None:
        """The first step that failed or was killed."""
        return next((s for s in self.steps if s.state in ("failed", "killed")), None)

    def step(self, node: str) -> StepResult:
        return next(s for s in self.steps if s.node == node)


DataResolver = Callable[[str], str | None]  # a data reference → its manifest digest, if any


class Runner:
    """Runs graphs over the tracking service and the artifact store, in this process, one
    step after another in the order the pipeline called them."""

    def __init__(
        self,
        tracking: TrackingService,
        artifacts: ArtifactStore,
        resolve_data: DataResolver,
        root: Path,
        executor: Executor | None = None,
        models: Callable[[], ModelService] | None = None,
        *,
        secret: bytes,
    ) -> None:
        """``secret`` seals the outputs its runs record (``cairn.pipelines.trust``)."""
        self.tracking = tracking
        self.artifacts = artifacts
        self.resolve_data = resolve_data
        self.root = root
        self.executor = executor or LocalExecutor(artifacts)
        self.models = models  # registers what steps with ``register=`` return
        self._commit: str | None = None
        self._secret = secret
        self._vetting = Vetting(artifacts, secret, "")  # for the account of each run
        # Step runs started and not ended: id → (step, perf_counter when it started).
        self._open: dict[str, tuple[str, float]] = {}

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
    ) -> PipelineResult:
        """Run the graph; steps not in ``only`` (when given) must come from the cache.
        ``parent_id`` nests the pipeline run (a sweep's trial); ``tags`` are added to it.

        Raises:
            InvalidInput: ``only`` names a step the pipeline does not have.
            StepFailed: a step raised on its last attempt, called ``sys.exit`` or was
                killed (after the runs are recorded).
            Interrupted: Ctrl-C, SIGTERM or SIGHUP stopped the run (a KeyboardInterrupt,
                raised once the runs it stopped are recorded KILLED).
        """
        if only is not None and (unknown := sorted(only - set(graph.nodes))):
            raise InvalidInput(
                f"--only {unknown[0]}: pipeline {graph.pipeline} has no such step (its "
                f"steps: {', '.join(graph.nodes)})"
            )
        began = time.perf_counter()
        experiment = experiment or graph.pipeline
        with terminating_interrupts():
            parent = self._open_pipeline_run(graph, experiment, parent_id, tags)
            result = PipelineResult(graph.pipeline, parent.id, user=parent.user)
            state = _Pass(graph, experiment, parent.id, result, on_step, began)
            try:
                self.tracking.metadata.log_batch(parent.id, [], _as_params(graph.params), {})
                self._record_environment(parent.id)
                self._run_levels(state, force, only)
            except KeyboardInterrupt as exc:  # Ctrl-C, or a signal to end the process
                killed = self._stop(state, RunStatus.KILLED, f"KILLED: {cause(exc)}")
                raise stopped(exc, killed, parent.id) from None
            except BaseException as exc:  # Cairn failed: what it had open did not finish
                self._stop(state, RunStatus.FAILED, f"failed: the run stopped: {one_line(exc)}")
                raise
            self._stop(state, None, "")
        result = state.result
        if (failure := result.failed) is not None:
            raise StepFailed(f"step {failure.node} {failure.error}")
        order = {name: index for index, name in enumerate(graph.nodes)}
        result.steps.sort(key=lambda s: order[s.node])
        return result

    def _open_pipeline_run(
        self, graph: Graph, experiment: str, parent_id: str | None, tags: dict[str, str] | None
    ) -> Run:
        dirty = source.git_dirty(self.root)
        run_tags = {PIPELINE: graph.pipeline, RUN_KIND: PIPELINE_KIND, **(tags or {})}
        if graph.target:
            run_tags[TARGET] = graph.target
        params_json = orjson.dumps(graph.params, option=orjson.OPT_SORT_KEYS).decode()
        if len(params_json) <= MAX_TAG_VALUE:  # longer ones are in the params, as text
            run_tags[PARAMS] = params_json
        if dirty is not None:
            run_tags["cairn.git.dirty"] = str(dirty).lower()
        # Its steps ran at the same commit: looked up once ("" when there is none).
        self._commit = source.git_commit(self.root) or ""
        self._open = {}
        start = RunStart(experiment, graph.pipeline, run_tags, parent_id, self._commit)
        run = self.tracking.create_run(start)
        # Who runs it, as the store recorded it: the outputs that are its own.
        self._vetting = Vetting(self.artifacts, self._secret, run.user)
        return run

    def _run_levels(self, state: _Pass, force: bool, only: frozenset[str] | None) -> None:
        result, parent_id, on_step = state.result, state.parent_id, state.on_step
        for level in _levels(state.graph):
            # Cache lookups here; the steps to run, all at once.
            ready: list[tuple[Node, _Started]] = []
            for node in level:
                done = self._prepare(node, parent_id, state.experiment, result, force, only)
                if isinstance(done, _Hit):
                    result.steps.append(done.result)  # its output feeds later steps
                    state.hits.append(done)
                elif isinstance(done, StepResult):
                    self._finished(result, done, on_step)
                else:
                    ready.append((node, done))
            if ready:
                self._record_hits(state.hits, parent_id, result, on_step)
            outcomes = self.executor.run_all([started.task for _, started in ready])
            for (node, started), outcome in zip(ready, outcomes, strict=True):
                done = self._record_outcome(node, started, outcome, parent_id, result)
                self._finished(result, done, on_step)

    def _stop(self, state: _Pass, stop: RunStatus | None, why: str) -> list[str]:
        """End the run: ``stop`` None when it went through, else how the runs still open
        end (KILLED, FAILED) and ``why``. The steps that were open, by name."""
        if stop is None:
            self.executor.close()
            ended = []
        else:
            self.executor.cancel()
            ended = [self._end_open(run_id, stop, why, state) for run_id in list(self._open)]
        self._record_hits(state.hits, state.parent_id, state.result, state.on_step)
        result = state.result
        if stop is None:
            unfinished = len(result.steps) < len(state.graph.nodes)
            killed = any(s.state == "killed" for s in result.steps)
            failed = RunStatus.FAILED if result.failed or unfinished else RunStatus.FINISHED
            stop = RunStatus.KILLED if killed else failed
        self.tracking.end_run(state.parent_id, stop)
        result.seconds = time.perf_counter() - state.began
        return ended

    def _end_open(self, run_id: str, stop: RunStatus, why: str, state: _Pass) -> str:
        """A step run the run stopped under: ended ``stop``, shown as such; its name."""
        node, began = self._open.pop(run_id)
        self.tracking.metadata.log_batch(run_id, [], {}, {STEP_ERROR: why})
        self.tracking.end_run(run_id, stop)
        ended = "killed" if stop is RunStatus.KILLED else "failed"
        seconds = time.perf_counter() - began
        done = StepResult(node, ended, seconds, run_id, error=why)
        self._finished(state.result, done, state.on_step)
        return node

    @staticmethod
    def _finished(
        result: PipelineResult, done: StepResult, on_step: Callable[[StepResult], None] | None
    ) -> None:
        result.steps.append(done)
        if on_step is not None:
            on_step(done)

    def _record_environment(self, run_id: str) -> None:
        """Python's and every package's version, as the artifact ``environment.json``
        (stored once per distinct environment: the store keeps one copy of equal bytes)."""
        with tempfile.TemporaryDirectory(prefix="cairn-env-") as folder:
            local = Path(folder) / "environment.json"
            local.write_bytes(orjson.dumps(installed(), option=orjson.OPT_SORT_KEYS))
            info = self.artifacts.put_file(local)
        entry = ArtifactEntry(ENVIRONMENT, info.digest, info.size)
        self.tracking.metadata.add_artifacts(run_id, [entry])

    def load(self, stored: Stored) -> Any:
        """An output read back from the store, in the format it was written in."""
        return load(self.artifacts, stored)

    # one step

    def _prepare(
        self,
        node: Node,
        parent_id: str,
        experiment: str,
        result: PipelineResult,
        force: bool,
        only: frozenset[str] | None,
    ) -> StepResult | _Hit | _Started:
        """The step's result if it is skipped; its record if it is cached; else its run,
        started, and the task that runs it."""
        earlier = {s.node: s for s in result.steps}
        if any(
            earlier[upstream].state in ("failed", "killed", "skipped")
            for upstream in node.inputs.values()
        ):
            return StepResult(node.name, "skipped")
        inputs = {arg: earlier[upstream].output for arg, upstream in node.inputs.items()}
        data = self._data_inputs(node)
        key = self._cache_key(node, inputs, data)
        if key.warning:
            result.warnings.append(key.warning)
        must_run = force or (only is not None and node.name in only)
        if not must_run:
            hit = self._from_cache(node, experiment, key, only is not None, result)
            if hit is not None:
                return self._hit(node, parent_id, experiment, key, hit, inputs, data)
        return self._start(node, parent_id, experiment, key, inputs, data)

    def _from_cache(
        self, node: Node, experiment: str, key: _Key, required: bool, result: PipelineResult
    ) -> Stored | None:
        """The step's cached output, if there is one it may use; a cached pickle it may
        not load is said, once, and the step runs again.

        Raises:
            InvalidInput: ``required`` (``--only``), and there is none it may use.
        """
        cached = self._cached(experiment, key.digest)
        if cached is not None and cached.stored.vetted:
            return cached.stored
        refused = "" if cached is None else f"the cached output is {cached.refusal()}"
        rule = "pickles are reused only from your own runs or when they pass the scan"
        if required:
            why = f": {refused}; {rule}" if refused else " is not in the cache for these inputs"
            raise InvalidInput(f"--only: step {node.name}{why}; run the whole pipeline first")
        if refused:
            result.warnings.append(f"step {node.name}: {refused}; {rule} — ran it again")
        return None

    def _data_inputs(self, node: Node) -> dict[str, str]:
        """The parameters that name data versions (``customers@latest``): argument →
        ``name@N`` resolved now, with its manifest digest in the key."""
        found: dict[str, str] = {}
        for argument, value in node.params.items():
            if isinstance(value, str) and "@" in value:
                try:
                    parse_data_ref(value)
                except InvalidInput:
                    continue
                resolved = self.resolve_data(value)
                if resolved is not None:
                    found[argument] = resolved
        return found

    def _cache_key(
        self, node: Node, inputs: dict[str, Stored | None], data: dict[str, str]
    ) -> _Key:
        step = node.step
        code = step.code
        unfollowed: tuple[str, ...] = ()
        if code is None:
            fingerprint = code_fingerprint(step.origin or step.function)
            code, unfollowed = fingerprint.digest, fingerprint.unfollowed
        document = {
            "step": f"{step.function.__module__}.{step.function.__qualname__}",
            "code": code,
            "reads": step.key_parts() if step.key_parts is not None else {},
            "params": node.params,
            "inputs": {arg: stored.digest if stored else None for arg, stored in inputs.items()},
            "data": data,
            "environment": environment_digest(),
            "formats": FORMATS_VERSION,
        }
        state = hasher()
        state.update(orjson.dumps(document, option=orjson.OPT_SORT_KEYS))
        return _Key(digest_of(state), _warning(node.name, unfollowed))

    def _cached(self, experiment: str, key: str) -> Recorded | None:
        """The output recorded under ``key`` that the store still holds, vetted if it may
        be loaded (else with what its pickle would import)."""
        recorded = self._recorded(experiment, key)
        if recorded is None or self.artifacts.missing([recorded.stored.digest]):
            return None  # never recorded, or the output is gone (collected): run it
        return self._vetting.scanned(recorded)

    def _recorded(self, experiment: str, key: str) -> Recorded | None:
        """The output of the newest finished step run with ``key``. When that is a pickle
        not known to be your own, your own newest, if you have one: reading the user off
        the row found costs nothing, so only then is a second query made."""
        found = self._newest(experiment, key)
        if found is None or found.stored.vetted:
            return found
        mine = self._newest(experiment, key, self._vetting.user)
        return mine if mine is not None and mine.stored.vetted else found

    def _newest(self, experiment: str, key: str, user: str | None = None) -> Recorded | None:
        """The output of the step run the cache holds for ``key`` (``user``'s, if given)."""
        found = self.tracking.cached_output(experiment, key, user)
        return None if found is None else self._vetting.recorded(found)

    def _open_step_run(
        self,
        node: Node,
        parent_id: str,
        experiment: str,
        tags: dict[str, str],
        data: dict[str, str],
    ) -> Run:
        """The step's run, nested in the pipeline's, with its parameters and data inputs."""
        start = RunStart(experiment, node.name, tags, parent_id, self._commit)
        run = self.tracking.create_run(start)
        self._open[run.id] = (node.name, time.perf_counter())  # until it ends, however
        if node.params:
            self.tracking.metadata.log_batch(run.id, [], _as_params(node.params), {})
        self._log_data_inputs(run.id, node, data)
        return run

    def _hit(
        self,
        node: Node,
        parent_id: str,
        experiment: str,
        key: _Key,
        hit: Stored,
        inputs: dict[str, Stored | None],
        data: dict[str, str],
    ) -> _Hit:
        """A cached step's run record, ready to be recorded with the others."""
        started = time.perf_counter()
        numbers: dict[str, float] = {}
        # Read back only when needed: its numbers are metrics again, for this run, or a
        # command's files go back in place.
        if hit.format == "json" and (hit.metrics or node.step.on_cached is not None):
            value = self.load(hit)
            numbers = metrics_of(value)
            if node.step.on_cached is not None:
                node.step.on_cached(value, self.artifacts)
        tags = {STEP: node.name, STEP_STATE: "cached", **key.tags(),
                **self._output_tags(key, hit)}  # fmt: skip
        if numbers:
            tags[HAS_METRICS] = "1"
        new = self.tracking.new_run(RunStart(experiment, node.name, tags, parent_id, self._commit))
        record = RunRecord(
            new=new,
            status=RunStatus.FINISHED,
            end_time=now_ms(),
            params=_as_params(node.params),
            metrics=_points(numbers),
            used=[s.digest for s in inputs.values() if s is not None],
            produced=[hit.digest],
        )
        seconds = time.perf_counter() - started
        done = StepResult(node.name, "cached", seconds, "", hit, warning=key.warning)
        return _Hit(node, record, data, numbers, done)

    def _record_hits(
        self,
        hits: list[_Hit],
        parent_id: str,
        result: PipelineResult,
        on_step: Callable[[StepResult], None] | None,
    ) -> None:
        """Record the cached steps gathered so far, all in one call, then forget them."""
        if not hits:
            return
        runs = self.tracking.metadata.record_runs([hit.record for hit in hits])
        numbers: dict[str, float] = {}
        for hit, run in zip(hits, runs, strict=True):
            hit.result.run_id = run.id
            self._log_data_inputs(run.id, hit.node, hit.data)
            self._register(hit.node, hit.result, result)
            numbers.update(hit.metrics)
        if numbers:  # the pipeline run has its steps' metrics, cached or not
            result.metrics.update(numbers)
            self.tracking.metadata.log_batch(parent_id, _points(numbers), {}, {})
        if on_step is not None:
            for hit in hits:
                on_step(hit.result)
        hits.clear()

    def _start(
        self,
        node: Node,
        parent_id: str,
        experiment: str,
        key: _Key,
        inputs: dict[str, Stored | None],
        data: dict[str, str],
    ) -> _Started:
        tags = {STEP: node.name, STEP_STATE: "ran", **key.tags()}
        run = self._open_step_run(node, parent_id, experiment, tags, data)
        upstream = {}
        for argument, source_node in node.inputs.items():
            stored = inputs[argument]
            assert stored is not None  # an upstream that did not fail has an output
            upstream[argument] = (source_node, stored)
        task = StepTask(
            node.name, node.step.function, dict(node.params), upstream, node.step.retries,
            node.step.backoff,
        )  # fmt: skip
        return _Started(run.id, time.perf_counter(), task, key)

    def _record_outcome(
        self, node: Node, started: _Started, outcome: Outcome, parent_id: str,
        result: PipelineResult,
    ) -> StepResult:  # fmt: skip
        run_id = started.run_id
        if outcome.kept:  # what the step kept (an executed notebook), failed or not
            self.tracking.metadata.add_artifacts(run_id, outcome.kept)
        result.warnings.extend(outcome.warnings)
        seconds = time.perf_counter() - started.at
        if outcome.stored is None:
            self.tracking.metadata.log_batch(run_id, [], {}, {STEP_ERROR: outcome.error_line})
            self._end_step_run(run_id, RunStatus.KILLED if outcome.killed else RunStatus.FAILED)
            state = "killed" if outcome.killed else "failed"
            return StepResult(node.name, state, seconds, run_id, None, outcome.attempts,
                              outcome.error, warning=started.key.warning)  # fmt: skip
        stored = outcome.stored
        entry = ArtifactEntry(f"output/{node.name}.{stored.format}", stored.digest, outcome.size)
        self.tracking.metadata.add_artifacts(run_id, [entry])
        used = [s.digest for _, s in started.task.inputs.values()]
        self.tracking.metadata.log_lineage(run_id, used, [stored.digest])
        self._log_metrics(run_id, parent_id, outcome.metrics, result)
        output_tags = self._output_tags(started.key, stored)
        if outcome.metrics:
            output_tags[HAS_METRICS] = "1"
        self.tracking.metadata.log_batch(run_id, [], {}, output_tags)
        self._end_step_run(run_id, RunStatus.FINISHED)
        done = StepResult(node.name, "ran", seconds, run_id, stored, outcome.attempts,
                          warning=started.key.warning)  # fmt: skip
        self._register(node, done, result)
        return done

    def _output_tags(self, key: _Key, stored: Stored) -> dict[str, str]:
        """What a step run records of its output, sealed as this account's."""
        seal = self._vetting.seal(key.digest, stored)
        return {OUTPUT_DIGEST: stored.digest, OUTPUT_FORMAT: stored.format, SEAL: seal}

    def _end_step_run(self, run_id: str, status: RunStatus) -> None:
        self.tracking.end_run(run_id, status)
        self._open.pop(run_id, None)

    def _register(self, node: Node, done: StepResult, result: PipelineResult) -> None:
        """A step with ``register=``: its model, as a version of that model (the newest
        version already, when this package is the newest one's)."""
        name = node.step.register
        if name is None or done.output is None or self.models is None:
            return  # nothing to register, or registering is off (a reproduction)
        if done.output.format != MODEL:
            result.warnings.append(
                f"step {node.name}: register={name!r}, but it returned no model of a packaged "
                f"flavor (its output is {done.output.format}): nothing was registered"
            )
            return
        done.model = self.models().register_stored(name, done.output.digest, done.run_id).ref

    def _log_metrics(
        self, run_id: str, parent_id: str, numbers: dict[str, float], result: PipelineResult
    ) -> None:
        """A dict of numbers returned by a step is its metrics (and the pipeline's)."""
        if not numbers:
            return
        result.metrics.update(numbers)
        for target in (run_id, parent_id):
            self.tracking.metadata.log_batch(target, _points(numbers), {}, {})

    def _log_data_inputs(self, run_id: str, node: Node, data: dict[str, str]) -> None:
        """Lineage (the run used these versions), and which argument got which version
        (``cairn.step.data``, what ``cairn reproduce`` pins them to)."""
        arguments = list(data)
        if not arguments:
            return
        used = self.tracking.metadata.log_inputs(run_id, [node.params[a] for a in arguments])
        pinned = orjson.dumps(dict(zip(arguments, used, strict=True))).decode()
        self.tracking.metadata.log_batch(run_id, [], {}, {STEP_DATA: pinned})


@dataclass(frozen=True, slots=True)
class _Hit:
    """A step taken from the cache, not yet recorded (its result's run id is set then)."""

    node: Node
    record: RunRecord
    data: dict[str, str]  # argument -> the data version it named (see _data_inputs)
    metrics: dict[str, float]
    result: StepResult


@dataclass(frozen=True, slots=True)
class _Started:
    run_id: str
    at: float  # perf_counter when the step's run started
    task: StepTask
    key: _Key


@dataclass(frozen=True, slots=True)
class _Key:
    """A step's cache key, and what it does not cover, as one line ("" if nothing)."""

    digest: str
    warning: str

    def tags(self) -> dict[str, str]:
        tags = {CACHE_KEY: self.digest}
        if self.warning:
            tags[CACHE_WARNING] = self.warning[:MAX_TAG_VALUE]
        return tags


@dataclass
class _Pass:
    """One pass of a runner over a graph: what its steps record into."""

    graph: Graph
    experiment: str
    parent_id: str
    result: PipelineResult
    on_step: Callable[[StepResult], None] | None
    began: float  # perf_counter when the run began
    # Steps taken from the cache, not yet recorded: they are recorded together, in one
    # transaction (one request to a server), before any step runs and at the end, so that
    # a run with nothing to do costs one write, not four per step.
    hits: list[_Hit] = field(default_factory=list)


def _warning(node: str, unfollowed: tuple[str, ...]) -> str:
    """What a step's key does not cover, as one line: the first few things."""
    if not unfollowed:
        return ""
    shown = "; ".join(unfollowed[:_SHOWN_NOTES])
    more = len(unfollowed) - _SHOWN_NOTES
    return f"step {node}: {shown}" + (f"; and {more} more" if more > 0 else "")


def _levels(graph: Graph) -> list[list[Node]]:
    """The steps in waves: each wave needs only outputs of the waves before it, so its
    steps can run at once."""
    depth: dict[str, int] = {}
    for node in graph.nodes.values():  # called in order: inputs come before
        depth[node.name] = 1 + max((depth[up] for up in node.inputs.values()), default=-1)
    waves: list[list[Node]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in graph.nodes.values():
        waves[depth[node.name]].append(node)
    return waves


def _points(numbers: dict[str, float]) -> list[MetricPoint]:
    now = now_ms()
    return [(key, value, 0, now) for key, value in numbers.items()]


def _as_params(values: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in values.items()}
