"""A token holder can neither take the server down nor get a 500.

- Stalled uploads hold no worker thread: authentication and every other route still
  answer at once; a stalled upload is dropped after the idle timeout and stores nothing;
  uploads beyond the server's or an account's share are answered 503 with Retry-After.
- Failed authentications from one address are audited up to a budget per window, then
  answered 429 and counted, and the count is audited once.
- Searches a database cannot compile (too many keys, comparisons, values or orderings) and
  forged page tokens are refused as bad input, on the server, the store and the SDK.
- A run cannot be ended RUNNING, nor before it started; a version number is a number.

The server runs with a pool of 4 worker threads and short windows, so each case takes
seconds (``CAIRN_SERVER_*``, ``cairn.config.ServerLimits``).
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import blake3
import httpx
import pytest

import cairn
from cairn.config import load_settings
from cairn.core.access import Role
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.run import NewRun, RunRecord, RunStatus
from cairn.core.search import RunQuery
from cairn.errors import FilterSyntaxError, InvalidInput
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import running_server

THREADS = 4  # the server's pool: far fewer than the uploads a test stalls
UPLOADS, PER_ACCOUNT = 48, 16
IDLE_SECONDS = 4.0
AUTH_FAILURES, AUTH_WINDOW_SECONDS = 3, 2.0
ACCOUNTS = ("alice", "bob", "carol", "dave")
QUICKLY = 2.0  # seconds: what "answers at once" allows on a busy test machine


@dataclass
class Server:
    base_url: str
    db_url: str
    artifacts: Path
    tokens: dict[str, str]

    def client(self, who: str = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=f"{self.base_url}/api/v1", headers=headers, timeout=30)

    def audit_events(self, action: str) -> list[Any]:
        store = SqlMetadataStore(self.db_url)
        try:
            return AuditLog(store.engine).events(EventQuery(action=action, limit=1000))
        finally:
            store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("limits")
    db_url = f"sqlite:///{folder / 'cairn.db'}"
    tokens = _accounts(db_url)
    limits = {
        "THREADS": THREADS, "UPLOADS": UPLOADS, "UPLOADS_PER_ACCOUNT": PER_ACCOUNT,
        "BODY_IDLE_SECONDS": IDLE_SECONDS, "AUTH_FAILURES": AUTH_FAILURES,
        "AUTH_WINDOW_SECONDS": AUTH_WINDOW_SECONDS,
    }  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for name, value in limits.items():
            patch.setenv(f"CAIRN_SERVER_{name}", str(value))
        with running_server(db_url, str(folder / "artifacts"), auth=True) as base_url:
            server = Server(base_url, db_url, folder / "artifacts", tokens)
            with server.client() as admin:  # something for every account to search
                admin.post("/experiments", json={"name": "shared"}).raise_for_status()
            yield server


def _accounts(db_url: str) -> dict[str, str]:
    store = SqlMetadataStore(db_url)
    identity = IdentityStore(store.engine)
    identity.add_user("root", admin=True)
    tokens = {"admin": identity.create_token("root", "t")[1]}
    for name in ACCOUNTS:
        identity.add_user(name)
        identity.set_role(DEFAULT_PROJECT, name, Role.CONTRIBUTOR)
        tokens[name] = identity.create_token(name, "t")[1]
    store.close()
    return tokens


# -- stalled uploads -------------------------------------------------------------------


@contextmanager
def stalled_uploads(server: Server, who: list[str]) -> Iterator[list[socket.socket]]:
    """An upload for each name in ``who`` that announces a gigabyte, sends 10 bytes and
    then nothing; each is given a second to reach its route."""
    address = urlsplit(server.base_url)
    sockets: list[socket.socket] = []
    try:
        for name in who:
            sock = socket.create_connection((address.hostname, address.port))
            sockets.append(sock)
            sock.sendall(_upload_head(server.tokens[name], _random_digest(), 10**9) + b"x" * 10)
        time.sleep(1.0)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _upload_head(token: str, digest: str, length: int) -> bytes:
    return (
        f"PUT /api/v1/objects/{digest} HTTP/1.1\r\nHost: cairn\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _random_digest() -> str:
    return f"blake3:{secrets.token_hex(32)}"


def _silent(sock: socket.socket) -> bool:
    """Whether the server has sent nothing on ``sock`` (nor closed it)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def _upload(server: Server, who: str, content: bytes) -> httpx.Response:
    digest = f"blake3:{blake3.blake3(content).hexdigest()}"
    with server.client(who) as client:
        return client.put(f"/objects/{digest}", content=content)


