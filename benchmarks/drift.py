"""Drift: Cairn's drift evaluation against Evidently's DataDriftPreset and the floor of plain
NumPy/SciPy code, on the same data.

    .venv/bin/python benchmarks/drift.py            # about 20 minutes, 11 of them Evidently's
    .venv/bin/python benchmarks/drift.py --quick    # 100,000 rows, one round: about 2

(and two minutes more the first time, while Evidently's virtualenv is made).

The data, made here from a fixed seed and written once to Parquet under
benchmarks/.work/drift/ so that every tool reads the same files: a reference and a current
table of 1,000,000 rows each, of 20 numeric columns (float64: normal, log-normal, Student's
t, uniform, exponential, gamma, Poisson counts, a bimodal mixture) and 5 categorical ones
(text, 10 to 50 categories of Zipf-like frequencies). In the current table 5 numeric
columns have their mean moved by 0.2 to 0.5 of their standard deviation, and a quarter of
one categorical column's rows are drawn from its frequencies reversed (a Jensen–Shannon
distance of about 0.2); the other 19 are drawn from the same distributions as the
reference's. Those 6 are the truth each tool's flags are held to.

Each contender runs in a fresh interpreter, reads the Parquet files itself (timed apart from
the evaluation), and reports its evaluation's wall time, its process's peak resident memory
(``ru_maxrss``), the peak above the resident memory measured just before the evaluation
(the kernel's high-water mark reset there, /proc/self/clear_refs), and the columns it
flagged:

- cairn: ``dataset_drift(reference, current)`` on the current table as a user has it,
  ``pd.read_parquet``'s DataFrame; its reference made beforehand from the reference table
  (``reference_of``, timed apart as "reference, once"), stored with ``to_json`` and read
  back with ``from_json``, as a monitor's reference is;
- cairn, numpy: the same, the current columns as NumPy arrays (pyarrow's ``to_numpy``);
- cairn, payload window: 1,000,000 one-row requests (20 floats in, one number out) logged
  with ``PayloadLog`` into a Cairn store of the benchmark's own (once, before the rounds),
  read back with ``logged_window(…)`` as a monitor reads it ("read"), then ``dataset_drift``
  against a reference of the same 20 features and the model's predictions (``--window N``:
  N requests instead);
- evidently: ``Report([DataDriftPreset()])`` over the same two pandas frames, the columns
  typed by a ``DataDefinition`` (its defaults decide: above 1,000 rows the Wasserstein
  distance normed by the reference's deviation for numbers, the Jensen–Shannon distance
  for categories, both at 0.1 — the effect sizes Cairn's defaults use at this size);
  from benchmarks/.venv-evidently, made when missing;
- floor: what the simplest correct code costs — per numeric column SciPy's ``ks_2samp`` on
  the full arrays and a PSI on 10 quantile bins, per categorical column
  ``chi2_contingency`` on the value counts; drifted when the test's p-value is under 0.01.

Each tool's evaluation runs once on the first 1,000 rows of each table before it is timed,
so that what it imports or prepares on a first call (Cairn: SciPy's modules) is not timed,
as the floor's imports are not; Cairn's first call is reported apart. Rounds: every
contender once per round, one at a time, the order reversed every other round, the Parquet
files read into the page cache before each; one that times out (900 s) is not run again;
figures are medians over the rounds with their range. Targets (/work/shared/BENCHMARKS.md):
Cairn's evaluation of 1M rows × 25 columns under 2 s, ≥ 50× faster than Evidently's, its
peak memory above the baseline under twice the current table's size in memory.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _method import Spread, clean_environment, machine, ratios, source_state, verdict, warm
from _peers import ensure_venv, installed

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "drift"
HOME = WORK / "home"  # the Cairn store the payload window is logged to
PYTHON = ROOT / ".venv" / "bin" / "python"
# The newest Evidently the package index has here; it imports a function pandas 3 removed.
EVIDENTLY = (ROOT / "benchmarks" / ".venv-evidently", ["evidently==0.7.23", "pandas<3"],
             "evidently")  # fmt: skip
ROWS, QUICK_ROWS = 1_000_000, 100_000
SEED = 20_251_101
NUMERIC = [f"x{i:02d}" for i in range(20)]
# The kind of each numeric column: those that move are continuous.
KINDS = ("normal", "lognormal", "t", "normal", "uniform", "exponential", "gamma", "lognormal",
         "poisson", "bimodal", "normal", "t", "uniform", "gamma", "poisson", "exponential",
         "bimodal", "lognormal", "t", "gamma")  # fmt: skip
SHIFTS = {"x03": 0.2, "x07": 0.275, "x11": 0.35, "x15": 0.425, "x19": 0.5}  # in deviations
CATEGORIES = {"country": 50, "device": 10, "channel": 20, "plan": 30, "segment": 40}
CHANGED, CHANGED_SHARE = "channel", 0.25  # the rows drawn from the reversed frequencies
TRUTH = [*SHIFTS, CHANGED]
MODEL = "drift-bench"  # the model whose traffic the payload window is
LOG_BUDGET_S = 180  # logging the window: past this, fewer requests (and the report says so)
TIMEOUT_S = 900  # one contender's run
P_VALUE = 0.01  # the floor's tests
HEAD = 1_000  # rows of each table every tool is run on once before it is timed
MARK = "RESULT "  # the line a child prints its measurements on
CONTENDERS = ("cairn", "cairn, numpy", "cairn, payload window", "evidently", "floor")
STEPS = ("cairn reference", *CONTENDERS)
FIGURES = ("read_s", "evaluate_s", "maxrss_mb", "above_mb", "data_mb")


# the data ------------------------------------------------------------------------------


def make_data(rows: int) -> dict[str, Any]:
    """Write the reference and current tables (skipped when made before with this seed and
    size); what they hold."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy.spatial.distance import jensenshannon

    about = WORK / "data.json"
    if about.exists():
        found = json.loads(about.read_text())
        if found["rows"] == rows and found["seed"] == SEED:
            return dict(found)
    rng = np.random.default_rng(SEED)
    # Each kind of numeric column: how it is drawn, and its standard deviation.
    draws: dict[str, tuple[Callable[[int], Any], float]] = {
        "normal": (lambda n: rng.normal(50, 10, n), 10.0),
        "lognormal": (lambda n: rng.lognormal(0, 0.5, n),
                      float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25)))),
        "t": (lambda n: rng.standard_t(5, n), float(np.sqrt(5 / 3))),
        "uniform": (lambda n: rng.uniform(-1, 1, n), float(np.sqrt(1 / 3))),
        "exponential": (lambda n: rng.exponential(2.0, n), 2.0),
        "gamma": (lambda n: rng.gamma(2.0, 3.0, n), float(np.sqrt(2) * 3)),
        "poisson": (lambda n: rng.poisson(3, n).astype(np.float64), float(np.sqrt(3))),
        "bimodal": (lambda n: np.where(rng.random(n) < 0.3, rng.normal(-2, 1, n),
                                       rng.normal(3, 1.5, n)), float(np.sqrt(7.125))),
    }  # fmt: skip
    labels = {name: pa.array([f"{name}-{j:03d}" for j in range(count)])
              for name, count in CATEGORIES.items()}  # fmt: skip
    shares = {}
    for name, count in CATEGORIES.items():
        weights = 1 / np.arange(1, count + 1) ** 1.1
        shares[name] = weights / weights.sum()
    moved = (1 - CHANGED_SHARE) * shares[CHANGED] + CHANGED_SHARE * shares[CHANGED][::-1]
    tables = {}
    for which in ("reference", "current"):
        columns: dict[str, Any] = {}
        for index, name in enumerate(NUMERIC):
            draw, deviation = draws[KINDS[index]]
            values = draw(rows)
            if which == "current" and name in SHIFTS:
                values = values + SHIFTS[name] * deviation
            columns[name] = pa.array(values, pa.float64())
        for name, count in CATEGORIES.items():
            p = moved if which == "current" and name == CHANGED else shares[name]
            codes = rng.choice(count, size=rows, p=p).astype(np.int32)
            columns[name] = labels[name].take(pa.array(codes))
        tables[which] = pa.table(columns)
        pq.write_table(tables[which], WORK / f"{which}.parquet")
    found = {
        "rows": rows, "seed": SEED,
        "js_changed": float(jensenshannon(shares[CHANGED], moved, base=2)),
        "parquet_mb": {w: (WORK / f"{w}.parquet").stat().st_size / 2**20 for w in tables},
    }  # fmt: skip
    about.write_text(json.dumps(found))
    return found


