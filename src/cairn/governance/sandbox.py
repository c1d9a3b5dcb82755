"""Running code Cairn does not trust — a model's — in a worker process that holds none of
this process's secrets, and that is killed when its time is up.

:func:`run_worker` starts ``python -m MODULE JOB`` (the module answers through
:func:`cairn.governance.confined.serve`):

- with a clean environment: the locale, ``PATH``, the thread-count variables, ``HOME`` and
  ``TMPDIR`` inside its scratch folder and ``PYTHONPATH`` for Cairn's import path —
  nothing else, so no ``CAIRN_*`` (token, database URL, key paths), ``AWS_*`` or webhook
  secret reaches it;
- with no file descriptor of this process but its pipes (no database connection, no open
  key file), in its own session (a timeout kills everything it started), started fresh
  (never forked from a server holding secrets in memory);
- with its job in a file in the scratch folder, which the caller fills with what the job
  reads (copied and verified there: the worker reaches no store);
- answering with JSON lines on its stdout, at most ``Limits.output`` bytes of them.

The worker confines itself before it reads its job (``cairn.governance.confined``): lower
limits, death with its parent, and where Linux has Landlock, no reads outside Python's
folders, no writes outside its scratch folder, no TCP and no signals out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from cairn.errors import ModelFailed

_log = logging.getLogger(__name__)
# Variables a worker is given from this process's environment: none is a secret.
_PASSED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ",
           "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # fmt: skip
_CHUNK = 1 << 16
_SAID = 2000  # characters of a worker's error or log kept in a failure's message
JOB = "job.json"


def _physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a worker may run, how much memory (address space) it may map, and how
    much it may answer with."""

    seconds: float = 300.0
    memory: int = field(default_factory=_physical_memory)  # bytes: beyond, allocations fail
    output: int = 256 << 20  # bytes


def run_worker(
    module: str, job: Mapping[str, Any], scratch: Path, limits: Limits
) -> list[dict[str, Any]]:
    """Run ``python -m module`` on ``job`` in the folder ``scratch`` and return its answers
    (JSON objects, in the order sent), once it has ended.

    Raises:
        ModelFailed: it did not end in time (it was killed), crashed, answered more than
            the limit or with something other than JSON objects.
    """
    document = {"job": job, "limits": asdict(limits), "parent": os.getpid()}
    (scratch / JOB).write_bytes(orjson.dumps(document))
    deadline = time.monotonic() + limits.seconds
    try:
        process = _start(module, scratch)
    except OSError as exc:
        raise ModelFailed(f"the worker process could not start: {exc}") from None
    try:
        answer, log = _collect(process, deadline, limits)
        process.wait(max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        raise ModelFailed(
            f"the worker process did not finish within {limits.seconds:g} s: it was stopped"
        ) from None
    finally:
        _kill_group(process)
    return _answers(answer, log, process.returncode)


def _start(module: str, scratch: Path) -> subprocess.Popen[bytes]:
    for folder in ("home", "tmp"):
        (scratch / folder).mkdir(exist_ok=True)
    command = [sys.executable, "-P", "-s", "-B", "-m", module, str(scratch / JOB)]
    return subprocess.Popen(  # this interpreter, a module of Cairn's
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=scratch, env=_environment(scratch), close_fds=True, start_new_session=True,
    )  # fmt: skip


def _environment(scratch: Path) -> dict[str, str]:
    passed = {name: os.environ[name] for name in _PASSED if name in os.environ}
    return {**passed, "HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"),
            "PYTHONPATH": os.pathsep.join(import_path())}  # fmt: skip


def import_path() -> list[str]:
    """Where this process imports from, less its working directory (which may be
    anything: a worker gets only the folders that hold code)."""
    here = os.getcwd()
    return [p for p in sys.path if os.path.isabs(p) and os.path.exists(p) and p != here]


def _collect(
    process: subprocess.Popen[bytes], deadline: float, limits: Limits
) -> tuple[bytes, bytes]:
    """Everything the worker answers on stdout, and the end of its log (stderr), read as
    they come until both close.

    Raises:
        subprocess.TimeoutExpired: the deadline passed first.
        ModelFailed: the answer grew beyond ``limits.output``.
    """
    answer, log = bytearray(), bytearray()
    streams: list[tuple[IO[bytes] | None, bytearray]] = [(process.stdout, answer),
                                                          (process.stderr, log)]  # fmt: skip
    with selectors.DefaultSelector() as selector:
        for stream, into in streams:
            assert stream is not None  # both are pipes
            os.set_blocking(stream.fileno(), False)
            selector.register(stream.fileno(), selectors.EVENT_READ, into)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, left)
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                key.data.extend(chunk)
            del log[:-_SAID]  # only its end is shown
            if len(answer) > limits.output:
                raise ModelFailed(f"the worker process answered more than "
                                  f"{limits.output >> 20} MiB: it was stopped")  # fmt: skip
    return bytes(answer), bytes(log)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the worker and whatever it started (its session's process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # all gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _answers(answer: bytes, log: bytes, code: int | None) -> list[dict[str, Any]]:
    try:
        found = [orjson.loads(line) for line in answer.splitlines() if line.strip()]
    except orjson.JSONDecodeError:
        found = None
    if found is None or not all(isinstance(f, dict) for f in found):
        raise ModelFailed(f"the worker process answered with something other than JSON "
                          f"objects{_tail(log)}")  # fmt: skip
    if code != 0 and not any("error" in f for f in found):
        raise ModelFailed(f"the worker process {_ended(code)}{_tail(log)}")
    confined = next((str(f.pop("confined")) for f in found[:1] if "confined" in f), "")
    if not confined.startswith("landlock"):
        _log.warning("a worker process ran with no filesystem confinement: %s", confined)
    return [f for f in found if f]


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        why = {"SIGKILL": " (out of memory?)", "SIGXCPU": " (out of CPU time)",
               "SIGSEGV": " (a crash in native code)"}.get(name, "")  # fmt: skip
        return f"was killed by {name}{why}"
    return f"exited with code {code} before answering"


def _tail(log: bytes) -> str:
    lines = log.decode(errors="replace").strip().splitlines()
    return f"; its last words: {lines[-1][:_SAID]}" if lines else ""
