"""Pipeline cache benchmark: a fully cached re-run with 100,000 earlier step runs in the
store, against the same re-run with none.

    .venv/bin/python benchmarks/pipeline_cache.py                       # about 7 minutes
    .venv/bin/python benchmarks/pipeline_cache.py --baseline 6d2a64f    # and a commit's code
    .venv/bin/python benchmarks/pipeline_cache.py --quick               # 2,000 step runs

The pipeline of 10 trivial steps in a line of benchmarks/pipelines.py is run once,
filling its cache, in a Cairn home: "none" is that home. "100k" is a copy of it into
which 100,000 step runs are then recorded in the same experiment — 10,000 pipeline runs
of 10 steps, each step finished, under a cache key of its own, with an output — through
the store's batch ingest (``benchmarks/_step_history.py``). They started after the cached
runs: a lookup that walks the experiment's runs newest first has to get past all of them.

Each measurement is ``python -m cairn run bench:trivial --json`` (the command line,
start-up included) in a fresh copy of its home, made and read into the page cache before the clock
starts, so every run meets the same store; the figure of a round is the median of
``--again`` such runs (1: on a busy machine, many rounds of one run each pair runs made
moments apart). Rounds alternate the homes, the order turning each round, after a
warm-up (benchmarks/_method.py). ``--baseline`` measures a commit's code too (its src/,
taken out with ``git archive``), on homes of its own recorded by that code.

Target: "100k" no slower than "none" — the median of the rounds' ratios at most 1.05 for
the command line. Beside it, the run itself as ``cairn run`` reports it (its keying,
lookups and records, without Python's start-up and imports), where a lookup's cost is
a larger share.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _method import (
    ROOT,
    Spread,
    alternate,
    clean_environment,
    machine,
    ratios,
    run_timed,
    source_state,
    verdict,
    warm,
)
from pipelines import CAIRN_FLOW, STEPS

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
HISTORY = 100_000
ROUNDS = 25
AGAIN = 1
TARGET_RATIO = 1.05
_WHAT = ("command", "run")  # the fields of a Figure


class Homes:
    """The two homes of one source's code, and how to time a cached re-run in each."""

    def __init__(self, source: Path, work: Path, history: int) -> None:
        self.source, self.work = source, work
        self.project = work / "project"
        self.project.mkdir(parents=True)
        flow = CAIRN_FLOW.format(rest=STEPS - 1, megabytes=1)
        (self.project / "bench.py").write_text(textwrap.dedent(flow))
        self.templates = {"none": work / "home-none", "100k": work / "home-100k"}
        started = time.perf_counter()
        self._run(self.templates["none"], expect="ran")
        shutil.copytree(self.templates["none"], self.templates["100k"])
        home = str(self.templates["100k"])
        seed = [sys.executable, str(HERE / "_step_history.py"), home, "trivial", str(history)]
        subprocess.run(seed, env=self._env(self.templates["100k"]), check=True)
        self.seconds_to_record = time.perf_counter() - started
        self.database_mib = {  # with its write-ahead log
            name: sum(f.stat().st_size for f in home.glob("cairn.db*")) / (1 << 20)
            for name, home in self.templates.items()
        }

    def timed(self, name: str, again: int) -> Callable[[int], Figure]:
        """A step of the rounds: the medians of ``again`` cached re-runs, each in a fresh
        copy of the home."""

        def step(_index: int) -> Figure:
            found = []
            for _ in range(again):
                home = self.work / f"run-{name}"
                shutil.rmtree(home, ignore_errors=True)
                shutil.copytree(self.templates[name], home)
                warm(home, self.project)
                found.append(self._run(home, expect="cached"))
            return Figure(*(statistics.median(getattr(f, what) for f in found) for what in _WHAT))

        return step

    def _env(self, home: Path) -> dict[str, str]:
        return clean_environment({"PYTHONPATH": str(self.source / "src"), "CAIRN_HOME": str(home)})

    def _run(self, home: Path, expect: str) -> Figure:
        """``cairn run`` in ``home``, whose steps must all end in state ``expect``."""
        command = [sys.executable, "-m", "cairn", "run", "bench:trivial", "--json"]
        done = run_timed(command, self.project, self._env(home))
        result, _ = json.JSONDecoder().raw_decode(done.output)  # stdout comes first
        if {step["state"] for step in result["steps"]} != {expect}:
            raise RuntimeError(f"expected every step {expect}:\n{done.output}")
        return Figure(done.seconds, result["seconds"])


@dataclass(frozen=True)
class Figure:
    command: float  # seconds, the whole command line
    run: float  # seconds, the run itself as `cairn run` reports it (no start-up)


def report(label: str, home: Homes, none: list[Figure], crowded: list[Figure]) -> str:
    lines = [f"{label} code:"]
    for what in _WHAT:
        a, b = ([getattr(f, what) for f in figures] for figures in (none, crowded))
        ratio = ratios(b, a)
        target = f" (target ≤ {TARGET_RATIO}: {verdict(ratio.median <= TARGET_RATIO)})"
        lines.append(
            f"  {what:8} none {Spread.of(a).show('.3f', ' s')}, 100k "
            f"{Spread.of(b).show('.3f', ' s')}; 100k / none {ratio.show('.3f')}"
            + (target if what == "command" else "")
        )
    lines.append(
        f"  databases: none {home.database_mib['none']:.1f} MiB, 100k "
        f"{home.database_mib['100k']:.1f} MiB; homes made in {home.seconds_to_record:.0f} s"
    )
    return "\n".join(lines)


def checkout(commit: str, into: Path) -> Path:
    """A commit's src/ under ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="also measure this commit's code")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured rounds")
    parser.add_argument("--again", type=int, default=AGAIN, help="re-runs per round and home")
    parser.add_argument("--quick", action="store_true", help="2,000 step runs, 1 round, once")
    args = parser.parse_args()
    history, rounds, again = (2_000, 1, 1) if args.quick else (HISTORY, args.rounds, args.again)
    WORK.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pipeline-cache-", dir=WORK))
    started, commit = datetime.now(UTC), source_state()
    sources = {"this": ROOT}
    try:
        if args.baseline:
            sources["baseline"] = checkout(args.baseline, work / "baseline")
        homes = {}
        for label, source in sources.items():
            print(f"  recording {history:,} step runs with the {label} code …", flush=True)
            homes[label] = Homes(source, work / label, history)
        steps = [
            (f"{label} {name}", homes[label].timed(name, again))
            for label in sources
            for name in ("none", "100k")
        ]
        found = alternate(steps, rounds, "cached re-run")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nA fully cached re-run of {STEPS} steps (`python -m cairn run`, start-up included) "
          f"— {machine(WORK)}")  # fmt: skip
    print(f"command: .venv/bin/python benchmarks/pipeline_cache.py {' '.join(sys.argv[1:])}")
    print(f"source: {commit}" + (f"; baseline {args.baseline}" if args.baseline else ""))
    print(f"started {started:%Y-%m-%d %H:%M} UTC; medians of {rounds} rounds after a warm-up "
          f"(range), each round's figure the median of {again} re-runs, the order turning "
          f"each round; '100k': {history:,} earlier step runs in the store\n")  # fmt: skip
    for label, home in homes.items():
        print(report(label, home, found[f"{label} none"], found[f"{label} 100k"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
