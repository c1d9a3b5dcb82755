"""Serving: Cairn's model server against `mlflow models serve` and the floor of a Python HTTP
server, on the same models and the same requests.

    .venv/bin/python benchmarks/serving.py            # about 12 minutes
    .venv/bin/python benchmarks/serving.py --quick    # shorter loads, a smoke run

Two scikit-learn models on 20 numeric features — a logistic regression and a 100-tree
gradient-boosted classifier — registered in a Cairn store of their own and exported in
MLflow's format. Each server is started alone, warmed, then loaded with one-row JSON
requests (``{"instances": [[...]]}`` to ``/invocations``, which every server here takes)
by wrk (Debian's, not Python-bound) at concurrency 1, 32 and 64, over loopback:

- the floor: a bare uvicorn + starlette app calling the model's own ``predict``, with
  nothing else (no validation, no metrics, no logging) — what a Python HTTP server costs;
- Cairn without batching (``--max-batch 1``), with payload logging off and on;
- Cairn with adaptive batching (``--max-batch 64``), logging off;
- ``mlflow models serve`` (MLflow's scoring server, from its own virtualenv).

Targets: Cairn without batching ≥ 80% of the floor's throughput at concurrency 32 with
its p99 within 1.25× the floor's; with batching ≥ 30× MLflow's at concurrency 64; payload
logging costing ≤ 10% of throughput; start to ready under 2 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from _method import machine, source_state, verdict
from _peers import ensure_venv
from tracking import free_port

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "serving"
PYTHON = ROOT / ".venv" / "bin" / "python"
MLFLOW_VENV = ROOT / "benchmarks" / ".venv-mlflow"
CONCURRENCY = (1, 32, 64)
SERVERS = ("floor", "cairn", "cairn, logging on", "cairn, batching", "mlflow")
FEATURES = 20


def prepare(work: Path) -> dict[str, Any]:
    """Train, register and export the two models; the row every request sends."""
    os.environ["CAIRN_HOME"] = str(work / "home")
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from cairn import sdk

    x, y = make_classification(n_samples=5_000, n_features=FEATURES, random_state=0)
    models = sdk.session().models
    exported = {}
    for name, model in (("bench-lr", LogisticRegression(max_iter=1000)),
                        ("bench-gbm", GradientBoostingClassifier(n_estimators=100))):  # fmt: skip
        version = models.register(model.fit(x, y), name, input_example=x[:5])
        models.registry.set_alias(name, "production", version.version)
        folder = work / f"{name}-mlflow"
        shutil.rmtree(folder, ignore_errors=True)
        models.export_mlflow(version.ref, folder)
        exported[name] = folder
    sdk.session().close()
    return {"row": [round(float(v), 6) for v in x[0]], "mlflow": exported}


_FLOOR = """
import sys

import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

import cairn

model = cairn.models.load(sys.argv[1]).native  # the same fitted model, its own predict


async def invocations(request):
    rows = np.asarray(orjson.loads(await request.body())["instances"])
    found = model.predict(rows)
    return Response(orjson.dumps({"predictions": found.tolist()}),
                    media_type="application/json")


async def ready(request):
    return Response(b"{}")


app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]),
                        Route("/v2/health/ready", ready)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def commands(name: str, port: int, exported: Path, work: Path) -> dict[str, list[str]]:
    cairn = [str(PYTHON), "-m", "cairn", "serve", f"{name}@production", "--port", str(port),
             "--follow", "0"]  # fmt: skip
    mlflow = [str(MLFLOW_VENV / "bin" / "mlflow"), "models", "serve", "-m", str(exported),
              "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port),
              "-w", "1"]  # fmt: skip
    return {
        "floor": [str(PYTHON), str(work / "floor.py"), f"{name}@production", str(port)],
        "cairn": [*cairn, "--max-batch", "1", "--log-sample", "0"],
        "cairn, logging on": [*cairn, "--max-batch", "1", "--log-sample", "1"],
        "cairn, batching": [*cairn, "--max-batch", "64", "--log-sample", "0"],
        "mlflow": mlflow,
    }


