"""The audit trail on SQLite and PostgreSQL: every write leaves an event in its own
transaction, the table refuses changes, and tampering that goes around the refusal is
detected by verification."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from cairn.core.access import Role
from cairn.core.actor import acting_as
from cairn.core.artifact import ArtifactEntry
from cairn.core.audit import Verification
from cairn.core.run import NewRun, RunRecord, RunStatus
from cairn.errors import InvalidInput
from cairn.localfs.signing import KeyRing, SigningKey, load_or_create, load_verify_key
from cairn.stores.metadata.audit import AuditLog, EventQuery, exported_checkpoints
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from cli_process import cairn_cli


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
    return AuditLog(store.engine).verify(key.verify_key, exported)


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
    # one checkpoint, found in the database and in the export
    assert (result.events, result.checkpoints, result.unsigned) == (7, 1, 0)


def _drop_guards(conn: Connection) -> None:
    """What someone with write access to the database can do first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        conn.execute(text("DROP TRIGGER audit_events_no_truncate ON audit_events"))
        conn.execute(text("DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints"))
        conn.execute(text("DROP TRIGGER installation_append_only ON installation"))
    else:
        for name in ("audit_events_no_update", "audit_events_no_delete"):
            conn.execute(text(f"DROP TRIGGER {name}"))
        conn.execute(text("DROP TRIGGER audit_checkpoints_no_update"))
        conn.execute(text("DROP TRIGGER audit_checkpoints_no_delete"))
        conn.execute(text("DROP TRIGGER installation_no_update"))


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


def _cut_the_tail(conn: Connection) -> None:
    """Delete the newest events, leaving the database's checkpoint beyond the end."""
    conn.execute(text("DELETE FROM audit_events WHERE seq > 5"))


