"""Serving: Cairn's model server against `mlflow models serve`, BentoML, MLServer and the
floor of a Python HTTP server, on the same models and the same requests.

    .venv/bin/python benchmarks/serving.py            # about 35 minutes
    .venv/bin/python benchmarks/serving.py --quick    # one round, shorter loads: about 5
    .venv/bin/python benchmarks/serving.py --models bench-lr --servers cairn "cairn, logging on" \
        --rounds 6                                     # a focused A/B: only those rows

(and a few minutes more the first time, while the peers' virtualenvs are made).

Two scikit-learn models on 20 numeric features — a logistic regression and a 100-tree
gradient-boosted classifier — registered in a Cairn store of their own, exported in
MLflow's format and dumped with joblib (the same fitted objects). Each server is started
alone, warmed, then loaded with one-row JSON requests by wrk (Debian's, not Python-bound)
at concurrency 1, 32 and 64, over loopback. The requests are ``{"instances": [[...]]}`` to
``/invocations``, or, to MLServer, whose scikit-learn runtime takes the Open Inference
Protocol, the same row as a v2 tensor to ``/v2/models/NAME/infer``:

- the floor: a bare uvicorn + starlette app calling the model's own ``predict``, with
  nothing else (no validation, no metrics, no logging) — what a Python HTTP server costs;
- Cairn without batching (``--max-batch 1``), with payload logging off and on;
- Cairn with adaptive batching (``--max-batch 64``), logging off;
- ``mlflow models serve`` (MLflow's scoring server);
- BentoML (``bentoml serve``, one worker): a service whose API calls the joblib model's
  ``predict``, without batching and with its adaptive batching (``batchable=True``, up to
  64 rows; it has no fixed wait, it estimates one from the batches it has timed);
- MLServer with mlserver-sklearn (``mlserver start``, parallel workers off), without
  batching and with its adaptive batching (``max_batch_size`` 64, 2 ms).

Every server answers in one process (BentoML's worker under its supervisor). None but
MLflow's logs a line per request: BentoML's access log and MLServer's debug mode, both on
by default, are switched off; ``mlflow models serve`` has no switch for its uvicorn's.
The peers run from virtualenvs of their own (benchmarks/.venv-mlflow, .venv-bentoml,
.venv-mlserver), made when missing; a peer that does not install or start is left out,
and the report says why. Rounds: every server once per round, one at a time, the order
reversed every other round; figures are medians over the rounds, with the range of the
throughput.

Targets: Cairn without batching ≥ 80% of the floor's throughput at concurrency 32 with
its p99 within 1.25× the floor's; with batching ≥ 30× MLflow's at concurrency 64 and
ahead of every other server measured; payload logging costing ≤ 10% of throughput; start
to ready under 2 s.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from _method import Spread, machine, source_state, verdict
from _peers import ensure_venv, installed
from tracking import free_port

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "serving"
PYTHON = ROOT / ".venv" / "bin" / "python"
# The peers load the joblib dump with the scikit-learn that made it.
SKLEARN = f"scikit-learn=={importlib.metadata.version('scikit-learn')}"
# Each peer's venv, what it installs (BentoML and MLServer: the newest releases the package
# index has here), and a module that imports once it is installed.
PEERS = {
    "mlflow": (ROOT / "benchmarks" / ".venv-mlflow", ["mlflow", "scikit-learn"], "mlflow.pyfunc"),
    "bentoml": (ROOT / "benchmarks" / ".venv-bentoml", ["bentoml==1.4.40", SKLEARN], "bentoml"),
    "mlserver": (ROOT / "benchmarks" / ".venv-mlserver",
                 ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", SKLEARN], "mlserver_sklearn"),
}  # fmt: skip
MODELS = ("bench-lr", "bench-gbm")
SERVERS = ("floor", "cairn", "cairn, logging on", "cairn, batching", "mlflow",
           "bentoml", "bentoml, batching", "mlserver", "mlserver, batching")  # fmt: skip
CONCURRENCY = (1, 32, 64)
FEATURES = 20
MAX_BATCH = 64  # rows in one batch, for every server that batches
MAX_WAIT_S = 0.002  # Cairn's default wait for a batch to fill; MLServer's is given the same


@dataclass(frozen=True)
class Server:
    """One server: how it starts, when it is ready, and how it is asked for predictions."""

    command: list[str]
    ready: str = "/v2/health/ready"  # the path that answers 200 once the model is loaded
    path: str = "/invocations"
    protocol: str = "instances"  # the request body: {"instances": …}, or "oip" (a v2 tensor)
    env: dict[str, str] = field(default_factory=dict)
    files: dict[Path, str] = field(default_factory=dict)  # written before it starts


def peer(label: str) -> str | None:
    """The peer a server row belongs to (its venv's key in PEERS); None for Cairn's own."""
    name = label.split(",")[0]
    return name if name in PEERS else None


def prepare(work: Path) -> dict[str, Any]:
    """Train, register, export and dump the two models; the row every request sends."""
    os.environ["CAIRN_HOME"] = str(work / "home")
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from cairn import sdk

    x, y = make_classification(n_samples=5_000, n_features=FEATURES, random_state=0)
    models = sdk.session().models
    exported, dumped = {}, {}
    for name, model in (("bench-lr", LogisticRegression(max_iter=1000)),
                        ("bench-gbm", GradientBoostingClassifier(n_estimators=100))):  # fmt: skip
        version = models.register(model.fit(x, y), name, input_example=x[:5])
        models.registry.set_alias(name, "production", version.version)
        folder = work / f"{name}-mlflow"
        shutil.rmtree(folder, ignore_errors=True)
        models.export_mlflow(version.ref, folder)
        exported[name] = folder
        dumped[name] = work / f"{name}.joblib"
        joblib.dump(model, dumped[name])
    sdk.session().close()
    return {"row": [round(float(v), 6) for v in x[0]], "mlflow": exported, "joblib": dumped}


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

# BentoML's idiom: the model loaded in the service's constructor, a sync API (run in
# BentoML's thread) named so that its route is /invocations, taking {"instances": [[…]]}.
_BENTOML = """
import bentoml
import joblib
import numpy as np

MODEL = bentoml.use_arguments().model  # `bentoml serve … --arg model=PATH`
NO_ACCESS_LOG = {"access": {"enabled": False}}


@bentoml.service(workers=1, logging=NO_ACCESS_LOG)
class Plain:
    def __init__(self):
        self.model = joblib.load(MODEL)

    @bentoml.api
    def invocations(self, instances: np.ndarray) -> np.ndarray:
        return self.model.predict(instances)


@bentoml.service(workers=1, logging=NO_ACCESS_LOG)
class Batching:
    def __init__(self):
        self.model = joblib.load(MODEL)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH)
    def invocations(self, instances: np.ndarray) -> np.ndarray:
        return self.model.predict(instances)
