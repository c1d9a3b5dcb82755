"""A run's artifacts: the listing of paths to objects stored by digest (the objects
themselves are the artifact store's, ``cairn.stores.artifacts``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine, select

from cairn.core.artifact import ArtifactEntry, check_entries
from cairn.core.audit import AuditEvent
from cairn.stores.metadata import audit, manifest
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import read_connection, write_transaction
from cairn.stores.metadata.grants import authorize_objects
from cairn.stores.metadata.lookup import run_for_write, run_key
from cairn.stores.metadata.recording import upsert


class SqlRunArtifacts:
    """``add_artifacts`` and ``list_artifacts`` of the metadata store."""

    def __init__(self, engine: Engine, audited: Callable[[AuditEvent], None]) -> None:
        self.engine = engine
        self._audited = audited

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        # The last entry for a path wins, as it would in a directory.
        rows_by_path = {
            e.path: {"path": e.path, "digest": e.digest, "size": e.size}
            for e in check_entries(entries)
        }
        with write_transaction(self.engine) as conn:
            what = f"add artifacts to run {run_id}"
            pk = run_for_write(conn, run_id, what)
            authorize_objects(conn, {str(row["digest"]) for row in rows_by_path.values()}, what)
            manifest.check_clashes(conn, pk, rows_by_path)
            rows = [{"run_pk": pk, **row} for row in rows_by_path.values()]
            if rows:
                upsert(conn, t.run_artifacts, ["run_pk", "path"], ["digest", "size"], rows)
            payload = {"artifacts": [[r["path"], r["digest"], r["size"]] for r in rows]}
            event = audit.record(conn, "run.add_artifacts", "run", run_id, payload)
        self._audited(event)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        a = t.run_artifacts.c
        with read_connection(self.engine) as conn:
            pk = run_key(conn, run_id)
            statement = select(a.path, a.digest, a.size).where(a.run_pk == pk).order_by(a.path)
            if prefix:
                statement = statement.where(
                    (a.path == prefix) | a.path.startswith(f"{prefix}/", autoescape=True)
                )
            return [ArtifactEntry(r.path, r.digest, r.size) for r in conn.execute(statement)]
