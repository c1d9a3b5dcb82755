"""Model code never runs in the process that decides a release. A model evaluated for an
``evaluate`` gate runs in a worker process that sees none of the server's secrets or
files (not even the project on the caller's import path), reaches no socket by any
protocol, is stopped at the gate's time limit while the server keeps serving, and whatever
it does — raise, crash, exit, write junk where its answers go, talk at length — fails the
gate with a short reason, never the server.

The models here are pickles that run code when loaded (``builtins.eval``). The registry's
scan flags them, and a flagged package is never loaded (the last test); so, to see what
the sandbox holds when a gadget gets past the scan, the tests make the scan miss them: the
findings are cleared in the database, and a ``sitecustomize`` in a folder the workers are
made to import from blinds the scan the worker runs again before loading."""

from __future__ import annotations

import json
import logging
import os
import re
import site
import socket
import subprocess
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
from cairn.releases import evaluate, landlock, readable, seccomp
from cairn.releases.sandbox import SAID

ATTEMPT = """
import ctypes, errno, json, os, resource, socket

def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, type(exc).__name__)

def read(path):
    return lambda: open(path, "rb").read()

def connect(family, address, protocol=0):
    def action():
        with socket.socket(family, socket.SOCK_STREAM, protocol) as sock:
            sock.settimeout(3)
            sock.connect(address)
    return action

def send(address):
    def action():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"spy", address)
    return action

def io_uring():  # io_uring_setup(8, params): io_uring makes and connects sockets itself
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(425, 8, ctypes.create_string_buffer(120)) < 0:
        raise OSError(ctypes.get_errno(), "io_uring_setup")
"""
# What each spy tries from inside the worker, answered in its exception (kept short: a
# gate's reason carries the first SAID characters of what a model says).
SPY = (
    ATTEMPT
    + """
found = {
    "env": sorted(k for k in os.environ if k.startswith(("CAIRN", "AWS")) or "SECRET" in k),
    "key": attempt(read(KEY)),
    "db": attempt(read(DATABASE)),
    "environ": attempt(read(f"/proc/{os.getppid()}/environ")),
    "mem": resource.getrlimit(resource.RLIMIT_AS)[0],
}
raise RuntimeError("spy " + json.dumps(found, separators=(",", ":")))
"""
)
NET_SPY = (
    ATTEMPT
    + """
found = {
    "tcp": attempt(connect(socket.AF_INET, ("127.0.0.1", SERVER_PORT))),
    "mptcp": attempt(connect(socket.AF_INET, ("127.0.0.1", SERVER_PORT), 262)),  # IPPROTO_MPTCP
    "udp": attempt(send(("127.0.0.1", UDP_PORT))),
    "unix": attempt(connect(socket.AF_UNIX, SERVER_SOCKET)),
    "pg": attempt(connect(socket.AF_UNIX, "/var/run/postgresql/.s.PGSQL.5432")),
    "uring": attempt(io_uring),
}
raise RuntimeError("spy " + json.dumps(found, separators=(",", ":")))
"""
)
SLEEPER = "import time\ntime.sleep(10**6)"
BLIND = """
import importlib.abc, importlib.util, sys
from pathlib import Path

HERE = Path(__file__).parent


def blind_scan(module):  # the scan of cairn.models.package finds nothing
    module.scan_package = lambda package: ()


def import_from_here(module):  # workers import from this folder too: this blinds theirs
    found = module.import_folders
    module.import_folders = lambda private: [*found(private), HERE]


PATCHES = {"cairn.models.package": blind_scan, "cairn.releases.readable": import_from_here}


class Blind(importlib.abc.MetaPathFinder):
    busy = False

    def find_spec(self, name, path, target=None):
        if name not in PATCHES or self.busy:
            return None
        self.busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy = False
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            PATCHES[name](module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, Blind())
"""
SECRETS = {"CAIRN_TOKEN": "cairn_t0ken", "AWS_SECRET_ACCESS_KEY": "aws-s3cret",
           "CAIRN_WEBHOOK_SECRET": "hook-s3cret-hook-s3cret",
           "CAIRN_DB": "postgresql://cairn:pa55word@db.internal/cairn"}  # fmt: skip


