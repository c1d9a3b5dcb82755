"""The worker's side of :mod:`cairn.governance.sandbox`: confine this process, then run a
job and answer with JSON lines.

Before anything of the job is read (and before a library that starts threads is
imported: Landlock binds the calling thread and what it starts), the worker:

- dies with the process that started it (no orphan left running when a server stops);
- lowers its limits: address space (allocations beyond fail), CPU time (a backstop for
  the wall-clock deadline), no core files;
- where Linux has Landlock, restricts itself to reading Python's folders, its import
  path and a few system files (shared libraries, time zones, CPU counts) and to writing
  its scratch folder, with no TCP connections and no signals to processes outside it.

Its stdout is kept for the answers; what the job's code prints goes to stderr, the log.
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from cairn.errors import CairnError
from cairn.governance import landlock

Send = Callable[[Mapping[str, Any]], None]
_PR_SET_PDEATHSIG = 1
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_SAID = 2000
# Read-only, beside Python's own folders: what shared libraries, the standard library and
# numerical libraries read at run time. No user's files, no /proc of other processes.
_SYSTEM = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc/ld.so.cache",
           "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
           "/etc/timezone", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl/certs",
           "/etc/mime.types", "/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
           "/sys/devices/system/cpu", "/sys/fs/cgroup", "/dev/urandom", "/dev/random",
           "/dev/zero")  # fmt: skip


def serve(handle: Callable[[Mapping[str, Any], Send], None]) -> int:
    """Run ``handle(job, send)`` on the job file named by the first argument, confined;
    an error it raises is answered as ``{"error": …, "code": …}``. Returns the exit code."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the job's code prints goes to the log, not into the answers

    def send(message: Mapping[str, Any]) -> None:
        answers.write(orjson.dumps(message, option=_OPTIONS, default=str) + b"\n")
        answers.flush()

    try:
        job_file = Path(sys.argv[1])
        document = orjson.loads(job_file.read_bytes())
        send({"confined": confine(job_file.parent, document["limits"], document["parent"])})
        handle(document["job"], send)
    except CairnError as exc:
        send({"error": exc.message[:_SAID], "code": exc.code})
    except Exception as exc:  # noqa: BLE001  # whatever failed is the job's answer
        send({"error": f"{type(exc).__name__}: {exc}"[:_SAID], "code": CairnError.code})
    return 0


def confine(scratch: Path, limits: Mapping[str, Any], parent: int) -> str:
    """Confine this process (see the module's docstring); what Landlock did, in words."""
    _die_with(parent)
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_AS, int(limits["memory"]))
    # Every CPU busy for the whole deadline, and a second more: SIGXCPU, then SIGKILL.
    _lower(resource.RLIMIT_CPU, math.ceil(limits["seconds"] * _cpus()) + 1, grace=1)
    return landlock.restrict(_readable(), [scratch.resolve(), Path("/dev/null")])


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the line above: end too
        os._exit(1)


def _lower(limit: int, value: int, grace: int = 0) -> None:
    """Lower ``limit`` to ``value``, and its hard limit to ``value + grace`` (a hard limit
    lowered cannot be raised again by an unprivileged process)."""
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value, grace = min(value, hard), max(min(grace, hard - value), 0)
    resource.setrlimit(limit, (value, value + grace))


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _readable() -> list[Path]:
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable))}  # fmt: skip
    imports = [p for p in sys.path if os.path.isabs(p)]
    return [Path(p) for p in (*_SYSTEM, *sorted(python), *imports)]