def data_files() -> list[Path]:
    return [WORK / "reference.parquet", WORK / "current.parquet"]


# the children: each contender in a fresh interpreter -------------------------------------


def _memory() -> dict[str, int]:
    """This process's resident memory now and its high-water mark, in KiB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            found[key] = int(value.split()[0])
    return found


def measured(
    evaluate: Callable[[], Any], warm_up: Callable[[], Any]
) -> tuple[Any, dict[str, float]]:
    """``evaluate()``, its wall time, the process's peak memory, and its peak above the
    resident memory just before (the high-water mark reset there).

    ``warm_up()`` first, the same code on the first ``HEAD`` rows: what the tool imports
    or prepares on its first call (SciPy's modules, say) is then in the baseline, as the
    floor's imports are; its time is reported apart.
    """
    started = time.perf_counter()
    warm_up()
    warmed = time.perf_counter() - started
    gc.collect()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    baseline = _memory()["VmRSS"]
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark, down to now
    started = time.perf_counter()
    found = evaluate()
    seconds = time.perf_counter() - started
    peak = _memory()["VmHWM"]
    process = max(peak_before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, peak)
    return found, {"evaluate_s": seconds, "maxrss_mb": process / 1024,
                   "baseline_mb": baseline / 1024, "above_mb": (peak - baseline) / 1024,
                   "warm_up_s": warmed}  # fmt: skip


def frame_mb(frame: Any) -> float:
    """A table's size in memory as pandas reports it (text counted deep)."""
    return float(frame.memory_usage(deep=True, index=False).sum()) / 2**20


def columns_mb(columns: dict[str, Any]) -> float:
    """Columns' size: an array's bytes, a column of text as pandas reports it, deep."""
    import pandas as pd

    return sum(v.nbytes if v.dtype.kind in "biuf" else
               float(pd.Series(v).memory_usage(deep=True, index=False))
               for v in columns.values()) / 2**20  # fmt: skip


def cairn_reference() -> dict[str, Any]:
    """The reference, once, from the reference table; stored as a monitor's is."""
    import orjson
    import pandas as pd

    from cairn.monitoring.reference import reference_of, to_json

    started = time.perf_counter()
    frame = pd.read_parquet(WORK / "reference.parquet")
    read = time.perf_counter() - started
    reference, figures = measured(lambda: reference_of(frame),
                                  lambda: reference_of(frame.head(HEAD)))  # fmt: skip
    started = time.perf_counter()
    document = orjson.dumps(to_json(reference))
    (WORK / "reference.json").write_bytes(document)
    stored = time.perf_counter() - started
    return {"read_s": read, **figures, "data_mb": frame_mb(frame), "flagged": None,
            "store_s": stored, "json_kb": len(document) / 1024}  # fmt: skip


def stored_reference(path: Path) -> tuple[Any, float]:
    """A stored reference read back and checked (``from_json``), and the seconds it took."""
    import orjson

    from cairn.monitoring.reference import from_json

    started = time.perf_counter()
    reference = from_json(orjson.loads(path.read_bytes()))
    return reference, time.perf_counter() - started


def drifted(found: Any) -> list[str]:
    return [c.column for c in found.columns if c.drifted]


def cairn(numpy: bool) -> dict[str, Any]:
    """Cairn's evaluation of the current table: a DataFrame, or NumPy arrays."""
    import pandas as pd
    import pyarrow.parquet as pq

    from cairn.monitoring.drift import dataset_drift

    reference, loaded = stored_reference(WORK / "reference.json")
    started = time.perf_counter()
    current: Any
    if numpy:
        table = pq.read_table(WORK / "current.parquet")
        current = {name: table.column(name).to_numpy() for name in table.column_names}
        del table
        size = columns_mb(current)
    else:
        current = pd.read_parquet(WORK / "current.parquet")
        size = frame_mb(current)
    read = time.perf_counter() - started
    head = current.head(HEAD) if not numpy else {k: v[:HEAD] for k, v in current.items()}
    found, figures = measured(lambda: dataset_drift(reference, current),
                              lambda: dataset_drift(reference, head))  # fmt: skip
    scores = {c.column: round(c.score, 4) for c in found.columns}
    return {"read_s": read, **figures, "data_mb": size, "flagged": drifted(found),
            "reference_load_s": loaded, "method": found.columns[0].method,
            "scores": scores}  # fmt: skip


def evidently() -> dict[str, Any]:
    """Evidently's DataDriftPreset over the two frames, its columns typed."""
    import evidently as package
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    reference = pd.read_parquet(WORK / "reference.parquet")
    current = pd.read_parquet(WORK / "current.parquet")
    read = time.perf_counter() - started
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=list(CATEGORIES))

    def evaluate(reference: pd.DataFrame, current: pd.DataFrame) -> Any:
        one = Dataset.from_pandas(reference, data_definition=definition)
        other = Dataset.from_pandas(current, data_definition=definition)
        return Report([DataDriftPreset()]).run(other, one).dict()

    one, other = reference.head(HEAD), current.head(HEAD)
    found, figures = measured(lambda: evaluate(reference, current), lambda: evaluate(one, other))
    flagged, methods = evidently_flags(found)
    return {"read_s": read, **figures, "data_mb": frame_mb(current), "flagged": flagged,
            "version": package.__version__, "methods": methods}  # fmt: skip


