"""The audit trail in the metadata store: appending in a write's transaction, reading,
checkpointing, exporting checkpoints outside the database, and verifying.

Appends are serialised: on SQLite by its single writer, on PostgreSQL by a transaction-level
advisory lock taken just before the append. Each write appends its event last, so the lock
is held only until that write commits, and no transaction waits on a row while holding it.

Checkpoints are exported to ``<location>/<installation id>/<seq>.json``: installations that
share a location (or a key) keep apart, and verification reads only its own installation's.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fsspec
import orjson
from sqlalchemy import Connection, Engine, Row, func, insert, select, text
from sqlalchemy import event as sql_event
from sqlalchemy.exc import SQLAlchemyError

from cairn.core.actor import current
from cairn.core.audit import (
    GENESIS_HASH,
    AuditEvent,
    Checkpoint,
    EventContent,
    Keys,
    Verification,
    canonical_json,
    chain_event,
    verify_chain,
)
from cairn.core.clock import now_ms
from cairn.errors import AlreadyExists, CairnError, IntegrityError, InvalidInput
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import read_connection, write_transaction

if TYPE_CHECKING:  # the key is only passed through; cryptography loads when used
    from cairn.localfs.signing import SigningKey

_log = logging.getLogger(__name__)
_APPEND_LOCK = 0x0CA1D  # any constant: the advisory lock PostgreSQL appends queue on
_READ_CHUNK = 5_000
_APPENDED = "cairn.audit.appended"  # in a connection's info: the event its transaction appended
# A checkpoint costs about what one audited write does (a signature, ~0.1 ms, and one
# committed transaction: 6-8 ms measured on SQLite and PostgreSQL), so one per 1,000
# events costs writes ~0.1%. The timer bounds the unsigned tail in time whatever the write
# rate, and adds at most one checkpoint (one exported file) a minute.
CHECKPOINT_EVERY_EVENTS = 1_000
CHECKPOINT_EVERY_SECONDS = 60.0


def record(
    conn: Connection,
    action: str,
    object_type: str,
    object_id: str,
    payload: dict[str, Any],
    object_digest: str | None = None,
) -> AuditEvent:
    """Append the event of a change, in the change's transaction (call it last)."""
    acting = current()
    content = EventContent(
        ts=now_ms(),
        actor=acting.actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        payload=canonical_json(payload),
        object_digest=object_digest,
        request_id=acting.request_id,
    )
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    e = t.audit_events.c
    head = conn.execute(select(e.seq, e.hash).order_by(e.seq.desc()).limit(1)).first()
    seq, prev_hash = (head.seq + 1, head.hash) if head is not None else (1, GENESIS_HASH)
    event = chain_event(seq, content, prev_hash)
    conn.execute(insert(t.audit_events).values(**event.to_row()))
    conn.info[_APPENDED] = event  # for the engine's Checkpointer, if it has one, at commit
    return event


@dataclass(frozen=True, slots=True)
class EventQuery:
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: int | None = None  # milliseconds since the epoch, inclusive
    until: int | None = None  # exclusive
    limit: int = 100


