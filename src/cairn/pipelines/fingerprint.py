"""A step's code fingerprint: the code it runs and the values that code reads, as far as
they are the project's, so that changing either re-runs the step — and a note for each
value it reads that cannot be followed, so that a stale result is never served silently.

What is followed, from the step's function:

- a function of the project: its source (decorators included), the values of its default
  arguments, the values its closure captured, and every global name its code uses
  (nested functions, lambdas, comprehensions and decorator expressions included);
- a global name: its value, in the canonical encoding of ``cairn.pipelines.canonical``
  (a constant, a dict or list of them, a partial, an array …); a function or class in
  it is followed in turn;
- a module of the project, used as ``config.LR`` or ``config.SETTINGS["lr"]``: each of
  its attributes the code names, the same way (and its submodules');
- a class of the project: its source, its base classes of the project, and every class
  attribute (methods, class-level values, dataclass fields, enum members) by value.

Project modules are those whose file lies below the project root and outside any
installed package and the standard library (and an interactive session's ``__main__``);
installed packages and Python are covered by the environment's digest instead, and
Cairn's own code by its version.

What is not followed is noted: an object of a type the encoding does not know, a value
too large to follow, environment variables the code reads (``os.environ``,
``os.getenv``) and files it opens with ``open()``. Values reached only dynamically
(``getattr(module, name)``, ``globals()[name]``, ``importlib``) are not seen at all.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import marshal
import os
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.localfs.digest import digest_of, hasher
from cairn.pipelines.canonical import Encoder
from cairn.pipelines.definition import Pipeline, Step

_INSTALLED = ("site-packages", "dist-packages")
_STANDARD_LIBRARY = Path(os.__file__).resolve().parent  # covered by Python's version
_ENVIRONMENT_NAMES = frozenset({"environ", "environb", "getenv", "getenvb"})
_ENVIRONMENT = tuple(getattr(os, name) for name in sorted(_ENVIRONMENT_NAMES) if hasattr(os, name))
# Class attributes that are Python's bookkeeping, not the class's behaviour.
_PLUMBING = frozenset(
    {"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__", "__annotations__",
     "__dataclass_params__", "__orig_bases__", "__parameters__", "__firstlineno__",
     "__static_attributes__", "_abc_impl"}
)  # fmt: skip
_SOURCES: dict[int, tuple[Any, str]] = {}  # code object or class id → (it, its source)


@dataclass(frozen=True, slots=True)
class CodeFingerprint:
    digest: str
    unfollowed: tuple[str, ...]  # sentences: what the digest does not cover


def code_fingerprint(function: Any, root: Path) -> CodeFingerprint:
    """The digest of ``function``'s code and of the project code and values it reaches,
    with what it reaches but cannot follow."""
    walker = _Walker(root.resolve())
    walker.walk(function)
    state = hasher()
    for part in sorted(walker.parts):  # in any order they were met: the same digest
        state.update(b"%d:" % len(part))
        state.update(part)
    return CodeFingerprint(digest_of(state), tuple(walker.notes))


class _Walker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.parts: set[bytes] = set()
        self.notes: dict[str, None] = {}  # in the order found, once each
        self._seen: set[int] = set()
        self._bound: set[str] = set()  # global names already encoded, module-qualified
        self._modules: set[tuple[str, frozenset[str]]] = set()  # and the names read there
        self._pending: list[Any] = []
        self._local_modules: dict[str, bool] = {}
        self._encoder = Encoder(self._reach, self._note)

    def walk(self, function: Any) -> None:
        function = _unwrapped(function)
        if isinstance(function, (types.FunctionType, type)):
            self._seen.add(id(function))
            self._pending.append(function)  # the step itself, wherever it is defined
        else:  # a callable object: its value
            where = getattr(function, "__qualname__", None) or type(function).__qualname__
            self._add(b"callable", where, [self._encoder.encode(function, where)])
        while self._pending:
            found = self._pending.pop()
            if isinstance(found, type):
                self._class(found)
            else:
                self._function(found)

    def _reach(self, value: Any) -> bool:
        """Whether ``value`` is a function or class of the project (followed, once)."""
        value = _unwrapped(value)
        if not self._defined_locally(value):
            return False
        if id(value) not in self._seen:
            self._seen.add(id(value))
            self._pending.append(value)
        return True

    def _note(self, sentence: str) -> None:
        self.notes[sentence] = None

    def _function(self, function: types.FunctionType) -> None:
        name = f"{function.__module__}.{function.__qualname__}"
        source = _source(function.__code__, function.__globals__)
        pieces = [source.encode("utf-8", "surrogateescape")]
        for argument, value in _defaults(function):
            pieces.append(self._encoder.encode(value, f"{name}'s default for {argument!r}"))
        for variable, value in _captured(function):
            pieces.append(self._encoder.encode(value, f"{name}'s captured {variable!r}"))
        self._add(b"def", name, pieces)
        used = set(_all_names(function.__code__)) | _decorator_names(source)
        self._globals(used, function.__globals__, name)

    def _class(self, cls: type) -> None:
        name = f"{cls.__module__}.{cls.__qualname__}"
        pieces = [_source(cls, {}).encode("utf-8", "surrogateescape")]
        for base in cls.__mro__[1:]:
            self._reach(base)
        written = getattr(sys.modules.get(cls.__module__), "__file__", None) is not None
        for attribute, member in vars(cls).items():
            if _bookkeeping(attribute, member) or (written and _generated(member)):
                continue
            encoded = self._encoder.encode(member, f"{name}.{attribute}")
            pieces.append(attribute.encode() + b"=" + encoded)
        self._add(b"class", name, pieces)

    def _globals(self, used: set[str], namespace: dict[str, Any], user: str) -> None:
        module = namespace.get("__name__", "?")
        for name in sorted(used & namespace.keys()):
            self._global(f"{module}.{name}", namespace[name], used, user)
        if "open" in used and "open" not in namespace:  # the builtin
            self._note(
                f"the files {user} opens with open() are not part of the cache key (pass "
                "data as a data version parameter, such as customers@latest)"
            )

    def _global(self, where: str, value: Any, used: set[str], user: str) -> None:
        if isinstance(value, types.ModuleType):  # followed for each set of names read
            self._module(value, used, user)
            return
        if where in self._bound or where.endswith(".__builtins__"):
            return
        self._bound.add(where)
        if any(value is known for known in _ENVIRONMENT):
            self._environment(user)
        else:
            self._add(b"global", where, [self._encoder.encode(value, where)])

    def _module(self, module: types.ModuleType, used: set[str], user: str) -> None:
        if module is os and used & _ENVIRONMENT_NAMES:
            self._environment(user)
        if not self._is_local(module):
            return  # an installed package: its version is in the environment's digest
        # What the code names, read from the module's namespace (a module's __getattr__
        # may import or compute: it is not called).
        named = frozenset(used & vars(module).keys())
        if (module.__name__, named) in self._modules:
            return  # modules that import each other
        self._modules.add((module.__name__, named))
        for attribute in sorted(named):
            self._global(f"{module.__name__}.{attribute}", vars(module)[attribute], used, user)

    def _environment(self, user: str) -> None:
        self._note(
            f"the environment variables {user} reads are not part of the cache key (pass "
            "them as parameters)"
        )

    def _add(self, kind: bytes, name: str, pieces: list[bytes]) -> None:
        part = bytearray(kind + b" " + name.encode("utf-8", "surrogateescape"))
        for piece in pieces:
            part += b"\0%d:" % len(piece) + piece
        self.parts.add(bytes(part))

    def _defined_locally(self, value: Any) -> bool:
        if not isinstance(value, (types.FunctionType, type)):
            return False
        module = sys.modules.get(getattr(value, "__module__", "") or "")
        return module is not None and self._is_local(module)

    def _is_local(self, module: types.ModuleType) -> bool:
        name = module.__name__
        if name not in self._local_modules:
            self._local_modules[name] = _project_module(module, self.root)
        return self._local_modules[name]


def _unwrapped(value: Any) -> Any:
    return value.function if isinstance(value, (Step, Pipeline)) else value


def _project_module(module: types.ModuleType, root: Path) -> bool:
    if module.__name__ == "cairn" or module.__name__.startswith("cairn."):
        return False  # Cairn's own code: its version is in the environment's digest
    file = getattr(module, "__file__", None)
    if not file:
        return module.__name__ == "__main__"  # an interactive session (a notebook)
    path = Path(file).resolve()
    if any(part in _INSTALLED for part in path.parts) or path.is_relative_to(_STANDARD_LIBRARY):
        return False  # even when the project folder holds the Python installation
    return path.is_relative_to(root)


def _defaults(function: types.FunctionType) -> Iterator[tuple[str, Any]]:
    code = function.__code__
    defaults = function.__defaults__ or ()
    positional = code.co_varnames[: code.co_argcount]
    yield from zip(positional[len(positional) - len(defaults) :], defaults, strict=True)
    yield from (function.__kwdefaults__ or {}).items()


def _captured(function: types.FunctionType) -> Iterator[tuple[str, Any]]:
    for variable, cell in zip(function.__code__.co_freevars, function.__closure__ or (),
                              strict=True):  # fmt: skip
        try:
            yield variable, cell.cell_contents
        except ValueError:  # not assigned yet
            yield variable, None


def _all_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):  # nested functions, comprehensions
            yield from _all_names(constant)


def _decorator_names(source: str) -> set[str]:
    """The names decorator expressions use (``@retry(times=config.TIMES)``): evaluated
    when the function was defined, they are in no code object of its own."""
    if not source.lstrip().startswith("@"):
        return set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for definition in tree.body[:1]:
        for decorator in getattr(definition, "decorator_list", []):
            for node in ast.walk(decorator):
                if isinstance(node, ast.Name):
                    found.add(node.id)
                elif isinstance(node, ast.Attribute):
                    found.add(node.attr)
    return found


def _bookkeeping(attribute: str, member: Any) -> bool:
    if attribute in _PLUMBING:
        return True
    if len(attribute) > 2 and attribute[0] == attribute[-1] == "_" != attribute[1]:
        return True  # _sunder_ names: Enum's own tables
    return isinstance(member, (types.MemberDescriptorType, types.GetSetDescriptorType))


def _generated(member: Any) -> bool:
    """A method written by a library (a dataclass's ``__init__``, a namedtuple's
    ``__new__``): it follows from the class's fields, which are followed."""
    code = getattr(member, "__code__", None)
    return code is not None and code.co_filename.startswith("<")


def _source(obj: Any, namespace: dict[str, Any]) -> str:
    """Source text, read once per process for each code object or class."""
    cached = _SOURCES.get(id(obj))
    if cached is not None and cached[0] is obj:
        return cached[1]
    try:
        text = _code_source(obj, namespace) if isinstance(obj, types.CodeType) else (
            inspect.getsource(obj)
        )  # fmt: skip
    except (OSError, TypeError, SyntaxError, IndexError):  # no source kept (a REPL, exec)
        text = marshal.dumps(obj).hex() if isinstance(obj, types.CodeType) else repr(obj)
    _SOURCES[id(obj)] = (obj, textwrap.dedent(text))
    return _SOURCES[id(obj)][1]


def _code_source(code: types.CodeType, namespace: dict[str, Any]) -> str:
    """The block a code object was compiled from, read from its file's lines: what
    ``inspect.getsource`` returns for it, without the search through every loaded module's
    path it makes first (which costs more than all the rest of a fingerprint)."""
    linecache.checkcache(code.co_filename)
    lines = linecache.getlines(code.co_filename, namespace)
    if not lines:
        raise OSError(f"no source for {code.co_filename}")
    return "".join(inspect.getblock(lines[code.co_firstlineno - 1 :]))
