"""``cairn experiments``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer

from cairn.cli.context import session
from cairn.cli.options import Json
from cairn.cli.output import format_time
from cairn.cli.report import Report, Table, View, render
from cairn.core.codec import experiment_to_dict

if TYPE_CHECKING:
    from cairn.tracking.service import TrackingService

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)


@app.command("list")
def list_experiments(json: Json = False) -> None:
    """List every experiment."""
    render(list_report(session().tracking), json)


def list_report(tracking: TrackingService) -> Report[list[dict[str, Any]]]:
    """Every experiment."""
    return Report([experiment_to_dict(e) for e in tracking.list_experiments()], _list_views)


def _list_views(found: list[dict[str, Any]]) -> Iterator[View]:
    rows = [(e["id"], e["name"], format_time(e["created_at"])) for e in found]
    yield Table("Experiments", ("id", "name", "created"), rows)
