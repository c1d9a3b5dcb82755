"""Running code Cairn does not trust — a model's — in a worker process that holds none of
this process's secrets, and that is killed when its time is up.

:func:`run_worker` starts ``python -m MODULE JOB`` (the module answers through
:func:`cairn.releases.confined.serve`):

- with a clean environment: the locale, ``PATH``, the thread-count variables, ``HOME`` and
  ``TMPDIR`` inside its scratch folder and ``PYTHONPATH`` for the folders it imports from
  (:mod:`cairn.releases.readable`: the installation's, never this process's working
  directory or script folder) — nothing else, so no ``CAIRN_*`` (token, database URL, key
  paths), ``AWS_*`` or webhook secret reaches it;
- with no file descriptor of this process but its pipes (no database connection, no open
  key file), in its own session (a timeout kills everything it started), started fresh
  (never forked from a server holding secrets in memory);
- with its job in a file in the scratch folder, which the caller fills with what the job
  reads (copied and verified there: the worker reaches no store), beside the paths it may
  read, none holding one of the caller's private paths;
- answering with JSON lines on its stdout, at most ``Limits.output`` bytes of them.

The worker confines itself before it reads its job (``cairn.releases.confined``): lower
limits, death with its parent, no network, no capabilities, and where Linux has Landlock,
no reads but the paths it was given and no writes outside its scratch folder. What it says
(an error, its last words on stderr) comes from a model's code: a message carries at most
its first line, :data:`SAID` characters of it.
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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from cairn.errors import ModelFailed
from cairn.releases import readable

_log = logging.getLogger(__name__)
# Variables a worker is given from this process's environment: none is a secret.
_PASSED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ",
           "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # fmt: skip
_CHUNK = 1 << 16
_LOG = 2000  # bytes of the end of a worker's log kept, to find its last words in
SAID = 200  # characters of what a worker says kept in a message
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
    module: str, job: Mapping[str, Any], scratch: Path, limits: Limits,
    private: Sequence[Path],
) -> list[dict[str, Any]]:  # fmt: skip
    """Run ``python -m module`` on ``job`` in the folder ``scratch`` and return its answers
    (JSON objects, in the order sent), once it has ended. It may read no folder that holds
    one of the ``private`` paths (the home, the database, keys, the project).

    Raises:
        ModelFailed: it did not end in time (it was killed), crashed, answered more than
            the limit or with something other than JSON objects.
    """
    imports = readable.import_folders(private)
    paths = [str(p) for p in readable.readable_paths(private, imports)]
    document = {"job": job, "limits": asdict(limits), "parent": os.getpid(),
                "readable": paths}  # fmt: skip
    (scratch / JOB).write_bytes(orjson.dumps(document))
    deadline = time.monotonic() + limits.seconds
    try:
        process = _start(module, scratch, imports)
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


def _start(module: str, scratch: Path, imports: Sequence[Path]) -> subprocess.Popen[bytes]:
    for folder in ("home", "tmp"):
        (scratch / folder).mkdir(exist_ok=True)
    command = [sys.executable, "-P", "-s", "-B", "-m", module, str(scratch / JOB)]
    return subprocess.Popen(  # this interpreter, a module of Cairn's
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=scratch, env=_environment(scratch, imports), close_fds=True,
        start_new_session=True,
    )  # fmt: skip


def _environment(scratch: Path, imports: Sequence[Path]) -> dict[str, str]:
    passed = {name: os.environ[name] for name in _PASSED if name in os.environ}
    return {**passed, "HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"),
            "PYTHONPATH": os.pathsep.join(map(str, imports))}  # fmt: skip


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
            del log[:-_LOG]  # only its last words are shown
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
    _warn_of_missing_walls(next((f.pop("confined") for f in found[:1] if "confined" in f), None))
    return [f for f in found if f]


def _warn_of_missing_walls(walls: Any) -> None:
    """Log each wall the worker said it could not build ("no seccomp: …")."""
    for wall in walls if isinstance(walls, list) else ["no confinement: it said none"]:
        if str(wall).startswith("no "):  # "no landlock: …", "no network namespace: …"
            _log.warning("a worker process ran with %s", said(str(wall)))


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        why = {"SIGKILL": " (out of memory?)", "SIGXCPU": " (out of CPU time)",
               "SIGSEGV": " (a crash in native code)"}.get(name, "")  # fmt: skip
        return f"was killed by {name}{why}"
    return f"exited with code {code} before answering"


def _tail(log: bytes) -> str:
    lines = log.decode(errors="replace").strip().splitlines()
    return f"; its last words: {said(lines[-1])}" if lines else ""


def said(words: str) -> str:
    """What a worker said, as a message may carry it: its first line, at most
    :data:`SAID` characters. A worker runs a model's code, and a gate's reason is shown
    to whoever reads the project: it must not carry out what the model could read."""
    first = next(iter(words.strip().splitlines()), "")
    return first if len(first) <= SAID else f"{first[: SAID - 1]}…"