class AuditLog:
    """Reading the trail and its checkpoints, signing new checkpoints, and verifying."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._installation: str | None = None  # read once: it never changes

    def events(self, query: EventQuery) -> list[AuditEvent]:
        """The newest events matching the query, oldest first."""
        e = t.audit_events.c
        statement = select(t.audit_events).order_by(e.seq.desc()).limit(query.limit)
        for column, value in (
            (e.actor, query.actor),
            (e.action, query.action),
            (e.object_type, query.object_type),
            (e.object_id, query.object_id),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.since is not None:
            statement = statement.where(e.ts >= query.since)
        if query.until is not None:
            statement = statement.where(e.ts < query.until)
        with read_connection(self.engine) as conn:
            rows = conn.execute(statement).all()
        return [_event(row) for row in reversed(rows)]

    def all_events(self) -> Iterator[AuditEvent]:
        """Every event in sequence order, read in chunks (a trail may be millions long)."""
        e = t.audit_events.c
        after = None
        while True:
            statement = select(t.audit_events).order_by(e.seq).limit(_READ_CHUNK)
            if after is not None:
                statement = statement.where(e.seq > after)
            with read_connection(self.engine) as conn:
                rows = conn.execute(statement).all()
            yield from (_event(row) for row in rows)
            if len(rows) < _READ_CHUNK:
                return
            after = rows[-1].seq

    def head(self) -> tuple[int, str] | None:
        e = t.audit_events.c
        with read_connection(self.engine) as conn:
            row = conn.execute(select(e.seq, e.hash).order_by(e.seq.desc()).limit(1)).first()
        return (int(row.seq), str(row.hash)) if row is not None else None

    def installation(self) -> str:
        """The id of the installation this database is, made with its schema.

        Raises:
            IntegrityError: the database does not name exactly one installation.
        """
        if self._installation is None:
            with read_connection(self.engine) as conn:
                ids = conn.execute(select(t.installation.c.id)).scalars().all()
            if len(ids) != 1:
                raise IntegrityError(
                    f"the database names {len(ids)} installations, not one: its "
                    "`installation` table was changed outside Cairn"
                )
            self._installation = str(ids[0])
        return self._installation

    def checkpoints(self) -> list[Checkpoint]:
        c = t.audit_checkpoints.c
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(t.audit_checkpoints).order_by(c.seq)).all()
        return [_checkpoint(row) for row in rows]

    def signed_through(self) -> int:
        """The newest event a checkpoint in the database signs (0: none)."""
        with read_connection(self.engine) as conn:
            newest = conn.execute(select(func.max(t.audit_checkpoints.c.seq))).scalar()
        return int(newest or 0)

    def checkpoint(self, key: SigningKey, export_to: str) -> Checkpoint | None:
        """Sign the head of the chain, store it, and export it; None for an empty trail.

        A head that is already checkpointed is exported again (the export may be new).

        Raises:
            InvalidInput: ``export_to`` cannot be written.
            IntegrityError: the database does not name exactly one installation.
        """
        head = self.head()
        if head is None:
            return None
        installation = self.installation()
        signed = key.sign(installation, *head, now_ms())
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(t.audit_checkpoints).values(**signed.to_dict()))
        except AlreadyExists:  # this head was signed already (here or by another process)
            c = t.audit_checkpoints.c
            with read_connection(self.engine) as conn:
                row = conn.execute(select(t.audit_checkpoints).where(c.seq == head[0])).one()
            signed = _checkpoint(row)
        export_checkpoint(export_to, installation, signed)
        return signed

    def verify(self, keys: Keys, exported_to: str | None = None) -> Verification:
        """Recompute the chain and check it against every checkpoint of this installation,
        in the database and (if given) exported to ``exported_to``, trusting ``keys``.

        Raises:
            InvalidInput: a file among the exported checkpoints is not a checkpoint.
            IntegrityError: the database does not name exactly one installation.
        """
        installation = self.installation()
        found = [("the database", c) for c in self.checkpoints()]
        if exported_to is not None:
            found += exported_checkpoints(exported_to, installation)
        return verify_chain(self.all_events(), found, installation, keys)


class Checkpointer:
    """Signs and exports the head of the chain once ``every_events`` events are unsigned,
    ``every_seconds`` after an event is committed that no checkpoint covers, and when the
    store closes or the process exits cleanly (a command that wrote, a server stopped).

    Every commit on the engine that appended an event is noted, whichever store made it.
    Signing happens only after commits, in the writer's thread (every ``every_events``) or
    a timer's, never inside a write's transaction. The key is loaded, and the newest
    checkpoint read, when the first checkpoint is due: a command that only reads pays for
    neither (loading the key imports the cryptography library).
    """

    def __init__(
        self,
        log: AuditLog,
        key: Callable[[], SigningKey],
        export_to: str,
        every_events: int = CHECKPOINT_EVERY_EVENTS,
        every_seconds: float = CHECKPOINT_EVERY_SECONDS,
    ) -> None:
        self._log, self._load_key, self._export_to = log, key, export_to
        self._every_events, self._every_seconds = every_events, every_seconds
        self._committed = 0  # the newest event committed in this process
        self._signed_through: int | None = None  # read when first needed
        self._timer: threading.Timer | None = None
        # Held only for a few assignments, never across I/O: commits take it inside
        # their transaction. Signing has a lock of its own.
        self._state = threading.Lock()
        self._signing = threading.Lock()
        sql_event.listen(log.engine, "commit", self._committing)
        sql_event.listen(log.engine, "rollback", _forget_appended)

    def written(self, appended: AuditEvent) -> None:
        """Called after the transaction that appended ``appended`` committed. The write
        has succeeded by then: a checkpoint that fails is logged and tried again later."""
        if appended.seq - self._known_signed_through() >= self._every_events:
            self._sign()

    def close(self) -> None:
        """Sign what was committed here that no checkpoint covers yet."""
        with self._state:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if self._committed > self._known_signed_through():
            self._sign()
        _unsigned.discard(self)

    def _committing(self, conn: Connection) -> None:
        appended = conn.info.pop(_APPENDED, None)
        if appended is None:
            return
        with self._state:
            self._committed = max(self._committed, appended.seq)
            _unsigned.add(self)
            if self._timer is None:
                self._timer = threading.Timer(self._every_seconds, self._when_due)
                self._timer.daemon = True  # a pending checkpoint never holds a process up
                self._timer.name = "cairn-audit-checkpoint"
                self._timer.start()

    def _when_due(self) -> None:
        with self._state:
            self._timer = None
        if self._committed > self._known_signed_through():
            self._sign()

    def _known_signed_through(self) -> int:
        if self._signed_through is None:
            try:
                self._signed_through = self._log.signed_through()
            except SQLAlchemyError:  # unknown: then a checkpoint is due at once
                return 0
        return self._signed_through

    def _sign(self) -> None:
        with self._signing:
            try:
                signed = self._log.checkpoint(self._load_key(), self._export_to)
            except (CairnError, SQLAlchemyError, OSError) as exc:
                _log.warning("audit checkpoint failed, retried at a later write: %s", exc)
                return
        with self._state:
            if signed is not None:
                self._signed_through = max(signed.seq, self._signed_through or 0)
            if self._signed_through is not None and self._signed_through >= self._committed:
                _unsigned.discard(self)


def _forget_appended(conn: Connection) -> None:
    conn.info.pop(_APPENDED, None)  # rolled back: there is nothing to sign


# The checkpointers of this process with committed events no checkpoint covers: a clean
# exit signs them. Held here until then, with their engines, even if their stores were
# dropped without being closed (a command's accounts store, say).
_unsigned: set[Checkpointer] = set()


@atexit.register
def _sign_at_exit() -> None:
    for checkpointer in list(_unsigned):
        checkpointer.close()


def export_checkpoint(location: str, installation: str, checkpoint: Checkpoint) -> None:
    """Write the checkpoint as ``<location>/<installation>/<seq>.json`` (``location`` is a
    folder or an s3:// prefix).

    Raises:
        InvalidInput: the location cannot be written.
    """
    try:
        fs, root = fsspec.core.url_to_fs(location)
        folder = installation_folder(root, installation)
        fs.makedirs(folder, exist_ok=True)
        with fs.open(f"{folder}/{checkpoint.seq:012d}.json", "wb") as out:
            out.write(orjson.dumps(checkpoint.to_dict(), option=orjson.OPT_INDENT_2))
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"audit checkpoints location {location!r}: cannot write there ({exc})"
        ) from exc


def exported_checkpoints(location: str, installation: str) -> list[tuple[str, Checkpoint]]:
    """``(file, checkpoint)`` for every checkpoint ``installation`` exported to ``location``.

    Raises:
        InvalidInput: a file there is not a checkpoint.
    """
    fs, root = fsspec.core.url_to_fs(location)
    folder = installation_folder(root, installation)
    if not fs.exists(folder):
        return []
    found = []
    for path in sorted(fs.glob(f"{folder}/*.json")):
        try:
            found.append((str(path), Checkpoint.from_dict(orjson.loads(fs.cat_file(path)))))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{path}: not a Cairn audit checkpoint ({exc})") from None
    return found


def installation_folder(location: str, installation: str) -> str:
    """Where ``installation``'s checkpoints are exported under ``location``."""
    return f"{location.rstrip('/')}/{installation}"


def _checkpoint(row: Row[Any]) -> Checkpoint:
    return Checkpoint(row.seq, row.hash, row.ts, row.key_id, row.signature, row.installation)


def _event(row: Row[Any]) -> AuditEvent:
    content = EventContent(
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        payload=row.payload,
        object_digest=row.object_digest,
        request_id=row.request_id,
    )
    return AuditEvent(row.seq, content, row.prev_hash, row.hash)