class Gadget:
    """A model whose pickle, when loaded, makes an object whose ``predict`` runs ``code``
    on ``X`` and returns what it left in ``predicted``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def predict(self, data: Any) -> Any:
        raise AssertionError("never called here: the package is loaded elsewhere")

    def __reduce__(self) -> tuple[Any, ...]:
        run = f"(lambda names: (exec({self.code!r}, names), names.get('predicted'))[1])"
        made = f"type('Model', (), {{'predict': lambda self, X: {run}({{'X': X}})}})()"
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
    sdk.session().data_in(folder.parent).add(folder, name="holdout")


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
    udp: socket.socket  # a UDP port listening on the loopback, as a DNS or metrics daemon


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose environment holds secrets, listening on TCP and on a Unix socket,
    over a store with the spies, the sleeper and a held-out table, and with an environment
    for each."""
    from server_process import free_port, start_server, stop

    root = tmp_path_factory.mktemp("isolation")
    db, artifacts, key = root / "server.db", root / "objects", root / "keys" / "audit.pem"
    port = free_port()
    udp, unix = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_UNIX)
    udp.bind(("127.0.0.1", 0))
    unix.bind(str(root / "server.sock"))  # as the server's own, or a database's
    unix.listen()
    net = NET_SPY.replace("SERVER_PORT", str(port)).replace("UDP_PORT", str(udp.getsockname()[1]))
    spies = {"spy": SPY.replace("KEY", repr(str(key))).replace("DATABASE", repr(str(db))),
             "net": net.replace("SERVER_SOCKET", repr(str(root / "server.sock")))}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAIRN_HOME", str(root / "home"))
        patch.setenv("CAIRN_DB", f"sqlite:///{db}")
        patch.setenv("CAIRN_ARTIFACTS", str(artifacts))
        for name, code in {**spies, "sleeper": SLEEPER}.items():
            _register(name, code, db)
        _holdout(root / "holdout")
        cairn.releases.create_environment("production", _policy(60))
        cairn.releases.create_environment("staging", _policy(2))
        sdk.close()
        for name, value in {**SECRETS, "CAIRN_AUDIT_KEY": str(key)}.items():
            patch.setenv(name, value)
        # The server imports the blinding folder; it makes the server's workers import it.
        patch.setenv("PYTHONPATH", str(_blind_scan(root / "blind")))
        log = (root / "server.log").open("w+b")
        process, url = start_server(f"sqlite:///{db}", str(artifacts), log, port=port)
    try:
        yield Server(url, process.pid, key, db, udp)
    finally:
        stop(process)
        log.close()
        udp.close()
        unix.close()


def _spied(server: Server, name: str) -> dict[str, Any]:
    """What the spy ``name`` saw from inside the worker, as it said in its exception."""
    answer = httpx.post(f"{server.url}/api/v1/environments/production/check",
                        json={"ref": f"{name}/1"}, timeout=120)  # fmt: skip
    assert answer.status_code == 200, answer.text
    reason = _reason(answer.json())
    found = re.search(r"the model raised RuntimeError: spy (\{.*\})", reason)
    assert found, reason
    return dict(json.loads(found.group(1)))


@pytest.fixture(scope="module")
def spied(server: Server) -> dict[str, Any]:
    return _spied(server, "spy")


@pytest.mark.slow
def test_a_model_evaluated_for_a_gate_sees_none_of_the_servers_secrets(
    server: Server, spied: dict[str, Any]
) -> None:
    assert server.key.is_file()  # the server signs with it
    assert spied["env"] == []  # no token, database URL, key path, AWS or webhook secret
    assert 0 < spied["mem"] < 2**62  # its address space is limited


@pytest.mark.slow
@pytest.mark.skipif(landlock.abi() < 1, reason="needs Landlock (Linux 5.13+)")
def test_a_model_evaluated_for_a_gate_reads_no_file_of_the_server(
    spied: dict[str, Any],
) -> None:
    assert spied["key"] == "EACCES"  # the audit key, named by its path
    assert spied["db"] == "EACCES"
    assert spied["environ"] == "EACCES"  # /proc/<server>/environ


