"""``cairn lineage``: where a model or data version came from, or what was built on it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from cairn.cli.output import console, print_json
from cairn.core.lineage import PART_OF, PRODUCED, RUN, USED, Edge, Lineage, Node


def lineage(
    ref: Annotated[str, typer.Argument(help="churn@champion, churn/3, customers@4, or a run id")],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="What was built on it, not where it came from.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON: nodes and edges.")] = False,
    dot: Annotated[bool, typer.Option("--dot", help="Print the graph in Graphviz DOT.")] = False,
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart.")] = False,
) -> None:
    """Walk the lineage graph: model version → runs → pipeline steps → data versions, with
    each run's commit, dirty flag and environment (or, with --downstream, every run and
    model version that used a data version)."""
    from cairn.sdk import lineage as walk  # the registry loads only for this command

    found = walk(ref, downstream=downstream)
    if json:
        print_json(found.to_dict())
    elif dot:
        console.out(found.to_dot(), end="")
    elif mermaid:
        console.out(found.to_mermaid(), end="")
    else:
        console.print(_tree(found))


def _tree(found: Lineage) -> Tree:
    way = "built on" if found.downstream else "lineage of"
    root = Tree(f"[bold]{way} {escape(found.label(found.start))}[/bold]")
    shown: set[Node] = set()
    _grow(root, found.start, found, shown)
    return root


def _grow(branch: Tree, node: Node, found: Lineage, shown: set[Node]) -> None:
    shown.add(node)
    for verb, neighbour in _next(node, found):
        text = f"{verb} {escape(_described(neighbour, found))}"
        if neighbour in shown:
            branch.add(f"{text} [dim](above)[/dim]")
            continue
        _grow(branch.add(text), neighbour, found, shown)


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
