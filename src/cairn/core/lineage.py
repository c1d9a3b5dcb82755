"""The lineage graph: what was made from what, as nodes and edges, and how it is drawn.

Nodes are ``(kind, id)``: a run (by id), a data version (``customers@4``), a model
version (``churn/3``), or an object (a BLAKE3 digest: a pipeline step's output). Edges
say ``run -used-> thing``, ``run -produced-> thing``, and ``run -part_of-> run`` (a step
run in its pipeline run). Walking upstream from a model version reaches the runs that made
it and everything they read; walking downstream from a data version reaches every run that
read it, what they made, and on, to every model version built on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RUN, DATA_VERSION, MODEL_VERSION, OBJECT = "run", "data_version", "model_version", "object"
USED, PRODUCED, PART_OF = "used", "produced", "part_of"


@dataclass(frozen=True, slots=True, order=True)
class Node:
    kind: str
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    src: Node  # always a run
    relation: str
    dst: Node


@dataclass
class Lineage:
    """A walk's result: where it started, which way, what it found, and what each node is
    (a run's name, commit, dirty flag, environment …) as plain values."""

    start: Node
    downstream: bool
    edges: list[Edge] = field(default_factory=list)
    details: dict[Node, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def nodes(self) -> list[Node]:
        found = {self.start} | {e.src for e in self.edges} | {e.dst for e in self.edges}
        return sorted(found)

    def label(self, node: Node) -> str:
        detail = self.details.get(node, {})
        if node.kind == RUN:
            name = detail.get("name")
            return f"run {node.id[:12]}" + (f" ({name})" if name else "")
        if node.kind == OBJECT:
            return f"output {node.id.removeprefix('blake3:')[:12]}"
        return node.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": {"kind": self.start.kind, "id": self.start.id},
            "direction": "downstream" if self.downstream else "upstream",
            "nodes": [
                {"kind": n.kind, "id": n.id, **dict(self.details.get(n, {}))} for n in self.nodes
            ],
            "edges": [
                {"src": str(e.src), "relation": e.relation, "dst": str(e.dst)}
                for e in sorted(self.edges)
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        """A walk's result as ``to_dict`` wrote it."""
        details = {
            Node(n["kind"], n["id"]): {k: v for k, v in n.items() if k not in ("kind", "id")}
            for n in data["nodes"]
        }
        return cls(
            start=Node(data["start"]["kind"], data["start"]["id"]),
            downstream=data["direction"] == "downstream",
            edges=[Edge(_node(e["src"]), e["relation"], _node(e["dst"])) for e in data["edges"]],
            details={node: detail for node, detail in details.items() if detail},
        )

    def to_dot(self) -> str:
        names = {node: f"n{index}" for index, node in enumerate(self.nodes)}
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for node, name in names.items():
            shape = {RUN: "box", DATA_VERSION: "cylinder", MODEL_VERSION: "component"}.get(
                node.kind, "note"
            )
            lines.append(f'  {name} [label="{_escaped(self.label(node))}", shape={shape}];')
        lines += [
            f'  {names[e.src]} -> {names[e.dst]} [label="{e.relation}"];'
            for e in sorted(self.edges)
        ]
        return "\n".join([*lines, "}"]) + "\n"

    def to_mermaid(self) -> str:
        names = {node: f"n{index}" for index, node in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for node, name in names.items():
            text = _escaped(self.label(node))
            opening, closing = {RUN: ("[", "]"), DATA_VERSION: ("[(", ")]"),
                                MODEL_VERSION: ("[[", "]]")}.get(node.kind, ("(", ")"))  # fmt: skip
            lines.append(f'  {name}{opening}"{text}"{closing}')
        lines += [f"  {names[e.src]} -->|{e.relation}| {names[e.dst]}" for e in sorted(self.edges)]
        return "\n".join(lines) + "\n"


def _node(text: str) -> Node:
    kind, _, ident = text.partition(":")  # a kind has no colon; an id may (blake3:…)
    return Node(kind, ident)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")
