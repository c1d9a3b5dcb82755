"""Bad input is a 4xx naming the field, on every route and for every role: never a 500.

A real server (authentication on, a token for each role), on SQLite and on PostgreSQL, is
tried three ways:

- the known cases, one by one: numbers beyond 64 bits, NUL and lone surrogates in text,
  true and false as metric numbers, bodies nested too deep;
- a boundary sweep over its OpenAPI document (``openapi_sweep``): every field of every
  body, and every path and query parameter, is set in turn to a value of each class that
  breaks servers, on an otherwise sensible request naming things that exist, so that the
  value reaches the code behind the validation;
- schemathesis: valid and invalid requests generated for each operation, a fixed number
  per operation, derandomized, half of them with path parameters naming what exists.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import blake3
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cairn.core.access import Role
from cairn.core.data import DataKind, NewDataVersion
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from openapi_sweep import Request, body_schema, example, send, sweep
from server_process import running_server

PROJECT = "churn"
ROLES = (Role.MAINTAINER, Role.CONTRIBUTOR, Role.VIEWER, Role.APPROVER)
BEYOND_64_BITS = 2**70
NUL, LONE_SURROGATE = "a\x00b", "a\ud800b"


@dataclass
class World:
    """A server with an account for each role in ``churn``, and things that exist there."""

    base_url: str
    tokens: dict[str, str]  # who -> token
    known: dict[str, Any] = field(default_factory=dict)  # body fields naming what exists

    def client(self, who: str = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        # No keep-alive: after a 500 the server drops the connection.
        limits = httpx.Limits(max_keepalive_connections=0)
        return httpx.Client(base_url=self.base_url, headers=headers, limits=limits, timeout=60)

    def spec(self) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"{self.base_url}/openapi.json").json()
        return found


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("server-errors")
    with _database(request, folder) as db:
        tokens, bystander = _accounts(db)
        with running_server(db, str(folder / "artifacts"), auth=True) as base_url:
            world = World(base_url, tokens)
            with world.client() as admin:
                world.known = _objects(admin, bystander)
            yield world


@contextmanager
def _database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A database URL for the module: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{folder / 'c.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    schema = f"cairn_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _accounts(db: str) -> tuple[dict[str, str], str]:
    """Tokens of an admin, of each role in ``churn``, of an account with no role; and the
    id of a bystander's token."""
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    identity.add_project(PROJECT)
    identity.add_user("root", admin=True)
    tokens = {"admin": identity.create_token("root", "t")[1]}
    for role in ROLES:
        identity.add_user(role.value)
        identity.set_role(PROJECT, role.value, role)
        tokens[role.value] = identity.create_token(role.value, "t")[1]
    identity.add_user("nobody")
    tokens["no role"] = identity.create_token("nobody", "t")[1]
    identity.add_user("bystander")
    bystander = identity.create_token("bystander", "t")[0].id
    version = NewDataVersion("d", "blake3:" + "1" * 64, DataKind.FILE, "d.csv", 1, 1, "", PROJECT)
    SqlDataCatalog(store.engine).add_version(version)
    store.close()
    return tokens, bystander


def _objects(admin: httpx.Client, bystander_token: str) -> dict[str, Any]:
    """An experiment, a run, an object, an environment and a webhook, and the values the
    sweep's bodies should hold: a request that would succeed but for the one bad value it
    carries gets past the validation. (No model: packaging one takes seconds.)"""
    api = "/api/v1"
    made = admin.post(f"{api}/experiments", json={"name": "e", "project": PROJECT})
    experiment = made.json()["id"]
    body = {"experiment_id": experiment, "name": "r", "start_time": 1, "user": "root"}
    run = admin.post(f"{api}/runs", json=body)  # a body may repeat the caller's own name
    digest = _uploaded(admin, b"alpha")
    policy = "gates:\n  - no_unsafe_pickle: true\n"
    admin.post(f"{api}/environments", json={"name": "prod", "policy": policy}).raise_for_status()
    body = {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32, "environment": "prod"}
    webhook = admin.post(f"{api}/webhooks", json=body).json()["id"]
    return {
        "experiment_id": experiment, "experiment_ids": [experiment], "run_id": run.json()["id"],
        "digest": digest, "digests": [digest], "used": [digest], "produced": [digest],
        "size": 5, "profile": "", "project": PROJECT, "token_id": bystander_token,
        "environment": "prod", "selector": "1", "version": 1, "refs": ["d@1"], "ref": "m/1",
        "model": "m", "webhook_id": webhook, "policy": policy,
        "secret": "s" * 32, "filter": "", "order_by": [], "status": "FINISHED",
        "role": "viewer", "url": "http://127.0.0.1:9/hook", "id": run.json()["id"],
    }  # fmt: skip


