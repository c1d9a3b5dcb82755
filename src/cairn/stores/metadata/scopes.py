"""The :class:`~cairn.core.ports.ProjectScopes` of the metadata store: which project an
experiment or a run belongs to, and which objects and lineage nodes a principal may
read or holds (see ``objects.py`` and ``lineage.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, select

from cairn.core import missing
from cairn.core.access import Principal
from cairn.core.artifact import check_digest
from cairn.core.lineage import Node
from cairn.stores.metadata import objects
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import read_connection, write_transaction
from cairn.stores.metadata.lineage import readable_nodes
from cairn.stores.metadata.lookup import experiment_project, run_project


class SqlProjectScopes:
    """Every method of ``ProjectScopes`` but ``resolve_run_id`` (``runs.py``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def experiment_project(self, experiment_id: str) -> str:
        with read_connection(self.engine) as conn:
            return experiment_project(conn, experiment_id)

    def run_project(self, run_id: str) -> str:
        with read_connection(self.engine) as conn:
            found = run_project(conn, run_id)
        if found is None:
            raise missing.run(run_id)
        return found

    def experiments_in(self, projects: frozenset[str]) -> list[str]:
        e = t.experiments.c
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(e.id).where(e.project.in_(sorted(projects))))
            return [str(row.id) for row in rows]

    def readable_objects(self, principal: Principal, digests: Iterable[str]) -> set[str]:
        with read_connection(self.engine) as conn:
            return objects.readable(conn, principal, digests)

    def readable_nodes(self, principal: Principal, nodes: Iterable[Node]) -> set[Node]:
        with read_connection(self.engine) as conn:
            return readable_nodes(conn, principal, nodes)

    def held_objects(self, principal: Principal, digests: Iterable[str]) -> set[str]:
        with read_connection(self.engine) as conn:
            return objects.held(conn, principal, digests)

    def record_upload(self, digest: str, principal: Principal) -> None:
        with write_transaction(self.engine) as conn:
            objects.record_upload(conn, check_digest(digest), principal.name)
