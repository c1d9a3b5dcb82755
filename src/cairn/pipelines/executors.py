"""Where a step's code runs: behind one port, ``Executor.run_all``, which takes the steps
that are ready together (none needs another's output) and returns how each went.

- ``local`` (the default): in this process, one step after another, keeping outputs in
  memory for the steps after them; or with ``workers`` > 1, independent steps at once in
  worker processes (spawned, so each imports the project's modules afresh). A step whose
  function cannot be sent to another process — a closure, such as the steps declared in
  ``cairn.yaml`` — runs on a thread of this process instead.
- ``ray``: each step a Ray task on a cluster (``address``), or on a local Ray instance
  started for the run. A task reads its inputs from the artifact store by digest and
  stores its output there, so what travels is digests, not data.

Whatever the executor, the driver — the process that called ``cairn run`` — records the
runs: a worker only computes and stores. However a step ends, its outcome says so: it
returned; it raised or called ``sys.exit`` (failed, not retried for an exit); its worker
process died under it or its Ray task failed (failed); its Ray task was cancelled
(killed). When the run is interrupted, ``cancel`` stops what is still running.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import multiprocessing
import pickle
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cairn.core.artifact import ArtifactEntry
from cairn.core.ports import ArtifactStore
from cairn.errors import InvalidInput, MissingExtra, PermissionDenied
from cairn.pipelines.definition import running_artifacts, running_store
from cairn.pipelines.materialize import PICKLE, format_for, format_named

_CAIRN_PACKAGE = str(Path(__file__).resolve().parents[1])
EXECUTORS = ("local", "ray")


@dataclass(frozen=True, slots=True)
class Stored:
    digest: str
    format: str
    metrics: bool = False  # the output holds numbers logged as metrics
    # May be loaded here: made by this run, or judged safe where it was found (a cached
    # output, a recorded one: see ``cairn.pipelines.trust``). A pickle that is not vetted
    # is never read.
    vetted: bool = False


@dataclass(frozen=True)
class StepTask:
    node: str
    function: Callable[..., Any]
    params: dict[str, Any]
    inputs: dict[str, tuple[str, Stored]]  # argument → (the upstream node, its output)
    retries: int = 0
    backoff: float = 1.0


@dataclass
class Outcome:
    stored: Stored | None = None
    size: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    kept: list[ArtifactEntry] = field(default_factory=list)  # what the step kept (a notebook)
    warnings: list[str] = field(default_factory=list)
    attempts: int = 0
    # How it did not end well, after the step's name: "failed: ValueError: …" and the
    # user's traceback, "called sys.exit(3)", "KILLED: …"; and its first line.
    error: str = ""
    error_line: str = ""
    killed: bool = False  # stopped from outside (a cancelled Ray task), not failed
    value: Any = None  # in this process only: the value, for the steps after it


class Executor(Protocol):
    def run_all(self, tasks: list[StepTask]) -> list[Outcome]:
        """Run these independent steps; their outcomes, in the same order."""

    def close(self) -> None: ...

    def cancel(self) -> None:
        """Stop the steps still running (the run was interrupted), then close."""


class LocalExecutor:
    """Steps in this process, or with ``workers`` > 1 in worker processes."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        workers: int = 1,
        open_store: Callable[[], ArtifactStore] | None = None,
    ) -> None:
        if workers < 1:
            raise InvalidInput(f"--workers {workers}: expected 1 or more")
        self.artifacts, self.workers, self.open_store = artifacts, workers, open_store
        self.values: dict[str, Any] = {}  # outputs by node, kept for later steps
        self._processes: ProcessPoolExecutor | None = None

    def run_all(self, tasks: list[StepTask]) -> list[Outcome]:
        if self.workers == 1 or len(tasks) == 1 or self.open_store is None:
            outcomes = [perform(task, self.artifacts, self.values) for task in tasks]
        else:
            outcomes = self._at_once(tasks, self.open_store)
        for task, outcome in zip(tasks, outcomes, strict=True):
            if outcome.stored is not None and outcome.value is not None:
                self.values[task.node] = outcome.value
        return outcomes

    def _at_once(
        self, tasks: list[StepTask], open_store: Callable[[], ArtifactStore]
    ) -> list[Outcome]:
        if self._processes is None:
            spawn = multiprocessing.get_context("spawn")  # no forked locks or threads
            self._processes = ProcessPoolExecutor(self.workers, mp_context=spawn)
        threads = ThreadPoolExecutor(len(tasks))
        futures: list[Future[Outcome]] = []
        try:
            for task in tasks:
                sendable = _sendable(task)
                if sendable is not None:
                    futures.append(self._processes.submit(_perform_remote, sendable, open_store))
                else:  # a closure: on a thread here, in its own context
                    context = contextvars.copy_context()
                    futures.append(threads.submit(context.run, perform, task, self.artifacts,
                                                  self.values))  # fmt: skip
            return [self._result(future) for future in futures]
        finally:  # interrupted: no waiting for threads (they cannot be stopped)
            threads.shutdown(wait=False, cancel_futures=True)

    def _result(self, future: Future[Outcome]) -> Outcome:
        try:
            return future.result()
        except BrokenProcessPool:  # os._exit, a crash, a signal: the pool is gone too
            self._drop_processes()
            return failed(
                "its worker processes broke: one ended without a result (os._exit, a crash, "
                "or a signal such as the out-of-memory killer's)"
            )

    def close(self) -> None:
        self.values.clear()
        if self._processes is not None:
            self._processes.shutdown()
            self._processes = None

    def cancel(self) -> None:
        self.values.clear()
        self._drop_processes()

    def _drop_processes(self) -> None:
        if self._processes is not None:
            # A process pool ends its workers only between tasks: end them now.
            for process in list(self._processes._processes.values()):
                process.terminate()
            self._processes.shutdown(wait=False, cancel_futures=True)
            self._processes = None


