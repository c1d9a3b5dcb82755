"""Model code never runs in the process that decides a release. A model evaluated for an
``evaluate`` gate runs in a worker process that sees none of the server's secrets, is
stopped at the gate's time limit while the server keeps serving, and whatever it does —
raise, crash, exit, write junk where its answers go — fails the gate, never the server.

The models here are pickles that run code when loaded (``builtins.eval``). The registry's
scan flags them, and a flagged package is never loaded (the last test); so, to see what
the sandbox holds when a gadget gets past the scan, the tests make the scan miss them: the
findings are cleared in the database, and a ``sitecustomize`` on the import path blinds
the scan the worker runs again before loading."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

import cairn
from cairn import sdk
from cairn.governance import evaluate, landlock
from cairn.platform import open_data

SPY = """
import json, os, resource, socket

def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return type(exc).__name__

seen = sorted(k for k in os.environ if k.startswith(("CAIRN", "AWS")) or "SECRET" in k)
found = {
    "environment": seen,
    "key": attempt(lambda: open(KEY, "rb").read()),
    "database": attempt(lambda: open(DATABASE, "rb").read()),
    "server_environment": attempt(lambda: open(f"/proc/{os.getppid()}/environ", "rb").read()),
    "server_port": attempt(lambda: socket.create_connection(("127.0.0.1", PORT), 3).close()),
    "memory_limit": resource.getrlimit(resource.RLIMIT_AS)[0],
}
raise RuntimeError("spy " + json.dumps(found))
"""
SLEEPER = "import time\ntime.sleep(10**6)"
BLIND = """
import importlib.abc, importlib.util, sys

class Blind(importlib.abc.MetaPathFinder):  # the scan of cairn.registry.package finds nothing
    def find_spec(self, name, path, target=None):
        if name != "cairn.registry.package":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.scan_package = lambda package: ()

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Blind())
"""
SECRETS = {"CAIRN_TOKEN": "cairn_t0ken", "AWS_SECRET_ACCESS_KEY": "aws-s3cret",
           "CAIRN_WEBHOOK_SECRET": "hook-s3cret-hook-s3cret",
           "CAIRN_DB": "postgresql://cairn:pa55word@db.internal/cairn"}  # fmt: skip


class Gadget:
    """A model whose pickle, when loaded, makes an object whose ``predict`` runs ``code``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def predict(self, data: Any) -> Any:
        raise AssertionError("never called here: the package is loaded elsewhere")

    def __reduce__(self) -> tuple[Any, ...]:
        made = f"type('Model', (), {{'predict': lambda self, X: exec({self.code!r}, {{}})}})()"
        return (eval, (made,))


def _register(name: str, code: str, db: Path) -> str:
    """Register the gadget as ``name``, then clear what the scan found: the package loads
    as one the scan missed would."""
    version = sdk.models().register(Gadget(code), name)
    assert version.flagged  # builtins.eval: the scan saw it
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE model_versions SET findings = '[]' WHERE model = :m"),
                           {"m": name})  # fmt: skip
    engine.dispose()
    return version.ref


def _blind_scan(folder: Path) -> Path:
    """A folder whose ``sitecustomize`` blinds the scan of any Python that imports from it."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(BLIND)
    return folder


def _holdout(folder: Path) -> None:
    folder.mkdir()
    rows = ["x,label"] + [f"{i},{i % 2}" for i in range(20)]
    (folder / "holdout.csv").write_text("\n".join(rows) + "\n")
    open_data(sdk.platform().settings, folder.parent).add(folder, name="holdout")


def _policy(timeout: float) -> str:
    return ("gates:\n  - evaluate:\n      data: holdout@latest\n      target: label\n"
            f"      metrics: {{accuracy: '>= 0.5'}}\n      timeout: {timeout}\n")  # fmt: skip


def _reason(check: dict[str, Any]) -> str:
    [gate] = check["gates"]
    assert not gate["passed"]
    return str(gate["reason"])


@dataclass
class Server:
    url: str
    pid: int
    key: Path
    db: Path
    port: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose environment holds secrets, over a store with the spy, the sleeper
    and a held-out table, and with an environment for each."""
    from server_process import free_port, start_server, stop

    root = tmp_path_factory.mktemp("isolation")
    db, artifacts, key = root / "server.db", root / "objects", root / "keys" / "audit.pem"
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAIRN_HOME", str(root / "home"))
        patch.setenv("CAIRN_DB", f"sqlite:///{db}")
        patch.setenv("CAIRN_ARTIFACTS", str(artifacts))
        spy = SPY.replace("KEY", repr(str(key))).replace("DATABASE", repr(str(db)))
        _register("spy", spy.replace("PORT", str(port)), db)
        _register("sleeper", SLEEPER, db)
        _holdout(root / "holdout")
        cairn.releases.create_environment("production", _policy(60))
        cairn.releases.create_environment("staging", _policy(2))
        sdk._forget_models()
        sdk._platform.close()  # type: ignore[union-attr]
        sdk._platform = None
        for name, value in {**SECRETS, "CAIRN_AUDIT_KEY": str(key)}.items():
            patch.setenv(name, value)
        patch.setenv(
            "PYTHONPATH", str(_blind_scan(root / "blind"))
        )  # the server's import path: its workers'
        log = (root / "server.log").open("w+b")
        process, url = start_server(f"sqlite:///{db}", str(artifacts), log, port=port)
    try:
        yield Server(url, process.pid, key, db, port)
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module")
def spied(server: Server) -> dict[str, Any]:
    """What the spy saw from inside the worker, as it reported it in its exception."""
    answer = httpx.post(f"{server.url}/api/v1/environments/production/check",
                        json={"ref": "spy/1"}, timeout=120)  # fmt: skip
    assert answer.status_code == 200, answer.text
    reason = _reason(answer.json())
    found = re.search(r"the model raised RuntimeError: spy (\{.*\})", reason)
    assert found, reason
    return dict(json.loads(found.group(1)))


