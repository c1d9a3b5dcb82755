"""The tables of operations hold to their ports: each operation's arguments are its
method's parameters, in order and with the same defaults (a client binds a call as the
method would), and the HTTP client made from a table answers every method of its port.
What a table can say — an argument of several parts, a list, a status told by the answer
— travels the same way through a route and a client made from it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from cairn.client.accounts import HttpAccounts
from cairn.client.data import HttpDataCatalog
from cairn.client.http import HttpArtifactStore, HttpMetadataStore
from cairn.client.models import HttpModelRegistry
from cairn.client.monitors import HttpMonitors
from cairn.client.operations import OperationClient
from cairn.client.releases import HttpReleases
from cairn.client.transport import API, HttpTransport
from cairn.core import (
    account_api,
    data_api,
    model_api,
    monitor_api,
    release_api,
    tracking_api,
)
from cairn.core.operations import (
    Access,
    Arg,
    Codec,
    Kind,
    Operation,
    Place,
    Result,
    one,
    one_or_none,
    table,
)
from cairn.core.ports import ArtifactStore
from cairn.errors import InvalidInput, NotFound
from cairn.server.errors import install_error_handlers
from cairn.server.operations import mount, per_caller

PORTS = [
    (release_api.Releases, release_api.OPERATIONS, HttpReleases),
    (model_api.Registry, model_api.OPERATIONS, HttpModelRegistry),
    (tracking_api.Tracking, tracking_api.OPERATIONS, HttpMetadataStore),
    (ArtifactStore, tracking_api.OBJECT_OPERATIONS, HttpArtifactStore),
    (account_api.CallerAccounts, account_api.OPERATIONS, HttpAccounts),
    (data_api.Catalog, data_api.OPERATIONS, HttpDataCatalog),
    (monitor_api.Monitors, monitor_api.OPERATIONS, HttpMonitors),
]
IDS = ["releases", "registry", "tracking", "objects", "accounts", "catalog", "monitors"]


def _parameters(method: Any) -> list[tuple[str, Any]]:
    found = list(inspect.signature(method).parameters.values())[1:]  # after self
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in found), method
    return [(p.name, p.default) for p in found]


def _arguments(op: Operation) -> list[tuple[str, Any]]:
    return [(a.name, inspect.Parameter.empty if a.required else a.default) for a in op.args]


@pytest.mark.parametrize(("port", "operations", "client"), PORTS, ids=IDS)
def test_each_operation_takes_its_methods_parameters_in_order(
    port: type, operations: Mapping[str, Operation], client: type[OperationClient]
) -> None:
    for name, op in operations.items():
        method = getattr(port, name, None)
        assert method is not None, f"{port.__name__} has no method {name!r}"
        assert _arguments(op) == _parameters(method), name
        assert list(op.signature().parameters) == [a.name for a in op.args]


@pytest.mark.parametrize(("port", "operations", "client"), PORTS, ids=IDS)
def test_the_http_client_answers_every_method_of_its_port(
    port: type, operations: Mapping[str, Operation], client: type[OperationClient]
) -> None:
    methods = {name for name, _ in inspect.getmembers(port, inspect.isfunction)}
    unanswered = {
        m for m in methods if not m.startswith("_") and m not in operations and
        not hasattr(client, m)
    }  # fmt: skip
    assert unanswered == set()
    assert client.operations is operations


def test_a_whole_body_is_the_only_argument_in_the_body() -> None:
    card = Arg("card", Place.WHOLE_BODY, codec=Codec(dict, dict))
    result = one(dict, dict)
    table(Operation("set", "PUT", "/cards/{name}", Access.WRITE, result,
                    (Arg("name", Place.PATH), card)))  # fmt: skip
    with pytest.raises(ValueError, match="a whole body is the only argument"):
        table(Operation("set", "PUT", "/cards", Access.WRITE, result, (Arg("name"), card)))


def test_a_path_argument_must_be_in_the_path() -> None:
    with pytest.raises(ValueError, match="'name' is not in the path"):
        table(Operation("get", "GET", "/cards", Access.READ, one(dict, dict),
                        (Arg("name", Place.PATH),)))  # fmt: skip


def test_an_argument_of_parts_needs_a_codec_to_join_them() -> None:
    parts = (Arg("name", Place.PATH), Arg("selector", Place.PATH))
    with pytest.raises(ValueError, match="'ref' has parts but no codec"):
        table(Operation("get", "GET", "/sets/{name}/{selector}", Access.READ, one(dict, dict),
                        (Arg("ref", parts=parts),)))  # fmt: skip


def test_two_values_of_one_key_are_refused() -> None:
    joined = Codec(dict, dict)
    with pytest.raises(ValueError, match="two values travel as one key"):
        table(Operation("add", "POST", "/sets/{name}", Access.WRITE, one(dict, dict), (
            Arg("new", codec=joined, parts=(Arg("name", Place.PATH), Arg("size"))),
            Arg("size"))))  # fmt: skip


def test_a_list_travels_in_the_body_only() -> None:
    with pytest.raises(ValueError, match="a list \\('tags'\\) travels in the body only"):
        table(Operation("find", "GET", "/sets", Access.READ, one(dict, dict),
                        (Arg("tags", Place.QUERY, max_items=3),)))  # fmt: skip


# A table of one made-up capability, served and called in this process.


def _ref_parts(ref: tuple[str, str]) -> dict[str, str]:
    return {"name": ref[0], "selector": ref[1]}


def _named(name: str) -> str:
    if "/" in name or not name:
        raise InvalidInput(f"name {name!r}: no '/'")
    return name


_NAME = Arg("name", Place.PATH, codec=Codec(_named, _named))
SHELF = table(
    Operation("get", "GET", "/sets/{name}/items/{selector}", Access.AUTHENTICATED,
              one(dict, dict), (Arg("ref", codec=Codec(_ref_parts, lambda v: (v["name"],
                                v["selector"])), parts=(_NAME, Arg("selector", Place.PATH))),)),
    Operation("add", "POST", "/sets/{name}/items", Access.AUTHENTICATED,
              Result(dict, dict, status=201, status_of=lambda made: 201 if made["made"] else 200),
              (Arg("new", codec=Codec(dict, dict), parts=(
                  _NAME, Arg("size", kind=Kind.COUNT),
                  Arg("digests", kind=Kind.DIGEST, required=False, default=(), max_items=2),
                  Arg("profile", kind=Kind.DIGEST, required=False, default=""))),)),
    Operation("find", "GET", "/sets/{name}", Access.AUTHENTICATED,
              one_or_none(dict, dict, lambda args: NotFound(f"no set {args['name']!r}")),
              (_NAME,)),
)  # fmt: skip


class Shelf:
    """Answers what it was called with; a version is made unless its size is 0."""

    def get(self, ref: tuple[str, str]) -> dict[str, Any]:
        return {"ref": list(ref)}

    def add(self, new: dict[str, Any]) -> dict[str, Any]:
        return {"new": {**new, "digests": list(new["digests"])}, "made": new["size"] > 0}

    def find(self, name: str) -> dict[str, Any] | None:
        return {"name": name} if name == "fruit" else None


class HttpShelf(OperationClient):
    operations: ClassVar[Mapping[str, Operation]] = SHELF


class InProcess(httpx.BaseTransport):
    """Requests answered by an ASGI app in this process."""

    def __init__(self, app: FastAPI) -> None:
        self._app = httpx.ASGITransport(app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def answer() -> httpx.Response:
            found = await self._app.handle_async_request(request)
            content = await found.aread()
            return httpx.Response(found.status_code, headers=found.headers, content=content)

        return asyncio.run(answer())


@pytest.fixture
def shelf() -> Iterator[tuple[HttpShelf, httpx.Client]]:
    router = APIRouter()
    mount(router, SHELF, per_caller("shelf", "no shelf here"))
    app = FastAPI()
    app.state.identity = None  # every caller an admin
    app.state.shelf = lambda caller: Shelf()
    install_error_handlers(app)
    app.include_router(router, prefix=API)
    transport = HttpTransport("http://cairn")
    with httpx.Client(base_url="http://cairn", transport=InProcess(app)) as served:
        transport._client = served  # the client's requests go to the app in this process
        yield HttpShelf(transport), served


DIGEST = "blake3:" + "1" * 64


def test_an_argument_of_parts_travels_as_each_of_them(
    shelf: tuple[HttpShelf, httpx.Client],
) -> None:
    client, served = shelf
    assert client.get(("fruit", "latest")) == {"ref": ["fruit", "latest"]}
    assert served.get(f"{API}/sets/fruit/items/3").json() == {"ref": ["fruit", "3"]}
    with pytest.raises(InvalidInput, match="name 'a/b'"):
        client.get(("a/b", "1"))  # refused before it is put in a path
    made = client.add({"name": "fruit", "size": 3, "digests": (DIGEST,), "profile": ""})
    assert made == {"new": {"name": "fruit", "size": 3, "digests": [DIGEST], "profile": ""},
                    "made": True}  # fmt: skip


def test_an_answer_of_none_travels_as_not_found(shelf: tuple[HttpShelf, httpx.Client]) -> None:
    client, served = shelf
    assert client.find("fruit") == {"name": "fruit"}
    assert client.find("nuts") is None
    answer = served.get(f"{API}/sets/nuts")
    assert (answer.status_code, answer.json()["error"]["message"]) == (404, "no set 'nuts'")


def test_a_status_told_by_the_answer(shelf: tuple[HttpShelf, httpx.Client]) -> None:
    _, served = shelf
    assert served.post(f"{API}/sets/fruit/items", json={"size": 1}).status_code == 201
    kept = served.post(f"{API}/sets/fruit/items", json={"size": 0})
    assert (kept.status_code, kept.json()["new"]["digests"]) == (200, [])


@pytest.mark.parametrize(("body", "field"), [
    ({"size": -1}, "size"),
    ({"size": 2**63}, "size"),
    ({"size": "1"}, "size"),
    ({"size": 1, "digests": [DIGEST] * 3}, "digests"),
    ({"size": 1, "digests": ["blake3:short"]}, "digests.0"),
    ({"size": 1, "profile": "blake3:short"}, "profile"),
    ({"size": 1, "name": "fruit"}, "name"),  # a path value is no property of the body
])  # fmt: skip
def test_a_part_is_checked_where_it_enters(
    shelf: tuple[HttpShelf, httpx.Client], body: dict[str, Any], field: str
) -> None:
    _, served = shelf
    answer = served.post(f"{API}/sets/fruit/items", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].split(":")[0] == field
