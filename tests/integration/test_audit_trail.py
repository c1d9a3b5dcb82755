"""The audit trail on SQLite and PostgreSQL: every write leaves an event in its own
transaction, the table refuses changes, and tampering that goes around the refusal is
detected by verification."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from cairn.core.access import Role
from cairn.core.actor import acting_as
from cairn.core.artifact import ArtifactEntry
from cairn.core.audit import Verification, verify_chain
from cairn.core.run import NewRun, RunRecord, RunStatus
from cairn.errors import InvalidInput
from cairn.localfs.signing import SigningKey, load_or_create
from cairn.stores.metadata.audit import AuditLog, EventQuery, exported_checkpoints
from cairn.stores.metadata.sql import SqlMetadataStore


@pytest.fixture
def store(database_url: str) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(database_url)
    yield opened
    opened.close()


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return load_or_create(tmp_path / "keys" / "audit.pem")


def _some_history(store: SqlMetadataStore) -> str:
    experiment = store.create_experiment("audited")
    with acting_as("alice", request_id="req-1"):
        run = store.create_run(NewRun(experiment.id, "r", 1, "alice", tags={"t": "v"}))
        store.log_batch(run.id, [("loss", 0.5, 0, 1), ("loss", math.nan, 1, 2)], {"lr": "0.1"})
        store.log_batch(run.id, [("loss", 0.25, 2, 3)], batch_id="b-1")
        store.log_batch(run.id, [("loss", 0.25, 2, 3)], batch_id="b-1")  # a retry: no change
        store.add_artifacts(run.id, [ArtifactEntry("model.pkl", "blake3:" + "a" * 64, 10)])
        store.end_run(run.id, RunStatus.FINISHED, 9)
    store.set_run_deleted(run.id, True)
    return run.id


def _verify(store: SqlMetadataStore, key: SigningKey, exported: str | None = None) -> Verification:
    log = AuditLog(store.engine)
    found = [("the database", c) for c in log.checkpoints()]
    if exported is not None:
        found += exported_checkpoints(exported)
    return verify_chain(log.all_events(), found, key.verify_key.valid)


def test_every_write_leaves_one_event_with_who_and_what(store: SqlMetadataStore) -> None:
    run_id = _some_history(store)
    events = AuditLog(store.engine).events(EventQuery(limit=100))
    assert [e.content.action for e in events] == [
        "experiment.create",
        "run.create",
        "run.log_batch",
        "run.log_batch",
        "run.add_artifacts",
        "run.end",
        "run.delete",
    ]
    assert [e.seq for e in events] == list(range(1, 8))
    by_alice = [e for e in events if e.content.actor == "alice"]
    assert len(by_alice) == 5
    assert {e.content.request_id for e in by_alice} == {"req-1"}
    assert events[0].content.actor.startswith("local:")  # embedded use: the OS user
    batch = events[2]
    assert batch.content.object_id == run_id
    assert batch.content.payload == (
        '{"batch_id":null,"metrics":{"loss":2},"params":{"lr":"0.1"},"tags":{}}'
    )
    assert batch.content.object_digest is not None
    assert batch.content.object_digest.startswith("blake3:")
    assert events[3].content.object_digest != batch.content.object_digest
    only_deletes = AuditLog(store.engine).events(EventQuery(action="run.delete"))
    assert [e.content.object_id for e in only_deletes] == [run_id]


def test_runs_recorded_whole_are_audited_as_if_logged_call_by_call(
    store: SqlMetadataStore,
) -> None:
    experiment = store.create_experiment("cached")
    out = "blake3:" + "c" * 64
    with acting_as("alice"):
        store.record_runs([
            RunRecord(NewRun(experiment.id, "a", 1, "alice"), RunStatus.FINISHED, 2,
                      params={"lr": "0.1"}, produced=[out]),
            RunRecord(NewRun(experiment.id, "b", 3, "alice"), RunStatus.FINISHED, 4),
        ])  # fmt: skip
    events = AuditLog(store.engine).events(EventQuery(limit=100))[1:]
    assert [e.content.action for e in events] == [
        "run.create", "run.log_batch", "run.log_lineage", "run.end", "run.create", "run.end"
    ]  # fmt: skip
    assert {e.content.actor for e in events} == {"alice"}


def test_a_refused_write_leaves_no_event(store: SqlMetadataStore) -> None:
    experiment = store.create_experiment("x")
    run = store.create_run(NewRun(experiment.id, "r", 1, "u"))
    store.log_batch(run.id, params={"lr": "0.1"})
    before = AuditLog(store.engine).head()
    with pytest.raises(InvalidInput):
        store.log_batch(run.id, params={"lr": "0.2"})  # a param is immutable
    assert AuditLog(store.engine).head() == before


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"]
)
def test_the_trail_refuses_updates_and_deletes(store: SqlMetadataStore, statement: str) -> None:
    _some_history(store)
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(statement))
    assert AuditLog(store.engine).head() is not None


def test_an_untouched_trail_verifies(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    _some_history(store)
    exported = str(tmp_path / "exported")
    AuditLog(store.engine).checkpoint(key, exported)
    result = _verify(store, key, exported)
    assert result.ok, result.problem
    assert (result.events, result.checkpoints) == (7, 2)


def _drop_guards(conn: Connection) -> None:
    """What someone with write access to the database can do first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        conn.execute(text("DROP TRIGGER audit_events_no_truncate ON audit_events"))
        conn.execute(text("DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints"))
    else:
        for name in ("audit_events_no_update", "audit_events_no_delete"):
            conn.execute(text(f"DROP TRIGGER {name}"))
        conn.execute(text("DROP TRIGGER audit_checkpoints_no_update"))
        conn.execute(text("DROP TRIGGER audit_checkpoints_no_delete"))


