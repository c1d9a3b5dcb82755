"""Routes made from a capability's table of operations (``cairn.core.operations``): each
checks its arguments where they enter (text storable and within its length, numbers in 64
bits, digests well formed, a body with no property it does not know — a 400 naming the
field), reads each through its codec when it has one (an argument of several parts: each
part, then the whole from them), calls the service method of its name for the request's
caller, and answers with the result's codec and status.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.params import Depends
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.responses import Response

from cairn.core.operations import NOTHING, Access, Arg, Kind, Operation, Place
from cairn.core.wire import (
    Count,
    CountParameter,
    Digest,
    DigestOrEmpty,
    Text,
    Timestamp,
    TimestampParameter,
    VersionNumber,
    VersionParameter,
)
from cairn.errors import NotFound
from cairn.server.auth import ADMIN, APPROVE, AUTHENTICATED, MANAGE, READ, WRITE, Caller
from cairn.server.responses import JsonResponse

_ACCESS = {
    Access.AUTHENTICATED: AUTHENTICATED, Access.ADMIN: ADMIN, Access.READ: READ,
    Access.WRITE: WRITE, Access.MANAGE: MANAGE, Access.APPROVE: APPROVE,
}  # fmt: skip
_SERVICE, _BODY = "service", "body"  # parameter names no argument takes (see mount)
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
_PARSED: dict[Any, Any] = {
    Kind.VERSION: VersionParameter, Kind.TIMESTAMP: TimestampParameter, Kind.COUNT: CountParameter,
}  # fmt: skip


def per_caller(name: str, none_kept: str) -> Depends:
    """A dependency: the service that ``app.state.<name>`` (a function of the caller) makes
    for the request's caller.

    Raises:
        NotFound: ``none_kept``, when the server keeps no such service.
    """

    async def service(request: Request, caller: Caller) -> Any:
        make = getattr(request.app.state, name)
        if make is None:
            raise NotFound(none_kept)
        return make(caller)

    service.__name__ = name
    return Depends(service)


def mount(router: APIRouter, operations: Mapping[str, Operation], service: Depends) -> None:
    """A route on ``router`` for each operation, calling the service ``service`` gives."""
    for op in operations.values():
        if {a.key for a in op.on_wire} & {_SERVICE, _BODY}:
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
        values = {**given, **_sent(op, given.pop(_BODY, None))}
        arguments = {a.name: _argument(a, values) for a in op.args}
        result = getattr(found, op.name)(**arguments)
        if result is None and op.result.absent is not None:
            raise op.result.absent(arguments)
        if op.result is NOTHING:
            return Response(status_code=op.result.status)
        return JsonResponse(op.result.encode(result), status_code=op.result.status_for(result))

    parameters = [inspect.Parameter(_SERVICE, _POSITIONAL, annotation=Annotated[Any, service])]
    parameters += [_parameter(a) for a in (*op.placed(Place.PATH), *op.placed(Place.QUERY))]
    if body is not None:
        parameters.append(inspect.Parameter(_BODY, _POSITIONAL, annotation=Annotated[body, Body()]))
    parameters.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = op.name
    endpoint.__doc__ = op.summary or None
    return endpoint


def _sent(op: Operation, body: Any) -> dict[str, Any]:
    """The body's arguments by their keys."""
    if body is None:
        return {}
    whole = op.placed(Place.WHOLE_BODY)
    if whole:  # a shape is read by its codec as the plain JSON value it was sent as
        return {whole[0].key: body.model_dump() if isinstance(body, BaseModel) else body}
    return dict(body.model_dump())


def _argument(arg: Arg, values: Mapping[str, Any]) -> Any:
    """The argument from the values sent, by their keys: read through its codec, or
    joined from its parts (each read through its own first).

    Raises:
        InvalidInput: a codec refuses a value.
    """
    if not arg.parts:
        return _read(arg, values[arg.key])
    assert arg.codec is not None  # held by ``table``
    return arg.codec.decode({part.key: _read(part, values[part.key]) for part in arg.parts})


def _read(arg: Arg, value: Any) -> Any:
    """Raises:
    InvalidInput: the argument's codec refuses the value.
    """
    return value if arg.codec is None or value is None else arg.codec.decode(value)


def _parameter(arg: Arg) -> inspect.Parameter:
    # In a path or a query string every value is text: a number is parsed from it.
    kind = _PARSED.get(arg.kind) or _type(arg)
    if arg.place is Place.PATH:
        return inspect.Parameter(arg.key, _POSITIONAL, annotation=Annotated[kind, Path()])
    where = Query(max_length=arg.max_length)
    if arg.required:
        return inspect.Parameter(arg.key, _POSITIONAL, annotation=Annotated[kind, where])
    annotation: Any = Annotated[_or_none(kind, arg), where]
    return inspect.Parameter(arg.key, _POSITIONAL, annotation=annotation, default=arg.default)


def _body_model(op: Operation) -> Any:
    """The pydantic model of the operation's JSON body (for a whole body: its shape, else
    any JSON object, which the argument's codec reads), or None when it takes none."""
    whole = op.placed(Place.WHOLE_BODY)
    if whole:
        return whole[0].shape or dict[str, object]
    args = op.placed(Place.BODY)
    if not args:
        return None
    fields: dict[str, Any] = {}
    for arg in args:
        kind: Any = Annotated[_type(arg), Field(max_length=arg.max_length)]
        default = arg.default
        if arg.max_items is not None:
            kind = Annotated[list[kind], Field(max_length=arg.max_items)]
            default = None if default is None else list(default)  # as a list is sent
        fields[arg.key] = (kind, ...) if arg.required else (_or_none(kind, arg), default)
    name = "".join(part.title() for part in op.name.split("_")) + "Body"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def _or_none(kind: Any, arg: Arg) -> Any:
    """An optional argument's type: None is a value only where it is the default."""
    return kind | None if arg.default is None else kind


def _type(arg: Arg) -> Any:
    if arg.shape is not None:
        return arg.shape
    if isinstance(arg.kind, type) and issubclass(arg.kind, Enum):
        return arg.kind
    if arg.kind is Kind.DIGEST and not arg.required and arg.default == "":
        return DigestOrEmpty  # "" is a value too: no object
    kinds = {Kind.TEXT: Text, Kind.VERSION: VersionNumber, Kind.TIMESTAMP: Timestamp,
             Kind.DIGEST: Digest, Kind.COUNT: Count}  # fmt: skip
    return kinds[arg.kind]