class RayExecutor:
    """Each step a Ray task. Workers import the project's modules from ``root`` (added to
    their ``PYTHONPATH``) and reach the artifact store through ``open_store``, which must
    be picklable (a store every worker can reach: a shared folder, S3, or a server)."""

    def __init__(
        self, open_store: Callable[[], ArtifactStore], root: Path, address: str | None = None
    ) -> None:
        self.ray = _ray()
        if address is not None:
            _check_reachable(address)
        self.open_store = open_store
        if not self.ray.is_initialized():
            self.ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                runtime_env={"env_vars": {"PYTHONPATH": str(root)}},
            )
        self._remote = self.ray.remote(max_retries=0)(_perform_remote)
        self._pending: list[Any] = []

    def run_all(self, tasks: list[StepTask]) -> list[Outcome]:
        self._pending = [self._remote.remote(task, self.open_store) for task in tasks]
        outcomes = [self._outcome(pending) for pending in self._pending]
        self._pending = []
        return outcomes

    def _outcome(self, pending: Any) -> Outcome:
        errors = self.ray.exceptions
        try:
            outcome: Outcome = self.ray.get(pending)
        except errors.TaskCancelledError:
            why = "its Ray task was cancelled"
            outcome = Outcome(error=f"KILLED: {why}", error_line=why, attempts=1, killed=True)
        except errors.RayError as exc:  # its worker died (os._exit, out of memory) …
            outcome = failed(f"its Ray task failed: {one_line(exc)}")
        return outcome

    def close(self) -> None:
        """The Ray instance stays up for the process: starting one costs seconds."""

    def cancel(self) -> None:
        for pending in self._pending:
            self.ray.cancel(pending, force=True)
        self._pending = []


def perform(task: StepTask, artifacts: ArtifactStore, values: dict[str, Any] | None) -> Outcome:
    """Run one step: its inputs read (from ``values`` when this process has them), its
    attempts made, its output stored. A failure of the user's code is in the outcome,
    never raised."""
    outcome = Outcome()
    arguments = dict(task.params)
    for argument, (upstream, stored) in task.inputs.items():
        if values is not None and upstream in values:
            arguments[argument] = values[upstream]
        else:
            arguments[argument] = load(artifacts, stored)
    while True:
        outcome.attempts += 1
        store_token = running_store.set(artifacts)
        kept_token = running_artifacts.set(outcome.kept)
        try:
            value = task.function(**arguments)
            break
        except SystemExit as exc:  # asked to stop: not a failure to try again
            outcome.error_line = _exit_call(exc)
            outcome.error = _user_traceback(exc, outcome.attempts, outcome.error_line)
            return outcome
        except Exception as exc:  # noqa: BLE001  (the user's code: any failure is theirs)
            if outcome.attempts <= task.retries:
                time.sleep(task.backoff * 2 ** (outcome.attempts - 1))
                continue
            outcome.error_line = one_line(exc)
            outcome.error = _user_traceback(exc, outcome.attempts)
            return outcome
        finally:
            running_store.reset(store_token)
            running_artifacts.reset(kept_token)
    return _stored(task, value, artifacts, outcome, values is not None)


def failed(why: str, outcome: Outcome | None = None) -> Outcome:
    """``outcome`` (a new one by default), as a step's that ended without a value, for a
    reason of Cairn's telling."""
    outcome = outcome or Outcome(attempts=1)
    outcome.error, outcome.error_line = f"failed: {why}", why
    return outcome