@pytest.mark.slow
def test_a_model_evaluated_for_a_gate_sees_none_of_the_servers_secrets(
    server: Server, spied: dict[str, Any]
) -> None:
    assert server.key.is_file()  # the server signs with it
    assert spied["environment"] == []  # no token, database URL, key path, AWS or webhook secret
    assert 0 < spied["memory_limit"] < 2**62  # its address space is limited


@pytest.mark.slow
@pytest.mark.skipif(landlock.abi() < 4, reason="needs Landlock with TCP rules (Linux 6.7+)")
def test_a_model_evaluated_for_a_gate_reads_no_file_and_reaches_no_port_of_the_server(
    spied: dict[str, Any],
) -> None:
    assert spied["key"] == "PermissionError"  # the audit key, named by its path
    assert spied["database"] == "PermissionError"
    assert spied["server_environment"] == "PermissionError"  # /proc/<server>/environ
    assert spied["server_port"] == "PermissionError"


@pytest.mark.slow
def test_a_model_that_never_returns_fails_its_gate_on_time_while_the_server_serves(
    server: Server,
) -> None:
    answered: dict[str, Any] = {}

    def check() -> None:
        started = time.monotonic()
        answer = httpx.post(f"{server.url}/api/v1/environments/staging/check",
                            json={"ref": "sleeper/1"}, timeout=120)  # fmt: skip
        answered.update(answer=answer, seconds=time.monotonic() - started)

    checking = threading.Thread(target=check)
    checking.start()
    time.sleep(0.5)  # the worker sleeps now
    assert _workers(server.pid), "no worker process is running the model"
    for _ in range(3):  # the server answers others meanwhile, at once
        started = time.monotonic()
        assert httpx.get(f"{server.url}/api/v1/environments", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.0
    checking.join(60)
    assert answered["answer"].status_code == 200
    assert "did not finish within 2 s: it was stopped" in _reason(answered["answer"].json())
    assert answered["seconds"] < 30
    assert _workers(server.pid) == []  # killed, not left running


def _workers(server_pid: int) -> list[int]:
    """The server's worker processes still alive."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = re.search(r"^PPid:\s+(\d+)", status, re.M)
        if parent and int(parent.group(1)) == server_pid and b"governance.worker" in command:
            found.append(int(entry.name))
    return found


# Embedded, through the SDK: the same worker, whatever the model does


def _embedded(name: str, code: str, cairn_home: Path, tmp_path: Path) -> str:
    sdk.platform()
    sys.path.insert(0, str(_blind_scan(tmp_path / "blind")))  # the workers' import path
    _holdout(tmp_path / "holdout")
    cairn.releases.create_environment("production", _policy(60))
    return _register(name, code, cairn_home / "cairn.db")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        pytest.param("import os\nos._exit(3)",
                     "the worker process exited with code 3 before answering", id="exits"),
        pytest.param("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
                     "was killed by SIGKILL", id="crashes"),
        pytest.param("import sys\nsys.exit(0)", "the model raised SystemExit: 0",
                     id="calls-sys-exit"),
        pytest.param("import os\nfor fd in range(3, 10):\n    try: os.write(fd, b'junk\\n')\n"
                     "    except OSError: pass\nos._exit(0)",
                     "answered with something other than JSON", id="writes-junk-answers"),
        pytest.param("print('chatty', flush=True)\nraise ValueError('bad input')",
                     "the model raised ValueError: bad input", id="prints-then-raises"),
    ],
)  # fmt: skip
def test_whatever_the_model_does_fails_its_gate_with_a_reason(
    code: str, reason: str, cairn_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # restored after the test
    ref = _embedded("rogue", code, cairn_home, tmp_path)
    check = cairn.releases.check(ref, "production")
    [gate] = check.gates
    assert not gate.passed
    assert gate.reason.startswith("could not evaluate on holdout@latest: ")
    assert reason in gate.reason


def test_a_flagged_package_is_refused_before_any_process_starts(
    cairn_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk.platform()
    _holdout(tmp_path / "holdout")
    cairn.releases.create_environment("production", _policy(60))
    version = sdk.models().register(Gadget("raise SystemExit"), "flagged")
    started: list[str] = []
    monkeypatch.setattr(evaluate, "run_worker", lambda *args: started.append("worker"))
    [gate] = cairn.releases.check(version.ref, "production").gates
    assert not gate.passed
    assert "is flagged (" in gate.reason
    assert "an evaluation does not run a flagged package's code" in gate.reason
    assert started == []