def _empty(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_events"))
    conn.execute(text("DELETE FROM audit_checkpoints"))


def _change_the_installation(conn: Connection) -> None:
    """Pass the database off as another installation, whose exported checkpoints (none)
    verification would then read."""
    conn.execute(text("UPDATE installation SET id = '" + "0" * 32 + "'"))


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
    "tail cut, database checkpoint kept": (_cut_the_tail, "truncated", 7),
    "emptied": (_empty, "truncated", 7),
    "installation changed": (_change_the_installation, "foreign-checkpoint", 7),
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


def test_a_checkpoint_signed_by_another_key_vouches_for_nothing_and_is_named(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    _some_history(store)
    other = load_or_create(tmp_path / "someone-else.pem")
    exported = str(tmp_path / "exported")
    AuditLog(store.engine).checkpoint(other, exported)
    result = _verify(store, key, exported)
    assert result.ok, result.problem
    assert (result.checkpoints, result.unsigned) == (0, 7)
    assert result.unknown_keys == ((other.key_id, 1),)


def test_the_trail_refuses_a_change_of_installation(store: SqlMetadataStore) -> None:
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("UPDATE installation SET id = 'x'"))


def test_checkpoints_are_taken_every_n_events_and_exported(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    exported = str(tmp_path / "exported")
    store.enable_checkpoints(lambda: key, exported, every_events=3)
    _some_history(store)  # 7 events
    installation = AuditLog(store.engine).installation()
    assert [c.seq for c in AuditLog(store.engine).checkpoints()] == [3, 6]
    assert [c.seq for _, c in exported_checkpoints(exported, installation)] == [3, 6]
    result = _verify(store, key, exported)
    assert result.ok, result.problem
    assert (result.checkpoints, result.signed_through, result.unsigned) == (2, 6, 1)
    store.close()  # a clean shutdown signs the tail
    assert [c.seq for _, c in exported_checkpoints(exported, installation)] == [3, 6, 7]


def test_a_checkpoint_follows_a_write_within_the_interval(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    exported = str(tmp_path / "exported")
    store.enable_checkpoints(lambda: key, exported, every_seconds=0.2)
    store.create_experiment("one")
    deadline = time.monotonic() + 10
    while not AuditLog(store.engine).checkpoints() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c.seq for c in AuditLog(store.engine).checkpoints()] == [1]


def test_closing_signs_writes_made_through_any_store_on_the_database(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    exported = str(tmp_path / "exported")
    store.enable_checkpoints(lambda: key, exported)
    IdentityStore(store.engine).add_user("alice")  # accounts keep their own statements
    store.close()
    log = AuditLog(store.engine)
    assert [c.seq for c in log.checkpoints()] == [log.head()[0]]  # type: ignore[index]


def test_two_installations_sharing_a_folder_and_a_key_keep_apart(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    """Each verifies ok, against its own checkpoints only; neither overwrites the other's."""
    elsewhere = SqlMetadataStore(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    shared = str(tmp_path / "shared-folder")
    try:
        for each, experiments in ((store, 2), (elsewhere, 3)):
            for i in range(experiments):
                each.create_experiment(f"e{i}")
            AuditLog(each.engine).checkpoint(key, shared)
        for each, events in ((store, 2), (elsewhere, 3)):
            result = _verify(each, key, shared)
            assert result.ok, result.problem
            assert (result.events, result.checkpoints, result.unsigned) == (events, 1, 0)
            found = exported_checkpoints(shared, AuditLog(each.engine).installation())
            assert [c.seq for _, c in found] == [events]
        ids = {AuditLog(each.engine).installation() for each in (store, elsewhere)}
        assert len(ids) == 2
    finally:
        elsewhere.close()


def test_replicas_with_their_own_keys_and_folders_each_verify(
    database_url: str, tmp_path: Path
) -> None:
    """Two servers on one database: one installation, two keys, two export folders."""
    keys = [load_or_create(tmp_path / f"replica-{i}.pem") for i in (1, 2)]
    folders = [str(tmp_path / f"exported-{i}") for i in (1, 2)]
    replicas = [SqlMetadataStore(database_url) for _ in (1, 2)]
    try:
        for replica, key, folder in zip(replicas, keys, folders, strict=True):
            replica.enable_checkpoints(lambda key=key: key, folder, every_events=2)
        for i in range(6):
            replicas[i % 2].create_experiment(f"e{i}")
        replicas[0].close()
        replicas[1].close()
        log = AuditLog(replicas[0].engine)
        assert log.installation() == AuditLog(replicas[1].engine).installation()
        for mine, theirs, folder in ((0, 1, folders[0]), (1, 0, folders[1])):
            alone = log.verify(keys[mine].verify_key, folder)
            assert alone.ok, alone.problem
            assert alone.checkpoints >= 1
            assert dict(alone.unknown_keys).keys() <= {keys[theirs].key_id}
            both = log.verify(KeyRing((keys[0].verify_key, keys[1].verify_key)), folder)
            assert both.ok, both.problem
            assert (both.unknown_keys, both.unsigned) == ((), 0)
    finally:
        for replica in replicas:
            replica.close()


def test_a_replaced_key_leaves_its_checkpoints_unchecked_not_forged(
    store: SqlMetadataStore, key: SigningKey, tmp_path: Path
) -> None:
    exported = str(tmp_path / "exported")
    store.create_experiment("before")
    AuditLog(store.engine).checkpoint(key, exported)
    new_key = load_or_create(tmp_path / "keys" / "new.pem")
    store.create_experiment("after")
    AuditLog(store.engine).checkpoint(new_key, exported)
    with_new = _verify(store, new_key, exported)
    assert with_new.ok, with_new.problem
    assert with_new.unknown_keys == ((key.key_id, 1),)
    both = AuditLog(store.engine).verify(KeyRing((key.verify_key, new_key.verify_key)), exported)
    assert both.ok, both.problem
    assert (both.checkpoints, both.unknown_keys) == (2, ())


def test_verify_on_a_fresh_store_reports_nothing_to_vouch_for() -> None:
    assert "ok: 0 events, 0 checkpoints" in cairn_cli("audit", "verify").stdout


@pytest.mark.slow
def test_each_installation_is_verified_against_its_own_checkpoints(
    cairn_home: Path, tmp_path: Path
) -> None:
    """A command that wrote leaves its trail signed, at exit, in the default folder; a
    server's database verified from the same machine is not judged by those checkpoints
    (another installation's, signed with another key)."""
    cairn_cli("users", "add", "bob")  # the embedded store, through the accounts store
    embedded = json.loads(cairn_cli("audit", "verify", "--json").stdout)
    assert (embedded["ok"], embedded["checkpoints"], embedded["unsigned_events"]) == (True, 1, 0)
    assert len(list((cairn_home / "audit-checkpoints").glob("*/*.json"))) == 1
    server_db = f"sqlite:///{tmp_path / 'server.db'}"
    server = SqlMetadataStore(server_db)
    server_key = load_or_create(tmp_path / "server.pem")
    server.enable_checkpoints(lambda: server_key, str(tmp_path / "server-checkpoints"))
    server.create_experiment("served")
    server.close()
    checked = cairn_cli(
        "audit", "verify", "--db", server_db, "--public-key", str(tmp_path / "server.pem")
    )
    assert "ok: 1 event, 1 checkpoint; the newest signs the last event" in checked.stdout
    unchecked = cairn_cli("audit", "verify", "--db", server_db).stdout
    assert "ok: 1 event, 0 checkpoints" in unchecked  # the embedded key cannot check it
    assert f"signed by key {server_key.key_id}, which was not given" in unchecked


def test_a_server_write_records_its_caller_and_request_id(tmp_path: Path, cairn_home: Path) -> None:
    """Each write names its caller and request; a server stopped with SIGTERM leaves its
    trail signed to the end."""
    import httpx

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
    server_key = load_verify_key(cairn_home / "keys" / "audit-ed25519.pem")
    signed = AuditLog(store.engine).verify(server_key, str(cairn_home / "audit-checkpoints"))
    store.close()
    assert (signed.ok, signed.unsigned) == (True, 0), signed.problem
    assert [(e.content.action, e.content.request_id, e.content.actor) for e in events] == [
        ("experiment.create", "q-42", "alice"),
        ("experiment.create", made_up.headers["x-request-id"], "alice"),
    ]
