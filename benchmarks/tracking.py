"""Tracking benchmark: Cairn against an MLflow server, both on SQLite, on loopback.

    .venv/bin/python benchmarks/tracking.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/tracking.py --quick    # a smoke run, a minute or two

What is measured (see docs/benchmarks.md for the method and the latest figures):

1. one ``log_metric`` call in a training loop (median µs): Cairn's buffered
   ``run.log_metric`` against both of MLflow's: ``client.log_metric`` (synchronous, one
   HTTP request per call) and ``mlflow.log_metric(..., synchronous=False)`` (queued, sent by
   a background thread); and the time until every point is stored (the loop, then
   ``flush()`` / ``flush_async_logging()``), per point;
2. metric ingest through the server (points/s), the same 1,000,000 points for both:
   Cairn's ``log_metric`` loop + ``flush()`` against MLflow's ``client.log_batch`` of 1,000
   metrics at a time;
3. ``search_runs`` over 10,000 runs of 20 params and 20 metrics, filtered on a metric and a
   param and ordered by a metric, 1,000 results at most (median latency).

MLflow is installed into its own virtualenv (benchmarks/.venv-mlflow) when missing. Each
tool's client code runs in a subprocess of that tool's interpreter (_tracking_cairn.py,
_tracking_mlflow.py); both generate the same data (_tracking_data.py), and the digests they
report are compared. Measurements alternate after a warm-up, the order turning each round
(benchmarks/_method.py); figures are medians of the rounds, with their range.
Both servers bind to 127.0.0.1 on free ports and every process started is stopped by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _method import (
    Spread,
    alternate,
    clean_environment,
    machine,
    ratios,
    source_state,
    verdict,
)
from _peers import ensure_venv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CAIRN_PYTHON = Path(sys.executable)
MLFLOW_VENV = HERE / ".venv-mlflow"
MLFLOW_PYTHON = MLFLOW_VENV / "bin" / "python"
# The newest MLflow 3 whose wheels (mlflow and mlflow-skinny) the package index has here.
MLFLOW_REQUIREMENT = "mlflow==3.17.2"
# One worker process, like Cairn's server. MLflow's default of 4 is slower here: its uvicorn
# workers get the listening socket passed in, asyncio then leaves Nagle on, and every request
# on a kept-alive connection stalls ~40 ms on delayed ACKs (log_metric ≈ 52 ms a call instead
# of 10–20 ms). `--mlflow-workers 4` reproduces it.
MLFLOW_SERVER_WORKERS = 1
CAIRN_WORKER = HERE / "_tracking_cairn.py"
MLFLOW_WORKER = HERE / "_tracking_mlflow.py"
WORK = HERE / ".work"
RESULTS = WORK / "tracking-results.json"
CAIRN_START_TIMEOUT = 60.0
MLFLOW_START_TIMEOUT = 180.0  # seconds; BENCHMARKS.md saw 14–32 s
STOP_TIMEOUT = 20.0

# From /work/shared/BENCHMARKS.md.
TARGET_LOG_METRIC_US = 1.0
TARGET_INGEST_RATIO = 200.0
TARGET_SEARCH_RATIO = 30.0
TARGET_SEARCH_MS = 50.0


@dataclass(frozen=True)
class Sizes:
    rounds: int  # measured rounds per tool, after one warm-up round
    cairn_calls: int  # log_metric calls per Cairn round (timed in blocks of BLOCK)
    mlflow_sync_calls: int  # client.log_metric calls per MLflow round (each timed)
    mlflow_async_calls: int  # mlflow.log_metric(synchronous=False) calls per round
    points: int  # ingest: points per round, the same for both
    runs: int  # search: runs in the searched experiment
    search_reps: int  # timed searches per round, after one warm-up search


FULL = Sizes(3, 200_000, 500, 2_000, 1_000_000, 10_000, 5)
QUICK = Sizes(3, 20_000, 100, 500, 20_000, 1_000, 5)
BLOCK = 100  # buffered calls timed together; their mean is one sample
WARMUP_SHARE = 10  # a warm-up round does a tenth of a round's work: it only loads code


def share(count: int, round_index: int) -> int:
    """How much of ``count`` a round does: all, or a tenth in the warm-up (round 0)."""
    return count if round_index else max(1, count // WARMUP_SHARE)


# processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited meanwhile
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """A server process started here, its process tree, its log, and its stop."""

    def __init__(
        self, name: str, command: list[str], health: str, env: dict[str, str], cwd: Path
    ) -> None:
        self.name, self.command, self.health, self.env, self.cwd = name, command, health, env, cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.known: set[int] = set()  # every pid seen in its tree, to stop them all
        self.log_path = WORK / f"{name}-server.log"
        self.start_seconds = 0.0
        self.token = ""  # an API token for it, when it needs one

    def start(self, timeout: float) -> None:
        with self.log_path.open("wb") as log:
            t0 = time.perf_counter()
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # a ^C to the driver reaches it through stop() only
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tree()
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(
                    f"{self.name} server exited ({self.process.returncode}):\n{tail}"
                )
            try:
                with urllib.request.urlopen(self.health, timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        self.start_seconds = time.perf_counter() - t0
                        self.tree()
                        return
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} server gave no healthy answer within {timeout:.0f} s")

    def tree(self) -> list[int]:
        if self.process is None:
            return []
        pids = descendants(self.process.pid)
        self.known.update(pids)
        return pids

    def settle(self, timeout: float = 120.0, window: float = 2.0) -> float:
        """Wait until the server tree is idle (< 5% of a core over ``window``): MLflow
        answers /health while its other processes are still importing."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            before = cpu_seconds(self.tree())
            time.sleep(window)
            if cpu_seconds(self.tree()) - before < 0.05 * window:
                break
        return time.monotonic() - t0

    def rss_mib(self) -> float:
        return sum(_status_kib(pid, "VmRSS") for pid in self.tree()) / 1024

    def peak_rss_mib(self) -> float:
        """Sum over the tree of each process's peak RSS (an upper bound of the peak)."""
        return sum(_status_kib(pid, "VmHWM") for pid in self.tree()) / 1024

    def stop(self) -> None:
        if self.process is None:
            return
        self.tree()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in sorted(self.known - {self.process.pid}):  # workers left behind, if any
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in self.known):
            time.sleep(0.1)
        for pid in self.known:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def ensure_mlflow_venv() -> None:
    ensure_venv(MLFLOW_VENV, [MLFLOW_REQUIREMENT], "mlflow")