def _uploaded(admin: httpx.Client, content: bytes) -> str:
    digest = f"blake3:{blake3.blake3(content).hexdigest()}"
    admin.put(f"/api/v1/objects/{digest}", content=content).raise_for_status()
    return digest


def _path_value(name: str, path: str, known: dict[str, Any]) -> str:
    if name == "name":  # a dataset, model, environment or user, by the collection
        collection = path.split("/")[3]
        return {"datasets": "d", "environments": "prod", "users": "bystander"}.get(collection, "m")
    if name == "user":  # an account (in a body, "user" is left to the server)
        return "bystander"
    return str(known.get(name, "x"))


def _error(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code < 500, answer.text
    found: dict[str, Any] = answer.json()["error"]
    return found


# -- the known cases -------------------------------------------------------------------


def _overflowing(field_name: str, known: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    new_run = {"experiment_id": known["experiment_id"], "name": "r", "start_time": 1}
    recorded = {"run": new_run, "status": "FINISHED", "end_time": 2}
    big, end = BEYOND_64_BITS, f"/api/v1/runs/{known['run_id']}/end"
    return {
        "start_time": ("/api/v1/runs", {**new_run, "start_time": big}),
        "end_time": (end, {"status": "FINISHED", "end_time": big}),
        "expires_at": ("/api/v1/tokens", {"name": "t", "expires_at": big}),
        "runs.0.end_time": ("/api/v1/runs/record", {"runs": [{**recorded, "end_time": big}]}),
        "runs.0.run.start_time": (
            "/api/v1/runs/record", {"runs": [{**recorded, "run": {**new_run, "start_time": -big}}]}
        ),
    }[field_name]  # fmt: skip


def _run_count(admin: httpx.Client, known: dict[str, Any]) -> int:
    body = {"experiment_ids": [known["experiment_id"]], "limit": 50_000}
    return len(admin.post("/api/v1/runs/search", json=body).json()["runs"])


@pytest.mark.parametrize(
    "field_name",
    ["start_time", "end_time", "expires_at", "runs.0.end_time", "runs.0.run.start_time"],
)
def test_a_number_beyond_64_bits_is_a_400_naming_the_field(world: World, field_name: str) -> None:
    """The database stores these in 64 bits: a larger number is bad input, refused
    before anything is written, not a database error."""
    path, body = _overflowing(field_name, world.known)
    with world.client() as admin:
        before = _run_count(admin, world.known)
        answer = admin.post(path, json=body)
        after = _run_count(admin, world.known)
    error = _error(answer)
    assert (answer.status_code, error["code"]) == (400, "INVALID_INPUT")
    assert error["message"].startswith(f"{field_name}:")
    assert after == before  # nothing half-written


IN_BODIES = [
    ("experiment name", "name"),
    ("run name", "name"),
    ("run tag", "tags['team']"),
    ("batch param", "params['lr']"),
    ("batch tag", "tags['team']"),
    ("recorded param", "params['lr']"),
    ("token name", "name"),
]
# A URL carries bytes, and invalid UTF-8 in one is decoded as U+FFFD: only NUL gets there.
IN_URLS = [("path parameter", "run_id"), ("query parameter", "key")]


def _text_request(where: str, bad: str, known: dict[str, Any]) -> Request:
    run, none = known["run_id"], dict[str, str]()
    new_run = {"experiment_id": known["experiment_id"], "name": "r", "start_time": 1}
    recorded = {"run": new_run, "status": "FINISHED", "end_time": 2, "params": {"lr": bad}}
    batch, history = f"/api/v1/runs/{run}/batch", f"/api/v1/runs/{run}/metrics/history"
    sent = quote(bad.encode("utf-8", "surrogatepass"))
    method, path, query, body = {
        "experiment name": ("POST", "/api/v1/experiments", none, {"name": bad}),
        "run name": ("POST", "/api/v1/runs", none, {**new_run, "name": bad}),
        "run tag": ("POST", "/api/v1/runs", none, {**new_run, "tags": {"team": bad}}),
        "batch param": ("POST", batch, none, {"params": {"lr": bad}}),
        "batch tag": ("POST", batch, none, {"tags": {"team": bad}}),
        "recorded param": ("POST", "/api/v1/runs/record", none, {"runs": [recorded]}),
        "token name": ("POST", "/api/v1/tokens", none, {"name": bad}),
        "path parameter": ("GET", f"/api/v1/runs/{sent}", none, None),
        "query parameter": ("GET", history, {"key": sent}, None),
    }[where]  # fmt: skip
    return Request(method, path, query, body, where)


@pytest.mark.parametrize(
    ("where", "field_name", "bad"),
    [(*case, NUL) for case in IN_BODIES + IN_URLS]
    + [(*case, LONE_SURROGATE) for case in IN_BODIES],
)
def test_text_a_database_cannot_store_is_a_400_naming_the_field(
    world: World, where: str, field_name: str, bad: str
) -> None:
    """NUL (PostgreSQL cannot store it) and a lone surrogate (it has no UTF-8 bytes) are
    refused where names, tags and params enter, and in path and query parameters."""
    request = _text_request(where, bad, world.known)
    with world.client() as admin:
        answer = send(admin, request)
    error = _error(answer)
    assert (answer.status_code, error["code"]) == (400, "INVALID_INPUT"), error
    if where.startswith("batch") and bad == LONE_SURROGATE:
        # The batch's own JSON parser refuses the body, at the string's position.
        assert error["message"].startswith("request body is not valid JSON (no low surrogate")
    else:
        assert f"{field_name}: must" in error["message"]  # records[0]: … when recorded


@pytest.mark.parametrize("column", ["values", "steps", "timestamps"])
def test_true_and_false_are_not_metric_numbers_over_rest(world: World, column: str) -> None:
    """The SDK refuses booleans as metric values and steps; the REST batch does too."""
    series = {"values": [0.5], "steps": [1], "timestamps": [1], column: [True]}
    run = world.known["run_id"]
    with world.client() as admin:
        answer = admin.post(f"/api/v1/runs/{run}/batch", json={"metrics": {"loss": series}})
        history = admin.get(f"/api/v1/runs/{run}/metrics/history", params={"key": "loss"})
    error = _error(answer)
    assert (answer.status_code, error["code"]) == (400, "INVALID_INPUT")
    assert error["message"] == f"metrics['loss']: {column} must be numbers, not true or false"
    assert history.json()["metrics"] == {}


@pytest.mark.parametrize("path", ["/api/v1/runs/search", "/api/v1/runs/{run}/batch"])
def test_a_body_nested_too_deep_is_a_400(world: World, path: str) -> None:
    deep = '{"filter": ' + "[" * 100_000 + "]" * 100_000 + "}"
    headers = {"content-type": "application/json"}
    with world.client() as admin:
        answer = admin.post(path.format(run=world.known["run_id"]), content=deep, headers=headers)
    assert (answer.status_code, _error(answer)["code"]) == (400, "INVALID_INPUT")


# -- the boundary sweep ----------------------------------------------------------------

# One value of each class that has broken servers, for a field of any type.
BAD_VALUES: tuple[Any, ...] = (
    BEYOND_64_BITS, -BEYOND_64_BITS, 2**63, 1.5, True, None, "\x00", "\ud800",
    "x" * 100_000, "", [], {}, [[[[[[[[[[]]]]]]]]]],
)  # fmt: skip
# As path and query parameters: text, percent-encoded.
BAD_PARAMETERS = ("%00", "%ED%A0%80", "x" * 10_000, str(BEYOND_64_BITS), "-1", "..", "%2F")


def _swept(world: World) -> list[Request]:
    def path_value(name: str, path: str) -> str:
        return _path_value(name, path, world.known)

    return list(sweep(world.spec(), world.known, path_value, BAD_VALUES, BAD_PARAMETERS))


# A value the checks let through and the database driver refused: a 400, but one that
# cannot name the field (``cairn.stores.metadata.driver_errors``).
LEFT_TO_THE_DATABASE = "does not fit the metadata database"


@pytest.mark.slow
def test_the_boundary_sweep_finds_no_server_error(world: World) -> None:
    """Every field of every body, every path and query parameter, set to each bad value
    in turn on an otherwise sensible request, sent by each role in turn: no 500, and no
    value left for the database to refuse."""
    requests = _swept(world)
    assert len(requests) > 2_000  # the sweep covers the API, not a corner of it
    failures = []
    clients = [world.client(who) for who in world.tokens]
    try:
        for request, client in zip(requests, itertools.cycle(clients), strict=False):
            answer = send(client, request)
            if answer.status_code >= 500 or LEFT_TO_THE_DATABASE in answer.text:
                failures.append(f"{request.what}: {answer.status_code} {answer.text[:120]}")
    finally:
        for client in clients:
            client.close()
    assert failures == []


def test_the_sweep_builds_requests_that_get_past_the_validation(world: World) -> None:
    """The sweep's base body of ``POST /runs`` starts a run: bad values are tried on
    requests that would otherwise succeed, so they reach the code behind the checks."""
    spec = world.spec()
    operation = spec["paths"]["/api/v1/runs"]["post"]
    body = example(spec, body_schema(operation) or {}, "", world.known)
    with world.client(Role.CONTRIBUTOR.value) as contributor:
        answer = contributor.post("/api/v1/runs", json=body)
    assert answer.status_code == 201, answer.text


# -- schemathesis ----------------------------------------------------------------------

EXAMPLES = 8  # per operation and kind of request: about 1,150 requests in all


@pytest.mark.slow
@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_server_error(world: World) -> None:
    """Schemathesis' valid and invalid requests for every operation, each sent with the
    token of each role in turn: no 500."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.openapi import from_dict

    tokens = itertools.cycle(world.tokens.values())
    failures: list[str] = []
    sent = itertools.count()

    def call(case: Any) -> None:
        headers = {"Authorization": f"Bearer {next(tokens)}"}
        answer = case.call(base_url=world.base_url, headers=headers, timeout=60)
        next(sent)
        if answer.status_code >= 500:
            failures.append(f"{case.operation.label}: {case.as_curl_command()[:300]}")

    budget = settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    )  # fmt: skip
    for found in from_dict(world.spec()).get_all_operations():
        operation = found.ok()  # type: ignore[union-attr]  # the document is valid
        for mode, path_parameters in _variants(operation, world.known):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            with suppress(Unsatisfiable):  # nothing invalid to make of a free-text parameter
                budget(given(strategy)(call))()
    assert next(sent) > 1_000
    assert failures == []


def _variants(operation: Any, known: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Valid requests, and invalid ones where there is a body or a query; with path
    parameters generated, and naming what exists."""
    from schemathesis import GenerationMode

    modes = [GenerationMode.POSITIVE]
    if len(operation.body) or len(operation.query):
        modes.append(GenerationMode.NEGATIVE)
    names = [parameter.name for parameter in operation.path_parameters]
    existing = {name: _path_value(name, operation.path, known) for name in names}
    return [(mode, None) for mode in modes] + [(mode, existing) for mode in modes if existing]
