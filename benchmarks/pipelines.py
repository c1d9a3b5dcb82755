"""Pipeline benchmark: Cairn against Metaflow and Kedro, side by side, on the same pipelines.

    .venv/bin/python benchmarks/pipelines.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/pipelines.py --quick    # one run "again" a round, no Ray

Two pipelines of 10 steps in a line, written for each tool: one whose steps add 1 to a
number, one that passes a 100 MB NumPy array from step to step (each step adds 1 to
it). For each, the wall time of the tool's own command line (``cairn run …`` under
.venv, ``python flow.py run`` under benchmarks/.venv-metaflow, ``kedro run --pipeline …``
under benchmarks/.venv-kedro, both venvs created when missing): the first run in a fresh
project folder, and runs again with nothing changed (the round's figure: their median) —
which Cairn takes from its cache; Metaflow and Kedro have no step cache, so their second
run runs every step again. Kedro runs a minimal project written here (what ``kedro new``
makes, cut down: 10 nodes in a line, outputs passed between nodes in Kedro's default
MemoryDataset, its telemetry switched off).

Each round makes fresh project folders for every tool and times each row for every tool,
the order turning each round, after a warm-up round (benchmarks/_method.py); figures are
medians over the rounds with their range. The page cache is warm: the tools' code was read
in the warm-up, and nothing is evicted. Then, with a local Ray instance up, the overhead
per step of Cairn's Ray executor against its local one, alternated the same way.

Targets (/work/shared/BENCHMARKS.md): a fully cached re-run of 10 steps, command line
included, at most 0.3 s (median); a first run of 10 trivial steps no slower than Kedro's,
of steps passing 100 MB arrays at most 1.5× Kedro's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from _method import (
    ROUNDS,
    WARMUP,
    Spread,
    Timed,
    clean_environment,
    machine,
    ratios,
    run_timed,
    source_state,
    turn,
    verdict,
)
from _peers import ensure_venv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CAIRN = Path(sys.executable).parent / "cairn"
METAFLOW_VENV = HERE / ".venv-metaflow"
METAFLOW_PYTHON = METAFLOW_VENV / "bin" / "python"
METAFLOW_REQUIREMENT = ["metaflow==2.19.39", "numpy"]
KEDRO_VENV = HERE / ".venv-kedro"
KEDRO = KEDRO_VENV / "bin" / "kedro"
KEDRO_VERSION = "1.7.0"
KEDRO_REQUIREMENT = [f"kedro=={KEDRO_VERSION}", "numpy"]
WORK = HERE / ".work"
STEPS = 10
ARRAY_BYTES = 100 << 20
AGAIN = 3  # runs with nothing changed, per round; the round's figure is their median
KINDS = ("trivial", "arrays")

# From /work/shared/BENCHMARKS.md.
TARGET_CACHED_S = 0.3
TARGET_FIRST_OF_KEDRO = {"trivial": 1.0, "arrays": 1.5}

Command = Callable[[str], Timed]  # runs one of a project's pipelines, timed

CAIRN_FLOW = """
import numpy as np
from cairn import pipeline, step

@step
def first(x: int):
    return x + 1

@step
def add_one(x):
    return x + 1

