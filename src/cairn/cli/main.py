"""The ``cairn`` entry point: sub-command groups and the one place errors are printed.

A ``CairnError`` is the user's to fix: one line on stderr, exit code 1. Anything else is
Cairn's fault: "internal error" with the traceback, exit code 2.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import click
import typer

from cairn._version import __version__
from cairn.cli import (
    artifacts,
    audit,
    data,
    experiments,
    identity,
    login,
    pipelines,
    quickstart,
    runs,
    server,
)
from cairn.errors import CairnError

app = typer.Typer(
    name="cairn",
    help="Cairn: track, version, package, govern, serve and monitor machine learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(data.app, name="data")
app.add_typer(audit.app, name="audit")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(identity.users, name="users")
app.add_typer(identity.tokens, name="tokens")
app.add_typer(identity.projects, name="projects")
app.command("run")(pipelines.run)
app.command("sweep")(pipelines.sweep)
app.command("reproduce")(pipelines.reproduce)
app.command("server")(server.server)
app.command("quickstart")(quickstart.quickstart)
app.command("login")(login.login)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cairn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Cairn: track, version, package, govern, serve and monitor machine learning."""


def main() -> None:
    try:
        # Outside standalone mode, click returns the code of a `typer.Exit` instead of exiting.
        code = app(standalone_mode=False)
    except CairnError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(1)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as exc:  # a usage error: typer has the words for it
        exc.show()
        sys.exit(exc.exit_code)
    except Exception:  # noqa: BLE001  # the last resort: report a bug, never hide it
        traceback.print_exc()
        print(
            "internal error: this is a bug in Cairn; please report it with the traceback above",
            file=sys.stderr,
        )
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)