def start(command: list[str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """The server, and the seconds from its start to its first ready answer."""
    started = time.perf_counter()
    # A server finds its own tools first (mlflow serve starts the uvicorn of its venv).
    path = f"{Path(command[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path}
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               env=env, start_new_session=True)  # fmt: skip
    deadline = started + 120
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
        for path in ("/v2/health/ready", "/ping"):
            try:
                if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                    return process, time.perf_counter() - started
            except httpx.HTTPError:
                pass
        time.sleep(0.02)
    raise RuntimeError(f"not ready after 120 s: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wrk(url: str, concurrency: int, seconds: int, script: Path) -> dict[str, float]:
    threads = min(concurrency, 2)
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s",
         str(script), url], capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = done.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group()), re.sub(r"[\d.]+", "", text)  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter loads, a smoke run")
    args = parser.parse_args()
    seconds = 3 if args.quick else 10
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    ensure_venv(MLFLOW_VENV, ["mlflow", "scikit-learn"], "mlflow.pyfunc")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    prepared = prepare(WORK)
    (WORK / "floor.py").write_text(_FLOOR)
    body = '{"instances": [%s]}' % str(prepared["row"])  # noqa: UP031  # a Lua string below
    script = WORK / "post.lua"
    script.write_text(textwrap.dedent(f"""\
        wrk.method = "POST"
        wrk.body = '{body}'
        wrk.headers["Content-Type"] = "application/json"
        """))  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    for name in ("bench-lr", "bench-gbm"):
        for server in SERVERS:
            port = free_port()
            command = commands(name, port, prepared["mlflow"][name], WORK)[server]
            process, ready = start(command, port, WORK / f"{name}-{server}.log".replace(" ", ""))
            url = f"http://127.0.0.1:{port}/invocations"
            try:
                wrk(url, 8, 2, script)  # warm-up
                loads = {c: wrk(url, c, seconds, script) for c in CONCURRENCY}
            finally:
                stop(process)
            results[f"{name} / {server}"] = {
                "ready_s": ready,
                **{str(c): v for c, v in loads.items()},
            }
            shown = "  ".join(f"c{c}: {v['rps']:,.0f}/s p99 {v['p99_ms']:.1f} ms"
                              for c, v in loads.items())  # fmt: skip
            print(f"  {name} / {server}: ready {ready:.2f} s; {shown}", flush=True)
    print(report(results, seconds))
    return 0


def report(results: dict[str, dict[str, Any]], seconds: int) -> str:
    lines = [
        "\nCairn's model server against mlflow models serve and a bare uvicorn + starlette app",
        f"{machine(WORK)}",
        f"source: {source_state()}; wrk, one-row JSON requests over loopback, {seconds} s at "
        "each concurrency after a warm-up; one process per server",
        "",
        f"{'server':34} {'ready s':>8} " + " ".join(
            f"{'c' + str(c) + ' req/s':>11} {'p50 ms':>7} {'p99 ms':>7}" for c in CONCURRENCY),
    ]  # fmt: skip
    for label, found in results.items():
        row = " ".join(f"{found[str(c)]['rps']:>11,.0f} {found[str(c)]['p50_ms']:>7.2f} "
                       f"{found[str(c)]['p99_ms']:>7.2f}" for c in CONCURRENCY)  # fmt: skip
        errors = sum(found[str(c)]["errors"] for c in CONCURRENCY)
        lines.append(f"{label:34} {found['ready_s']:>8.2f} {row}"
                     + (f"  ({errors:.0f} errors)" if errors else ""))  # fmt: skip
    lines.append("")
    for name in ("bench-lr", "bench-gbm"):
        floor, cairn = results[f"{name} / floor"]["32"], results[f"{name} / cairn"]["32"]
        share, p99 = cairn["rps"] / floor["rps"], cairn["p99_ms"] / floor["p99_ms"]
        batched = results[f"{name} / cairn, batching"]["64"]["rps"]
        mlflow = results[f"{name} / mlflow"]["64"]["rps"]
        logged = results[f"{name} / cairn, logging on"]["32"]["rps"]
        cost = 1 - logged / cairn["rps"]
        peers = max(results[f"{name} / {s}"]["64"]["rps"] for s in ("floor", "mlflow"))
        ready = results[f"{name} / cairn"]["ready_s"]
        lines += [
            f"{name}: without batching, c32: {share:.0%} of the floor's throughput "
            f"(target ≥ 80%: {verdict(share >= 0.8)}), p99 {p99:.2f}× the floor's "
            f"(target ≤ 1.25×: {verdict(p99 <= 1.25)})",
            f"{name}: with batching, c64: {batched / mlflow:.1f}× mlflow models serve "
            f"(target ≥ 30×: {verdict(batched / mlflow >= 30)}); ahead of every server "
            f"measured: {verdict(batched > peers)}",
            f"{name}: payload logging costs {cost:.1%} of throughput at c32 "
            f"(target ≤ 10%: {verdict(cost <= 0.10)}); start to ready {ready:.2f} s "
            f"(target < 2 s: {verdict(ready < 2)})",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
