"""How every benchmark here measures, so that each compares like with like the same way.

- Rounds: a warm-up of every participant, then at least three measured rounds; in each
  round every participant runs once, and the order turns by one place each round (A B,
  then B A, …), so that no tool always follows the other's work (its deletions, its dirty
  pages, its cache misses).
- The page cache: "cold" means every file of the workspace and of the tool's store was
  written back (``sync``) and evicted (``posix_fadvise(DONTNEED)``) just before the timed
  step; "warm" means every such file was read just before it. Both tools get the same.
  What fadvise cannot evict — the kernel's inode and directory caches — stays warm for both.
- Figures: medians over the measured rounds with the rounds' range; a ratio is the median
  of the per-round ratios (each pairs two measurements taken minutes apart at most).
- Provenance: the commit, whether the tree differs from it, and the machine.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
TIME = "/usr/bin/time"  # GNU time: the peak memory of one command, not of this driver
ROUNDS = 3  # measured rounds, after the warm-up
WARMUP = 0  # the index of the warm-up round; measured rounds are 1 … ROUNDS

_T = TypeVar("_T")


# rounds ---------------------------------------------------------------------------------


def turn(names: Sequence[_T], round_index: int) -> list[_T]:
    """The order of one round: ``names`` turned by ``round_index`` places."""
    shift = round_index % len(names)
    return [*names[shift:], *names[:shift]]


def alternate(
    steps: Sequence[tuple[str, Callable[[int], _T]]], rounds: int = ROUNDS, title: str = ""
) -> dict[str, list[_T]]:
    """Each step once as a warm-up, then ``rounds`` rounds in a turning order.

    A step is called with the round's index (``WARMUP`` for the warm-up) and returns its
    measurement; the warm-up's are dropped. Returns the measurements by step name, in
    round order.
    """
    results: dict[str, list[_T]] = {name: [] for name, _ in steps}
    for index in range(WARMUP, rounds + 1):
        for name, step in turn(steps, index):
            found = step(index)
            if index != WARMUP:
                results[name].append(found)
        what = "warm-up" if index == WARMUP else f"round {index}/{rounds}"
        order = " ".join(name for name, _ in turn(steps, index))
        print(f"  {title}: {what} done ({order})", flush=True)
    return results


# figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """The median of a few rounds and their range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def show(self, spec: str = ".2f", unit: str = "") -> str:
        return f"{self.median:{spec}}{unit} ({self.low:{spec}}–{self.high:{spec}})"


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """The per-round ratios of two participants' figures (same rounds, same order)."""
    if len(numerators) != len(denominators):
        raise ValueError("ratios pair rounds: both sides need as many")
    return Spread.of([a / b for a, b in zip(numerators, denominators, strict=True)])


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# the page cache -------------------------------------------------------------------------


def files_under(*roots: Path) -> Iterator[str]:
    """Every regular file at or below ``roots`` (symbolic links not followed)."""
    for root in roots:
        if root.is_file():
            yield str(root)
            continue
        stack = [str(root)]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        yield entry.path


def evict(*roots: Path) -> int:
    """Write back and drop from the page cache every file below ``roots``; how many.

    ``sync`` first: the kernel keeps dirty pages whatever it is advised.
    """
    os.sync()
    count = 0
    for path in files_under(*roots):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        count += 1
    return count


def warm(*roots: Path) -> int:
    """Read every file below ``roots`` into the page cache (after writing back); how many."""
    os.sync()
    count = 0
    for path in files_under(*roots):
        with open(path, "rb", buffering=0) as file:
            while file.read(16 << 20):
                pass
        count += 1
    return count


def resident_bytes(paths: Sequence[str]) -> int:
    """How many bytes of these files are in the page cache, by util-linux ``fincore``."""
    done = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES", *paths],
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(int(line) for line in done.stdout.split())


# commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_mib: float
    output: str  # what the command printed, stdout then stderr


def run_timed(
    command: Sequence[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    accept: Sequence[int] = (0,),
) -> Timed:
    """Run a command to completion: its wall time and its own peak resident memory.

    The memory is what GNU time reports for the command (a child forked from this process
    would otherwise count this process's memory as its own). ``accept``: the exit codes
    that mean it worked (``dvc status`` exits 1 when something changed).

    Raises:
        RuntimeError: the command exited with another code.
    """
    report = cwd / f".peak-kib-{os.getpid()}"
    started = time.perf_counter()
    done = subprocess.run(
        [TIME, "-f", "%M", "-o", str(report), *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    output = f"{done.stdout}{done.stderr}"
    if done.returncode not in accept:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{output}")
    peak_kib = int(report.read_text().split()[-1])
    report.unlink()
    return Timed(seconds, peak_kib / 1024, output)


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Cairn's settings, the venv it runs in, or the
    flag that stops Python from keeping bytecode (a user's installation keeps it)."""
    dropped = ("CAIRN_", "MLFLOW_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    found = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {**found, **(extra or {})}


# provenance -----------------------------------------------------------------------------


def source_state() -> str:
    """The commit the benchmark runs, and whether Cairn's source differs from it."""
    git = ["git", "-C", str(ROOT)]
    done = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if done.returncode != 0:
        return "unknown (not a git work tree)"
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
    ).stdout.splitlines()
    suffix = f" + uncommitted changes in {len(changed)} file(s) of src/" if changed else ""
    return f"{done.stdout.strip()}{suffix}"


def machine(folder: Path) -> str:
    """Cores, memory, kernel and the file system ``folder`` is on."""
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{os.cpu_count()} cores, {memory_kib / (1 << 20):.1f} GiB, Linux "
        f"{platform.release()}, Python {sys.version.split()[0]}, {file_system(folder)}"
    )


def file_system(folder: Path) -> str:
    """The type and device of the mount holding ``folder``, from /proc/mounts."""
    target = str(folder.resolve())
    best = ("", "?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind = line.split()[:3]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} on {best[2]}"