def test_stalled_uploads_hold_no_thread_that_authentication_needs(server: Server) -> None:
    """45 stalled uploads, more than AnyIO's default pool of 40 threads and ten times the
    server's pool of 4: a token is still checked, and a route that runs in the pool
    answered, at once, while every upload is still open."""
    who = [name for name in ACCOUNTS[:3] for _ in range(15)]
    with stalled_uploads(server, who) as sockets, server.client("dave") as dave:
        whoami, took = _timed(lambda: dave.get("/whoami"))
        assert whoami.status_code == 200, whoami.text
        assert took < QUICKLY
        experiments, took = _timed(lambda: dave.get("/experiments"))
        assert experiments.status_code == 200, experiments.text
        assert took < QUICKLY
        assert all(_silent(sock) for sock in sockets)  # all still held open


def test_a_stalled_upload_is_dropped_after_the_idle_timeout_and_stores_nothing(
    server: Server,
) -> None:
    content = secrets.token_bytes(100_000)
    digest = f"blake3:{blake3.blake3(content).hexdigest()}"
    before = sorted(server.artifacts.rglob("*"))
    address = urlsplit(server.base_url)
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(_upload_head(server.tokens["alice"], digest, len(content)) + content[:10])
        sock.settimeout(IDLE_SECONDS + 10)
        answer = _read_until_closed(sock)
    status_line, _, body = answer.partition(b"\r\n")
    assert b" 408 " in status_line
    assert json.loads(body.partition(b"\r\n\r\n")[2])["error"]["code"] == "REQUEST_TIMEOUT"
    with server.client("alice") as alice:
        assert alice.head(f"/objects/{digest}").status_code == 404
    assert sorted(server.artifacts.rglob("*")) == before


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_uploads_beyond_an_accounts_share_are_refused_503_with_retry_after(
    server: Server,
) -> None:
    """Alice holds her share: her next upload is refused at once, not queued; Bob's goes
    through; once hers are closed, her slots are hers again."""
    with stalled_uploads(server, ["alice"] * PER_ACCOUNT) as sockets:
        refused = _upload(server, "alice", b"one more")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "SERVER_BUSY"
        assert "alice" in refused.json()["error"]["message"]
        assert int(refused.headers["Retry-After"]) >= 1
        assert _upload(server, "bob", b"bob's own").status_code == 201
        assert all(_silent(sock) for sock in sockets)
    assert _eventually(lambda: _upload(server, "alice", b"one more").status_code == 201)


def test_a_client_uploading_a_file_waits_for_a_busy_server_and_tries_again(
    server: Server, tmp_path: Path
) -> None:
    """The SDK's upload of a file (which it can send again) honours Retry-After: it
    succeeds once a slot frees, rather than failing the user's log_artifact."""
    from cairn.client.http import HttpArtifactStore

    path = tmp_path / "report.txt"
    path.write_bytes(b"alice's report, uploaded while her share is held")
    store = HttpArtifactStore(server.base_url, server.tokens["alice"])
    with stalled_uploads(server, ["alice"] * PER_ACCOUNT) as sockets:
        threading.Timer(1.5, lambda: [sock.close() for sock in sockets]).start()
        info = store.put_file(path)
    store.close()
    assert info.size == path.stat().st_size
    with server.client("alice") as alice:
        assert alice.post("/objects/missing", json={"digests": [info.digest]}).json() == {
            "missing": []
        }


def test_uploads_beyond_the_servers_limit_are_refused_503(server: Server) -> None:
    with stalled_uploads(server, [name for name in ACCOUNTS[:3] for _ in range(PER_ACCOUNT)]):
        refused = _upload(server, "dave", b"dave's")
        assert refused.status_code == 503
        assert f"receiving {UPLOADS} uploads" in refused.json()["error"]["message"]
        assert "Retry-After" in refused.headers
    assert _eventually(lambda: _upload(server, "dave", b"dave's").status_code == 201)


