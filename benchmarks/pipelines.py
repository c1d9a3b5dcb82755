"""Pipeline benchmark: Cairn against Metaflow, side by side, on the same pipelines.

    .venv/bin/python benchmarks/pipelines.py            # the figures in docs/benchmarks.md

Two pipelines of 10 steps in a line, written for each tool: one whose steps add 1 to a
number, one that passes a 100 MB NumPy array from step to step (each step adds 1 to
it). For each, the wall time of the tool's own command line (``cairn run …`` under
.venv, ``python flow.py run`` under benchmarks/.venv-metaflow, created when missing):
the first run, and a second run with nothing changed — which Cairn takes from its cache;
Metaflow has no step cache, so its second run runs every step again. Then, with a local
Ray instance up, the overhead per step of Cairn's Ray executor against its local one.

Targets (docs/benchmarks.md): a fully cached re-run of 10 steps under 0.5 s and a first
run of 10 trivial steps under 1 s, command line included; Ray overhead per step under
100 ms once the cluster is up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from _peers import ensure_venv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CAIRN = Path(sys.executable).parent / "cairn"
METAFLOW_VENV = HERE / ".venv-metaflow"
METAFLOW_PYTHON = METAFLOW_VENV / "bin" / "python"
METAFLOW_REQUIREMENT = ["metaflow==2.19.39", "numpy"]
WORK = HERE / ".work"
STEPS = 10
ARRAY_BYTES = 100 << 20
REPEATS = 3

TARGET_CACHED_S = 0.5
TARGET_FIRST_S = 1.0
TARGET_RAY_OVERHEAD_S = 0.1

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


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})},
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def ensure_metaflow() -> None:
    ensure_venv(METAFLOW_VENV, METAFLOW_REQUIREMENT, "metaflow")


def measure_cairn(work: Path) -> dict[str, float]:
    space = work / "cairn"
    (space / ".cairn").mkdir(parents=True)
    flow = CAIRN_FLOW.format(rest=STEPS - 1, megabytes=ARRAY_BYTES >> 20)
    (space / "bench.py").write_text(textwrap.dedent(flow))
    env = {"CAIRN_HOME": str(space / ".home")}
    found: dict[str, float] = {}
    for kind in ("trivial", "arrays"):
        command = [str(CAIRN), "run", f"bench:{kind}"]
        found[f"{kind} first"] = timed(command, space, env)
        found[f"{kind} again"] = min(timed(command, space, env) for _ in range(REPEATS))
    # Ray: the same trivial steps, forced to run, on a local Ray instance the script keeps
    # up (started once), against the local executor.
    script = textwrap.dedent(
        f"""
        import time, ray, cairn
        from bench import trivial
        from cairn.sdk import run_pipeline
        ray.init(include_dashboard=False, log_to_driver=False)
        graph = trivial.build()
        run_pipeline(graph, executor="ray", force=True)  # workers warm up
        timings = {{}}
        for executor in ("local", "ray"):
            started = time.perf_counter()
            for _ in range({REPEATS}):
                run_pipeline(trivial.build(), executor=executor, force=True)
            timings[executor] = (time.perf_counter() - started) / {REPEATS}
        print(timings["local"], timings["ray"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=space, capture_output=True, text=True,
        env={**os.environ, **env}, check=True,
    )  # fmt: skip
    local, ray = (float(v) for v in done.stdout.split()[-2:])
    found["ray overhead per step"] = (ray - local) / STEPS
    found["local run, 10 steps forced (in process)"] = local
    found["ray run, 10 steps forced (in process)"] = ray
    return found


def measure_metaflow(work: Path) -> dict[str, float]:
    space = work / "metaflow"
    space.mkdir(parents=True)
    env = {"USERNAME": "bench", "METAFLOW_DEFAULT_DATASTORE": "local"}
    found: dict[str, float] = {}
    for kind in ("trivial", "arrays"):
        flow = space / f"{kind}.py"
        flow.write_text(metaflow_flow(kind))
        command = [str(METAFLOW_PYTHON), flow.name, "--quiet", "run"]
        found[f"{kind} first"] = timed(command, space, env)
        found[f"{kind} again"] = min(timed(command, space, env) for _ in range(REPEATS))
    return found


def main() -> int:
    ensure_metaflow()
    work = WORK / f"pipelines-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        print("measuring Cairn …", flush=True)
        cairn = measure_cairn(work)
        print("measuring Metaflow …", flush=True)
        metaflow = measure_metaflow(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run([str(CAIRN), "--version"], capture_output=True, text=True).stdout
    print(f"\nCairn {version.split()[-1]} vs Metaflow {METAFLOW_REQUIREMENT[0].split('==')[1]} "
          f"— {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"{STEPS} steps in a line; 'again': best of {REPEATS}, nothing changed\n")
    print(f"{'measurement':34} {'Cairn s':>9} {'Metaflow s':>11} {'ratio':>8}  target")
    print("-" * 90)
    targets = {
        "trivial first": ("< 1 s", TARGET_FIRST_S),
        "trivial again": ("< 0.5 s (cached)", TARGET_CACHED_S),
        "arrays again": ("< 0.5 s (cached)", TARGET_CACHED_S),
    }
    for label in ("trivial first", "trivial again", "arrays first", "arrays again"):
        ours, theirs = cairn[label], metaflow[label]
        shown, limit = targets.get(label, ("", None))
        verdict = f"{shown}: {'met' if ours < limit else 'MISSED'}" if limit else ""
        print(f"{label:34} {ours:>9.2f} {theirs:>11.2f} {theirs / ours:>7.1f}×  {verdict}")
    overhead = cairn["ray overhead per step"]
    met = "met" if overhead < TARGET_RAY_OVERHEAD_S else "MISSED"
    print(f"\nRay executor overhead per step: {overhead * 1000:.0f} ms (< 100 ms: {met}); "
          f"10 forced steps: local {cairn['local run, 10 steps forced (in process)']:.2f} s, "
          f"ray {cairn['ray run, 10 steps forced (in process)']:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
