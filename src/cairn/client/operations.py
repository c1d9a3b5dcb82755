"""A capability's port over a Cairn server, made from its table of operations
(``cairn.core.operations``): each method writes its arguments (through their codecs,
where they have one; an argument of several parts as each of them) in the path, the
query or the JSON body as the table says, and decodes the answer with the result's codec
— the same table the server's routes are made from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, ClassVar
from urllib.parse import quote

from cairn.client.transport import API, ServerStore
from cairn.core.operations import Arg, Operation, Place
from cairn.errors import NotFound


class OperationClient(ServerStore):
    """Calls the server's operations by their method names (``client.promote(...)``)."""

    operations: ClassVar[Mapping[str, Operation]]

    def __getattr__(self, name: str) -> Callable[..., Any]:
        op = type(self).operations.get(name)
        if op is None:
            raise AttributeError(f"{type(self).__name__} has no operation {name!r}")

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(op, op.bind(args, kwargs))

        call.__name__ = name
        return call

    def _call(self, op: Operation, values: Mapping[str, Any]) -> Any:
        by_key = {key: sent for a in op.args for key, sent in _written(a, values[a.name])}
        path = op.path.format(**{a.key: quote(str(by_key[a.key]), safe=":")
                                 for a in op.placed(Place.PATH)})  # fmt: skip
        params = {a.key: str(by_key[a.key]) for a in op.placed(Place.QUERY)
                  if by_key[a.key] is not None}  # fmt: skip
        whole = op.placed(Place.WHOLE_BODY)
        body = (by_key[whole[0].key] if whole
                else {a.key: by_key[a.key] for a in op.placed(Place.BODY)} or None)  # fmt: skip
        try:
            found = self._http.call(op.verb, API + path, json=body, params=params)
        except NotFound:
            if op.result.absent is None:
                raise
            return None  # the answer None, as it travels
        return op.result.decode(found)


def _written(arg: Arg, value: Any) -> list[tuple[str, Any]]:
    """The values ``arg`` travels as, by their keys: its own, or — an argument of several
    parts — each part's, from what its codec writes.

    Raises:
        InvalidInput: a codec refuses the value (nothing is sent).
    """
    if not arg.parts:
        return [(arg.key, _wire(arg, value))]
    assert arg.codec is not None  # held by ``table``
    parts = arg.codec.encode(value)
    return [(part.key, _wire(part, parts[part.key])) for part in arg.parts]


def _wire(arg: Arg, value: Any) -> Any:
    """Raises:
    InvalidInput: the argument's codec refuses the value (nothing is sent).
    """
    if value is None:
        return None
    if arg.codec is not None:
        value = arg.codec.encode(value)
    return value.value if isinstance(value, Enum) else value
