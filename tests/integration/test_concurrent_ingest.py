"""Eight processes logging 50,000 points each into one server: all stored, none twice."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import running_server

WRITERS = 8
POINTS = 50_000

WRITER = textwrap.dedent(
    f"""
    import cairn
    with cairn.start_run(experiment="concurrency") as run:
        for step in range({POINTS}):
            run.log_metric("loss", step * 0.5, step=step)
    print(run.id)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_point_is_stored_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'cairn.db'}"
    else:
        db_url = request.getfixturevalue("postgres_url")
    with running_server(db_url, str(tmp_path / "artifacts")) as base_url:
        env = {**os.environ, "CAIRN_URI": base_url}
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER], stdout=subprocess.PIPE, text=True, env=env
            )
            for _ in range(WRITERS)
        ]
        run_ids = []
        for writer in writers:
            out, _ = writer.communicate(timeout=240)
            assert writer.returncode == 0
            run_ids.append(out.strip())
    store = SqlMetadataStore(db_url)
    try:
        for run_id in run_ids:
            history = store.get_metric_history(run_id, "loss")
            assert [m.step for m in history] == list(range(POINTS))
            assert all(m.value == m.step * 0.5 for m in history)
            assert store.get_run(run_id).metrics["loss"].step == POINTS - 1
    finally:
        store.close()
