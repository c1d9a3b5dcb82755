"""Killing the server (SIGKILL) while clients write loses nothing it acknowledged.

Each cycle starts the server, lets three clients create runs, log metric batches, store
artifacts and end runs for a random moment, then kills the server mid-write. After a
restart: the database passes its integrity check, the audit trail verifies, and every write
a client saw acknowledged is there. The summary line gives kills, acknowledged writes and
writes lost (which must be 0).
"""

from __future__ import annotations

import io
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cairn.client.http import HttpArtifactStore, HttpMetadataStore
from cairn.core.artifact import ArtifactEntry
from cairn.core.run import MetricSeries, NewRun, RunStatus
from cairn.errors import CairnError
from cairn.localfs.signing import load_verify_key
from cairn.stores.metadata.audit import AuditLog
from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import free_port, start_server, stop

POINTS_PER_BATCH = 500
CLIENTS = 3


@dataclass
class Acknowledged:
    """What the server confirmed, as the clients saw it."""

    runs: set[str] = field(default_factory=set)
    steps: dict[str, set[int]] = field(default_factory=dict)  # run -> steps of "loss"
    artifacts: dict[str, set[str]] = field(default_factory=dict)  # run -> paths
    ended: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        batches = sum(len(s) for s in self.steps.values()) // POINTS_PER_BATCH
        paths = sum(len(p) for p in self.artifacts.values())
        return len(self.runs) + batches + paths + len(self.ended)


def _client(base_url: str, experiment_id: str, seen: Acknowledged, stop_at: float) -> None:
    metadata, artifacts = HttpMetadataStore(base_url), HttpArtifactStore(base_url)
    rng = random.Random()
    try:
        while time.monotonic() < stop_at:
            run = metadata.create_run(NewRun(experiment_id, "crash", 1, "tester"))
            with seen.lock:
                seen.runs.add(run.id)
            for batch in range(rng.randint(1, 4)):
                steps = list(range(batch * POINTS_PER_BATCH, (batch + 1) * POINTS_PER_BATCH))
                series = MetricSeries([0.5] * len(steps), steps, [1] * len(steps))
                metadata.log_batch(run.id, {"loss": series}, batch_id=uuid.uuid4().hex)
                with seen.lock:
                    seen.steps.setdefault(run.id, set()).update(steps)
            if rng.random() < 0.5:
                data = rng.randbytes(rng.randint(1, 200_000))
                info = artifacts.put_stream(io.BytesIO(data))
                path = f"blob-{uuid.uuid4().hex[:8]}.bin"
                metadata.add_artifacts(run.id, [ArtifactEntry(path, info.digest, info.size)])
                with seen.lock:
                    seen.artifacts.setdefault(run.id, set()).add(path)
            metadata.end_run(run.id, RunStatus.FINISHED, 2)
            with seen.lock:
                seen.ended.add(run.id)
    except CairnError:
        pass  # the server was killed: whatever was not acknowledged may or may not be stored
    finally:
        metadata.close()
        artifacts.close()


def _lost(base_url: str, seen: Acknowledged) -> int:
    metadata, artifacts = HttpMetadataStore(base_url), HttpArtifactStore(base_url)
    lost = 0
    try:
        for run_id in seen.runs:
            run = metadata.get_run(run_id)
            stored = {m.step for m in metadata.get_metric_history(run_id, "loss")}
            lost += len(seen.steps.get(run_id, set()) - stored) // POINTS_PER_BATCH
            listed = {e.path: e for e in metadata.list_artifacts(run_id)}
            for path in seen.artifacts.get(run_id, set()):
                entry = listed.get(path)
                if entry is None or artifacts.missing([entry.digest]):
                    lost += 1
            lost += run_id in seen.ended and run.status is not RunStatus.FINISHED
    finally:
        metadata.close()
        artifacts.close()
    return lost


@pytest.mark.parametrize(("backend", "kills"), [("sqlite", 6), ("postgresql", 3)])
def test_kill_9_mid_write_loses_nothing_acknowledged(
    backend: str, kills: int, tmp_path: Path, cairn_home: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        db_file = tmp_path / "crash.db"
        db = f"sqlite:///{db_file}"
    else:
        db = str(request.getfixturevalue("postgres_url"))
    artifacts_dir = str(tmp_path / "artifacts")
    experiment_id = ""  # made once the first server is up
    seen = Acknowledged()
    port = free_port()
    rng = random.Random(7)
    for cycle in range(kills):
        with tempfile.TemporaryFile() as log:
            process, base_url = start_server(db, artifacts_dir, log, port)
            try:
                if cycle == 0:
                    setup = HttpMetadataStore(base_url)
                    experiment_id = setup.create_experiment("crash").id
                    setup.close()
                assert _lost(base_url, seen) == 0, f"lost writes after kill {cycle}"
                stop_at = time.monotonic() + 30
                clients = [
                    threading.Thread(target=_client, args=(base_url, experiment_id, seen, stop_at))
                    for _ in range(CLIENTS)
                ]
                for client in clients:
                    client.start()
                time.sleep(rng.uniform(0.5, 1.5))
                process.kill()  # SIGKILL, mid-write
                process.wait()
                for client in clients:
                    client.join(timeout=60)
            finally:
                stop(process)
        _check_database(db, backend, cairn_home)
    with tempfile.TemporaryFile() as log:
        process, base_url = start_server(db, artifacts_dir, log, port)
        try:
            lost = _lost(base_url, seen)
        finally:
            stop(process)
    print(
        f"\ncrash consistency ({backend}): {kills} kills, {seen.count()} acknowledged writes "
        f"({len(seen.runs)} runs), {lost} lost"
    )
    assert seen.count() > kills * 10  # the clients did write between kills
    assert lost == 0


def _check_database(db: str, backend: str, cairn_home: Path) -> None:
    if backend == "sqlite":
        database = sqlite3.connect(db.removeprefix("sqlite:///"))
        try:
            assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            database.close()
    store = SqlMetadataStore(db)
    try:
        log = AuditLog(store.engine)
        key = load_verify_key(cairn_home / "keys" / "audit-ed25519.pem")
        result = log.verify(key)
        assert result.ok, result.problem
    finally:
        store.close()
