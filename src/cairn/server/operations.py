"""Routes made from a capability's table of operations (``cairn.core.operations``): each
checks its arguments where they enter (text storable and within its length, numbers in 64
bits, a body with no property it does not know — a 400 naming the field), calls the
service method of its name for the request's caller, and answers with the result's codec.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.params import Depends
from pydantic import ConfigDict, Field, create_model
from starlette.responses import Response

from cairn.core.operations import NOTHING, Access, Arg, Kind, Operation, Place
from cairn.server.auth import ADMIN, APPROVE, AUTHENTICATED, MANAGE, READ, WRITE
from cairn.server.fields import Text, Timestamp, TimestampParameter, VersionNumber
from cairn.server.responses import JsonResponse

_ACCESS = {
    Access.AUTHENTICATED: AUTHENTICATED, Access.ADMIN: ADMIN, Access.READ: READ,
    Access.WRITE: WRITE, Access.MANAGE: MANAGE, Access.APPROVE: APPROVE,
}  # fmt: skip
_SERVICE, _BODY = "service", "body"  # parameter names no argument takes (see mount)
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def mount(router: APIRouter, operations: Mapping[str, Operation], service: Depends) -> None:
    """A route on ``router`` for each operation, calling the service ``service`` gives."""
    for op in operations.values():
        if {a.key for a in op.args} & {_SERVICE, _BODY}:
            raise ValueError(f"{op.name}: an argument may not be named {_SERVICE} or {_BODY}")
        router.add_api_route(
            op.path, _endpoint(op, service), methods=[op.verb], name=op.name,
            status_code=op.result.status, dependencies=[_ACCESS[op.access]],
            response_class=JsonResponse, description=op.summary,
        )  # fmt: skip


def _endpoint(op: Operation, service: Depends) -> Any:
    body = _body_model(op)

    def endpoint(**given: Any) -> Response:
        found = given.pop(_SERVICE)
        sent = given.pop(_BODY).model_dump() if body is not None else {}
        values = {**given, **sent}
        result = getattr(found, op.name)(**{a.name: values[a.key] for a in op.args})
        if op.result is NOTHING:
            return Response(status_code=op.result.status)
        return JsonResponse(op.result.encode(result), status_code=op.result.status)

    parameters = [inspect.Parameter(_SERVICE, _POSITIONAL, annotation=Annotated[Any, service])]
    parameters += [_parameter(a) for a in (*op.placed(Place.PATH), *op.placed(Place.QUERY))]
    if body is not None:
        parameters.append(inspect.Parameter(_BODY, _POSITIONAL, annotation=Annotated[body, Body()]))
    parameters.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = op.name
    endpoint.__doc__ = op.summary or None
    return endpoint


def _parameter(arg: Arg) -> inspect.Parameter:
    if arg.place is Place.PATH:
        return inspect.Parameter(arg.key, _POSITIONAL, annotation=Annotated[str, Path()])
    kind = TimestampParameter if arg.kind is Kind.TIMESTAMP else _type(arg)
    where = Query(max_length=arg.max_length)
    if arg.required:
        return inspect.Parameter(arg.key, _POSITIONAL, annotation=Annotated[kind, where])
    annotation: Any = Annotated[_or_none(kind, arg), where]
    return inspect.Parameter(arg.key, _POSITIONAL, annotation=annotation, default=arg.default)


def _body_model(op: Operation) -> Any:
    """The pydantic model of the operation's JSON body, or None when it takes none."""
    args = op.placed(Place.BODY)
    if not args:
        return None
    fields: dict[str, Any] = {}
    for arg in args:
        kind: Any = Annotated[_type(arg), Field(max_length=arg.max_length)]
        fields[arg.key] = (kind, ...) if arg.required else (_or_none(kind, arg), arg.default)
    name = "".join(part.title() for part in op.name.split("_")) + "Body"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def _or_none(kind: Any, arg: Arg) -> Any:
    """An optional argument's type: None is a value only where it is the default."""
    return kind | None if arg.default is None else kind


def _type(arg: Arg) -> Any:
    if isinstance(arg.kind, type) and issubclass(arg.kind, Enum):
        return arg.kind
    return {Kind.TEXT: Text, Kind.VERSION: VersionNumber, Kind.TIMESTAMP: Timestamp}[arg.kind]
