"""The tables of operations hold to their ports: each operation's arguments are its
method's parameters, in order and with the same defaults (a client binds a call as the
method would), and the HTTP client made from a table answers every method of its port."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import pytest

from cairn.client.accounts import HttpAccounts
from cairn.client.http import HttpArtifactStore, HttpMetadataStore
from cairn.client.models import HttpModelRegistry
from cairn.client.operations import OperationClient
from cairn.client.releases import HttpReleases
from cairn.core import account_api, model_api, release_api, tracking_api
from cairn.core.operations import Access, Arg, Codec, Operation, Place, one, table
from cairn.core.ports import ArtifactStore

PORTS = [
    (release_api.Releases, release_api.OPERATIONS, HttpReleases),
    (model_api.Registry, model_api.OPERATIONS, HttpModelRegistry),
    (tracking_api.Tracking, tracking_api.OPERATIONS, HttpMetadataStore),
    (ArtifactStore, tracking_api.OBJECT_OPERATIONS, HttpArtifactStore),
    (account_api.CallerAccounts, account_api.OPERATIONS, HttpAccounts),
]
IDS = ["releases", "registry", "tracking", "objects", "accounts"]


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