@pytest.mark.slow
@pytest.mark.skipif(not seccomp.available(), reason="Unix sockets are refused with libseccomp")
def test_a_model_evaluated_for_a_gate_reaches_no_socket_whatever_the_protocol(
    server: Server,
) -> None:
    spied = _spied(server, "net")
    refused = {"tcp": "EACCES",  # the server's own port, on the loopback
               "mptcp": "EACCES",  # the same port through MPTCP, which Landlock lets by
               "udp": "EACCES", "unix": "EACCES",  # the server's Unix socket
               "pg": "EACCES",  # PostgreSQL's Unix socket, where it runs here
               "uring": "EACCES"}  # fmt: skip
    assert spied == refused
    server.udp.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing came
        server.udp.recv(100)


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
        if parent and int(parent.group(1)) == server_pid and b"releases.worker" in command:
            found.append(int(entry.name))
    return found


# Embedded, through the SDK: the same worker, whatever the model does

FAILED = "could not evaluate on holdout@latest: "
READER = """
import errno, json

def attempt(path):
    try:
        open(path, "rb").read()
        return "done"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, type(exc).__name__)

raise RuntimeError("read " + json.dumps({name: attempt(path) for name, path in PATHS.items()}))
"""


def _embedded(
    name: str, code: str, cairn_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    sdk.session()
    blind, found = _blind_scan(tmp_path / "blind"), readable.import_folders
    monkeypatch.setattr(readable, "import_folders", lambda private: [*found(private), blind])
    _holdout(tmp_path / "holdout")
    cairn.releases.create_environment("production", _policy(60))
    return _register(name, code, cairn_home / "cairn.db")


def _failed(code: str, cairn_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Why the gate of a model running ``code`` failed, after "could not evaluate on …"."""
    ref = _embedded("rogue", code, cairn_home, tmp_path, monkeypatch)
    [gate] = cairn.releases.check(ref, "production").gates
    assert not gate.passed
    assert gate.reason.startswith(FAILED)
    return gate.reason.removeprefix(FAILED)


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
    assert reason in _failed(code, cairn_home, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("code", "cairns"),
    [
        pytest.param("raise ValueError('read: ' + 'x' * 5000 + chr(10) + 'next line')", "",
                     id="raises"),
        pytest.param("import os, sys\nsys.stderr.write('read: ' + 'x' * 5000 + chr(10))\n"
                     "sys.stderr.flush()\nos._exit(3)",
                     "the worker process exited with code 3 before answering; its last words: ",
                     id="writes-to-its-log"),
        pytest.param("predicted = ['read: ' + 'x' * 5000 + chr(10) + 'next line'] * len(X)",
                     "its predictions could not be scored: ", id="predicts-labels-quoted"),
    ],
)  # fmt: skip
def test_what_a_model_says_reaches_its_gates_reason_as_one_short_line(
    code: str, cairns: str, cairn_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate's reason is shown to the project's readers: what a model's code says in it
    (its exception, its last words, labels a metric quotes) is cut to one short line."""
    reason = _failed(code, cairn_home, tmp_path, monkeypatch)
    assert reason.startswith(cairns)
    said = reason.removeprefix(cairns)
    assert "xxxxxxxx" in said  # it still says something
    assert len(said) <= SAID
    assert "next line" not in reason


def test_a_project_on_the_callers_import_path_is_not_readable_from_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python project/release.py`` puts the project folder on the caller's import path;
    its store (the signing key, the database) and its code stay out of the worker's reach."""
    project = tmp_path / "project"
    home = project / ".cairn"
    monkeypatch.setenv("CAIRN_HOME", str(home))
    monkeypatch.setattr(sys, "path", [str(project), *sys.path])
    project.mkdir()
    (project / "release.py").write_text("import cairn\n")
    paths = {"key": home / "keys" / "audit-ed25519.pem", "db": home / "cairn.db",
             "script": project / "release.py"}  # fmt: skip
    reader = READER.replace("PATHS", repr({name: str(path) for name, path in paths.items()}))
    reason = _failed(reader, home, tmp_path, monkeypatch)
    assert all(path.is_file() for path in paths.values())  # there to be read
    found = re.search(r"RuntimeError: read (\{.*\})", reason)
    assert found, reason
    assert json.loads(found.group(1)) == {"key": "EACCES", "db": "EACCES", "script": "EACCES"}


def test_a_folder_holding_the_store_is_left_out_of_what_a_worker_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A project installed in place (``pip install -e .``) is on the interpreter's own
    import path: a worker still may not read it while it holds the store, and says so."""
    project, site_folder = tmp_path / "project", tmp_path / "site-packages"
    (project / ".cairn" / "keys").mkdir(parents=True)
    site_folder.mkdir()
    (site_folder / "__editable__.project-1.0.pth").write_text(f"{project}\n")
    (site_folder / "distutils-precedence.pth").write_text("import os; os.getcwd()\n")
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(site_folder)])
    private = [project / ".cairn"]
    with caplog.at_level(logging.WARNING, logger="cairn.releases.readable"):
        folders = readable.import_folders(private)
    assert site_folder in folders
    assert project not in readable.readable_paths(private, folders)
    assert f"a worker process may not read {project}: it holds {project / '.cairn'}" in caplog.text


WALL = """
import ctypes, errno, json, os, socket, sys
from cairn.releases import capabilities, netns, seccomp
from cairn.releases.confined import REFUSED

wall, port, unix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if wall == "user namespace":  # as an unprivileged account (all it needs is imported)
    os.setgroups([]); os.setgid(4242); os.setuid(4242)
    ctypes.CDLL(None).prctl(4, 1)  # PR_SET_DUMPABLE, which setuid cleared
built = [seccomp.refuse(REFUSED)] if wall == "seccomp" else [netns.enter(), capabilities.drop_all()]

def attempt(family, kind, address, protocol=0):
    try:
        with socket.socket(family, kind, protocol) as sock:
            sock.settimeout(3)
            sock.connect(address) if kind == socket.SOCK_STREAM else sock.sendto(b"x", address)
        return "done"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc))

