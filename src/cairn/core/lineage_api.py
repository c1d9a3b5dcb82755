"""Walking the lineage graph as one caller may, and its operation over HTTP (one table,
from which the server's route and the HTTP client are both made).

A walk starts from one node, which travels as two query parameters (``kind`` and ``id``);
the caller must be able to read it, and the walk goes on only through nodes it may read.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from pydantic import Field

from cairn.core.lineage import DATA_VERSION, MODEL_VERSION, OBJECT, RUN, Edge, Node
from cairn.core.operations import Access, Arg, Codec, Operation, Place, listed, table
from cairn.errors import InvalidInput

MAX_HOPS = 64  # the longest walk one request may ask for
KINDS = (RUN, DATA_VERSION, MODEL_VERSION, OBJECT)


class Walks(Protocol):
    def walk_from(
        self, kind: str, node_id: str, downstream: bool = False, max_hops: int = MAX_HOPS
    ) -> list[Edge]:
        """Every lineage edge reached from the node ``(kind, node_id)`` going one way, at
        most ``max_hops`` steps, through the nodes the caller may read. Raises NotFound
        (or PermissionDenied, for an object) when the caller may not read the node it
        starts from, InvalidInput for a kind there is none of."""


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    return str(kind)


def _node_to_dict(node: Node) -> dict[str, str]:
    return {"kind": node.kind, "id": node.id}


def edge_to_dict(edge: Edge) -> dict[str, Any]:
    return {"src": _node_to_dict(edge.src), "relation": edge.relation,
            "dst": _node_to_dict(edge.dst)}  # fmt: skip


def edge_from_dict(data: dict[str, Any]) -> Edge:
    src, dst = data["src"], data["dst"]
    return Edge(Node(src["kind"], src["id"]), data["relation"], Node(dst["kind"], dst["id"]))


OPERATIONS = table(
    Operation("walk_from", "GET", "/lineage/walk", Access.AUTHENTICATED,
              listed("edges", edge_to_dict, edge_from_dict),
              (Arg("kind", Place.QUERY, codec=Codec(check_kind, check_kind)),
               Arg("node_id", Place.QUERY, wire="id"),
               Arg("downstream", Place.QUERY, required=False, default=False, shape=bool),
               Arg("max_hops", Place.QUERY, required=False, default=MAX_HOPS,
                   shape=Annotated[int, Field(ge=0, le=MAX_HOPS)])),
              "Every lineage edge reached from the node `(kind, id)` going one way, at most "
              "`max_hops` steps, through the nodes the caller may read; the caller must be "
              "able to read the node it starts from."),
)  # fmt: skip
