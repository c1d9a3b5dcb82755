"""The ``cairn`` entry point: sub-command groups and the one place errors are printed.

A ``CairnError`` is the user's to fix: one line on stderr, exit code 1. So is an error the
operating system reports about a file (``OSError`` with an errno: a file no one may read, a
folder that does not exist, a full disk): one line naming the path and what the system
said, exit code 1. Anything else is Cairn's fault: "internal error" with the traceback,
exit code 2.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import traceback
from typing import Annotated, NoReturn

import typer

from cairn._version import __version__
from cairn.errors import CairnError

# Every command: its name → where it is defined ("module:attribute" under cairn.cli); a
# group is a Typer app, a command a function. In the order `cairn --help` lists them.
_GROUPS = {
    "experiments": "experiments:app",
    "runs": "runs:app",
    "artifacts": "artifacts:app",
    "data": "data:app",
    "audit": "audit:app",
    "pipelines": "pipelines:app",
    "models": "models:app",
    "envs": "releases:envs",
    "requests": "releases:requests",
    "gate": "releases:gate",
    "webhooks": "releases:webhooks",
    "monitor": "monitor:app",
    "users": "identity:users",
    "tokens": "identity:tokens",
    "projects": "identity:projects",
}
_COMMANDS = {
    "run": "pipelines:run",
    "sweep": "pipelines:sweep",
    "reproduce": "pipelines:reproduce",
    "server": "server:server",
    "quickstart": "quickstart:quickstart",
    "login": "login:login",
    "lineage": "lineage:lineage",
    "promote": "releases:promote",
    "approve": "releases:approve",
    "reject": "releases:reject",
    "rollback": "releases:rollback",
    "serve": "serve:serve",
    "deploy": "deploy:deploy",
}


def build_app(invoked: str | None = None) -> typer.Typer:
    """The ``cairn`` command line. With the command that was ``invoked`` known, only its
    module is imported and only it is built: a command does not pay for the others'
    imports and signatures (a tenth of a second here). Help and unknown commands get all.
    """
    app = typer.Typer(
        name="cairn",
        help="Cairn: track, version, package, govern, serve and monitor machine learning.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    known = invoked in _GROUPS or invoked in _COMMANDS
    for name, where in _GROUPS.items():
        if not known or name == invoked:
            app.add_typer(_defined(where), name=name)
    for name, where in _COMMANDS.items():
        if not known or name == invoked:
            app.command(name)(_defined(where))
    return app


def _defined(where: str) -> typer.Typer:
    module, _, attribute = where.partition(":")
    found: typer.Typer = getattr(importlib.import_module(f"cairn.cli.{module}"), attribute)
    return found


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cairn {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Cairn: track, version, package, govern, serve and monitor machine learning."""


def main() -> None:
    try:
        _run_command()
    finally:
        # The command is done; what is left is the interpreter's teardown, whose garbage
        # collection over every imported module's objects took 0.15-0.2 s of a 0.7 s
        # command here. Frozen objects are skipped by it; everything is still released
        # and finalized as modules are torn down (files, database connections).
        gc.freeze()


def _run_command() -> None:
    try:
        # Outside standalone mode, click returns the code of a `typer.Exit` instead of exiting.
        invoked = sys.argv[1] if len(sys.argv) > 1 else None
        code = build_app(invoked)(standalone_mode=False)
    except CairnError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(1)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # a usage error: typer has the words for it
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print(f"Error: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:
        _report_system_error(exc)
    except Exception:  # noqa: BLE001  # the last resort: report a bug, never hide it
        _report_bug()
    if isinstance(code, int) and code:
        sys.exit(code)


def _report_system_error(exc: OSError) -> NoReturn:
    """One line for what the operating system refused; an ``OSError`` without an errno
    was raised by code, not by the system, and is reported as a bug."""
    if exc.errno is None:
        _report_bug()
    paths = [os.fsdecode(name) for name in (exc.filename, exc.filename2) if _is_path(name)]
    where = f"{' -> '.join(paths)}: " if paths else ""
    print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
    sys.exit(1)


def _is_path(name: object) -> bool:
    return isinstance(name, str | bytes)  # not None, nor the number of a file descriptor


def _report_bug() -> NoReturn:
    traceback.print_exc()
    print(
        "internal error: this is a bug in Cairn; please report it with the traceback above",
        file=sys.stderr,
    )
    sys.exit(2)
