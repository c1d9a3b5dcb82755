"""``cairn experiments``."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.cli.context import session
from cairn.cli.output import format_time, print_json, table
from cairn.core.codec import experiment_to_dict

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("list")
def list_experiments(json: Json = False) -> None:
    """List every experiment."""
    found = session().tracking.list_experiments()
    if json:
        print_json([experiment_to_dict(e) for e in found])
        return
    rows = [(e.id, e.name, format_time(e.created_at)) for e in found]
    table("Experiments", ("id", "name", "created"), rows)
