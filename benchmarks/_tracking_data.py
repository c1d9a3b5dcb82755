"""The data both tracking workers log: generated from fixed seeds with the standard library
only, so the Cairn worker and the MLflow worker (each in its own virtualenv) produce the
same values, and a digest of them lets the driver check that they did.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterable

METRIC_SEED = 20_240_601
RUNS_SEED = 7_919
METRIC_KEYS = 10  # the ingest and log_metric loops cycle through loss0 … loss9
RUN_PARAMS = 20  # p0 … p19, each one of v0 … v9
RUN_METRICS = 20  # m0 … m19, uniform in [0, 1)
PARAM_VALUES = 10

SEARCH_EXPERIMENT = "bench-search"
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p0 = 'v1'"
SEARCH_ORDER = "metrics.m1 DESC"
SEARCH_LIMIT = 1000


def metric_keys() -> list[str]:
    return [f"loss{k}" for k in range(METRIC_KEYS)]


def metric_points(count: int, seed: int = METRIC_SEED) -> list[tuple[str, float, int]]:
    """``count`` points (key, value, step): keys cycle, the step advances every full cycle."""
    rng = random.Random(seed)
    keys = metric_keys()
    return [(keys[i % METRIC_KEYS], rng.random(), i // METRIC_KEYS) for i in range(count)]


def run_values(count: int) -> list[tuple[dict[str, str], dict[str, float]]]:
    """Params and metrics of ``count`` runs, in run order."""
    rng = random.Random(RUNS_SEED)
    runs = []
    for _ in range(count):
        params = {f"p{j}": f"v{rng.randrange(PARAM_VALUES)}" for j in range(RUN_PARAMS)}
        metrics = {f"m{j}": rng.random() for j in range(RUN_METRICS)}
        runs.append((params, metrics))
    return runs


def run_name(index: int) -> str:
    return f"r{index:05d}"


def digest_points(points: Iterable[tuple[str, float, int]]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for key, value, step in points:
        h.update(key.encode())
        h.update(struct.pack("<dq", value, step))
    return h.hexdigest()


def digest_runs(runs: Iterable[tuple[dict[str, str], dict[str, float]]]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for params, metrics in runs:
        for key, text in params.items():
            h.update(f"{key}={text};".encode())
        for key, value in metrics.items():
            h.update(key.encode())
            h.update(struct.pack("<d", value))
    return h.hexdigest()


def digest_names(names: Iterable[str]) -> str:
    """The digest of a search result: the run names in the order returned."""
    return hashlib.blake2b("\n".join(names).encode(), digest_size=8).hexdigest()
