"""A capability's operations as data: for each, the service method it calls, its verb and
path, its arguments (where each travels and what it must be), the codec of its answer and
who may reach it. The server's routes (``cairn.server.operations``) and the HTTP client
(``cairn.client.operations``) are both made from one table, so a wire shape is written
once: adding an operation is a method on the service and a row in its capability's table.

The arguments are listed in the order of the service method's parameters (a test holds
each table to its port), so a client call binds positional arguments as the method would.
An argument whose value is no plain JSON value (a model reference, a model card, a new
run) travels through its ``Codec``: written by the client, read back by the server before
the service sees it. A JSON object or list in a body declares its ``shape``
(``cairn.core.wire``), which the server checks before its codec reads it. An argument made
of several values on the wire (a data reference: the dataset's name and a selector, both
in the path) lists them as its ``parts``; its codec writes the values by their keys and
reads them back into the one argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from cairn.errors import CairnError, NotFound


class Place(StrEnum):
    PATH = "path"  # a segment of the path
    QUERY = "query"
    BODY = "body"  # a property of the JSON object sent
    WHOLE_BODY = "whole_body"  # the JSON object sent is the argument (its only one there)


class Kind(StrEnum):
    """What an argument's value must be, checked where it enters the server."""

    TEXT = "text"  # storable text: no NUL, no lone surrogate
    VERSION = "version"  # a model version's number: 1 or more, 64 bits
    TIMESTAMP = "timestamp"  # milliseconds since the epoch, 64 bits
    DIGEST = "digest"  # a content digest: "blake3:" and 64 hex characters
    COUNT = "count"  # a count or a size: 0 or more, 64 bits


class Access(StrEnum):
    """Who may call an operation at all: any valid token (the service decides on the
    objects it reaches), installation admins, or a permission held in some project."""

    AUTHENTICATED = "authenticated"
    ADMIN = "admin"
    READ = "read"
    WRITE = "write"
    MANAGE = "manage"
    APPROVE = "approve"


@dataclass(frozen=True, slots=True)
class Codec:
    """How a value that is no plain JSON value travels: ``encode`` writes it for the wire
    (in the client), ``decode`` reads it back (on the server, before the service). Either
    may refuse a value with InvalidInput, so a client refuses before sending what the
    server would refuse."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    place: Place = Place.BODY
    kind: Kind | type[Enum] = Kind.TEXT  # of the value on the wire
    required: bool = True
    default: Any = None  # what the method takes when the argument is left out
    max_length: int | None = None  # of text
    wire: str | None = None  # its name in the request, when not the parameter's
    codec: Codec | None = None  # for a value that is no plain JSON value (None passes as is)
    # For a JSON object or list: the type it must have on the wire (``cairn.core.wire``),
    # checked where it enters the server, in place of ``kind``; its codec reads it then.
    shape: Any = None
    max_items: int | None = None  # set: a list of values of its kind, at most this many
    # Set: the values it travels as (each placed and checked as an argument of its own);
    # its codec writes them as a dict by their keys and reads such a dict back.
    parts: tuple[Arg, ...] = ()

    @property
    def key(self) -> str:
        return self.wire or self.name

    @property
    def on_wire(self) -> tuple[Arg, ...]:
        """What travels: its parts, else itself."""
        return self.parts or (self,)


@dataclass(frozen=True, slots=True)
class Result:
    """How an answer travels: ``encode`` on the server, ``decode`` in the client. Its
    status is ``status`` unless ``status_of`` tells it from the answer (201 for a version
    made, 200 for one that was already there)."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    status: int = 200  # the usual one, which the API's document shows
    status_of: Callable[[Any], int] | None = None
    # Set: an answer of None travels as the error this makes of the call's arguments (a
    # 404, NotFound), which the client reads back as None.
    absent: Callable[[Mapping[str, Any]], CairnError] | None = None

    def status_for(self, answer: Any) -> int:
        return self.status if self.status_of is None else self.status_of(answer)