print(json.dumps({"built": built,
                  "mptcp": attempt(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", port), 262),
                  "udp": attempt(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", port)),
                  "unix": attempt(socket.AF_UNIX, socket.SOCK_STREAM, unix)}))
"""
_ROOT = os.geteuid() == 0
_USERNS = Path("/proc/sys/user/max_user_namespaces").read_text().strip() != "0"


@pytest.mark.parametrize(
    ("wall", "built", "refused", "unix"),
    [
        pytest.param("network namespace", ["network namespace", "capabilities dropped"],
                     "ENETUNREACH", "done",  # a Unix socket is a file: seccomp covers it
                     marks=pytest.mark.skipif(not _ROOT, reason="makes it as root"),
                     id="namespace"),
        pytest.param("user namespace",
                     ["network namespace (in a user namespace)", "capabilities dropped"],
                     "ENETUNREACH", None,
                     marks=pytest.mark.skipif(not (_ROOT and _USERNS),
                                              reason="becomes another account"),
                     id="user-namespace"),
        pytest.param("seccomp", ["seccomp"], "EACCES", "EACCES",
                     marks=pytest.mark.skipif(not seccomp.available(), reason="no libseccomp"),
                     id="seccomp"),
    ],
)  # fmt: skip
def test_each_wall_alone_keeps_a_worker_off_the_network(
    wall: str, built: list[str], refused: str, unix: str | None, tmp_path: Path
) -> None:
    """Where the kernel refuses one of them (no namespace in a container, no libseccomp),
    the other still holds: MPTCP and UDP to a port on the loopback fail either way."""
    with socket.socket() as listening, socket.socket(socket.AF_UNIX) as local:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        local.bind(str(tmp_path / "s.sock"))
        local.listen()
        command = [sys.executable, "-c", WALL, wall, str(listening.getsockname()[1]),
                   str(tmp_path / "s.sock")]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["built"] == built
    assert (found["mptcp"], found["udp"]) == (refused, refused)
    if unix is not None:
        assert found["unix"] == unix


def test_a_flagged_package_is_refused_before_any_process_starts(
    cairn_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk.session()
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