def _eventually(check: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# -- failed authentications ------------------------------------------------------------


def test_failed_authentications_beyond_the_budget_are_429_and_audited_once(
    server: Server,
) -> None:
    """The first failures of a window are audited one by one; the rest are answered 429
    and audited as one count once the window has closed. A valid token from the same
    address is still accepted."""
    failed_before = len(server.audit_events("auth.failed"))
    bad = {"Authorization": "Bearer cairn_" + "f" * 16 + "_" + "x" * 43}

    def attempt(_: int) -> httpx.Response:
        return httpx.get(f"{server.base_url}/api/v1/whoami", headers=bad, timeout=30)

    with ThreadPoolExecutor(12) as burst:  # at once: the budget holds under concurrency
        answers = list(burst.map(attempt, range(12)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * AUTH_FAILURES + [429] * (12 - AUTH_FAILURES)
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "TOO_MANY_FAILURES"
    with server.client("bob") as bob:
        assert bob.get("/whoami").status_code == 200
        assert len(server.audit_events("auth.failed")) == failed_before + AUTH_FAILURES
        time.sleep(AUTH_WINDOW_SECONDS + 0.2)
        bob.get("/whoami")  # the next request audits the closed window
    (throttled,) = server.audit_events("auth.throttled")
    assert json.loads(throttled.content.payload)["refused"] == 12 - AUTH_FAILURES
    assert throttled.content.object_id == "127.0.0.1"


# -- searches --------------------------------------------------------------------------

_KEYS = " and ".join(f"params.p{i} = 'x'" for i in range(100))
_MANY_KEYS = " and ".join(f"params.p{i} = 'x'" for i in range(2000))
_COMPARISONS = " and ".join("metrics.m > 1" for _ in range(2000))
_VALUES = "tags.t IN (" + ",".join(f"'{i}'" for i in range(5000)) + ")"
UNCOMPILABLE_FILTERS = {"100 keys": _KEYS, "2000 keys": _MANY_KEYS,
                        "2000 comparisons": _COMPARISONS, "5000 values": _VALUES}  # fmt: skip


@pytest.mark.parametrize("name", UNCOMPILABLE_FILTERS)
def test_a_filter_beyond_a_limit_is_a_400_naming_filter_over_rest(
    server: Server, name: str
) -> None:
    with server.client("dave") as dave:
        answer = dave.post("/runs/search", json={"filter": UNCOMPILABLE_FILTERS[name]})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith("filter: more than")


def test_too_many_orderings_are_a_400_naming_order_by_over_rest(server: Server) -> None:
    with server.client("dave") as dave:
        order = [f"params.p{i}" for i in range(100)]
        answer = dave.post("/runs/search", json={"order_by": order})
    assert answer.status_code == 400, answer.text
    assert "order_by: 100 clauses; a search orders by at most 8" in answer.text


def test_the_store_and_the_sdk_refuse_the_same_searches(database_url: str) -> None:
    store = SqlMetadataStore(database_url)
    try:
        for text in UNCOMPILABLE_FILTERS.values():
            with pytest.raises(FilterSyntaxError, match=r"^filter: more than"):
                store.search_runs(RunQuery(filter=text))
            with pytest.raises(FilterSyntaxError, match=r"^filter: more than"):
                cairn.search_runs(filter=text)
        with pytest.raises(FilterSyntaxError, match=r"^order_by: 100 clauses"):
            store.search_runs(RunQuery(order_by=[f"params.p{i}" for i in range(100)]))
    finally:
        store.close()


# -- page tokens -----------------------------------------------------------------------

FORGED_VALUES = {"object": {"a": 1}, "list": [1], "true": True, "2**70": 2**70,
                 "NUL": "a\x00b", "a fraction": 0.5, "text": "x"}  # fmt: skip


def _forged(token: str, index: int, value: Any) -> str:
    """A real token with one of its sort values replaced, as anyone may: it is base64 JSON."""
    fingerprint, values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    values[index] = value
    payload = json.dumps([fingerprint, values]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


@pytest.fixture
def searched(database_url: str) -> Iterator[tuple[SqlMetadataStore, RunQuery, str]]:
    """A store, a search ordered by a param and the start time, and a token of its own."""
    store = SqlMetadataStore(database_url)
    experiment = store.create_experiment("e")
    for i in range(3):
        run = store.create_run(NewRun(experiment.id, f"r{i}", 1000 + i, "ada"))
        store.log_batch(run.id, params={"lr": str(i)})
    query = RunQuery([experiment.id], order_by=["params.lr", "attributes.start_time"], limit=1)
    token = store.search_runs(query).next_page_token
    assert token is not None
    yield store, query, token
    store.close()


def test_a_page_token_holding_a_value_of_the_wrong_type_is_a_400(
    searched: tuple[SqlMetadataStore, RunQuery, str],
) -> None:
    """A token holds, for each ordering, a flag (a whole number) and the value (text for a
    param, a whole number for a start time), then the last run's id: any other type in
    any place is refused."""
    store, query, token = searched
    width = len(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))[1])
    tried = 0
    for value in FORGED_VALUES.values():
        for index in range(width):
            if _fits_place(value, index):
                continue
            with pytest.raises(InvalidInput, match=r"^page_token"):
                store.search_runs(_with_token(query, _forged(token, index, value)))
            tried += 1
    assert tried > 25


def _fits_place(value: Any, index: int) -> bool:
    """Whether ``value`` is of the type of place ``index``: flag, param (text), flag,
    start time (whole numbers), then the last run's id (none of the forged values)."""
    if index in (0, 2, 3):
        return type(value) is int and abs(value) < 2**63
    return index == 1 and isinstance(value, str) and "\x00" not in value


def _with_token(query: RunQuery, token: str) -> RunQuery:
    return RunQuery(query.experiment_ids, query.filter, query.order_by, query.limit, token)


def test_a_page_token_that_does_not_decode_is_a_400(
    searched: tuple[SqlMetadataStore, RunQuery, str],
) -> None:
    """Not base64, nested too deep for the JSON decoder, an empty list, an empty object."""
    store, query, _ = searched
    deep = base64.urlsafe_b64encode(b"[" * 5000).decode()
    for token in ["not base64 !", deep, "W10", "e30"]:
        with pytest.raises(InvalidInput, match=r"^page_token"):
            store.search_runs(_with_token(query, token))


def test_a_forged_page_token_is_a_400_over_rest(server: Server) -> None:
    with server.client("admin") as admin:
        experiment = admin.post("/experiments", json={"name": "tokens"}).json()["id"]
        for i in range(2):
            body = {"experiment_id": experiment, "name": f"r{i}", "start_time": 1000 + i}
            admin.post("/runs", json=body).raise_for_status()
        search = {"experiment_ids": [experiment], "limit": 1}
        token = admin.post("/runs/search", json=search).json()["next_page_token"]
        answer = admin.post("/runs/search", json={**search, "page_token": _forged(token, 1, {})})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith("page_token: ")


# -- how a run ends --------------------------------------------------------------------


def test_a_run_ends_in_a_final_status_no_earlier_than_it_started(database_url: str) -> None:
    store = SqlMetadataStore(database_url)
    try:
        experiment = store.create_experiment("e")
        run = store.create_run(NewRun(experiment.id, "r", 1000, "ada"))
        with pytest.raises(InvalidInput, match=r"^status: .* not RUNNING"):
            store.end_run(run.id, RunStatus.RUNNING, 2000)
        with pytest.raises(InvalidInput, match=r"^end_time: -5 is before the run's start_time"):
            store.end_run(run.id, RunStatus.FINISHED, -5)
        unchanged = store.get_run(run.id)
        assert (unchanged.status, unchanged.end_time) == (RunStatus.RUNNING, None)
        record = RunRecord(NewRun(experiment.id, "cached", 1000, "ada"), RunStatus.FINISHED, 999)
        with pytest.raises(InvalidInput, match=r"^records\[0\]: end_time: 999 is before"):
            store.record_runs([record])
        assert len(store.search_runs(RunQuery([experiment.id])).runs) == 1
        assert store.end_run(run.id, RunStatus.FINISHED, 1000).status == RunStatus.FINISHED
    finally:
        store.close()


def test_ending_a_run_running_or_before_it_started_is_a_400_over_rest(server: Server) -> None:
    with server.client("alice") as alice:
        experiment = alice.post("/experiments", json={"name": "ends"}).json()["id"]
        body = {"experiment_id": experiment, "name": "r", "start_time": 1000}
        run = alice.post("/runs", json=body).json()["id"]
        running = alice.post(f"/runs/{run}/end", json={"status": "RUNNING", "end_time": 2000})
        early = alice.post(f"/runs/{run}/end", json={"status": "FINISHED", "end_time": -5})
        assert alice.get(f"/runs/{run}").json()["status"] == "RUNNING"
    assert running.status_code == 400
    assert running.json()["error"]["message"].startswith("status:")
    assert early.status_code == 400
    assert early.json()["error"]["message"].startswith("end_time:")


# -- version numbers -------------------------------------------------------------------

ROLLBACK = {"model": "m", "reason": "r"}
VERSION_BODIES = {
    "alias": ("PUT", "/models/m/aliases/champion", "version", {}),
    "approve": ("POST", "/promotions/p/approve", "version", {}),
    "reject": ("POST", "/promotions/p/reject", "version", {"reason": "no"}),
    "rollback": ("POST", "/environments/prod/rollback", "to_version", ROLLBACK),
}


@pytest.mark.parametrize("route", VERSION_BODIES)
@pytest.mark.parametrize("value", [True, "1", 1.0])
def test_a_version_number_is_a_whole_number_not_true_nor_text(
    server: Server, route: str, value: Any
) -> None:
    method, path, field, body = VERSION_BODIES[route]
    with server.client("admin") as admin:
        answer = admin.request(method, path, json={**body, field: value})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith(f"{field}: ")


# -- the settings ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0", "-3", "many", "nan", "1.5"])
def test_a_limit_that_is_not_a_positive_number_is_refused_naming_its_variable(
    text: str, tmp_path: Path
) -> None:
    environ = {"CAIRN_SERVER_UPLOADS": text}
    with pytest.raises(InvalidInput, match=r"^CAIRN_SERVER_UPLOADS: expected a positive int"):
        load_settings(cwd=tmp_path, environ=environ)
    seconds = load_settings(cwd=tmp_path, environ={"CAIRN_SERVER_BODY_IDLE_SECONDS": "1.5"})
    assert seconds.server.body_idle_seconds == 1.5
