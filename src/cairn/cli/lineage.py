"""``cairn lineage``: where a model or data version came from, or what was built on it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import typer
from rich.text import Text

from cairn.cli.options import Json
from cairn.cli.report import Outline, Report, Verbatim, View, render
from cairn.core.lineage import PART_OF, PRODUCED, RUN, USED, Edge, Lineage, Node


def lineage(
    ref: Annotated[str, typer.Argument(help="churn@champion, churn/3, customers@4, or a run id")],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="What was built on it, not where it came from.")
    ] = False,
    json: Json = False,
    dot: Annotated[bool, typer.Option("--dot", help="Print the graph in Graphviz DOT.")] = False,
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart.")] = False,
) -> None:
    """Walk the lineage graph: model version → runs → pipeline steps → data versions, with
    each run's commit, dirty flag and environment (or, with --downstream, every run and
    model version that used a data version)."""
    drawing = "dot" if dot else "mermaid" if mermaid else "tree"
    render(lineage_report(ref, downstream, drawing), json)


def lineage_report(
    ref: str, downstream: bool = False, drawing: str = "tree"
) -> Report[dict[str, Any]]:
    """The lineage graph from ``ref``: its nodes and edges, drawn as a tree, in DOT or as
    a Mermaid flowchart."""
    from cairn.sdk import lineage as walk  # the registry loads only for this command

    views = {"dot": _dot_views, "mermaid": _mermaid_views}.get(drawing, _tree_views)
    return Report(walk(ref, downstream=downstream).to_dict(), views)


def _dot_views(graph: Mapping[str, Any]) -> Iterator[View]:
    yield Verbatim(Lineage.from_dict(graph).to_dot())


def _mermaid_views(graph: Mapping[str, Any]) -> Iterator[View]:
    yield Verbatim(Lineage.from_dict(graph).to_mermaid())


def _tree_views(graph: Mapping[str, Any]) -> Iterator[View]:
    found = Lineage.from_dict(graph)
    way = "built on" if found.downstream else "lineage of"
    title = Text(f"{way} {found.label(found.start)}", style="bold")
    yield Outline(title, _branches(found.start, found, {found.start}))


def _branches(node: Node, found: Lineage, shown: set[Node]) -> list[Outline]:
    branches = []
    for verb, neighbour in _next(node, found):
        text = f"{verb} {_described(neighbour, found)}"
        if neighbour in shown:
            branches.append(Outline(Text.assemble(text, " ", ("(above)", "dim"))))
            continue
        shown.add(neighbour)
        branches.append(Outline(text, _branches(neighbour, found, shown)))
    return branches


def _next(node: Node, found: Lineage) -> list[tuple[str, Node]]:
    """The neighbours a reader follows from ``node``, with the words for the step."""
    steps: list[tuple[str, Node]] = []
    for edge in sorted(found.edges, key=_order):
        if found.downstream:
            if edge.dst == node and edge.relation == USED:
                steps.append(("used by", edge.src))
            elif edge.src == node and edge.relation in (PRODUCED, PART_OF):
                steps.append(("produced" if edge.relation == PRODUCED else "part of", edge.dst))
        elif edge.dst == node and edge.relation == PRODUCED:
            steps.append(("made by", edge.src))
        elif edge.src == node and edge.relation in (USED, PART_OF):
            steps.append(("used" if edge.relation == USED else "part of", edge.dst))
    return steps


def _order(edge: Edge) -> tuple[int, Edge]:
    return ({PART_OF: 0, USED: 1, PRODUCED: 2}[edge.relation], edge)


def _described(node: Node, found: Lineage) -> str:
    label = found.label(node)
    detail: dict[str, Any] = dict(found.details.get(node, {}))
    if node.kind != RUN:
        return label
    words = []
    if detail.get("step"):
        words.append(f"step {detail['step']}")
    elif detail.get("pipeline"):
        words.append(f"pipeline {detail['pipeline']}")
    if detail.get("git_commit"):
        dirty = " (dirty tree)" if detail.get("git_dirty") else ""
        words.append(f"commit {str(detail['git_commit'])[:12]}{dirty}")
    if detail.get("environment"):
        words.append(f"environment {str(detail['environment']).removeprefix('blake3:')[:12]}")
    return label + (f" — {', '.join(words)}" if words else "")