NOTHING = Result(lambda _: None, lambda _: None, status=204)


def one_or_none(
    to_dict: Callable[[Any], dict[str, Any]],
    from_dict: Callable[[dict[str, Any]], Any],
    absent: Callable[[Mapping[str, Any]], NotFound],
) -> Result:
    """One object, or None: answered as the error ``absent`` makes of the arguments."""
    return Result(to_dict, from_dict, absent=absent)


def one(
    to_dict: Callable[[Any], dict[str, Any]],
    from_dict: Callable[[dict[str, Any]], Any],
    status: int = 200,
) -> Result:
    """One object, as its codec writes it."""
    return Result(to_dict, from_dict, status)


def listed(
    key: str,
    to_dict: Callable[[Any], dict[str, Any]],
    from_dict: Callable[[dict[str, Any]], Any],
) -> Result:
    """A list, as ``{key: [...]}`` (an object, so a field can be added beside it later)."""
    return Result(
        lambda found: {key: [to_dict(item) for item in found]},
        lambda data: [from_dict(item) for item in data[key]],
    )


@dataclass(frozen=True, slots=True)
class Operation:
    name: str  # the service method's, and the route's
    verb: str
    path: str  # under the API's prefix, e.g. "/environments/{name}/check"
    access: Access
    result: Result
    args: tuple[Arg, ...] = ()
    summary: str = ""

    @property
    def on_wire(self) -> tuple[Arg, ...]:
        """The values that travel: each argument's, or its parts'."""
        return tuple(part for arg in self.args for part in arg.on_wire)

    def placed(self, place: Place) -> tuple[Arg, ...]:
        """The values that travel in ``place``."""
        return tuple(a for a in self.on_wire if a.place is place)

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of a call, by name, with the method's defaults filled in.

        Raises:
            TypeError: as the method would, for an argument too many or unknown, or a
                required one missing.
        """
        bound = self.signature().bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def signature(self) -> inspect.Signature:
        """The service method's parameters (after ``self``), as the table declares them."""
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature([
            inspect.Parameter(a.name, kind, default=inspect.Parameter.empty if a.required
                              else a.default)
            for a in self.args
        ])  # fmt: skip


def table(*operations: Operation) -> Mapping[str, Operation]:
    """Operations by name.

    Raises:
        ValueError: two of one name, a path argument the path does not hold, a whole body
            beside another argument in the body, two values of one key, or a malformed
            argument (see ``_check``).
    """
    found: dict[str, Operation] = {}
    for op in operations:
        if op.name in found:
            raise ValueError(f"two operations named {op.name!r}")
        for arg in op.placed(Place.PATH):
            if "{" + arg.key + "}" not in op.path:
                raise ValueError(f"{op.name}: {arg.key!r} is not in the path {op.path!r}")
        whole = op.placed(Place.WHOLE_BODY)
        if whole and len(whole) + len(op.placed(Place.BODY)) > 1:
            raise ValueError(f"{op.name}: a whole body is the only argument in the body")
        keys = [a.key for a in op.on_wire]
        if len(set(keys)) < len(keys):
            raise ValueError(f"{op.name}: two values travel as one key in {keys}")
        for arg in op.args:
            _check(op, arg)
        found[op.name] = op
    return found


def _check(op: Operation, arg: Arg) -> None:
    """Raises:
    ValueError: an argument of parts without a codec to join them, or with parts of its
        own; a list anywhere but in the body.
    """
    if arg.parts and arg.codec is None:
        raise ValueError(f"{op.name}: {arg.name!r} has parts but no codec to join them")
    if any(part.parts for part in arg.parts):
        raise ValueError(f"{op.name}: a part of {arg.name!r} has parts of its own")
    for value in arg.on_wire:
        if value.max_items is not None and value.place is not Place.BODY:
            raise ValueError(f"{op.name}: a list ({value.key!r}) travels in the body only")
