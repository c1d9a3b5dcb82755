"""Running a pipeline's graph: each step cached, tracked and retried.

A pipeline run is a run (tags ``cairn.pipeline``, the git commit, ``cairn.git.dirty``);
each step call is a run nested in it, with its parameters, duration and status, its
output as an artifact, and the numbers of a returned dict as metrics (also logged on the
pipeline run, where sweeps look for their objective).

A step's cache key is the digest of its code fingerprint (``cairn.pipelines.fingerprint``),
its parameters as canonical JSON, the digests of its inputs (the outputs of earlier steps,
and the manifests of the data versions its string parameters name, such as
``customers@latest``), the environment's digest and the output formats' version. A step
whose key a finished step run of the same pipeline already has, and whose output the store
still holds, is not run again: its run is recorded as ``cached`` and its output reused.
A failed pipeline run again re-runs only what did not finish.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cairn.core.artifact import ArtifactEntry
from cairn.core.data import parse_data_ref
from cairn.core.limits import MAX_TAG_VALUE
from cairn.core.ports import ArtifactStore
from cairn.core.run import RunStatus
from cairn.errors import CairnError, InvalidInput, NotFound
from cairn.localfs.digest import digest_of, hasher
from cairn.pipelines.definition import Graph, Node, running_artifacts, running_store
from cairn.pipelines.environment import environment_digest, installed
from cairn.pipelines.fingerprint import code_fingerprint
from cairn.pipelines.materialize import FORMATS_VERSION, PICKLE, format_for, format_named
from cairn.tracking import source
from cairn.tracking.service import RunStart, TrackingService

CACHE_KEY = "cairn.cache_key"
TARGET = "cairn.pipeline.target"
PARAMS = "cairn.pipeline.params"  # the parameters as JSON, with their types
STEP_DATA = "cairn.step.data"
ENVIRONMENT = "environment.json"
OUTPUT_DIGEST = "cairn.output.digest"
OUTPUT_FORMAT = "cairn.output.format"
_CAIRN_PACKAGE = str(Path(__file__).resolve().parents[1])


class StepFailed(CairnError):
    """A step raised; the message names it and carries the user's traceback."""

    code = "STEP_FAILED"
    http_status = 500


@dataclass(frozen=True, slots=True)
class Stored:
    digest: str
    format: str


@dataclass
class StepResult:
    node: str
    state: str  # ran, cached, failed, skipped (an earlier step failed)
    seconds: float = 0.0
    run_id: str = ""
    output: Stored | None = None
    attempts: int = 0
    error: str = ""