@step
def make_array(megabytes: int):
    return np.zeros(megabytes * 2**20 // 8)

@step
def add_to_array(a):
    return a + 1

@pipeline
def trivial(x: int = 0):
    value = first(x)
    for _ in range({rest}):
        value = add_one(value)

@pipeline
def arrays(megabytes: int = {megabytes}):
    value = make_array(megabytes)
    for _ in range({rest}):
        value = add_to_array(value)
"""

# The Kedro project, as ``kedro new`` lays it out with everything optional left out.
# Datasets not named in catalog.yml (all of them here) are MemoryDatasets: Kedro's
# default for outputs passed between nodes.
KEDRO_PROJECT = {
    "pyproject.toml": f"""
        [tool.kedro]
        package_name = "bench"
        project_name = "bench"
        kedro_init_version = "{KEDRO_VERSION}"
        """,
    "conf/base/catalog.yml": "",
    "conf/local/credentials.yml": "",
    "src/bench/__init__.py": "",
    "src/bench/settings.py": """
        CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}
        """,
    "src/bench/nodes.py": f"""
        import numpy as np

        def first():
            return 1

        def make_array():
            return np.zeros({ARRAY_BYTES} // 8)

        def add_one(x):
            return x + 1
        """,
    "src/bench/pipeline_registry.py": f"""
        from kedro.pipeline import Pipeline, node

        from bench.nodes import add_one, first, make_array

        def linear(start):
            nodes = [node(start, None, "x0", name="step0")]
            nodes += [node(add_one, f"x{{i - 1}}", f"x{{i}}", name=f"step{{i}}")
                      for i in range(1, {STEPS})]
            return Pipeline(nodes)

        def register_pipelines():
            return {{"trivial": linear(first), "arrays": linear(make_array)}}
        """,
}


def metaflow_flow(kind: str) -> str:
    """A linear Metaflow flow of STEPS steps: start, s1 … s8, end."""
    names = ["start", *(f"s{i}" for i in range(1, STEPS - 1)), "end"]
    first = (
        "self.x = 1"
        if kind == "trivial"
        else f"import numpy as np; self.x = np.zeros({ARRAY_BYTES} // 8)"
    )
    body = [
        "from metaflow import FlowSpec, step",
        "",
        "class Bench(FlowSpec):",
    ]
    for index, name in enumerate(names):
        action = first if index == 0 else "self.x = self.x + 1"
        following = f"self.next(self.{names[index + 1]})" if index + 1 < len(names) else "pass"
        body += ["    @step", f"    def {name}(self):", f"        {action}", f"        {following}",
                 ""]  # fmt: skip
    body += ["if __name__ == '__main__':", "    Bench()"]
    return "\n".join(body) + "\n"


def ensure_metaflow() -> None:
    ensure_venv(METAFLOW_VENV, METAFLOW_REQUIREMENT, "metaflow")


def ensure_kedro() -> None:
    ensure_venv(KEDRO_VENV, KEDRO_REQUIREMENT, "kedro")


def write_kedro_project(space: Path) -> None:
    for name, text in KEDRO_PROJECT.items():
        path = space / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def cairn_project(space: Path) -> Command:
    (space / ".cairn").mkdir(parents=True)
    flow = CAIRN_FLOW.format(rest=STEPS - 1, megabytes=ARRAY_BYTES >> 20)
    (space / "bench.py").write_text(textwrap.dedent(flow))
    env = clean_environment({"CAIRN_HOME": str(space / ".home")})
    return lambda kind: run_timed([str(CAIRN), "run", f"bench:{kind}"], space, env)


def metaflow_project(space: Path) -> Command:
    space.mkdir(parents=True)
    for kind in KINDS:
        (space / f"{kind}.py").write_text(metaflow_flow(kind))
    env = clean_environment({"USERNAME": "bench", "METAFLOW_DEFAULT_DATASTORE": "local"})
    return lambda kind: run_timed(
        [str(METAFLOW_PYTHON), f"{kind}.py", "--quiet", "run"], space, env
    )


def kedro_project(space: Path) -> Command:
    write_kedro_project(space)
    # Off, or each run would try to send usage data to Kedro's analytics — time spent on the
    # network (failing, offline), not on the pipeline.
    env = clean_environment({"KEDRO_DISABLE_TELEMETRY": "1"})
    return lambda kind: run_timed([str(KEDRO), "run", "--pipeline", kind], space, env)


PROJECTS: dict[str, Callable[[Path], Command]] = {
    "cairn": cairn_project,
    "metaflow": metaflow_project,
    "kedro": kedro_project,
}
ROWS = [(f"{kind} {when}", kind, when) for kind in KINDS for when in ("first", "again")]


def measure(work: Path, rounds: int, again: int) -> dict[str, dict[str, list[float]]]:
    """Every row by every tool, in fresh project folders each round, the order turning."""
    found: dict[str, dict[str, list[float]]] = {row: {t: [] for t in PROJECTS} for row, *_ in ROWS}
    for index in range(WARMUP, rounds + 1):
        order = turn(list(PROJECTS), index)
        commands = {tool: PROJECTS[tool](work / f"round{index}" / tool) for tool in order}
        for row, kind, when in ROWS:
            for tool in order:
                repeat = 1 if when == "first" else again
                seconds = statistics.median(commands[tool](kind).seconds for _ in range(repeat))
                if index != WARMUP:
                    found[row][tool].append(seconds)
        what = "warm-up" if index == WARMUP else f"round {index}/{rounds}"
        print(f"  {what} done ({' '.join(order)})", flush=True)
    return found


RAY_SCRIPT = """
import json, statistics, sys, time, ray
from bench import trivial
from cairn.sdk import run_pipeline
sys.path.insert(0, {benchmarks!r})
from _method import alternate
ray.init(include_dashboard=False, log_to_driver=False)

def timed(executor):
    def step(_index):
        started = time.perf_counter()
        run_pipeline(trivial.build(), executor=executor, force=True)
        return time.perf_counter() - started
    return step

found = alternate([("local", timed("local")), ("ray", timed("ray"))], {rounds}, "ray")
print(json.dumps(found))
"""


def measure_ray(work: Path, rounds: int) -> dict[str, list[float]]:
    """The same trivial steps, forced to run, on the local executor and on a local Ray
    instance started once, in one process: seconds per run of 10 steps, by executor."""
    space = work / "ray"
    cairn_project(space)
    script = RAY_SCRIPT.format(benchmarks=str(HERE), rounds=rounds)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=space, capture_output=True, text=True,
        env=clean_environment({"CAIRN_HOME": str(space / ".home")}), check=True,
    )  # fmt: skip
    found: dict[str, list[float]] = json.loads(done.stdout.splitlines()[-1])
    return found


def report(found: dict[str, dict[str, list[float]]], ray: dict[str, list[float]] | None) -> str:
    lines = [
        f"{'measurement':18} {'Cairn s':>18} {'Metaflow s':>18} {'ratio':>16} "
        f"{'Kedro s':>18} {'ratio':>16}  target",
        "-" * 136,
    ]
    for row, kind, when in ROWS:
        cairn, metaflow, kedro = (found[row][tool] for tool in PROJECTS)
        lines.append(
            f"{row:18} {Spread.of(cairn).show():>18} {Spread.of(metaflow).show():>18} "
            f"{ratios(metaflow, cairn).show('.1f', '×'):>16} {Spread.of(kedro).show():>18} "
            f"{ratios(kedro, cairn).show('.1f', '×'):>16}  {target(kind, when, cairn, kedro)}"
        )
    if ray is not None:
        overhead = [
            (r - local) / STEPS * 1000 for r, local in zip(ray["ray"], ray["local"], strict=True)
        ]
        lines += [
            "",
            f"Ray executor overhead per step, ms: {Spread.of(overhead).show('.1f')}; "
            f"10 forced steps in one process, s: local {Spread.of(ray['local']).show()}, "
            f"ray {Spread.of(ray['ray']).show()}",
        ]
    return "\n".join(lines)


def target(kind: str, when: str, cairn: list[float], kedro: list[float]) -> str:
    """The verdict of BENCHMARKS.md's target for this row, if it has one."""
    if when == "again":
        return f"≤ {TARGET_CACHED_S:g} s: {verdict(statistics.median(cairn) <= TARGET_CACHED_S)}"
    limit = TARGET_FIRST_OF_KEDRO[kind]
    met = ratios(cairn, kedro).median <= limit
    return f"Cairn ≤ {limit:g}× Kedro: {verdict(met)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured rounds")
    args = parser.parse_args()
    ensure_metaflow()
    ensure_kedro()
    work = WORK / f"pipelines-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    started, commit = datetime.now(UTC), source_state()
    try:
        found = measure(work, args.rounds, 1 if args.quick else AGAIN)
        ray = None if args.quick else measure_ray(work, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run([str(CAIRN), "--version"], capture_output=True, text=True).stdout
    print(f"\nCairn {version.split()[-1]} vs Metaflow {METAFLOW_REQUIREMENT[0].split('==')[1]} "
          f"and Kedro {KEDRO_VERSION} — {machine(WORK)}")  # fmt: skip
    print(f"command: .venv/bin/python benchmarks/pipelines.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"source: {commit}; started {started:%Y-%m-%d %H:%M} UTC")
    print(f"{STEPS} steps in a line; medians of {args.rounds} rounds after a warm-up (range), "
          "the order turning each round, fresh project folders each round; 'again': the median "
          f"of {1 if args.quick else AGAIN} runs with nothing changed; ratio: the tool's time "
          "over Cairn's, median of the rounds' ratios; page cache warm\n")  # fmt: skip
    print(report(found, ray))
    return 0


if __name__ == "__main__":
    sys.exit(main())