def _edit(conn: Connection) -> None:
    conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))


def _delete(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_events WHERE seq = 4"))


def _reorder(conn: Connection) -> None:
    conn.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 4"))
    conn.execute(text("UPDATE audit_events SET seq = 4 WHERE seq = 5"))
    conn.execute(text("UPDATE audit_events SET seq = 5 WHERE seq = -1"))


def _insert(conn: Connection) -> None:
    """Make room at seq 3 and write a forged event there, properly hashed and linked."""
    from cairn.core.audit import EventContent, event_hash

    for seq in range(7, 2, -1):
        conn.execute(text(f"UPDATE audit_events SET seq = {seq + 1} WHERE seq = {seq}"))  # noqa: S608
    before = conn.execute(text("SELECT hash FROM audit_events WHERE seq = 2")).scalar_one()
    forged = EventContent(5, "mallory", "run.end", "run", "x", "{}")
    conn.execute(
        text(
            "INSERT INTO audit_events (seq, ts, actor, action, object_type, object_id, "
            "payload, prev_hash, hash) VALUES (3, 5, 'mallory', 'run.end', 'run', 'x', '{}', "
            ":prev, :hash)"
        ),
        {"prev": before, "hash": event_hash(3, forged, before)},
    )


def _truncate(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_events WHERE seq > 5"))
    conn.execute(text("DELETE FROM audit_checkpoints"))  # the database's own copy goes too


def _forge_checkpoint(conn: Connection) -> None:
    conn.execute(text("UPDATE audit_checkpoints SET hash = '" + "f" * 64 + "'"))


def _rewrite_history(conn: Connection) -> None:
    """Edit an event and recompute every hash after it: only a checkpoint can tell."""
    from cairn.core.audit import EventContent, event_hash

    rows = conn.execute(text("SELECT * FROM audit_events ORDER BY seq")).all()
    prev = rows[0].hash
    for row in rows[1:]:
        actor = "mallory" if row.seq == 3 else row.actor
        content = EventContent(
            row.ts,
            actor,
            row.action,
            row.object_type,
            row.object_id,
            row.payload,
            row.object_digest,
            row.request_id,
        )
        new_hash = event_hash(row.seq, content, prev)
        conn.execute(
            text("UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
            {"a": actor, "p": prev, "h": new_hash, "s": row.seq},
        )
        prev = new_hash
    conn.execute(text("DELETE FROM audit_checkpoints"))


TAMPERING: dict[str, tuple[Callable[[Connection], None], str, int]] = {
    "edited": (_edit, "edited", 3),
    "deleted": (_delete, "deleted", 4),
    "reordered": (_reorder, "reordered", 4),
    "inserted": (_insert, "inserted", 4),  # the forged event 3 links; the next cannot
    "truncated": (_truncate, "truncated", 7),
    "forged-checkpoint": (_forge_checkpoint, "forged-checkpoint", 7),
    "rewritten": (_rewrite_history, "rewritten", 7),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampering_is_detected_with_where_and_what(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path, name: str
) -> None:
    _some_history(store)
    exported = str(tmp_path / "exported")
    AuditLog(store.engine).checkpoint(key, exported)
    tamper, kind, seq = TAMPERING[name]
    with store.engine.begin() as conn:
        _drop_guards(conn)
        tamper(conn)
    problem = _verify(store, key, exported).problem
    assert problem is not None, f"{name} went unnoticed"
    assert (problem.kind, problem.seq) == (kind, seq), problem.detail


def test_a_checkpoint_signed_by_another_key_is_forged(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    _some_history(store)
    other = load_or_create(tmp_path / "someone-else.pem")
    exported = str(tmp_path / "exported")
    AuditLog(store.engine).checkpoint(other, exported)
    problem = _verify(store, key, exported).problem
    assert problem is not None
    assert problem.kind == "forged-checkpoint"


def test_checkpoints_are_taken_every_n_events_and_exported(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    exported = str(tmp_path / "exported")
    store.enable_checkpoints(lambda: key, exported, every_events=3)
    _some_history(store)  # 7 events
    assert [c.seq for c in AuditLog(store.engine).checkpoints()] == [3, 6]
    assert [c.seq for _, c in exported_checkpoints(exported)] == [3, 6]
    assert _verify(store, key, exported).ok


def test_a_server_write_records_its_caller_and_request_id(tmp_path: Path) -> None:
    import httpx

    from cairn.stores.metadata.identity import IdentityStore
    from server_process import running_server

    db = f"sqlite:///{tmp_path / 'server.db'}"
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    identity.add_user("alice")
    identity.set_role("default", "alice", Role.CONTRIBUTOR)
    _, token = identity.create_token("alice", "test")
    store.close()
    auth = {"Authorization": f"Bearer {token}"}
    with running_server(db, str(tmp_path / "artifacts"), auth=True) as base_url:
        answer = httpx.post(
            f"{base_url}/api/v1/experiments",
            json={"name": "e"},
            headers={**auth, "X-Request-ID": "q-42"},
        )
        assert answer.status_code == 201
        assert answer.headers["x-request-id"] == "q-42"
        made_up = httpx.post(
            f"{base_url}/api/v1/experiments",
            json={"name": "f"},
            headers={**auth, "X-Request-ID": "not sensible!"},
        )
        assert len(made_up.headers["x-request-id"]) == 32  # a bad one is replaced
    store = SqlMetadataStore(db)
    events = AuditLog(store.engine).events(EventQuery(object_type="experiment"))
    store.close()
    assert [(e.content.action, e.content.request_id, e.content.actor) for e in events] == [
        ("experiment.create", "q-42", "alice"),
        ("experiment.create", made_up.headers["x-request-id"], "alice"),
    ]
