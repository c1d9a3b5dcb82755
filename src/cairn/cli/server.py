"""``cairn server``: the team server over the REST API."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.config import load_settings
from cairn.errors import MissingExtra


def server(
    db: Annotated[
        str | None,
        typer.Option(help="Metadata database: sqlite:///PATH or postgresql://USER@HOST/DB."),
    ] = None,
    artifacts: Annotated[
        str | None, typer.Option(help="Artifact store: a folder, or s3://BUCKET/PREFIX.")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    audit_key: Annotated[
        str | None,
        typer.Option(help="The Ed25519 key that signs audit checkpoints (created if missing)."),
    ] = None,
    audit_checkpoints: Annotated[
        str | None,
        typer.Option(help="Where signed checkpoints are exported: a folder or s3://…"),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Serve without authentication (prints a warning)."),
    ] = False,
) -> None:
    """Serve a metadata database and an artifact store over HTTP (default: the embedded store)."""
    try:
        from cairn.server.launch import serve
    except ModuleNotFoundError as exc:
        raise MissingExtra(
            f"the server needs {exc.name!r}: pip install 'cairn-mlops[server]'"
        ) from exc
    settings = load_settings(
        db=db, artifacts=artifacts, audit_key=audit_key, audit_checkpoints=audit_checkpoints
    )
    serve(settings, host, port, auth=not no_auth)
