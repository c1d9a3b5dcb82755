"""Walking the lineage graph in the metadata store, one query per kind of step per hop.

Upstream, a run leads to what it used and to the pipeline run it is part of, and anything
else leads to the runs that produced it. Downstream, anything leads to the runs that used
it, and a run to what it produced and to the pipeline run it is part of (shown, not walked
through: a pipeline run's other steps did not use what this one used).

A walk made for a reader (a server answering a caller) goes only through what the reader
may read: a node of another project ends the walk there, unseen, so lineage names no run,
data version, model version or object of a project the reader has no role in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Engine, select

from cairn.core import missing
from cairn.core.access import Principal
from cairn.core.data import parse_data_ref
from cairn.core.lineage import (
    DATA_VERSION,
    MODEL_VERSION,
    OBJECT,
    PART_OF,
    PRODUCED,
    RUN,
    USED,
    Edge,
    Node,
)
from cairn.core.model import parse_model_ref
from cairn.errors import InvalidInput
from cairn.stores.metadata import objects
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.data import find_version
from cairn.stores.metadata.engine import read_connection

_BATCH = 500  # ids per IN (…): well under every database's limit on bound parameters


class SqlLineage:
    """The :class:`~cairn.core.ports.LineageGraph` over a metadata database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def walk(
        self, start: Node, downstream: bool, max_hops: int = 64, reader: Principal | None = None
    ) -> list[Edge]:
        """Every edge reached from ``start`` going one way, each once; for a ``reader``,
        only the edges between nodes it may read, and the walk goes on only through them.

        Raises:
            NotFound: ``start`` is a run, data version or model version there is none of
                (an object is named by its digest alone: one nothing holds has no edges).
            InvalidInput: ``start`` is of no kind of node, or no reference of its kind.
        """
        self._require(start)
        seen, edges = {start}, set[Edge]()
        frontier = {start}
        for _ in range(max_hops):
            if not frontier:
                break
            found = self._step(frontier, downstream)
            if reader is not None and not reader.is_admin:
                found = self._readable(found, reader)
            edges |= found
            reached = {e.dst for e in found} | {e.src for e in found}
            # A pipeline run reached downstream is shown, not walked through.
            frontier = {
                n for n in reached - seen
                if not (downstream and any(e.dst == n and e.relation == PART_OF for e in found))
            }  # fmt: skip
            seen |= reached
        return sorted(edges)

    def _require(self, start: Node) -> None:
        """Raise what a server answers for a start that does not exist."""
        if start.kind == MODEL_VERSION:
            from cairn.stores.metadata.models import SqlModelRegistry  # which imports this

            SqlModelRegistry(self.engine).resolve(parse_model_ref(start.id))
        elif start.kind == DATA_VERSION:
            with read_connection(self.engine) as conn:
                find_version(conn, parse_data_ref(start.id))
        elif start.kind == RUN:
            with read_connection(self.engine) as conn:
                found = conn.execute(select(t.runs.c.id).where(t.runs.c.id == start.id))
                if found.first() is None:
                    raise missing.run(start.id)
        elif start.kind != OBJECT:
            kinds = ", ".join((RUN, DATA_VERSION, MODEL_VERSION, OBJECT))
            raise InvalidInput(f"node kind {start.kind!r}: expected one of {kinds}")

    def _readable(self, found: set[Edge], reader: Principal) -> set[Edge]:
        ends = {e.src for e in found} | {e.dst for e in found}
        with read_connection(self.engine) as conn:
            shown = readable_nodes(conn, reader, ends)
        return {e for e in found if e.src in shown and e.dst in shown}

    def _step(self, frontier: set[Node], downstream: bool) -> set[Edge]:
        runs = [n.id for n in frontier if n.kind == RUN]
        others = [n for n in frontier if n.kind != RUN]
        found = self._parents(runs)
        if downstream:
            found |= self._from_runs(runs, PRODUCED) | self._into(others, USED)
        else:
            found |= self._from_runs(runs, USED) | self._into(others, PRODUCED)
        return found

    def _from_runs(self, runs: list[str], relation: str) -> set[Edge]:
        e = t.lineage_edges.c
        found = set()
        with read_connection(self.engine) as conn:
            for batch in _batches(runs):
                rows = conn.execute(
                    select(e.src_id, e.dst_kind, e.dst_id).where(
                        e.src_kind == RUN, e.relation == relation, e.src_id.in_(batch)
                    )
                )
                found |= {
                    Edge(Node(RUN, r.src_id), relation, Node(r.dst_kind, r.dst_id)) for r in rows
                }
        return found

    def _into(self, nodes: list[Node], relation: str) -> set[Edge]:
        e = t.lineage_edges.c
        found = set()
        with read_connection(self.engine) as conn:
            for kind in {n.kind for n in nodes}:
                for batch in _batches([n.id for n in nodes if n.kind == kind]):
                    rows = conn.execute(
                        select(e.src_id, e.dst_id).where(
                            e.src_kind == RUN, e.relation == relation, e.dst_kind == kind,
                            e.dst_id.in_(batch),
                        )
                    )  # fmt: skip
                    found |= {
                        Edge(Node(RUN, r.src_id), relation, Node(kind, r.dst_id)) for r in rows
                    }
        return found

    def _parents(self, runs: list[str]) -> set[Edge]:
        r = t.runs.c
        found = set()
        with read_connection(self.engine) as conn:
            for batch in _batches(runs):
                rows = conn.execute(
                    select(r.id, r.parent_id).where(r.id.in_(batch), r.parent_id.is_not(None))
                )
                found |= {
                    Edge(Node(RUN, row.id), PART_OF, Node(RUN, row.parent_id)) for row in rows
                }
        return found


