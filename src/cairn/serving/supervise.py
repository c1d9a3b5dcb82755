"""Local deployments: a model server kept running by a supervisor process.

``cairn deploy production --model churn --target local`` starts a supervisor, detached
from the terminal, that runs ``cairn serve churn@production`` and starts it again whenever
it dies — after 1 s, then 2, 4 … up to 30 s while it keeps dying, from 1 s again once it
has run a minute. Its state (the supervisor's and the server's process ids, the restarts,
the command) and the server's output live under ``<home>/deployments/<name>/``, where
``cairn deploy status|logs|stop`` find them.

    python -m cairn.serving.supervise FOLDER -- COMMAND …   # what the deploy starts
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput, NotFound

STATE, LOG = "state.json", "server.log"
_BACKOFF_MAX, _HEALTHY_AFTER = 30.0, 60.0


@dataclass(frozen=True)
class Deployed:
    """A local deployment, as its state file says."""

    name: str
    reference: str
    port: int
    command: list[str]
    supervisor_pid: int
    server_pid: int | None
    restarts: int
    started_at: float  # the supervisor's start, seconds since the epoch

    @property
    def running(self) -> bool:
        return _alive(self.supervisor_pid)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "running": self.running}


def start(folder: Path, name: str, reference: str, port: int, command: list[str]) -> Deployed:
    """Start a supervisor for ``command`` (a ``cairn serve``) in ``folder``.

    Raises:
        InvalidInput: a deployment of this name is running already.
    """
    found = _read(folder)
    if found is not None and found.running:
        raise InvalidInput(f"deployment {name!r} is running already (pid "
                           f"{found.supervisor_pid}): cairn deploy stop {name}")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE).unlink(missing_ok=True)
    meta = {"name": name, "reference": reference, "port": port}
    (folder / "deployment.json").write_text(json.dumps(meta))
    process = subprocess.Popen(
        [sys.executable, "-m", "cairn.serving.supervise", str(folder), "--", *command],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # not the terminal's: it outlives the command
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while (found := _read(folder)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise InvalidInput(f"the supervisor did not start; see {folder / LOG}")
        time.sleep(0.05)
    return found


def listed(root: Path) -> list[Deployed]:
    """Every local deployment under ``root``, running or not."""
    if not root.is_dir():
        return []
    found = [_read(folder) for folder in sorted(root.iterdir())]
    return [d for d in found if d is not None]


def find(root: Path, name: str) -> Deployed:
    """Raises:
    NotFound: no deployment of this name (naming those there are).
    """
    found = _read(root / name) if (root / name).is_dir() else None
    if found is None:
        known = ", ".join(d.name for d in listed(root)) or "none"
        raise NotFound(f"no local deployment {name!r} (there are: {known})")
    return found


def stop(root: Path, name: str) -> Deployed:
    """Stop the supervisor, which stops its server first.

    Raises:
        NotFound: no deployment of this name.
    """
    found = find(root, name)
    if found.running:
        os.kill(found.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(found.supervisor_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return found


def supervise(folder: Path, command: list[str]) -> None:
    """Run ``command`` until told to stop (SIGTERM or SIGINT), starting it again each time
    it dies."""
    meta = json.loads((folder / "deployment.json").read_text())
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop_now(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)
    restarts, pause, started = 0, 1.0, time.time()
    with (folder / LOG).open("ab") as log:
        while not stopping:
            began = time.monotonic()
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)  # fmt: skip
            _write(folder, Deployed(meta["name"], meta["reference"], meta["port"], command,
                                    os.getpid(), child.pid, restarts, started))  # fmt: skip
            code = child.wait()
            if stopping:
                break
            pause = 1.0 if time.monotonic() - began > _HEALTHY_AFTER else pause
            log.write(f"cairn deploy: the server exited ({code}); starting it again in "
                      f"{pause:.0f} s\n".encode())  # fmt: skip
            log.flush()
            time.sleep(pause)
            restarts, pause = restarts + 1, min(pause * 2, _BACKOFF_MAX)
    _write(folder, Deployed(meta["name"], meta["reference"], meta["port"], command,
                            os.getpid(), None, restarts, started))  # fmt: skip


def _read(folder: Path) -> Deployed | None:
    try:
        data = json.loads((folder / STATE).read_text())
        return Deployed(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write(folder: Path, deployed: Deployed) -> None:
    temporary = folder / f".{STATE}.tmp"
    temporary.write_text(json.dumps(asdict(deployed)))
    temporary.replace(folder / STATE)  # whole or not at all, for a reader at any moment


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


if __name__ == "__main__":
    where, _, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    supervise(Path(where), rest)
