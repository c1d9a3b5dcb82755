"""A run's inputs and lineage: the data versions it used, and the objects it used and
produced, as edges of the lineage graph (``lineage_edges``; see ``lineage.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine, select

from cairn.core.artifact import check_digest
from cairn.core.audit import AuditEvent
from cairn.core.clock import now_ms
from cairn.core.data import parse_data_ref
from cairn.stores.metadata import audit
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.data import find_version
from cairn.stores.metadata.engine import dialect_insert, read_connection, write_transaction
from cairn.stores.metadata.grants import acting
from cairn.stores.metadata.lookup import run_for_write, run_key


class SqlRunInputs:
    """``log_inputs``, ``log_lineage`` and their readers, of the metadata store."""

    def __init__(self, engine: Engine, audited: Callable[[AuditEvent], None]) -> None:
        self.engine = engine
        self._audited = audited

    def log_inputs(self, run_id: str, refs: Sequence[str]) -> list[str]:
        parsed = [parse_data_ref(ref) for ref in refs]
        with write_transaction(self.engine) as conn:
            run_for_write(conn, run_id, f"record the inputs of run {run_id}")
            # A run's lineage must not reach into data its writer may not read: such a
            # version is not found, before its reference is resolved to a number.
            reader = acting(conn)
            resolved = sorted({find_version(conn, ref, reader).ref for ref in parsed})
            now = now_ms()
            rows = [
                {"src_kind": "run", "src_id": run_id, "relation": "used",
                 "dst_kind": "data_version", "dst_id": ref, "created_at": now}
                for ref in resolved
            ]  # fmt: skip
            if rows:
                conn.execute(dialect_insert(conn, t.lineage_edges).on_conflict_do_nothing(), rows)
            event = audit.record(conn, "run.log_input", "run", run_id, {"inputs": resolved})
        self._audited(event)
        return resolved

    def get_run_inputs(self, run_id: str) -> list[str]:
        e = t.lineage_edges.c
        with read_connection(self.engine) as conn:
            run_key(conn, run_id)
            found = conn.execute(
                select(e.dst_id)
                .where(e.src_kind == "run", e.src_id == run_id, e.relation == "used")
                .where(e.dst_kind == "data_version")
                .order_by(e.dst_id)
            ).scalars()
            return [str(ref) for ref in found]

    def log_lineage(self, run_id: str, used: Sequence[str], produced: Sequence[str]) -> None:
        check_digests(used, produced)
        with write_transaction(self.engine) as conn:
            run_for_write(conn, run_id, f"record the lineage of run {run_id}")
            event = insert_lineage(conn, run_id, used, produced)
        self._audited(event)

    def get_run_lineage(self, run_id: str) -> tuple[list[str], list[str]]:
        e = t.lineage_edges.c
        with read_connection(self.engine) as conn:
            run_key(conn, run_id)
            found = conn.execute(
                select(e.relation, e.dst_id)
                .where(e.src_kind == "run", e.src_id == run_id, e.dst_kind == "object")
                .order_by(e.dst_id)
            ).all()
        used = [str(r.dst_id) for r in found if r.relation == "used"]
        return used, [str(r.dst_id) for r in found if r.relation == "produced"]


def insert_lineage(
    conn: Connection, run_id: str, used: Sequence[str], produced: Sequence[str]
) -> AuditEvent:
    """The run's edges to the objects (checked digests) it used and produced; its audit
    event, to report once committed."""
    edges = sorted({("used", d) for d in used} | {("produced", d) for d in produced})
    now = now_ms()
    rows = [
        {"src_kind": "run", "src_id": run_id, "relation": relation,
         "dst_kind": "object", "dst_id": digest, "created_at": now}
        for relation, digest in edges
    ]  # fmt: skip
    if rows:
        conn.execute(dialect_insert(conn, t.lineage_edges).on_conflict_do_nothing(), rows)
    payload = {"used": sorted(set(used)), "produced": sorted(set(produced))}
    return audit.record(conn, "run.log_lineage", "run", run_id, payload)


def check_digests(used: Sequence[str], produced: Sequence[str]) -> None:
    """Raises:
    InvalidInput: one is not a digest.
    """
    for digest in (*used, *produced):
        check_digest(digest)