def evidently_flags(snapshot: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The columns an Evidently 0.7 snapshot says drifted (each column's ValueDrift: its
    score against its threshold), and the methods that decided."""
    flagged, methods = [], set()
    for metric in snapshot["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            score, threshold = float(metric["value"]), float(config["threshold"])
            method = str(config.get("method", ""))
            methods.add(method)
            # p-value methods drift below their threshold, distances from it.
            distance = "p_value" not in method and "p-value" not in method
            if (score >= threshold) if distance else (score < threshold):
                flagged.append(str(config["column"]))
    return flagged, sorted(methods)


def floor() -> dict[str, Any]:
    """KS and a 10-bin PSI per numeric column, chi-square per categorical one: SciPy's."""
    import numpy as np
    import pandas as pd
    from scipy.stats import chi2_contingency, ks_2samp

    started = time.perf_counter()
    reference = pd.read_parquet(WORK / "reference.parquet")
    current = pd.read_parquet(WORK / "current.parquet")
    read = time.perf_counter() - started

    def evaluate(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
        found = {}
        for name in NUMERIC:
            one, other = reference[name].to_numpy(), current[name].to_numpy()
            p = float(ks_2samp(one, other).pvalue)
            edges = np.unique(np.quantile(one, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
            expected = np.histogram(one, edges)[0] / one.size
            actual = np.histogram(other, edges)[0] / other.size
            expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
            found[name] = (p, float(((actual - expected) * np.log(actual / expected)).sum()))
        for name in CATEGORIES:
            counts = pd.concat([reference[name].value_counts(), current[name].value_counts()],
                               axis=1).fillna(0)  # fmt: skip
            found[name] = (float(chi2_contingency(counts.to_numpy().T).pvalue), None)
        return found

    one, other = reference.head(HEAD), current.head(HEAD)
    found, figures = measured(lambda: evaluate(reference, current), lambda: evaluate(one, other))
    flagged = [name for name, (p, _) in found.items() if p < P_VALUE]
    psi = {name: round(v, 4) for name, (_, v) in found.items() if v is not None}
    return {"read_s": read, **figures, "data_mb": frame_mb(current), "flagged": flagged,
            "psi": psi}  # fmt: skip


def log_window(rows: int) -> dict[str, Any]:
    """Register a small model, log ``rows`` one-row requests of the current table's numeric
    columns as its traffic, and store the reference of the window's columns."""
    import numpy as np
    import orjson
    import pyarrow.parquet as pq
    from sklearn.linear_model import LinearRegression

    from cairn import sdk
    from cairn.monitoring.reference import reference_of, to_json
    from cairn.serving.payloads import PayloadLog

    tables = {w: pq.read_table(WORK / f"{w}.parquet", columns=NUMERIC)
              for w in ("reference", "current")}  # fmt: skip
    x = {w: np.column_stack([t.column(n).to_numpy() for n in NUMERIC])
         for w, t in tables.items()}  # fmt: skip
    rng = np.random.default_rng(SEED)
    fitted = x["reference"][:5_000]
    model = LinearRegression().fit(fitted, fitted @ rng.normal(size=len(NUMERIC)))
    session = sdk.session()
    version = session.models.register(model, MODEL, input_example=fitted[:5]).version
    window = {str(i): x["reference"][:, i] for i in range(len(NUMERIC))}
    window["prediction"] = model.predict(x["reference"])
    (WORK / "window-reference.json").write_bytes(orjson.dumps(to_json(reference_of(window))))
    predictions = model.predict(x["current"])
    # How far the answers moved, in their reference's deviations: whether flagging them is right.
    moved = abs(predictions.mean() - window["prediction"].mean()) / window["prediction"].std()
    counts = {"logged": 0, "dropped": 0}

    def counted(model: str, outcome: str, count: int) -> None:
        counts[outcome] += count

    log = PayloadLog(session.registry, session.artifacts, capacity=rows + 1, counted=counted)
    since = int(time.time() * 1000)
    started, asked, block = time.perf_counter(), 0, 100_000
    # In blocks, each written before the next is asked: past the budget, fewer requests.
    while asked < rows and time.perf_counter() - started < LOG_BUDGET_S:
        end = min(asked + block, rows)
        for i in range(asked, end):
            log.record(MODEL, version, f"r{i}", x["current"][i : i + 1], predictions[i : i + 1])
        asked = end
        while counts["logged"] + counts["dropped"] < asked - asked % 10_000:
            time.sleep(0.01)
    log.close()
    while counts["logged"] + counts["dropped"] < asked:
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    session.close()
    about = {"since": since, "asked": asked, "log_s": seconds, **counts,
             "prediction_moved_sd": float(moved)}  # fmt: skip
    (WORK / "window.json").write_text(json.dumps(about))
    return about


def payload_window() -> dict[str, Any]:
    """Cairn's evaluation of the logged window, read back from the store."""
    from cairn import sdk
    from cairn.monitoring.drift import dataset_drift
    from cairn.monitoring.logged import logged_window

    about = json.loads((WORK / "window.json").read_text())
    reference, loaded = stored_reference(WORK / "window-reference.json")
    session = sdk.session()
    started = time.perf_counter()
    current = logged_window(session.registry, session.artifacts, MODEL, about["since"]).columns
    read = time.perf_counter() - started
    head = {k: v[:HEAD] for k, v in current.items()}
    found, figures = measured(lambda: dataset_drift(reference, current),
                              lambda: dataset_drift(reference, head))  # fmt: skip
    names = {str(i): name for i, name in enumerate(NUMERIC)}
    compared = {k: v for k, v in current.items() if k in reference}  # not the request ids
    return {"read_s": read, **figures, "data_mb": columns_mb(compared),
            "flagged": [names.get(c, c) for c in drifted(found)],
            "rows": int(current["0"].size), "reference_load_s": loaded}  # fmt: skip


def child(name: str, rows: int) -> int:
    """Run one contender (or step) in this interpreter; print its figures on one line."""
    chosen: dict[str, Callable[[], dict[str, Any]]] = {
        "data": lambda: make_data(rows),
        "cairn reference": cairn_reference,
        "cairn": lambda: cairn(numpy=False),
        "cairn, numpy": lambda: cairn(numpy=True),
        "log window": lambda: log_window(rows),
        "cairn, payload window": payload_window,
        "evidently": evidently,
        "floor": floor,
    }
    print(MARK + json.dumps(chosen[name]()), flush=True)
    return 0


# the driver ----------------------------------------------------------------------------


def source_tree() -> str:
    """A digest of Cairn's source as it is now: src/ at HEAD and its changes beside it."""
    git = ["git", "-C", str(ROOT)]
    commands = (["rev-parse", "HEAD:src"], ["diff", "HEAD", "--", "src"],
                ["ls-files", "--others", "--exclude-standard", "--", "src"])  # fmt: skip
    found = [subprocess.run([*git, *c], capture_output=True).stdout for c in commands]
    return hashlib.sha256(b"\0".join(found)).hexdigest()


def run(name: str, rows: int) -> dict[str, Any]:
    """One child, from the interpreter of its tool; its figures, or why it has none.

    Raises:
        RuntimeError: it failed.
    """
    python = EVIDENTLY[0] / "bin" / "python" if name == "evidently" else PYTHON
    # No usage reports from Evidently: there is no network to send them to.
    env = clean_environment({"CAIRN_HOME": str(HOME), "DO_NOT_TRACK": "1",
                             "ITERATIVE_DO_NOT_TRACK": "1"})  # fmt: skip
    if name in CONTENDERS:
        warm(*data_files())
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(python), str(Path(__file__).resolve()), "--child", name, "--rows", str(rows)],
        cwd=WORK, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"timeout": True, "wall_s": time.perf_counter() - started}
    if process.returncode != 0:
        tail = "\n".join(f"{out}{err}".splitlines()[-15:])
        raise RuntimeError(f"{name} failed ({process.returncode}):\n{tail}")
    line = next(line for line in reversed(out.splitlines()) if line.startswith(MARK))
    return {**json.loads(line[len(MARK) :]), "wall_s": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, one round")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument(
        "--window", type=int, help="requests in the payload window (default: as many as rows)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = args.rows or (QUICK_ROWS if args.quick else ROWS)
    if args.child:
        return child(args.child, rows)
    rounds = args.rounds or (1 if args.quick else 3)
    load = os.getloadavg()[0]  # other work on the machine meanwhile shows here
    source, tree = source_state(), source_tree()
    missing: dict[str, str] = {}
    try:
        ensure_venv(*EVIDENTLY)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        missing["evidently"] = f"not installed: {error}"
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"data: {rows:,} rows × {len(NUMERIC) + len(CATEGORIES)} columns …", flush=True)
    data = run("data", rows)
    shutil.rmtree(HOME, ignore_errors=True)
    window = args.window or rows
    print(f"logging {window:,} requests to a Cairn store …", flush=True)
    logged = {**run("log window", window), "wanted": window}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in STEPS}
    for index in range(rounds):
        for name in STEPS if index % 2 == 0 else STEPS[::-1]:
            # One that failed, or ran out of time, is not run again.
            if name in missing or any(r.get("timeout") for r in runs[name]):
                continue
            try:
                found = run(name, rows)
            except RuntimeError as error:
                if name != "evidently":
                    raise
                missing[name] = f"failed in round {index + 1}: {error}"
                print(f"  {name}: {missing[name]}", flush=True)
                continue
            runs[name].append(found)
            shown = ("timed out" if found.get("timeout") else
                     f"read {found['read_s']:.2f} s, evaluate {found['evaluate_s']:.3f} s, "
                     f"peak {found['maxrss_mb']:,.0f} MB")  # fmt: skip
            print(f"  round {index + 1}/{rounds}, {name}: {shown}", flush=True)
    if source_tree() != tree:  # what was measured is not one state of the source
        source += f" at the start; {source_state()} at the end: Cairn's source CHANGED meanwhile"
    elif source_state() != source:
        source += f" at the start; {source_state()} at the end, src/ the same"
    provenance = [
        f"{machine(WORK)}; load average (1 min) {load:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end",
        f"source: {source}",
    ]
    print(report(runs, missing, data, logged, rows, rounds, provenance))
    return 0


def report(runs: dict[str, list[dict[str, Any]]], missing: dict[str, str],
           data: dict[str, Any], logged: dict[str, Any], rows: int, rounds: int,
           provenance: list[str]) -> str:  # fmt: skip
    peers = installed(*EVIDENTLY[:2]) if "evidently" not in missing else "not measured"
    window, wanted = logged["logged"], logged["wanted"]
    lines = [
        "\nCairn's drift evaluation against Evidently's DataDriftPreset and plain NumPy/SciPy",
        *provenance,
        f"peer: {peers}",
        f"data: {rows:,} rows × {len(NUMERIC)} numeric + {len(CATEGORIES)} categorical columns, "
        f"reference and current (Parquet {data['parquet_mb']['reference']:.0f} and "
        f"{data['parquet_mb']['current']:.0f} MB); truly moved: {', '.join(TRUTH)} "
        f"({CHANGED}: Jensen–Shannon {data['js_changed']:.3f})",
        f"payload window: {window:,} one-row requests logged in {logged['log_s']:.1f} s"
        + (f" (FEWER than the tables' {rows:,} rows: --window)" if wanted < rows else "")
        + (f" (FEWER than {wanted:,}: the {LOG_BUDGET_S} s budget ran out)" if window < wanted
           else "")
        + (f", {logged['dropped']:,} dropped" if logged["dropped"] else "")
        + f"; the model's answers moved by {logged['prediction_moved_sd']:.3f} of their "
        "deviation",
        f"each in a fresh interpreter, page cache warm; {rounds} round(s), the order reversed "
        "every other round; medians over the rounds (range)",
        "",
        f"{'contender':22} {'read s':>7} {'evaluate s':>24} {'peak RSS MB':>11} "
        f"{'above base MB':>13} {'data MB':>8}  flags (truth: {len(TRUTH)})",
    ]  # fmt: skip
    measured = {}
    for name in STEPS:
        found = [r for r in runs[name] if not r.get("timeout")]
        timeouts = len(runs[name]) - len(found)
        if not found:
            if timeouts:
                lines.append(f"{name:22} timed out after {TIMEOUT_S} s (not run again)")
            continue
        figures = {key: Spread.of([r[key] for r in found]) for key in FIGURES}
        measured[name] = figures
        lines.append(
            f"{name:22} {figures['read_s'].median:>7.2f} "
            f"{figures['evaluate_s'].show('.3f'):>24} {figures['maxrss_mb'].median:>11,.0f} "
            f"{figures['above_mb'].median:>13,.0f} {figures['data_mb'].median:>8,.0f}  "
            f"{flags(name, found)}" + (f"  ({timeouts} round(s) timed out)" if timeouts else "")
        )  # fmt: skip
    lines += ["", *notes(runs)]
    if missing:
        lines += ["", *(f"{name}: not measured, {why.splitlines()[0]}" for name, why
                        in missing.items())]  # fmt: skip
    lines += ["", *verdicts(runs, measured)]
    return "\n".join(lines)


def flags(name: str, found: list[dict[str, Any]]) -> str:
    """What a contender flagged against the truth (the same in every round, or said not)."""
    if found[0]["flagged"] is None:
        return "(makes the reference)"
    truth, answers = TRUTH, ""
    if name == "cairn, payload window":  # the numeric inputs, and the model's answers apart
        truth = list(SHIFTS)
        told = {"flagged" if "prediction" in r["flagged"] else "not flagged" for r in found}
        answers = f"; prediction {'/'.join(sorted(told))}"
    said = []
    for flagged in {tuple(sorted(c for c in r["flagged"] if c != "prediction"))
                    for r in found}:  # fmt: skip
        extra = [c for c in flagged if c not in truth]
        lost = [c for c in truth if c not in flagged]
        right = "all right" if not extra and not lost else "WRONG"
        said.append(f"{len(flagged)} flagged, {right}" + (f", missed {' '.join(lost)}" if lost
                    else "") + (f", also {' '.join(extra)}" if extra else ""))  # fmt: skip
    differing = " (differing between rounds)" if len(said) > 1 else ""
    return "; ".join(said) + differing + answers


def notes(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What the table leaves out: the reference, Evidently's methods, the floor's PSI."""
    said = []
    if runs["cairn reference"]:
        ref = runs["cairn reference"]
        said.append(
            f"cairn reference, once (reference_of on the reference DataFrame): "
            f"{Spread.of([r['evaluate_s'] for r in ref]).show('.3f')} s, stored as "
            f"{ref[0]['json_kb']:.0f} KB of JSON in {ref[0]['store_s']:.3f} s; read back "
            f"and checked (from_json) by each evaluation in "
            f"{Spread.of([r['reference_load_s'] for r in runs['cairn']]).median:.3f} s"
        )  # fmt: skip
    if runs["cairn"]:
        first = Spread.of([r["warm_up_s"] for r in runs["cairn"]]).median
        said.append(f"cairn: the current table as pd.read_parquet's DataFrame (what a user "
                    f"has, as docs/monitoring.md shows); decided by {runs['cairn'][0]['method']}"
                    f" (numeric) at this size; its first call in a process (on {HEAD:,} rows, "
                    f"before the timing, as every tool's) takes {first:.2f} s, mostly "
                    "importing SciPy")  # fmt: skip
    window = [r for r in runs["cairn, payload window"] if not r.get("timeout")]
    if window:
        said.append(f"cairn, payload window: read = logged_window(…) of "
                    f"{window[0]['rows']:,} requests; truth there is the 5 moved inputs, "
                    "the model's prediction told apart")  # fmt: skip
    done = [r for r in runs["evidently"] if not r.get("timeout")]
    if done:
        said.append(f"evidently {done[0]['version']}: methods {', '.join(done[0]['methods'])}; "
                    "its evaluation includes Dataset.from_pandas of both frames")  # fmt: skip
    if runs["floor"]:
        psi = runs["floor"][0]["psi"]
        moved = ", ".join(f"{c} {psi[c]:.3f}" for c in SHIFTS)
        said.append(f"floor: drifted = p-value under {P_VALUE} (KS, chi-square); its PSI of "
                    f"the moved columns: {moved} (PSI's usual 0.2 would flag "
                    f"{sum(v >= 0.2 for v in psi.values())})")  # fmt: skip
    return said


def verdicts(runs: dict[str, list[dict[str, Any]]], measured: dict[str, Any]) -> list[str]:
    """The targets, on the medians (a ratio: the median of the rounds' ratios)."""
    if "cairn" not in measured:
        return ["cairn not measured: no verdict"]
    cairn = measured["cairn"]
    seconds = cairn["evaluate_s"].median
    lines = [f"Cairn's evaluation (DataFrame): {seconds:.3f} s (target < 2 s: "
             f"{verdict(seconds < 2)}); with NumPy arrays "
             f"{measured['cairn, numpy']['evaluate_s'].median:.3f} s"]  # fmt: skip
    mine = [r["evaluate_s"] for r in runs["cairn"]]
    theirs = [r["evaluate_s"] for r in runs["evidently"] if not r.get("timeout")]
    # Pairs by round: Evidently is not run again after a timeout or a failure.
    if theirs:
        times = ratios(theirs, mine[: len(theirs)])
        lines.append(f"Evidently / Cairn, evaluate: {times.show('.1f', '×')} over "
                     f"{len(theirs)} round(s) (target ≥ 50×: "
                     f"{verdict(times.median >= 50)})")  # fmt: skip
    if len(theirs) < len(runs["evidently"]):
        at_least = TIMEOUT_S / statistics.median(mine)
        lines.append(f"Evidently timed out after {TIMEOUT_S} s: at least {at_least:.0f}× "
                     f"Cairn's time (target ≥ 50×: {verdict(at_least >= 50)})")  # fmt: skip
    elif not theirs:
        lines.append("Evidently / Cairn: Evidently not measured, no verdict")
    if "floor" in measured:
        times = ratios(mine, [r["evaluate_s"] for r in runs["floor"]])
        lines.append(f"Cairn / floor, evaluate: {times.show('.3f', '×')} (the floor: "
                     f"{measured['floor']['evaluate_s'].median:.2f} s)")  # fmt: skip
    above, size = cairn["above_mb"].median, cairn["data_mb"].median
    lines.append(f"Cairn's peak above the baseline: {above:,.0f} MB against the current "
                 f"table's {size:,.0f} MB in memory, {above / size:.2f}× (target < 2×: "
                 f"{verdict(above < 2 * size)}); the process's peak "
                 f"{cairn['maxrss_mb'].median:,.0f} MB")  # fmt: skip
    return lines


if __name__ == "__main__":
    sys.exit(main())
