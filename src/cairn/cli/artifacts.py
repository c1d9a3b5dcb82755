"""``cairn artifacts``: list and fetch a run's files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cairn.cli.context import session
from cairn.cli.output import byte_progress, console, format_size, print_json, table
from cairn.core.artifact import clean_artifact_path
from cairn.core.codec import entry_to_dict
from cairn.errors import InvalidInput

app = typer.Typer(help="Artifacts: the files a run logged.", no_args_is_help=True)

RunRef = Annotated[str, typer.Argument(help="Run id, or a unique prefix of 8+ characters.")]


@app.command("list")
def list_artifacts(
    run_ref: RunRef,
    path: Annotated[str, typer.Argument(help="A folder of the run's artifacts.")] = "",
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the files and folders under a path of a run's artifacts."""
    entries = session().tracking.list_artifacts(run_ref, path)
    if json:
        print_json([{**entry_to_dict(e), "is_dir": e.is_dir} for e in entries])
        return
    rows = [
        (e.path + ("/" if e.is_dir else ""), format_size(e.size), (e.digest or "")[:19])
        for e in entries
    ]
    table(f"Artifacts of {run_ref} /{path}", ("path", "size", "digest"), rows)


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
