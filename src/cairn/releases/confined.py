"""The worker's side of :mod:`cairn.releases.sandbox`: confine this process, then run a
job and answer with JSON lines.

Before anything of the job is read (and before a library that starts threads is
imported: a namespace, a seccomp filter and Landlock bind the calling thread and what it
starts), the worker:

- dies with the process that started it (no orphan left running when a server stops);
- lowers its limits: address space (allocations beyond fail), CPU time (a backstop for
  the wall-clock deadline), no core files;
- leaves the network: a network namespace of its own where the kernel allows one
  (:mod:`cairn.releases.netns`: no internet protocol reaches anything), and a seccomp
  filter (:mod:`cairn.releases.seccomp`) that refuses to make a socket of any family —
  a Unix-domain socket names a file that no namespace hides (a database's, a server's)
  — and io_uring, which makes and connects sockets without those calls;
- drops every capability (:mod:`cairn.releases.capabilities`);
- where Linux has Landlock, restricts itself to reading the paths it was given
  (:mod:`cairn.releases.readable`) and writing its scratch folder, with no TCP
  connections and no signals to processes outside it.

Its stdout is kept for the answers; what the job's code prints goes to stderr, the log.
"""

from __future__ import annotations

import math
import os
import resource
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from cairn.errors import CairnError
from cairn.releases import capabilities, landlock, netns, seccomp
from cairn.releases.libc import libc

Send = Callable[[Mapping[str, Any]], None]
_PR_SET_PDEATHSIG = 1
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_SAID = 2000
# Refused to the worker: making a socket of any family, and io_uring (see the docstring).
REFUSED = ("socket", "io_uring_setup")


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
        walls = confine(job_file.parent, document["limits"], document["parent"],
                        document["readable"])  # fmt: skip
        send({"confined": walls})
        handle(document["job"], send)
    except CairnError as exc:
        send({"error": exc.message[:_SAID], "code": exc.code})
    except Exception as exc:  # noqa: BLE001  # whatever failed is the job's answer
        send({"error": f"{type(exc).__name__}: {exc}"[:_SAID], "code": CairnError.code})
    return 0


def confine(
    scratch: Path, limits: Mapping[str, Any], parent: int,
    readable: Sequence[str] | None = None,
) -> list[str]:  # fmt: skip
    """Confine this process (see the module's docstring) to reading ``readable`` (by
    default, :mod:`cairn.releases.readable`'s paths, with nothing private) and
    writing ``scratch``; what each wall did, in words ("landlock v6", "network namespace"
    …), or why it was not built ("no seccomp: …")."""
    _die_with(parent)
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_AS, int(limits["memory"]))
    # Every CPU busy for the whole deadline, and a second more: SIGXCPU, then SIGKILL.
    _lower(resource.RLIMIT_CPU, math.ceil(limits["seconds"] * _cpus()) + 1, grace=1)
    # The namespace first: making it takes the capabilities dropped next.
    walls = [netns.enter(), capabilities.drop_all(), seccomp.refuse(REFUSED)]
    writable = [scratch.resolve(), Path("/dev/null")]
    return [landlock.restrict(_readable(readable), writable), *walls]


def _readable(given: Sequence[str] | None) -> list[Path]:
    if given is not None:
        return [Path(p) for p in given]
    from cairn.releases.readable import import_folders, readable_paths  # only here

    return readable_paths((), import_folders(()))  # nothing private is known here


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
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