""".replace("MAX_BATCH", str(MAX_BATCH))


def servers(name: str, port: int, prepared: dict[str, Any]) -> dict[str, Server]:
    """Every server row, set to serve model ``name`` on ``port``."""
    cairn = [str(PYTHON), "-m", "cairn", "serve", f"{name}@production", "--port", str(port),
             "--follow", "0"]  # fmt: skip
    mlflow = [str(PEERS["mlflow"][0] / "bin" / "mlflow"), "models", "serve",
              "-m", str(prepared["mlflow"][name]), "--env-manager", "local",
              "--host", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    bentoml = [str(PEERS["bentoml"][0] / "bin" / "bentoml"), "serve", "--working-dir",
               str(WORK), "--host", "127.0.0.1", "--port", str(port),
               "--arg", f"model={prepared['joblib'][name]}"]  # fmt: skip
    # Its home in the work folder, and no usage reports: there is no network to send them.
    bentoml_env = {"BENTOML_HOME": str(WORK / "bentoml-home"), "BENTOML_DO_NOT_TRACK": "true"}
    return {
        "floor": Server([str(PYTHON), str(WORK / "floor.py"), f"{name}@production", str(port)]),
        "cairn": Server([*cairn, "--max-batch", "1", "--log-sample", "0"]),
        "cairn, logging on": Server([*cairn, "--max-batch", "1", "--log-sample", "1"]),
        "cairn, batching": Server([*cairn, "--max-batch", str(MAX_BATCH), "--log-sample", "0"]),
        "mlflow": Server(mlflow, ready="/ping"),
        "bentoml": Server([*bentoml, "bentoml_service:Plain"], ready="/readyz", env=bentoml_env),
        "bentoml, batching": Server(
            [*bentoml, "bentoml_service:Batching"], ready="/readyz", env=bentoml_env
        ),
        "mlserver": mlserver(name, port, prepared["joblib"][name], batching=False),
        "mlserver, batching": mlserver(name, port, prepared["joblib"][name], batching=True),
    }


def mlserver(name: str, port: int, model: Path, batching: bool) -> Server:
    """MLServer serving the joblib dump from a model repository of its own."""
    folder = WORK / f"mlserver-{name}{'-batching' if batching else ''}"
    settings = {
        "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
        "metrics_port": free_port(),  # its Prometheus endpoint stays, as Cairn's /metrics
        "parallel_workers": 0,  # predict in the server's process, as every server here
        "debug": False,  # its default logs every request
    }  # fmt: skip
    model_settings: dict[str, Any] = {
        "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model)},
    }  # fmt: skip
    if batching:
        model_settings |= {"max_batch_size": MAX_BATCH, "max_batch_time": MAX_WAIT_S}
    return Server(
        [str(PEERS["mlserver"][0] / "bin" / "mlserver"), "start", str(folder)],
        path=f"/v2/models/{name}/infer", protocol="oip",
        files={folder / "settings.json": json.dumps(settings),
               folder / name / "model-settings.json": json.dumps(model_settings)},
    )  # fmt: skip


def install_peers(wanted: set[str | None]) -> dict[str, str]:
    """Make each wanted peer's venv; the peers that could not be installed, and why."""
    missing = {}
    for name, (venv, requirements, probe) in PEERS.items():
        if name not in wanted:
            continue
        try:
            ensure_venv(venv, requirements, probe)
        except (RuntimeError, subprocess.CalledProcessError) as error:
            missing[name] = f"not installed: {error}"
            print(f"  {name}: {missing[name]}", flush=True)
    return missing


