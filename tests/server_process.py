"""Start a real Cairn server process on a free loopback port, for any test suite.

with running_server("sqlite:///…/cairn.db", str(tmp_path / "artifacts")) as base_url:
    HttpMetadataStore(base_url).list_experiments()
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import httpx

from cairn.core.access import Role
from cairn.core.identity import DEFAULT_PROJECT

STARTUP_TIMEOUT = 30.0  # seconds; a cold start imports FastAPI, SQLAlchemy and Alembic
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(db_url: str, artifacts_url: str, auth: bool = False) -> Iterator[str]:
    """Serve the stores from a subprocess; yield its base URL once /health answers.

    Without ``auth`` the server runs with ``--no-auth`` (the suites that test tracking);
    the access tests make their accounts and tokens in the database first.
    """
    with tempfile.TemporaryFile() as log:
        process, base_url = start_server(db_url, artifacts_url, log, auth=auth)
        try:
            yield base_url
        finally:
            stop(process)


def start_server(
    db_url: str, artifacts_url: str, log: IO[bytes], port: int | None = None, auth: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """A server process, once /health answers, and its base URL; stopping it is the
    caller's (``stop``, or ``kill()`` to crash it)."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "cairn.server.launch",
        "--db", db_url, "--artifacts", artifacts_url, "--port", str(port),
        *([] if auth else ["--no-auth"]),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, process, log)
    except BaseException:
        stop(process)
        raise
    return process, base_url


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{_read(log)}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.05)
    raise RuntimeError(f"the server did not answer /health within {STARTUP_TIMEOUT} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # SIGTERM: uvicorn shuts down and the stores are closed
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def seed_account(db_url: str, name: str, role: Role, project: str = DEFAULT_PROJECT) -> str:
    """Make an account holding ``role`` in ``project``, in a database about to be served
    with authentication on; its token."""
    from cairn.stores.metadata.identity import IdentityStore
    from cairn.stores.metadata.sql import SqlMetadataStore

    seed = SqlMetadataStore(db_url)
    try:
        identity = IdentityStore(seed.engine)
        identity.add_user(name)
        identity.set_role(project, name, role)
        return identity.create_token(name, "tests")[1]
    finally:
        seed.close()


@contextmanager
def serving(app: Any) -> Iterator[httpx.Client]:
    """An ASGI app served by uvicorn over real HTTP on a free loopback port, in a thread of
    this process; a client of it."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start serving")
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
