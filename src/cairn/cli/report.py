"""What a command shows: one JSON document, and the views people read computed from it.

A command gathers what it shows into a ``Report``: ``data``, the JSON document ``--json``
prints, and ``views``, a function from that document to what a person reads — ``Table``s,
``Fields`` (labelled values), ``Line``s, an ``Outline`` (a tree) or ``Verbatim`` text
(Markdown, DOT). The views read the document they are given and nothing else, but for
the command's own arguments echoed in a title (bound with ``functools.partial``): what
the table shows, the JSON carries. ``render`` prints one or the other.

To add a command: a function that gathers its data as JSON-ready values (the
``cairn.core`` codecs) and returns a ``Report``; a ``views(data)`` generator over that
data; and the typer command, which parses its options and calls ``render``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text
from rich.tree import Tree

from cairn.cli.output import console, format_number, print_json

__all__ = [
    "Cell",
    "Fields",
    "Line",
    "Outline",
    "Report",
    "Table",
    "Verbatim",
    "View",
    "cell_text",
    "render",
]

Cell = str | int | float | Text | None  # None shows as "—"; a Text carries its style


@dataclass(frozen=True, slots=True)
class Table:
    title: str | None
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]


@dataclass(frozen=True, slots=True)
class Fields:
    """Labelled values, one a row, under a two-column header."""

    title: str | None
    fields: Sequence[tuple[str, Cell]]
    header: tuple[str, str] = ("attribute", "value")


@dataclass(frozen=True, slots=True)
class Line:
    """One line: a string is printed as it is (no markup), a ``Text`` with its styles."""

    text: str | Text


@dataclass(frozen=True, slots=True)
class Outline:
    """A tree of labels: each branch an ``Outline`` of its own."""

    label: str | Text
    branches: Sequence[Outline] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Verbatim:
    """Text written exactly as it is, newlines and all (Markdown, DOT, Mermaid)."""

    text: str


View = Table | Fields | Line | Outline | Verbatim
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class Report(Generic[D]):
    """``data``, the JSON document; ``views(data)``, what people read of it."""

    data: D
    views: Callable[[D], Iterable[View]]


def render(report: Report[Any], json: bool = False) -> None:
    """Print the report's JSON document, or its views."""
    if json:
        print_json(report.data)
        return
    for view in report.views(report.data):
        _show(view)


def _show(view: View) -> None:
    """Print one view on the console."""
    if isinstance(view, Table):
        console.print(_table(view.title, view.columns, view.rows))
    elif isinstance(view, Fields):
        console.print(_table(view.title, view.header, view.fields))
    elif isinstance(view, Line):
        console.print(view.text, markup=False, emoji=False)
    elif isinstance(view, Outline):
        console.print(_tree(view))
    else:
        console.out(view.text, end="", highlight=False)


def cell_text(cell: Cell) -> Text:
    """A cell as it is shown."""
    if cell is None:
        return Text("—")
    if isinstance(cell, float):
        return Text(format_number(cell))
    return cell if isinstance(cell, Text) else Text(str(cell))  # a string is never markup


def _table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Cell]]) -> RichTable:
    shown = RichTable(
        title=None if title is None else escape(title), title_justify="left", header_style="bold"
    )
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*map(cell_text, row))
    return shown


def _tree(outline: Outline) -> Tree:
    tree = Tree(_label(outline.label))
    _grow(tree, outline.branches)
    return tree


def _grow(tree: Tree, branches: Sequence[Outline]) -> None:
    for branch in branches:
        _grow(tree.add(_label(branch.label)), branch.branches)


def _label(label: str | Text) -> Text:
    return label if isinstance(label, Text) else Text(label)