def _stored(
    task: StepTask, value: Any, artifacts: ArtifactStore, outcome: Outcome, keep: bool
) -> Outcome:
    """The outcome of a step that returned ``value``: stored in the format its type
    asks for (a value that cannot be is the step's failure, not Cairn's)."""
    fmt = format_for(value)
    if fmt.name == PICKLE:
        outcome.warnings.append(
            f"step {task.node}: its output (a {type(value).__name__}) was stored with pickle, "
            "which runs code when it is loaded; return JSON, a NumPy array or a table where "
            "you can"
        )
    with tempfile.TemporaryDirectory(prefix="cairn-output-") as folder:
        local = Path(folder) / "output"
        try:
            fmt.dump(value, local, artifacts)
        except Exception as exc:  # noqa: BLE001  (a value of the user's that will not go)
            why = f"its output (a {type(value).__name__}) cannot be stored: {one_line(exc)}"
            return failed(why, outcome)
        info = artifacts.put_file(local)
    outcome.stored, outcome.size = Stored(info.digest, fmt.name, vetted=True), info.size
    outcome.metrics = metrics_of(value)
    outcome.value = value if keep else None
    return outcome


def load(artifacts: ArtifactStore, stored: Stored) -> Any:
    """An output read back from the store, in the format it was written in.

    Raises:
        PermissionDenied: it is a pickle that was not vetted (reading it would run
            whatever code it names).
    """
    if stored.format == PICKLE and not stored.vetted:
        raise PermissionDenied(
            f"output {stored.digest}: a pickle is loaded only from your own runs or when it "
            "passes the scan, and this one was not judged (cairn.pipelines.trust)"
        )
    with tempfile.TemporaryDirectory(prefix="cairn-output-") as folder:
        local = Path(folder) / "output"
        artifacts.get_file(stored.digest, local)
        return format_named(stored.format).load(local, artifacts)


def metrics_of(value: Any) -> dict[str, float]:
    """A dict's numbers: a step that returns them reports metrics."""
    if not isinstance(value, dict):
        return {}
    return {
        k: float(v) for k, v in value.items()
        if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class StepByName:
    """A step's function as a worker process finds it: through the step of that name in
    its module. (Under ``@step``, the module's name holds the step, not the function, so
    pickle will not send the function itself.)"""

    module: str
    qualname: str

    def __call__(self, **arguments: Any) -> Any:
        found: Any = importlib.import_module(self.module)
        for name in self.qualname.split("."):
            found = getattr(found, name)
        return getattr(found, "function", found)(**arguments)


def _sendable(task: StepTask) -> StepTask | None:
    """``task`` as it can be sent to a worker process, or None (a closure)."""
    function = task.function
    module_name = getattr(function, "__module__", None) or ""
    found: Any = sys.modules.get(module_name)
    for name in getattr(function, "__qualname__", "").split("."):
        found = getattr(found, name, None)
    if module_name != "__main__" and getattr(found, "function", None) is function:
        task = replace(task, function=StepByName(module_name, function.__qualname__))
    try:
        pickle.dumps(task)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    return task


def _perform_remote(task: StepTask, open_store: Callable[[], ArtifactStore]) -> Outcome:
    store = open_store()
    try:
        return perform(task, store, None)
    finally:
        store.close()


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def _exit_call(exc: SystemExit) -> str:
    return f"called sys.exit({'' if exc.code is None else repr(exc.code)})"


def _user_traceback(exc: BaseException, attempts: int, headline: str = "") -> str:
    """``headline`` (by default, that the step failed with this exception), then the
    frames of the user's code only (not Cairn's)."""
    frames = [
        frame for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(_CAIRN_PACKAGE)
    ]  # fmt: skip
    tries = f" (attempt {attempts} of {attempts})" if attempts > 1 else ""
    if not frames:  # raised by Cairn on the step's behalf (a notebook cell): its message
        return f"{headline or f'failed: {type(exc).__name__}: {exc}'}{tries}"
    shown = "".join(traceback.format_list(frames))
    headline = headline or f"failed: {one_line(exc)}"
    return f"{headline}{tries}\nTraceback (most recent call last):\n{shown}".rstrip()


def _check_reachable(address: str) -> None:
    """Raises:
    InvalidInput: the address is malformed, or nothing answers there within 3 s.
    """
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"--ray-address {address!r}: expected HOST:PORT, such as 10.0.0.5:6379")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        raise InvalidInput(
            f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); start "
            "the cluster (ray start --head) or leave the address out to run one locally"
        ) from None


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtra("the ray executor needs Ray: pip install 'cairn-mlops[ray]'") from exc
    return ray