@dataclass
class PipelineResult:
    pipeline: str
    run_id: str
    steps: list[StepResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # logged on the pipeline run

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.state == "failed"), None)

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
    ) -> None:
        self.tracking = tracking
        self.artifacts = artifacts
        self.resolve_data = resolve_data
        self.root = root

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
            StepFailed: a step raised on its last attempt (after the run is recorded).
        """
        if only is not None and (unknown := sorted(only - set(graph.nodes))):
            raise InvalidInput(
                f"--only {unknown[0]}: pipeline {graph.pipeline} has no such step (its "
                f"steps: {', '.join(graph.nodes)})"
            )
        started = time.perf_counter()
        experiment = experiment or graph.pipeline
        dirty = source.git_dirty(self.root)
        run_tags = {"cairn.pipeline": graph.pipeline, "cairn.run.kind": "pipeline", **(tags or {})}
        if graph.target:
            run_tags[TARGET] = graph.target
        params_json = orjson.dumps(graph.params, option=orjson.OPT_SORT_KEYS).decode()
        if len(params_json) <= MAX_TAG_VALUE:  # longer ones are in the params, as text
            run_tags[PARAMS] = params_json
        if dirty is not None:
            run_tags["cairn.git.dirty"] = str(dirty).lower()
        start = RunStart(experiment, graph.pipeline, run_tags, parent_id)
        parent = self.tracking.create_run(start)
        self.tracking.metadata.log_batch(parent.id, [], _as_params(graph.params), {})
        self._record_environment(parent.id)
        result = PipelineResult(graph.pipeline, parent.id)
        values: dict[str, Any] = {}  # outputs computed here, by node
        try:
            for node in graph.nodes.values():
                done = self._step(graph, node, parent.id, experiment, result, values, force, only)
                result.steps.append(done)
                if on_step is not None:
                    on_step(done)
        finally:
            failed = result.failed is not None or len(result.steps) < len(graph.nodes)
            status = RunStatus.FAILED if failed else RunStatus.FINISHED
            self.tracking.end_run(parent.id, status)
            result.seconds = time.perf_counter() - started
        if (failure := result.failed) is not None:
            raise StepFailed(f"step {failure.node} failed: {failure.error}")
        return result

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
        with tempfile.TemporaryDirectory(prefix="cairn-output-") as folder:
            local = Path(folder) / "output"
            self.artifacts.get_file(stored.digest, local)
            return format_named(stored.format).load(local)

    # one step

    def _step(
        self,
        graph: Graph,
        node: Node,
        parent_id: str,
        experiment: str,
        result: PipelineResult,
        values: dict[str, Any],
        force: bool,
        only: frozenset[str] | None,
    ) -> StepResult:
        earlier = {s.node: s for s in result.steps}
        if any(
            earlier[upstream].state in ("failed", "skipped") for upstream in node.inputs.values()
        ):
            return StepResult(node.name, "skipped")
        inputs = {arg: earlier[upstream].output for arg, upstream in node.inputs.items()}
        data = self._data_inputs(node)
        key = self._cache_key(node, inputs, data)
        must_run = force or (only is not None and node.name in only)
        if not must_run:
            hit = self._cached(experiment, key)
            if hit is not None:
                return self._record_hit(node, parent_id, experiment, key, hit, data, result)
            if only is not None:
                raise InvalidInput(
                    f"--only: step {node.name} is not in the cache for these inputs; run "
                    "the whole pipeline first"
                )
        return self._execute(node, parent_id, experiment, key, inputs, data, values, result)

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

    def _cache_key(self, node: Node, inputs: dict[str, Stored | None], data: dict[str, str]) -> str:
        step = node.step
        document = {
            "step": f"{step.function.__module__}.{step.function.__qualname__}",
            "code": step.code or code_fingerprint(step.origin or step.function, self.root),
            "reads": step.key_parts() if step.key_parts is not None else {},
            "params": node.params,
            "inputs": {arg: stored.digest if stored else None for arg, stored in inputs.items()},
            "data": data,
            "environment": environment_digest(),
            "formats": FORMATS_VERSION,
        }
        state = hasher()
        state.update(orjson.dumps(document, option=orjson.OPT_SORT_KEYS))
        return digest_of(state)

    def _cached(self, experiment: str, key: str) -> Stored | None:
        filter_ = (
            f"tags.`{CACHE_KEY}` = '{key}' and attributes.status = 'FINISHED' and "
            f"tags.`{OUTPUT_DIGEST}` != ''"
        )
        try:
            found = self.tracking.search_runs(experiment, filter_, limit=1).runs
        except NotFound:  # the experiment does not exist yet: nothing is cached
            return None
        if not found:
            return None
        tags = found[0].tags
        stored = Stored(tags[OUTPUT_DIGEST], tags[OUTPUT_FORMAT])
        if self.artifacts.missing([stored.digest]):
            return None  # the output is gone (collected): run it again
        return stored

    def _record_hit(
        self,
        node: Node,
        parent_id: str,
        experiment: str,
        key: str,
        hit: Stored,
        data: dict[str, str],
        result: PipelineResult,
    ) -> StepResult:
        started = time.perf_counter()
        tags = {"cairn.step": node.name, "cairn.step.state": "cached", CACHE_KEY: key,
                OUTPUT_DIGEST: hit.digest, OUTPUT_FORMAT: hit.format}  # fmt: skip
        run = self.tracking.create_run(RunStart(experiment, node.name, tags, parent_id))
        self.tracking.metadata.log_batch(run.id, [], _as_params(node.params), {})
        self._log_data_inputs(run.id, node, data)
        if hit.format == "json":  # small: its numbers are metrics again, for this run
            value = self.load(hit)
            self._log_metrics(run.id, parent_id, value, result)
            if node.step.on_cached is not None:
                node.step.on_cached(value, self.artifacts)  # a command's files, back in place
        self.tracking.end_run(run.id, RunStatus.FINISHED)
        return StepResult(node.name, "cached", time.perf_counter() - started, run.id, hit)

    def _execute(
        self,
        node: Node,
        parent_id: str,
        experiment: str,
        key: str,
        inputs: dict[str, Stored | None],
        data: dict[str, str],
        values: dict[str, Any],
        result: PipelineResult,
    ) -> StepResult:
        started = time.perf_counter()
        tags = {"cairn.step": node.name, "cairn.step.state": "ran", CACHE_KEY: key}
        run = self.tracking.create_run(RunStart(experiment, node.name, tags, parent_id))
        self.tracking.metadata.log_batch(run.id, [], _as_params(node.params), {})
        self._log_data_inputs(run.id, node, data)
        arguments = dict(node.params)
        for argument, upstream in node.inputs.items():
            if upstream not in values:
                stored = inputs[argument]
                assert stored is not None  # an upstream that did not fail has an output
                values[upstream] = self.load(stored)
            arguments[argument] = values[upstream]
        attempts = 0
        while True:
            attempts += 1
            token = running_store.set(self.artifacts)
            kept: list[ArtifactEntry] = []
            kept_token = running_artifacts.set(kept)
            try:
                value = node.step.function(**arguments)
                break
            except Exception as exc:  # noqa: BLE001  (the user's code: any failure is theirs)
                if attempts <= node.step.retries:
                    time.sleep(node.step.backoff * 2 ** (attempts - 1))
                    continue
                self.tracking.metadata.log_batch(
                    run.id, [], {}, {"cairn.step.error": _one_line(exc)}
                )
                self.tracking.end_run(run.id, RunStatus.FAILED)
                error = _user_traceback(exc, attempts)
                seconds = time.perf_counter() - started
                return StepResult(node.name, "failed", seconds, run.id, None, attempts, error)
            finally:
                running_store.reset(token)
                running_artifacts.reset(kept_token)
                if kept:  # what the step kept (an executed notebook), failed or not
                    self.tracking.metadata.add_artifacts(run.id, kept)
        values[node.name] = value
        stored = self._store(run.id, node, value, result)
        self._log_metrics(run.id, parent_id, value, result)
        output_tags = {OUTPUT_DIGEST: stored.digest, OUTPUT_FORMAT: stored.format}
        self.tracking.metadata.log_batch(run.id, [], {}, output_tags)
        self.tracking.end_run(run.id, RunStatus.FINISHED)
        seconds = time.perf_counter() - started
        return StepResult(node.name, "ran", seconds, run.id, stored, attempts)

    def _store(self, run_id: str, node: Node, value: Any, result: PipelineResult) -> Stored:
        fmt = format_for(value)
        if fmt.name == PICKLE:
            result.warnings.append(
                f"step {node.name}: its output (a {type(value).__name__}) was stored with "
                "pickle, which runs code when it is loaded; return JSON, a NumPy array or a "
                "table where you can"
            )
        with tempfile.TemporaryDirectory(prefix="cairn-output-") as folder:
            local = Path(folder) / "output"
            fmt.dump(value, local)
            info = self.artifacts.put_file(local)
        entry = ArtifactEntry(f"output/{node.name}.{fmt.name}", info.digest, info.size)
        self.tracking.metadata.add_artifacts(run_id, [entry])
        return Stored(info.digest, fmt.name)

    def _log_metrics(self, run_id: str, parent_id: str, value: Any, result: PipelineResult) -> None:
        """A dict of numbers returned by a step is its metrics (and the pipeline's)."""
        if not isinstance(value, dict) or not value:
            return
        numbers = {
            k: float(v) for k, v in value.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        }  # fmt: skip
        if not numbers:
            return
        result.metrics.update(numbers)
        now = int(time.time() * 1000)
        points = [(k, v, 0, now) for k, v in numbers.items()]
        for target in (run_id, parent_id):
            self.tracking.metadata.log_batch(target, points, {}, {})

    def _log_data_inputs(self, run_id: str, node: Node, data: dict[str, str]) -> None:
        """Lineage (the run used these versions), and which argument got which version
        (``cairn.step.data``, what ``cairn reproduce`` pins them to)."""
        arguments = list(data)
        if not arguments:
            return
        used = self.tracking.metadata.log_inputs(run_id, [node.params[a] for a in arguments])
        pinned = orjson.dumps(dict(zip(arguments, used, strict=True))).decode()
        self.tracking.metadata.log_batch(run_id, [], {}, {STEP_DATA: pinned})


def _as_params(values: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in values.items()}


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def _user_traceback(exc: BaseException, attempts: int) -> str:
    """The exception with the frames of the user's code only (not Cairn's)."""
    frames = [
        frame for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(_CAIRN_PACKAGE)
    ]  # fmt: skip
    tries = f" (attempt {attempts} of {attempts})" if attempts > 1 else ""
    if not frames:  # raised by Cairn on the step's behalf (a notebook cell): its message
        return f"{type(exc).__name__}: {exc}{tries}"
    shown = "".join(traceback.format_list(frames))
    return f"{_one_line(exc)}{tries}\nTraceback (most recent call last):\n{shown}".rstrip()
