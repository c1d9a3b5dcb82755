"""Run a Cairn server: open the stores, build the app, serve it with uvicorn until stopped.

    python -m cairn.server.launch --db sqlite:///cairn.db --artifacts ./artifacts --port 5000

The CLI's ``cairn server`` and the integration tests start the server through :func:`serve`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence

# At the top, not in serve(): `cairn server` imports this module inside a try that turns a
# missing module into "pip install 'cairn-mlops[server]'".
import uvicorn

from cairn.config import Settings, load_settings
from cairn.platform import open_artifact_store, open_audited_metadata_store
from cairn.server.app import create_app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Serve the stores the settings name until SIGINT or SIGTERM, then close them.

    Raises:
        InvalidInput, MissingExtra, SchemaError: a store cannot be opened.
    """
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    metadata = open_audited_metadata_store(settings.db_url, settings)
    try:
        artifacts = open_artifact_store(settings.artifacts_url)
        app = create_app(metadata, artifacts)
        banner = f"Cairn server on http://{host}:{port}\n  metadata:  {metadata!r}\n"
        print(f"{banner}  artifacts: {artifacts!r}", file=sys.stderr, flush=True)
        # The hundred thousand objects of the loaded app live as long as the server: keep
        # them out of the collector's full passes, which a large response would otherwise
        # trigger and pay for (tens of milliseconds each).
        gc.collect()
        gc.freeze()
        # "auto" picks uvloop and httptools when installed (uvicorn[standard]).
        uvicorn.run(app, host=host, port=port, loop="auto", http="auto", log_level="warning")
    finally:
        metadata.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cairn.server.launch")
    parser.add_argument("--db", required=True, help="metadata store URL (sqlite:///…)")
    parser.add_argument("--artifacts", required=True, help="artifact store URL or folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--audit-key", help="the key that signs audit checkpoints")
    parser.add_argument("--audit-checkpoints", help="where checkpoints are exported")
    args = parser.parse_args(argv)
    settings = load_settings(
        db=args.db,
        artifacts=args.artifacts,
        audit_key=args.audit_key,
        audit_checkpoints=args.audit_checkpoints,
    )
    serve(settings, args.host, args.port)


if __name__ == "__main__":
    main()
