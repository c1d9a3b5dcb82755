"""A boundary sweep of a REST API from its OpenAPI document, for any test suite.

For each operation, a sensible request is built (every body property filled, names of
things that exist where the caller gives them), then every path and query parameter, and
every place a value sits in the body, is set in turn to each bad value: the bad value
reaches the code behind the validation, not only the validation.

    for request in sweep(spec, known, BAD_VALUES, BAD_PARAMETERS):
        send(client, request)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

Location = tuple[str | int, ...]
# (parameter name, path template) -> a value naming something that exists
PathValue = Callable[[str, str], str]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]  # values already percent-encoded where they need to be
    body: Any  # JSON, or None for no body
    what: str  # the operation and what was set, for a report


def send(client: httpx.Client, request: Request) -> httpx.Response:
    """The body as JSON text (which escapes NUL and a lone surrogate as ``\\u…``)."""
    content = None if request.body is None else json.dumps(request.body)
    headers = {"content-type": "application/json"} if content is not None else {}
    query = "&".join(f"{name}={value}" for name, value in request.query.items())
    url = f"{request.path}?{query}" if query else request.path
    return client.request(request.method, url, content=content, headers=headers)


def sweep(
    spec: Mapping[str, Any],
    known: Mapping[str, Any],
    path_value: PathValue,
    bad_values: Sequence[Any],
    bad_parameters: Sequence[str],
) -> Iterator[Request]:
    """Every operation's requests, each with one bad value. ``known``: body fields and
    query parameters by name, set to what exists (``experiment_id``…)."""
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            api = _Operation(spec, path, method.upper(), operation, known, path_value)
            yield from api.parameter_requests(bad_parameters)
            yield from api.body_requests(bad_values)


class _Operation:
    def __init__(
        self,
        spec: Mapping[str, Any],
        path: str,
        method: str,
        operation: Mapping[str, Any],
        known: Mapping[str, Any],
        path_value: PathValue,
    ) -> None:
        self.path, self.method = path, method
        self.parameters = [resolved(spec, p) for p in operation.get("parameters", [])]
        self.path_values = {
            p["name"]: path_value(p["name"], path) for p in self.parameters if p["in"] == "path"
        }
        self.query = {
            p["name"]: str(example(spec, p.get("schema", {}), p["name"], known))
            for p in self.parameters
            if p["in"] == "query" and p.get("required")
        }
        schema = body_schema(operation)
        self.body = None if schema is None else example(spec, schema, "", known)

    def parameter_requests(self, bad_parameters: Sequence[str]) -> Iterator[Request]:
        for parameter in self.parameters:
            where, name = parameter["in"], parameter["name"]
            if where not in ("path", "query"):
                continue
            for value in bad_parameters:
                path_values = {**self.path_values, name: value} if where == "path" else None
                query = {**self.query, name: value} if where == "query" else self.query
                what = f"{self.method} {self.path} {name}={value[:20]!r}"
                path = self.path.format(**(path_values or self.path_values))
                yield Request(self.method, path, query, self.body, what)

    def body_requests(self, bad_values: Sequence[Any]) -> Iterator[Request]:
        if self.body is None:
            return
        path = self.path.format(**self.path_values)
        for location in locations(self.body):
            for value in bad_values:
                shown = "".join(f"[{part!r}]" for part in location)
                what = f"{self.method} {self.path} body{shown}={str(value)[:20]!r}"
                body = replaced(self.body, location, value)
                yield Request(self.method, path, self.query, body, what)


def resolved(spec: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """``node``, its ``$ref`` followed."""
    while "$ref" in node:
        found: Mapping[str, Any] = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def body_schema(operation: Mapping[str, Any]) -> Mapping[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    schema: Mapping[str, Any] | None = content.get("application/json", {}).get("schema")
    return schema


def example(
    spec: Mapping[str, Any], schema: Mapping[str, Any], name: str, known: Mapping[str, Any]
) -> Any:
    """A sensible value for a field: what exists where ``known`` names the field, else the
    simplest value of its type, with every property filled (optional ones too, so that
    each can be set to a bad value; null where null is allowed) and one entry in each map
    and list."""
    schema = resolved(spec, schema)
    if name in known:
        return known[name]
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if options:
        nullable = len(options) < len(schema["anyOf"])
        return None if nullable else example(spec, options[0], name, known)
    if "enum" in schema:
        return schema["enum"][0]
    kinds = schema.get("type", "string")
    kind = kinds if isinstance(kinds, str) else kinds[0]  # ["string", "null"]: a string
    if kind == "object":
        return _object_example(spec, schema, known)
    if kind == "array":
        return [example(spec, schema.get("items", {}), name, known)]
    simplest = {"integer": max(1, schema.get("minimum", 1)), "number": 0.5, "boolean": False}
    return simplest.get(kind, "x")


def _object_example(
    spec: Mapping[str, Any], schema: Mapping[str, Any], known: Mapping[str, Any]
) -> dict[str, Any]:
    properties = schema.get("properties", {})
    found = {key: example(spec, value, key, known) for key, value in properties.items()}
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):  # a map: one entry
        found["loss"] = example(spec, extra, "loss", known)
    return found


def locations(body: Any, at: Location = ()) -> Iterator[Location]:
    """Every place in the body a value sits, the body itself included."""
    yield at
    if isinstance(body, dict):
        for key, value in body.items():
            yield from locations(value, (*at, key))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            yield from locations(value, (*at, index))


def replaced(body: Any, location: Location, value: Any) -> Any:
    """A copy of ``body`` with ``value`` at ``location``."""
    if not location:
        return value
    copy = json.loads(json.dumps(body))
    parent = copy
    for part in location[:-1]:
        parent = parent[part]
    parent[location[-1]] = value
    return copy
