"""The canonical encoding of a value a step's code reads, for its cache key: equal values
give equal bytes in every process, and a value the encoding cannot follow is named —
never silently left out.

Encoded by value: None, booleans, numbers, strings and bytes; lists, tuples, dicts and
sets (sorted: their order changes from one process to the next), and their subclasses;
ranges and slices; enum members; dataclass instances and their fields; instances of the
project's own classes (their attributes); ``functools.partial`` (its function, arguments
and keywords); bound methods (the function and its object); NumPy arrays and scalars and
pandas objects (their bytes, hashed with BLAKE3); paths, patterns, dates, decimals,
fractions, UUIDs, typing constructs; loggers (their name); callable objects that wrap a
function (``functools.update_wrapper``, ``functools.cache``): their state, the wrapped
function in it.

Functions, classes and modules are encoded by name, and handed to ``reach``: the code
fingerprint follows the project's own (``cairn.pipelines.fingerprint``). Anything else —
an object of a type this module does not know, a value above the size bounds — is
encoded as its type alone and reported through ``note``, as a sentence saying that its
value is not part of the cache key.

A container met again inside itself is encoded as a reference to it (how far up the
path it is), so that a list holding itself has one encoding and no recursion runs away.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import pathlib
import re
import sys
import types
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import blake3

from cairn.pipelines.definition import Pipeline, Step

MAX_ITEMS = 100_000  # elements followed in one value, containers' included
MAX_BYTES = 64 << 20  # of one string, bytes, array or table
MAX_DEPTH = 100  # containers inside containers (deeper, Python's own stack runs out)
_INLINE = 4096  # longer strings and bytes are put in as their BLAKE3 digest
_EXACT_REPR = frozenset(
    {"datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
     "datetime.timezone", "decimal.Decimal", "fractions.Fraction", "uuid.UUID"}
)  # fmt: skip


class _TooLarge(Exception):
    """More than MAX_ITEMS elements: the value is given up on as a whole."""


class Encoder:
    """Encodes values; ``reach`` is told of every function and class met (it says whether
    it is the project's), ``note`` of every value that could not be followed."""

    def __init__(self, reach: Callable[[Any], bool], note: Callable[[str], None]) -> None:
        self.reach = reach
        self.note = note
        self._out = bytearray()
        self._path: list[str] = []
        self._open: dict[int, int] = {}  # containers being encoded: id → depth
        self._items = 0
        self._kinds: tuple[tuple[Any, Callable[[Any], None]], ...] = (
            (type, self._class),
            ((types.FunctionType, types.BuiltinFunctionType), self._function),
            (types.ModuleType, self._module),
            ((functools.partial, functools.partialmethod), self._partial),
            (types.MethodType, self._method),
            ((staticmethod, classmethod, property, functools.cached_property), self._wrapper),
            ((str, bytes, bytearray, int, float, complex), self._scalar_subclass),
            ((list, tuple, deque), self._sequence),
            ((dict, types.MappingProxyType), self._mapping),
            ((set, frozenset), self._set),
            ((range, slice), self._range),
            (pathlib.PurePath, lambda v: self._tagged(b"P", v, str(v))),
            (re.Pattern, lambda v: self._tagged(b"x", v, (v.pattern, v.flags))),
            ((types.GenericAlias, types.UnionType), self._typing),
            (dataclasses.Field, self._field),
        )

    def encode(self, value: Any, where: str) -> bytes:
        """The bytes of ``value``, found at ``where`` (named in the notes)."""
        self._out, self._path, self._open, self._items = bytearray(), [where], {}, 0
        try:
            self._value(value)
        except _TooLarge:
            self.note(
                f"the value of {where} has more than {MAX_ITEMS} items: it was not followed "
                "and is not part of the cache key"
            )
            return b"?large:" + _type_name(value).encode()
        return bytes(self._out)

    # dispatch

    def _value(self, value: Any) -> None:
        self._items += 1
        if self._items > MAX_ITEMS:
            raise _TooLarge
        scalar = _SCALARS.get(type(value))
        if scalar is not None:
            self._out += scalar(value)
            return
        depth = self._open.get(id(value))
        if depth is not None:  # inside itself: how far up
            self._out += b"^%d;" % (len(self._open) - depth)
            return
        self._open[id(value)] = len(self._open)
        try:
            self._kind(value)(value)
        finally:
            del self._open[id(value)]

    def _kind(self, value: Any) -> Callable[[Any], None]:
        if isinstance(value, (Step, Pipeline)):
            return lambda v: self._value(v.function)
        if isinstance(value, enum.Enum):
            return self._enum
        package = type(value).__module__.partition(".")[0]
        if package in ("numpy", "pandas"):
            return self._numpy if package == "numpy" else self._pandas
        for kinds, method in self._kinds:
            if isinstance(value, kinds):
                return method
        return self._object

    # code

    def _class(self, value: type) -> None:
        self.reach(value)
        self._out += b"C" + _name(value) + b";"

    def _function(self, value: Any) -> None:
        owner = getattr(value, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):  # [].append
            self._out += b"b" + _name(value) + b";"
            self._child(".__self__", owner)
            return
        self.reach(value)
        line = getattr(getattr(value, "__code__", None), "co_firstlineno", 0)
        self._out += b"r" + _name(value) + b"@%d;" % line

    def _module(self, value: types.ModuleType) -> None:
        self._out += b"M" + value.__name__.encode() + b";"

    def _partial(self, value: Any) -> None:
        self._out += b"p"
        self._child(".func", value.func)
        self._child(".args", value.args)
        self._child(".keywords", value.keywords)

    def _method(self, value: types.MethodType) -> None:
        self._out += b"m"
        self._child(".__func__", value.__func__)
        self._child(".__self__", value.__self__)

    def _wrapper(self, value: Any) -> None:
        """A static or class method, a property: the functions inside."""
        self._out += b"w" + _type_name(value).encode() + b";"
        for attribute in ("__func__", "fget", "fset", "fdel", "func"):
            inner = getattr(value, attribute, None)
            if inner is not None:
                self._child(f".{attribute}", inner)

    # data

    def _scalar_subclass(self, value: Any) -> None:
        base = next(b for b in type(value).__mro__ if b in _SCALARS)
        self._class(type(value))
        self._out += _SCALARS[base](value)

    def _sequence(self, value: Any) -> None:
        self._header(b"t" if isinstance(value, tuple) else b"l", value, len(value))
        for index, item in enumerate(value):
            self._child(f"[{index}]", item)

    def _mapping(self, value: Any) -> None:
        self._header(b"d", value, len(value))
        if isinstance(value, defaultdict):
            self._child(".default_factory", value.default_factory)
        for key, item in value.items():  # in order: iterating a dict follows it
            self._child("[…]", key)
            shown = f"[{key!r}]" if isinstance(key, (str, int)) else "[…]"
            self._child(shown, item)

    def _set(self, value: Any) -> None:
        self._header(b"Z" if isinstance(value, frozenset) else b"S", value, len(value))
        outer = self._out
        encoded = []
        for item in value:
            self._out = bytearray()
            self._child("{…}", item)
            encoded.append(bytes(self._out))
        self._out = outer
        for item_bytes in sorted(encoded):
            self._out += b"%d:" % len(item_bytes) + item_bytes

    def _range(self, value: Any) -> None:
        self._header(b"R", value, 3)
        for part in ("start", "stop", "step"):
            self._child(f".{part}", getattr(value, part))

    def _enum(self, value: enum.Enum) -> None:
        self._class(type(value))
        self._out += b"e" + str(value.name).encode() + b";"
        self._child(".value", value.value)

    def _field(self, value: dataclasses.Field[Any]) -> None:
        self._out += b"D" + str(value.name).encode() + b";"
        self._child(".default", value.default)
        self._child(".default_factory", value.default_factory)

    def _typing(self, value: Any) -> None:
        self._out += b"y" + repr(value).encode() + b";"

    def _tagged(self, tag: bytes, value: Any, state: Any) -> None:
        self._class(type(value))
        self._out += tag
        self._child("", state)

    def _object(self, value: Any) -> None:
        kind = type(value)
        if kind is object or value is dataclasses.MISSING:  # a sentinel: no state
            self._out += b"o" + _name(kind) + b";"
        elif f"{kind.__module__}.{kind.__qualname__}" in _EXACT_REPR:
            self._out += b"X" + _name(kind) + repr(value).encode() + b";"
        elif kind.__module__ == "typing":
            self._typing(value)
        elif kind.__module__ == "logging" and hasattr(value, "getChild"):  # a logger
            self._tagged(b"L", value, value.name)
        elif dataclasses.is_dataclass(value):
            self._attributes(value, [(f.name, getattr(value, f.name))
                                     for f in dataclasses.fields(value)])  # fmt: skip
        elif self.reach(kind) or (callable(value) and hasattr(value, "__wrapped__")):
            # An instance of the project's own class (its class's code is followed), or a
            # wrapper (functools.cache …): its state, the function it wraps included.
            self._attributes(value, _state(value))
        else:
            self._unfollowed(value)

    def _attributes(self, value: Any, attributes: list[tuple[str, Any]]) -> None:
        self._class(type(value))
        self._out += b"{%d;" % len(attributes)
        for name, item in attributes:
            self._out += name.encode() + b"="
            self._child(f".{name}", item)

    # arrays and tables

    def _numpy(self, value: Any) -> None:
        numpy = sys.modules["numpy"]
        if isinstance(value, numpy.ufunc):
            self._out += b"u" + value.__name__.encode() + b";"
        elif isinstance(value, numpy.dtype):
            self._out += b"t" + repr(value.descr).encode() + b";"
        elif not isinstance(value, (numpy.ndarray, numpy.generic)):
            self._unfollowed(value)
        elif value.dtype.hasobject:  # pointers in its bytes: its items instead
            self._out += b"A%a;" % (value.shape,)
            self._child(".tolist()", value.tolist())
        elif value.nbytes > MAX_BYTES:
            self._too_big(value, f"{value.nbytes} bytes")
        else:
            flat = numpy.ascontiguousarray(value).reshape(-1).view(numpy.uint8)
            self._out += b"a%a%a;" % (value.dtype.descr, value.shape)
            self._out += blake3.blake3(flat).digest()

    def _pandas(self, value: Any) -> None:
        pandas = sys.modules["pandas"]
        if not isinstance(value, (pandas.DataFrame, pandas.Series, pandas.Index)):
            self._unfollowed(value)
            return
        if value.size * 8 > MAX_BYTES:
            self._too_big(value, f"{value.size} cells")
            return
        try:
            rows = pandas.util.hash_pandas_object(value).to_numpy()
        except TypeError:  # cells that cannot be hashed (lists, dicts)
            self._unfollowed(value)
            return
        self._class(type(value))
        self._child(".shape", value.shape)
        columns = value.columns if isinstance(value, pandas.DataFrame) else [value.name]
        self._child(".columns", [str(c) for c in columns])
        self._child(".dtypes", str(getattr(value, "dtypes", value.dtype)))
        self._out += blake3.blake3(rows.view("uint8")).digest()

    # helpers

    def _child(self, segment: str, value: Any) -> None:
        self._path.append(segment)
        if len(self._path) > MAX_DEPTH:
            self._too_big(value, f"nested more than {MAX_DEPTH} deep")
        else:
            self._value(value)
        self._path.pop()

    def _header(self, tag: bytes, value: Any, length: int) -> None:
        if type(value) not in _PLAIN:  # a namedtuple, an OrderedDict …: its class too
            self._class(type(value))
        self._out += tag + b"%d;" % length

    def _unfollowed(self, value: Any) -> None:
        self.note(
            f"the value of {''.join(self._path)} (a {_type_name(value)}) is not part of the "
            "cache key"
        )
        self._out += b"?" + _name(type(value)) + b";"

    def _too_big(self, value: Any, size: str) -> None:
        self.note(
            f"the value of {''.join(self._path)} ({size}) is too large to follow and is not "
            "part of the cache key"
        )
        self._out += b"?large:" + _name(type(value)) + b";"


def _text(tag: bytes, data: bytes) -> bytes:
    if len(data) > _INLINE:
        return tag.upper() + blake3.blake3(data).digest()
    return tag + b"%d:" % len(data) + data


def _string(value: str) -> bytes:
    return _text(b"s", value.encode("utf-8", "surrogatepass"))


def _state(value: Any) -> list[tuple[str, Any]]:
    """An object's attributes: its ``__dict__`` and its slots."""
    found = list(getattr(value, "__dict__", {}).items())
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names = [slots] if isinstance(slots, str) else slots
        found.extend(
            (name, getattr(value, name)) for name in names
            if name not in ("__dict__", "__weakref__") and hasattr(value, name)
        )  # fmt: skip
    return found


def _name(value: Any) -> bytes:
    module = getattr(value, "__module__", None) or ""
    qualified = getattr(value, "__qualname__", None) or getattr(value, "__name__", "")
    return f"{module}:{qualified}".encode("utf-8", "surrogatepass")


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}"
    )  # fmt: skip


_SCALARS: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda _: b"N;",
    bool: lambda v: b"T;" if v else b"F;",
    int: lambda v: b"i%x;" % v,
    float: lambda v: b"f" + v.hex().encode() + b";",
    complex: lambda v: b"c" + v.real.hex().encode() + b"," + v.imag.hex().encode() + b";",
    str: _string,
    bytes: lambda v: _text(b"y", v),
    bytearray: lambda v: _text(b"y", bytes(v)),
}
_PLAIN = frozenset({list, tuple, dict, set, frozenset, range, slice})
