"""The options and arguments commands share, each defined once: ``--json``, ``--db``, and
the references to a run, a model version and a data version."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["SECRET_VARIABLE", "DataRef", "Db", "Json", "ModelRef", "RunRef"]

# Where a webhook's shared secret is read from (never an option: it would show in `ps`).
SECRET_VARIABLE = "CAIRN_WEBHOOK_SECRET"  # noqa: S105  # a variable's name, not a secret

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Work in this metadata database directly, never through a server: "
        "sqlite:///PATH or postgresql://USER@HOST/DB (default: the configured store).",
    ),
]
RunRef = Annotated[str, typer.Argument(help="Run id, or a unique prefix of 8+ characters.")]
ModelRef = Annotated[
    str, typer.Argument(help="A model version: churn/3, churn@champion, or churn (the newest).")
]
DataRef = Annotated[
    str, typer.Argument(help="NAME@VERSION, NAME@latest, NAME, or NAME@<digest prefix>.")
]
