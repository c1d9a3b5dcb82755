"""``cairn artifacts``: list and fetch a run's files."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cairn.cli.context import session
from cairn.cli.options import Json, RunRef
from cairn.cli.output import byte_progress, console, format_size
from cairn.cli.report import Report, Table, View, render
from cairn.core.artifact import clean_artifact_path
from cairn.core.codec import entry_to_dict
from cairn.errors import InvalidInput

if TYPE_CHECKING:
    from cairn.tracking.service import TrackingService

app = typer.Typer(help="Artifacts: the files a run logged.", no_args_is_help=True)


@app.command("list")
def list_artifacts(
    run_ref: RunRef,
    path: Annotated[str, typer.Argument(help="A folder of the run's artifacts.")] = "",
    json: Json = False,
) -> None:
    """List the files and folders under a path of a run's artifacts."""
    render(list_report(session().tracking, run_ref, path), json)


def list_report(
    tracking: TrackingService, run_ref: str, path: str = ""
) -> Report[list[dict[str, Any]]]:
    """The files and folders directly under a path of a run's artifacts."""
    entries = tracking.list_artifacts(run_ref, path)
    data = [{**entry_to_dict(e), "is_dir": e.is_dir} for e in entries]
    return Report(data, partial(_list_views, f"Artifacts of {run_ref} /{path}"))


def _list_views(title: str, entries: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (e["path"] + ("/" if e["is_dir"] else ""), format_size(e["size"]), (e["digest"] or "")[:19])
        for e in entries
    ]
    yield Table(title, ("path", "size", "digest"), rows)


@app.command("get")
def get(
    run_ref: RunRef,
    path: Annotated[
        str, typer.Argument(help="A file or folder of the run's artifacts ('.' for all).")
    ],
    to: Annotated[Path, typer.Option("--to", help="Folder to write into.")] = Path(),
) -> None:
    """Download a file or a folder of a run's artifacts, verified against its digest."""
    if not path.strip():  # most likely an unset shell variable: say so rather than fetch all
        raise InvalidInput(
            f"path is empty: name a file or folder of the run's artifacts, or '.' for all "
            f"of them (see `cairn artifacts list {run_ref}`)"
        )
    tracking = session().tracking
    run_id = tracking.resolve(run_ref)
    entries = tracking.metadata.list_artifacts(run_id, clean_artifact_path(path, "path"))
    total = sum(e.size for e in entries)
    with byte_progress(f"downloading {path}", total, enabled=console.is_terminal) as advance:
        written = tracking.download_artifacts(run_id, path, to, advance)
    console.print(f"wrote {len(written)} files ({format_size(total)}) under {to}")