def worker_env(extra: dict[str, str]) -> dict[str, str]:
    # No telemetry from MLflow: nothing may leave the machine.
    return clean_environment({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", **extra})


class Tool:
    def __init__(self, name: str, python: Path, worker: Path, env: dict[str, str]) -> None:
        self.name, self.python, self.worker, self.env = name, python, worker, env

    def run(self, task: str, timeout: float, **args: Any) -> dict[str, Any]:
        command = [str(self.python), str(self.worker), json.dumps({"task": task, **args})]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=WORK,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name} {task} failed ({done.returncode}):\n{done.stderr}")
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"{self.name} {task} printed no result:\n{done.stdout}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


# measurements ---------------------------------------------------------------------------


def measure_log_metric(cairn: Tool, mlflow: Tool, sizes: Sizes) -> dict[str, Any]:
    def cairn_step(calls: int) -> Callable[[int], dict[str, Any]]:
        return lambda index: cairn.run("log_metric", 600, calls=share(calls, index), block=BLOCK)

    def mlflow_step(mode: str, calls: int, block: int) -> Callable[[int], dict[str, Any]]:
        return lambda index: mlflow.run(
            "log_metric", 900, calls=share(calls, index), block=block, mode=mode
        )

    steps = [
        ("cairn", cairn_step(sizes.cairn_calls)),
        ("mlflow_sync", mlflow_step("sync", sizes.mlflow_sync_calls, 1)),
        ("mlflow_async", mlflow_step("async", sizes.mlflow_async_calls, BLOCK)),
    ]
    rounds = alternate(steps, sizes.rounds, "log_metric")
    summary: dict[str, Any] = {}
    for name, results in rounds.items():
        per_call = [statistics.median(r["per_call_ns"]) / 1000 for r in results]
        stored = [r["mean_ns"] / 1000 + r["flush_s"] * 1e6 / r["calls"] for r in results]
        summary[name] = {
            "us": per_call,
            "p99_us": [_quantile(r["per_call_ns"], 0.99) / 1000 for r in results],
            "stored_us": stored,
            "flush_s": [r["flush_s"] for r in results],
            "calls": results[0]["calls"],
        }
    for peer in ("mlflow_sync", "mlflow_async"):
        summary[f"ratio_{peer}"] = ratios(summary[peer]["us"], summary["cairn"]["us"])
        summary[f"stored_ratio_{peer}"] = ratios(
            summary[peer]["stored_us"], summary["cairn"]["stored_us"]
        )
    return summary


def measure_ingest(cairn: Tool, mlflow: Tool, sizes: Sizes) -> dict[str, Any]:
    def step(tool: Tool, timeout: float) -> Callable[[int], dict[str, Any]]:
        return lambda index: tool.run("ingest", timeout, points=share(sizes.points, index))

    rounds = alternate([("cairn", step(cairn, 900)), ("mlflow", step(mlflow, 3600))],
                       sizes.rounds, "ingest")  # fmt: skip
    for name, results in rounds.items():
        for r in results:
            if r["stored_first_key"] != r["expected_first_key"]:
                raise AssertionError(f"{name} ingest stored {r['stored_first_key']} points")
    if rounds["cairn"][0]["digest"] != rounds["mlflow"][0]["digest"]:
        raise AssertionError("the two workers generated different metric data")
    summary: dict[str, Any] = {
        name: {
            "points": results[0]["points"],
            "rates": [r["points_per_s"] for r in results],
            "seconds": [r["seconds"] for r in results],
        }
        for name, results in rounds.items()
    }
    summary["cairn"]["loop_seconds"] = [r["loop_seconds"] for r in rounds["cairn"]]
    summary["ratio"] = ratios(summary["cairn"]["rates"], summary["mlflow"]["rates"])
    return summary


def measure_search(cairn: Tool, mlflow: Tool, sizes: Sizes) -> dict[str, Any]:
    populated = {}
    for tool in (cairn, mlflow):
        print(f"  search: populating {sizes.runs:,} runs in {tool.name} …", flush=True)
        populated[tool.name] = tool.run("populate", 7200, runs=sizes.runs)
        print(f"  search: {tool.name} took {populated[tool.name]['seconds']:.1f} s", flush=True)
    if populated["cairn"]["digest"] != populated["mlflow"]["digest"]:
        raise AssertionError("the two workers generated different runs")
    steps = [(tool.name, _search_step(tool, sizes.search_reps)) for tool in (cairn, mlflow)]
    rounds = alternate(steps, sizes.rounds, "search")
    summary: dict[str, Any] = {}
    for name, results in rounds.items():
        summary[name] = {
            "ms": [statistics.median(r["seconds"]) * 1000 for r in results],
            "min_ms": min(s for r in results for s in r["seconds"]) * 1000,
            "max_ms": max(s for r in results for s in r["seconds"]) * 1000,
            "count": results[0]["count"],
            "params_per_run": results[0]["params_per_run"],
            "metrics_per_run": results[0]["metrics_per_run"],
            "digest": results[0]["digest"],
            "populate_s": populated[name]["seconds"],
        }
    found = {name: summary[name]["count"] for name in rounds}
    if len(set(found.values())) != 1:
        raise AssertionError(f"the searches returned different numbers of runs: {found}")
    if summary["cairn"]["digest"] != summary["mlflow"]["digest"]:
        raise AssertionError("the searches returned different runs or a different order")
    summary["ratio"] = ratios(summary["mlflow"]["ms"], summary["cairn"]["ms"])
    return summary


def _search_step(tool: Tool, reps: int) -> Callable[[int], dict[str, Any]]:
    return lambda _index: tool.run("search", 1800, warmup=1, reps=reps)


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# report ---------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    lm, ing, se = results["log_metric"], results["ingest"], results["search"]
    v, s = results["versions"], results["sizes"]
    cairn_us = Spread.of(lm["cairn"]["us"])
    lm_verdict = (
        f"≤ {TARGET_LOG_METRIC_US:g} µs: {verdict(cairn_us.median <= TARGET_LOG_METRIC_US)}"
    )
    ingest_met = ing["ratio"].median >= TARGET_INGEST_RATIO
    search_ms = Spread.of(se["cairn"]["ms"])
    search_met = se["ratio"].median >= TARGET_SEARCH_RATIO and search_ms.median < TARGET_SEARCH_MS
    lines = [
        "",
        f"Cairn {v['cairn']} vs MLflow {v['mlflow']} — SQLite {v['sqlite']}, {results['machine']}",
        f"command: {results['command']}   source: {results['cairn_source']}   "
        f"started {results['date']}",
        f"servers on 127.0.0.1, SQLite backends; MLflow server with {results['mlflow_workers']} "
        "worker process(es), Cairn's with one",
        f"medians of {s['rounds']} rounds after a warm-up (rounds' range in brackets), the order "
        "turning each round; ratios: medians of the per-round ratios",
        "",
        f"{'measurement':<46} {'Cairn':>21} {'MLflow':>27} {'ratio':>24}  target",
        "-" * 140,
        _row("log_metric, one call, µs: MLflow synchronous", cairn_us.show(),
             Spread.of(lm["mlflow_sync"]["us"]).show(",.0f"),
             lm["ratio_mlflow_sync"].show(",.0f", "×"), lm_verdict),
        _row("log_metric, one call, µs: MLflow asynchronous", cairn_us.show(),
             Spread.of(lm["mlflow_async"]["us"]).show(",.1f"),
             lm["ratio_mlflow_async"].show(",.1f", "×"), lm_verdict),
        _row("  until stored, µs a point: MLflow synchronous",
             Spread.of(lm["cairn"]["stored_us"]).show(),
             Spread.of(lm["mlflow_sync"]["stored_us"]).show(",.0f"),
             lm["stored_ratio_mlflow_sync"].show(",.0f", "×"), ""),
        _row("  until stored, µs a point: MLflow asynchronous",
             Spread.of(lm["cairn"]["stored_us"]).show(),
             Spread.of(lm["mlflow_async"]["stored_us"]).show(",.0f"),
             lm["stored_ratio_mlflow_async"].show(",.0f", "×"), ""),
        _row(f"ingest of {ing['cairn']['points']:,} points, points/s",
             Spread.of(ing["cairn"]["rates"]).show(",.0f"),
             Spread.of(ing["mlflow"]["rates"]).show(",.0f"), ing["ratio"].show(",.0f", "×"),
             f"≥ {TARGET_INGEST_RATIO:g}×: {verdict(ingest_met)}"),
        _row(f"search_runs over {s['runs']:,} runs, ms", search_ms.show(".1f"),
             Spread.of(se["mlflow"]["ms"]).show(",.0f"), se["ratio"].show(".1f", "×"),
             f"≥ {TARGET_SEARCH_RATIO:g}× and < {TARGET_SEARCH_MS:g} ms: {verdict(search_met)}"),
    ]  # fmt: skip
    srv = results["servers"]
    lines += [
        "",
        f"runs returned by the search (limit 1000): {se['cairn']['count']} and "
        f"{se['mlflow']['count']}, the same runs in the same order; each with "
        f"{se['cairn']['params_per_run']} params and {se['cairn']['metrics_per_run']} metrics "
        f"(MLflow: {se['mlflow']['params_per_run']} and {se['mlflow']['metrics_per_run']}); "
        f"single searches ranged {se['cairn']['min_ms']:.1f}–{se['cairn']['max_ms']:.1f} ms "
        f"(Cairn) and {se['mlflow']['min_ms']:,.0f}–{se['mlflow']['max_ms']:,.0f} ms (MLflow)",
        f"populating {s['runs']:,} runs (once, not alternated): Cairn "
        f"{se['cairn']['populate_s']:,.1f} s, MLflow {se['mlflow']['populate_s']:,.1f} s",
        f"log_metric calls a round: Cairn {s['cairn_calls']:,} (timed in blocks of {BLOCK}), "
        f"MLflow synchronous {s['mlflow_sync_calls']:,} (each timed), asynchronous "
        f"{s['mlflow_async_calls']:,} (blocks of {BLOCK}); p99 of a call, µs: Cairn "
        f"{Spread.of(lm['cairn']['p99_us']).show()}, MLflow synchronous "
        f"{Spread.of(lm['mlflow_sync']['p99_us']).show(',.0f')}",
        f"flush after the log_metric loop, s: Cairn {Spread.of(lm['cairn']['flush_s']).show()}, "
        f"MLflow flush_async_logging {Spread.of(lm['mlflow_async']['flush_s']).show()}",
        f"Cairn ingest: {Spread.of(ing['cairn']['seconds']).show()} s in all, of which the "
        f"log_metric loop {Spread.of(ing['cairn']['loop_seconds']).show()} s",
        f"server start to healthy, s: Cairn {srv['cairn']['start_s']:.1f}, MLflow "
        f"{srv['mlflow']['start_s']:.1f}; RSS idle / peak, MiB: Cairn "
        f"{srv['cairn']['idle_mib']:,.0f} / {srv['cairn']['peak_mib']:,.0f}, MLflow "
        f"{srv['mlflow']['idle_mib']:,.0f} / {srv['mlflow']['peak_mib']:,.0f}",
    ]
    return "\n".join(lines)


def _row(label: str, a: str, b: str, ratio: str, target: str) -> str:
    return f"{label:<46} {a:>21} {b:>27} {ratio:>24}  {target}"


# main -----------------------------------------------------------------------------------


def admin_token(db_url: str) -> str:
    """An admin account and its API token in a new Cairn database: the server runs with
    authentication on, as it does by default, and the benchmark's client presents it."""
    from cairn.stores.metadata.identity import IdentityStore
    from cairn.stores.metadata.sql import SqlMetadataStore

    store = SqlMetadataStore(db_url)
    try:
        identity = IdentityStore(store.engine)
        identity.add_user("bench", admin=True)
        return str(identity.create_token("bench", "benchmark")[1])
    finally:
        store.close()


@contextlib.contextmanager
def servers(work: Path, mlflow_workers: int) -> Iterator[tuple[Server, Server]]:
    cairn_port, mlflow_port = free_port(), free_port()
    cairn_server = Server(
        "cairn",
        [
            str(CAIRN_PYTHON), "-m", "cairn.server.launch",
            "--db", f"sqlite:///{work / 'cairn.db'}",
            "--artifacts", str(work / "cairn-artifacts"),
            "--host", "127.0.0.1", "--port", str(cairn_port),
        ],
        f"http://127.0.0.1:{cairn_port}/health",
        worker_env({}),
        work,
    )  # fmt: skip
    mlflow_server = Server(
        "mlflow",
        [
            str(MLFLOW_VENV / "bin" / "mlflow"), "server",
            "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
            "--default-artifact-root", str(work / "mlflow-artifacts"),
            "--host", "127.0.0.1", "--port", str(mlflow_port),
            "--workers", str(mlflow_workers),
        ],
        f"http://127.0.0.1:{mlflow_port}/health",
        worker_env({}),
        work,
    )  # fmt: skip
    cairn_server.token = admin_token(f"sqlite:///{work / 'cairn.db'}")
    try:
        print("starting the Cairn server …", flush=True)
        cairn_server.start(CAIRN_START_TIMEOUT)
        print(f"  healthy after {cairn_server.start_seconds:.1f} s", flush=True)
        print("starting the MLflow server …", flush=True)
        mlflow_server.start(MLFLOW_START_TIMEOUT)
        print(f"  healthy after {mlflow_server.start_seconds:.1f} s", flush=True)
        for server in (cairn_server, mlflow_server):
            waited = server.settle()
            print(f"  {server.name} server idle after {waited:.0f} s more", flush=True)
        yield cairn_server, mlflow_server
    finally:
        for server in (mlflow_server, cairn_server):
            server.stop()


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so that the servers are stopped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--mlflow-workers",
        type=int,
        default=MLFLOW_SERVER_WORKERS,
        help=f"worker processes of the MLflow server (default {MLFLOW_SERVER_WORKERS})",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _terminate)

    ensure_mlflow_venv()
    work = WORK / f"tracking-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    work.mkdir(parents=True)
    command = " ".join([".venv/bin/python", "benchmarks/tracking.py", *sys.argv[1:]])
    results: dict[str, Any] = {
        "command": command,
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "sizes": asdict(sizes),
        "machine": machine(WORK),
        "mlflow_workers": args.mlflow_workers,
        "cairn_source": source_state(),
    }
    try:
        with servers(work, args.mlflow_workers) as (cairn_server, mlflow_server):
            cairn = Tool(
                "cairn",
                CAIRN_PYTHON,
                CAIRN_WORKER,
                worker_env(
                    {
                        "CAIRN_URI": cairn_server.health.removesuffix("/health"),
                        "CAIRN_TOKEN": cairn_server.token,
                        "CAIRN_HOME": str(work / "cairn-client"),
                    }
                ),
            )
            mlflow = Tool(
                "mlflow",
                MLFLOW_PYTHON,
                MLFLOW_WORKER,
                worker_env({"MLFLOW_TRACKING_URI": mlflow_server.health.removesuffix("/health")}),
            )
            idle = {s.name: s.rss_mib() for s in (cairn_server, mlflow_server)}
            versions = {**cairn.run("versions", 60), **mlflow.run("versions", 120)}
            results["versions"] = versions
            print("search_runs:", flush=True)
            results["search"] = measure_search(cairn, mlflow, sizes)
            print("log_metric:", flush=True)
            results["log_metric"] = measure_log_metric(cairn, mlflow, sizes)
            print("ingest:", flush=True)
            results["ingest"] = measure_ingest(cairn, mlflow, sizes)
            results["servers"] = {
                s.name: {
                    "start_s": s.start_seconds,
                    "idle_mib": idle[s.name],
                    "peak_mib": s.peak_rss_mib(),
                    "workers": len(s.tree()),
                }
                for s in (cairn_server, mlflow_server)
            }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ended_on = source_state()
    if ended_on != results["cairn_source"]:
        results["cairn_source"] += f" (changed during the run, now {ended_on}: run it again)"
    WORK.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=asdict))
    print(report(results))
    print(f"\n(raw results: {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
