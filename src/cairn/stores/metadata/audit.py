"""The audit trail in the metadata store: appending in a write's transaction, reading,
checkpointing, and exporting checkpoints outside the database.

Appends are serialised: on SQLite by its single writer, on PostgreSQL by a transaction-level
advisory lock taken just before the append. Each write appends its event last, so the lock
is held only until that write commits, and no transaction waits on a row while holding it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fsspec
import orjson
from sqlalchemy import Connection, Engine, Row, insert, select, text
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from cairn.core.actor import current
from cairn.core.audit import (
    GENESIS_HASH,
    AuditEvent,
    Checkpoint,
    EventContent,
    canonical_json,
    chain_event,
)
from cairn.core.clock import now_ms
from cairn.errors import CairnError, InvalidInput
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import read_connection, write_transaction

if TYPE_CHECKING:  # the key is only passed through; cryptography loads when used
    from cairn.localfs.signing import SigningKey

_log = logging.getLogger(__name__)
_APPEND_LOCK = 0x0CA1D  # any constant: the advisory lock PostgreSQL appends queue on
_READ_CHUNK = 5_000


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
    """Reading the trail and its checkpoints, and signing new checkpoints."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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

    def checkpoints(self) -> list[Checkpoint]:
        c = t.audit_checkpoints.c
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(t.audit_checkpoints).order_by(c.seq)).all()
        return [Checkpoint(r.seq, r.hash, r.ts, r.key_id, r.signature) for r in rows]

    def checkpoint(self, key: SigningKey, export_to: str) -> Checkpoint | None:
        """Sign the head of the chain, store it, and export it; None for an empty trail.

        A head that is already checkpointed is exported again (the export may be new).
        """
        head = self.head()
        if head is None:
            return None
        seq, head_hash = head
        signed = key.sign(seq, head_hash, now_ms())
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(t.audit_checkpoints).values(**signed.to_dict()))
        except SqlIntegrityError:  # this head was signed already (here or by another process)
            c = t.audit_checkpoints.c
            with read_connection(self.engine) as conn:
                row = conn.execute(select(t.audit_checkpoints).where(c.seq == seq)).one()
            signed = Checkpoint(row.seq, row.hash, row.ts, row.key_id, row.signature)
        export_checkpoint(export_to, signed)
        return signed


class Checkpointer:
    """Takes a checkpoint after every ``every_events`` events or ``every_seconds``.

    The key is loaded, and the last checkpoint read, at the first write: a command that
    only reads pays for neither (loading the key imports the cryptography library).
    """

    def __init__(
        self,
        log: AuditLog,
        key: Callable[[], SigningKey],
        export_to: str,
        every_events: int = 1_000,
        every_seconds: float = 600.0,
    ) -> None:
        self._log, self._load_key, self._export_to = log, key, export_to
        self._every_events, self._every_seconds = every_events, every_seconds
        self._last_seq: int | None = None  # read at the first write
        self._last_time = time.monotonic()
        self._lock = threading.Lock()  # server threads write concurrently

    def written(self, event: AuditEvent) -> None:
        """Called after the transaction that appended ``event`` committed. The write has
        succeeded by then: a checkpoint that fails is logged and tried again later."""
        with self._lock:
            if self._last_seq is None:
                last = self._log.checkpoints()
                self._last_seq = last[-1].seq if last else 0
            due = event.seq - self._last_seq >= self._every_events or (
                time.monotonic() - self._last_time >= self._every_seconds
            )
            if not due:
                return
            self._last_time = time.monotonic()
            try:
                signed = self._log.checkpoint(self._load_key(), self._export_to)
            except (CairnError, SQLAlchemyError) as exc:
                _log.warning("audit checkpoint failed, retried at a later write: %s", exc)
                return
            self._last_seq = signed.seq if signed is not None else self._last_seq


def export_checkpoint(location: str, checkpoint: Checkpoint) -> None:
    """Write the checkpoint as ``<location>/<seq>.json`` (a folder or an s3:// prefix)."""
    try:
        fs, root = fsspec.core.url_to_fs(location)
        fs.makedirs(root, exist_ok=True)
        with fs.open(f"{root.rstrip('/')}/{checkpoint.seq:012d}.json", "wb") as out:
            out.write(orjson.dumps(checkpoint.to_dict(), option=orjson.OPT_INDENT_2))
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"audit checkpoints location {location!r}: cannot write there ({exc})"
        ) from exc


def exported_checkpoints(location: str) -> list[tuple[str, Checkpoint]]:
    """``(file, checkpoint)`` for every checkpoint exported to ``location``.

    Raises:
        InvalidInput: a file there is not a checkpoint.
    """
    fs, root = fsspec.core.url_to_fs(location)
    if not fs.exists(root):
        return []
    found = []
    for path in sorted(fs.glob(f"{root.rstrip('/')}/*.json")):
        try:
            found.append((str(path), Checkpoint.from_dict(orjson.loads(fs.cat_file(path)))))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{path}: not a Cairn audit checkpoint ({exc})") from None
    return found


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