def readable_nodes(conn: Connection, reader: Principal, nodes: Iterable[Node]) -> set[Node]:
    """Of ``nodes``, those in a project ``reader`` may read (objects: held by one)."""
    wanted = set(nodes)
    projects = reader.readable_projects()
    if projects is None:
        return wanted
    digests = [n.id for n in wanted if n.kind == OBJECT]
    shown = {Node(OBJECT, digest) for digest in objects.readable(conn, reader, digests)}
    for kind, (table, key, owner_of) in _OWNERS.items():
        owners = {n: owner_of(n.id) for n in wanted if n.kind == kind}
        project_of: dict[str, str] = {}
        for batch in _batches(owners.values()):
            rows = conn.execute(select(key, table.c.project).where(key.in_(batch)))
            project_of.update((str(k), str(project)) for k, project in rows)
        shown |= {n for n, owner in owners.items() if project_of.get(owner) in projects}
    return shown


def _run_project() -> Any:
    r, e = t.runs.c, t.experiments.c
    return (
        select(r.id.label("id"), e.project)
        .select_from(t.runs.join(t.experiments, e.id == r.experiment_id))
        .subquery()
    )


# Per kind of node: the table with its project, the column naming its owner, and the
# owner's name in a node's id (a run is its own; ``customers@4`` is the dataset
# ``customers``'s; ``churn/3`` the model ``churn``'s).
_RUNS = _run_project()
_OWNERS: dict[str, tuple[Any, Any, Callable[[str], str]]] = {
    RUN: (_RUNS, _RUNS.c.id, lambda node_id: node_id),
    DATA_VERSION: (t.datasets, t.datasets.c.name, lambda node_id: node_id.rpartition("@")[0]),
    MODEL_VERSION: (t.models, t.models.c.name, lambda node_id: node_id.rpartition("/")[0]),
}


def _batches(ids: Iterable[str]) -> Iterable[list[str]]:
    listed = sorted(set(ids))
    for start in range(0, len(listed), _BATCH):
        yield listed[start : start + _BATCH]