def start(server: Server, port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """The server, and the seconds from its start to its first ready answer."""
    for path, text in server.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    started = time.perf_counter()
    # A server finds its own tools first (mlflow serve starts the uvicorn of its venv).
    path = f"{Path(server.command[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, **server.env}
    process = subprocess.Popen(server.command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               env=env, start_new_session=True)  # fmt: skip
    deadline = started + 120
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{Path(server.command[0]).name} exited:\n{tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{server.ready}", timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    stop(process)
    raise RuntimeError(f"not ready after 120 s:\n{tail(log)}")


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def measure(name: str, label: str, prepared: dict[str, Any], seconds: int) -> dict[str, Any]:
    """One server serving one model: its time to ready and its load at each concurrency.

    Raises:
        RuntimeError: it did not start, or did not answer the request with a 200.
    """
    port = free_port()
    server = servers(name, port, prepared)[label]
    log = WORK / f"{name}-{label}.log".replace(" ", "")
    process, ready = start(server, port, log)
    url = f"http://127.0.0.1:{port}{server.path}"
    body = prepared["bodies"][server.protocol]
    script = WORK / f"{server.protocol}.lua"
    try:
        # A server that refuses the request would be measured refusing it, fast.
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        if answer.status_code != 200:
            raise RuntimeError(f"answered {answer.status_code}: {answer.text[:500]}")
        wrk(url, 8, 2, script)  # warm-up
        loads = {str(c): wrk(url, c, seconds, script) for c in CONCURRENCY}
    finally:
        stop(process)
    return {"ready_s": ready, **loads}


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


def requests(row: list[float], work: Path) -> dict[str, str]:
    """The request body of each protocol, and a wrk script that posts it, beside it."""
    bodies = {
        "instances": json.dumps({"instances": [row]}),
        "oip": json.dumps({"inputs": [{"name": "input-0", "shape": [1, len(row)],
                                       "datatype": "FP64", "data": row}]}),
    }  # fmt: skip
    for protocol, body in bodies.items():
        (work / f"{protocol}.lua").write_text(
            f"wrk.method = \"POST\"\nwrk.body = '{body}'\n"  # JSON holds no single quote
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, shorter loads")
    parser.add_argument("--rounds", type=int, help="rounds of every server (default 3; --quick 1)")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=list(MODELS),
        help="only these models (a focused A/B)",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=SERVERS,
        default=list(SERVERS),
        help="only these servers, e.g. --servers cairn 'cairn, logging on'",
    )
    args = parser.parse_args()
    seconds = 3 if args.quick else 10
    rounds = args.rounds or (1 if args.quick else 3)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    wanted = {peer(label) for label in args.servers} - {None}
    missing = install_peers(wanted)  # a server row not measured, and why
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    prepared = prepare(WORK)
    prepared["bodies"] = requests(prepared["row"], WORK)
    (WORK / "floor.py").write_text(_FLOOR)
    (WORK / "bentoml_service.py").write_text(_BENTOML)
    cells = [f"{name} / {label}" for name in args.models for label in args.servers
             if peer(label) not in missing]  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {cell: [] for cell in cells}
    for index in range(rounds):
        # One server at a time; every other round the other way round, so that no server
        # always runs early, or late, in whatever else the machine does over the run.
        for cell in cells if index % 2 == 0 else cells[::-1]:
            if cell in missing:
                continue
            name, label = cell.split(" / ")
            try:
                found = measure(name, label, prepared, seconds)
            except RuntimeError as error:
                if peer(label) is None:
                    raise
                missing[cell] = f"not measured (failed in round {index + 1}): {error}"
                print(f"  {cell}: {missing[cell]}", flush=True)
                continue
            runs[cell].append(found)
            shown = "  ".join(f"c{c}: {found[str(c)]['rps']:,.0f}/s p99 "
                              f"{found[str(c)]['p99_ms']:.1f} ms" for c in CONCURRENCY)  # fmt: skip
            print(f"  round {index + 1}/{rounds}, {cell}: ready {found['ready_s']:.2f} s; "
                  f"{shown}", flush=True)  # fmt: skip
    measured = {cell: summary(found) for cell, found in runs.items() if cell not in missing}
    print(report(measured, missing, seconds, rounds, args.models))
    return 0


def summary(found: list[dict[str, Any]]) -> dict[str, Any]:
    """One row's rounds: each figure's median and range; the errors, summed."""
    figures: dict[str, Any] = {"ready_s": Spread.of([run["ready_s"] for run in found])}
    for c in CONCURRENCY:
        loads = [run[str(c)] for run in found]
        figures[str(c)] = {key: Spread.of([load[key] for load in loads])
                           for key in ("rps", "p50_ms", "p99_ms")}  # fmt: skip
        figures[str(c)]["errors"] = sum(load["errors"] for load in loads)
    return figures


def report(measured: dict[str, dict[str, Any]], missing: dict[str, str], seconds: int,
           rounds: int, models: list[str]) -> str:  # fmt: skip
    peers = "; ".join(installed(venv, requirements) for name, (venv, requirements, _)
                      in PEERS.items() if name not in missing)  # fmt: skip
    lines = [
        "\nCairn's model server against mlflow models serve, BentoML, MLServer and a bare "
        "uvicorn + starlette app",
        f"{machine(WORK)}",
        f"source: {source_state()}",
        f"peers: {peers}",
        f"wrk, one-row JSON requests over loopback, {seconds} s at each concurrency after a "
        f"warm-up; one server at a time, {rounds} round(s), the order reversed every other "
        "round; medians over the rounds",
        "",
        f"{'server':34} {'ready s':>8} " + " ".join(
            f"{'c' + str(c) + ' req/s':>11} {'p50 ms':>7} {'p99 ms':>7}" for c in CONCURRENCY),
    ]  # fmt: skip
    for cell, found in measured.items():
        row = " ".join(f"{found[str(c)]['rps'].median:>11,.0f} "
                       f"{found[str(c)]['p50_ms'].median:>7.2f} "
                       f"{found[str(c)]['p99_ms'].median:>7.2f}" for c in CONCURRENCY)  # fmt: skip
        errors = sum(found[str(c)]["errors"] for c in CONCURRENCY)
        lines.append(f"{cell:34} {found['ready_s'].median:>8.2f} {row}"
                     + (f"  ({errors:.0f} errors)" if errors else ""))  # fmt: skip
    if rounds > 1:
        lines += ["", "req/s over the rounds, min–max:"]
        lines += [f"{cell:34} " + "  ".join(
            f"c{c} {found[str(c)]['rps'].low:,.0f}–{found[str(c)]['rps'].high:,.0f}"
            for c in CONCURRENCY) for cell, found in measured.items()]  # fmt: skip
    if missing:
        lines += ["", *(f"{what}: {brief(why)}" for what, why in missing.items())]
    lines.append("")
    for name in models:
        lines += verdicts(name, {cell.split(" / ")[1]: found for cell, found in measured.items()
                                 if cell.startswith(f"{name} / ")})  # fmt: skip
    return "\n".join(lines)


def brief(reason: str) -> str:
    """A reason on one line: what failed, and the last line of its output naming an error
    (else its last line)."""
    said = [line.strip() for line in reason.splitlines() if line.strip()]
    named = [line for line in said[1:] if re.search(r"\bERROR\b|\w(Error|Exception)\b", line)]
    return " … ".join([said[0], *(named or said[1:])[-1:]])


def verdicts(name: str, rows: dict[str, dict[str, Any]]) -> list[str]:
    """The targets for one model, on the medians of its rows (by server label): those the
    rows measured allow (a focused run measures some)."""
    found = []
    if {"floor", "cairn"} <= set(rows):
        found.append(_plain(name, rows["floor"]["32"], rows["cairn"]["32"]))
    if "cairn, batching" in rows:
        found.append(_batching(name, rows))
    if {"cairn", "cairn, logging on"} <= set(rows):
        cost = 1 - rows["cairn, logging on"]["32"]["rps"].median / rows["cairn"]["32"]["rps"].median
        found.append(f"{name}: payload logging costs {cost:.1%} of throughput at c32 "
                     f"(target ≤ 10%: {verdict(cost <= 0.10)})")  # fmt: skip
    if "cairn" in rows:
        ready = rows["cairn"]["ready_s"].median
        found.append(f"{name}: start to ready {ready:.2f} s (target < 2 s: {verdict(ready < 2)})")
    return found


def _plain(name: str, floor: dict[str, Any], cairn: dict[str, Any]) -> str:
    share = cairn["rps"].median / floor["rps"].median
    p99 = cairn["p99_ms"].median / floor["p99_ms"].median
    return (f"{name}: without batching, c32: {share:.0%} of the floor's throughput "
            f"(target ≥ 80%: {verdict(share >= 0.8)}), p99 {p99:.2f}× the floor's "
            f"(target ≤ 1.25×: {verdict(p99 <= 1.25)})")  # fmt: skip


def _batching(name: str, rows: dict[str, dict[str, Any]]) -> str:
    batched = rows["cairn, batching"]["64"]["rps"].median
    # Every other server's best row at c64: the floor, and each peer with or without batching.
    best: dict[str, tuple[float, str]] = {}
    for label, found in rows.items():
        if peer(label) is not None or label == "floor":
            server = label.split(",")[0]
            best[server] = max(best.get(server, (0.0, "")), (found["64"]["rps"].median, label))
    ahead = ", ".join(f"{label.replace(',', '')} {rps:,.0f}/s" for rps, label in best.values())
    mlflow = "mlflow models serve not measured"
    if "mlflow" in rows:
        times = batched / rows["mlflow"]["64"]["rps"].median
        mlflow = f"{times:.1f}× mlflow models serve (target ≥ 30×: {verdict(times >= 30)})"
    leads = bool(best) and batched > max(best.values())[0]
    return (f"{name}: with batching, c64: {batched:,.0f}/s, {mlflow}; ahead of every other "
            f"server measured ({ahead or 'none'}): {verdict(leads)}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
