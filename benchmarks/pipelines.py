"""Pipeline benchmark: Cairn against Metaflow and Kedro, side by side, on the same pipelines.

    .venv/bin/python benchmarks/pipelines.py            # the figures in docs/benchmarks.md

Two pipelines of 10 steps in a line, written for each tool: one whose steps add 1 to a
number, one that passes a 100 MB NumPy array from step to step (each step adds 1 to
it). For each, the wall time of the tool's own command line (``cairn run …`` under
.venv, ``python flow.py run`` under benchmarks/.venv-metaflow, ``kedro run --pipeline …``
under benchmarks/.venv-kedro, both venvs created when missing): the first run, and a
second run with nothing changed — which Cairn takes from its cache; Metaflow and Kedro
have no step cache, so their second run runs every step again. Kedro runs a minimal
project written here (what ``kedro new`` makes, cut down: 10 nodes in a line, outputs
passed between nodes in Kedro's default MemoryDataset, its telemetry switched off).
Then, with a local Ray instance up, the overhead per step of Cairn's Ray executor
against its local one.

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
KEDRO_VENV = HERE / ".venv-kedro"
KEDRO = KEDRO_VENV / "bin" / "kedro"
KEDRO_VERSION = "1.7.0"
KEDRO_REQUIREMENT = [f"kedro=={KEDRO_VERSION}", "numpy"]
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


def tool_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment each tool runs in: as installed on a user's machine, Python keeps
    its bytecode cache, so PYTHONDONTWRITEBYTECODE (set on some CI machines) is dropped —
    with it, every start would compile the tool's own modules again."""
    found = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**found, **(extra or {})}


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=tool_environment(env),
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def ensure_metaflow() -> None:
    ensure_venv(METAFLOW_VENV, METAFLOW_REQUIREMENT, "metaflow")


def ensure_kedro() -> None:
    ensure_venv(KEDRO_VENV, KEDRO_REQUIREMENT, "kedro")


def write_kedro_project(space: Path) -> None:
    for name, text in KEDRO_PROJECT.items():
        path = space / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


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
        env=tool_environment(env), check=True,
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


def measure_kedro(work: Path) -> dict[str, float]:
    space = work / "kedro"
    write_kedro_project(space)
    # Off, or each run would try to send usage data to Kedro's analytics — time spent on the
    # network (failing, offline), not on the pipeline.
    env = {"KEDRO_DISABLE_TELEMETRY": "1"}
    found: dict[str, float] = {}
    for kind in ("trivial", "arrays"):
        command = [str(KEDRO), "run", "--pipeline", kind]
        found[f"{kind} first"] = timed(command, space, env)
        found[f"{kind} again"] = min(timed(command, space, env) for _ in range(REPEATS))
    return found


def main() -> int:
    ensure_metaflow()
    ensure_kedro()
    work = WORK / f"pipelines-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        print("measuring Cairn …", flush=True)
        cairn = measure_cairn(work)
        print("measuring Metaflow …", flush=True)
        metaflow = measure_metaflow(work)
        print("measuring Kedro …", flush=True)
        kedro = measure_kedro(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run([str(CAIRN), "--version"], capture_output=True, text=True).stdout
    print(f"\nCairn {version.split()[-1]} vs Metaflow {METAFLOW_REQUIREMENT[0].split('==')[1]} "
          f"and Kedro {KEDRO_VERSION} "
          f"— {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"{STEPS} steps in a line; 'again': best of {REPEATS}, nothing changed; "
          "ratio: the tool's time over Cairn's\n")  # fmt: skip
    print(f"{'measurement':34} {'Cairn s':>9} {'Metaflow s':>11} {'ratio':>8} "
          f"{'Kedro s':>9} {'ratio':>8}  target")  # fmt: skip
    print("-" * 110)
    targets = {
        "trivial first": ("< 1 s", TARGET_FIRST_S),
        "trivial again": ("< 0.5 s (cached)", TARGET_CACHED_S),
        "arrays again": ("< 0.5 s (cached)", TARGET_CACHED_S),
    }
    for label in ("trivial first", "trivial again", "arrays first", "arrays again"):
        ours, metaflow_s, kedro_s = cairn[label], metaflow[label], kedro[label]
        shown, limit = targets.get(label, ("", None))
        verdict = f"{shown}: {'met' if ours < limit else 'MISSED'}" if limit else ""
        print(f"{label:34} {ours:>9.2f} {metaflow_s:>11.2f} {metaflow_s / ours:>7.1f}× "
              f"{kedro_s:>9.2f} {kedro_s / ours:>7.1f}×  {verdict}")  # fmt: skip
    overhead = cairn["ray overhead per step"]
    met = "met" if overhead < TARGET_RAY_OVERHEAD_S else "MISSED"
    print(f"\nRay executor overhead per step: {overhead * 1000:.0f} ms (< 100 ms: {met}); "
          f"10 forced steps: local {cairn['local run, 10 steps forced (in process)']:.2f} s, "
          f"ray {cairn['ray run, 10 steps forced (in process)']:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
