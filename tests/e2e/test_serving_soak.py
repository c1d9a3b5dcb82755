"""A soak: ``cairn serve`` under continuous load for minutes answers every request and its
resident memory stays flat (less than 5% growth after warming up)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from cairn import sdk
from server_process import free_port

SOAK_SECONDS = float(os.environ.get("CAIRN_SOAK_SECONDS", "150"))
WARM_SECONDS = 20.0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 120)
def test_a_server_under_load_for_minutes_answers_all_and_holds_its_memory(
    cairn_home: Path,
) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    models = sdk.session().models
    models.register(LogisticRegression(max_iter=5000).fit(x, y), "churn", input_example=x[:5])
    models.registry.set_alias("churn", "production", 1)
    sdk.session().close()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cairn", "serve", "churn@production",
                               "--port", str(port), "--max-batch", "16"],
                              stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    counts = {"ok": 0, "failed": 0}
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            index = 0
            while not stop.is_set():
                rows = x[(worker + index) % 500 : (worker + index) % 500 + 2].tolist()
                path = "/invocations" if index % 2 else "/v2/models/churn/infer"
                body = ({"instances": rows} if index % 2 else {"inputs": [{
                    "name": "input", "shape": [2, 30], "datatype": "FP64",
                    "data": [v for row in rows for v in row]}]})  # fmt: skip
                answer = client.post(path, json=body)
                counts["ok" if answer.status_code == 200 else "failed"] += 1
                index += 1

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
        workers = [threading.Thread(target=load, args=(i,)) for i in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(WARM_SECONDS)
        warm = _rss_kib(server.pid)
        time.sleep(SOAK_SECONDS - WARM_SECONDS)
        end = _rss_kib(server.pid)
        stop.set()
        for worker in workers:
            worker.join(30)
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert counts["failed"] == 0, counts
    assert counts["ok"] > 1_000, counts
    assert end < warm * 1.05, f"resident memory grew from {warm} KiB to {end} KiB"
