"""Run a Cairn server: open the stores, build the app, serve it with uvicorn until stopped.

    python -m cairn.server.launch --db sqlite:///cairn.db --artifacts ./artifacts --port 5000

The CLI's ``cairn server`` and the integration tests start the server through :func:`serve`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

# At the top, not in serve(): `cairn server` imports this module inside a try that turns a
# missing module into "pip install 'cairn-mlops[server]'".
import uvicorn

from cairn.backends import in_database
from cairn.config import Settings, load_settings
from cairn.core.actor import acting_as
from cairn.server.app import create_app
from cairn.session import Session


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 5000, auth: bool = True) -> None:
    """Serve the stores the settings name until SIGINT or SIGTERM, then close them.

    With ``auth`` (the default) every route but /health needs an API token; at the first
    start of a store without an admin, one is made and its token printed once.

    Raises:
        InvalidInput, MissingExtra, SchemaError: a store cannot be opened.
    """
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    session = Session(settings)
    try:
        # The server decides for each caller: it serves services built for each.
        metadata, artifacts = session.database, session.artifacts
        identity = in_database(metadata, "accounts")  # authenticates, makes the first admin
        app = create_app(
            session.metadata_for_callers(), session.objects_for_callers(), identity,
            auth=auth, catalog_service=session.catalog_for_callers(),
            registry_service=session.registry_for_callers(),
            walk_service=session.walks_for_callers(),
            release_service=session.releases_for_callers(), limits=settings.server,
            accounts_service=session.accounts_for_callers(),
            monitor_service=session.monitors_for_callers(),
        )  # fmt: skip
        banner = f"Cairn server on http://{host}:{port}\n  metadata:  {metadata!r}\n"
        print(f"{banner}  artifacts: {artifacts!r}", file=sys.stderr, flush=True)
        if not auth:
            print(_NO_AUTH_WARNING, file=sys.stderr, flush=True)
        else:
            _bootstrap_admin(identity)
        # The hundred thousand objects of the loaded app live as long as the server: keep
        # them out of the collector's full passes, which a large response would otherwise
        # trigger and pay for (tens of milliseconds each).
        gc.collect()
        gc.freeze()
        # uvicorn shuts down on SIGTERM, then raises it again with the handler it found
        # installed: this one unwinds the stack, so the stores close (signing the audit
        # trail's tail) and exit handlers run, which the default handler would skip.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        # "auto" picks uvloop and httptools when installed (uvicorn[standard]).
        uvicorn.run(app, host=host, port=port, loop="auto", http="auto", log_level="warning")
    finally:
        session.close()


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


_NO_AUTH_WARNING = (
    "WARNING: authentication is off (--no-auth): anyone who can reach this port may read "
    "and change everything, and is recorded in the audit trail as 'anonymous'"
)


def _bootstrap_admin(identity: Any) -> None:
    """At the first start of a store without an admin: make one, print its token once."""
    if any(user.is_admin for user in identity.list_users()):
        return
    with acting_as("system:bootstrap"):
        taken = {user.name for user in identity.list_users()}
        name = next(n for n in ("admin", *(f"admin-{i}" for i in range(2, 100))) if n not in taken)
        identity.add_user(name, admin=True)
        _, token = identity.create_token(name, "bootstrap")
    print(
        f"first start: admin account {name!r} created; its token, shown this once:\n"
        f"  {token}\n"
        "  export CAIRN_TOKEN=<that token>, then add people with `cairn users add` and "
        "`cairn tokens create`",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cairn.server.launch")
    parser.add_argument("--db", required=True, help="metadata store URL (sqlite:///…)")
    parser.add_argument("--artifacts", required=True, help="artifact store URL or folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--audit-key", help="the key that signs audit checkpoints")
    parser.add_argument("--audit-checkpoints", help="where checkpoints are exported")
    parser.add_argument("--no-auth", action="store_true", help="serve without authentication")
    args = parser.parse_args(argv)
    settings = load_settings(
        db=args.db,
        artifacts=args.artifacts,
        audit_key=args.audit_key,
        audit_checkpoints=args.audit_checkpoints,
    )
    serve(settings, args.host, args.port, auth=not args.no_auth)


if __name__ == "__main__":
    main()
