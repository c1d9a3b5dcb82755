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
  its attributes the code names, the same way (and its submodules'); every one of them
  when the code reads its namespace whole (``config.__dict__``, ``vars(config)``);
- a module the code imports as it runs (``from config import LR`` in a step's body,
  relative imports too): imported now, as the step would, and followed the same way;
- a module of the project that a module followed imports and never names again
  (``import settings  # noqa: F401``): imported for what its import does — setting a
  library's options — its source and the values its code reads;
- a class of the project: its source, its base classes of the project, and every class
  attribute (methods, class-level values, dataclass fields, enum members) by value; a
  method made by ``exec`` by its compiled code.

Followed is every module no version covers (``cairn.pipelines.origin``): the project's,
and a folder beside it on ``sys.path`` or an editable install alike. Installed packages
and Python are covered by the environment's digest instead, and Cairn's own code by its
version; they are not imported to be fingerprinted.

What is not followed is noted: an object of a type the encoding does not know, a value
too large to follow, environment variables the code reads (``os.environ``,
``os.getenv``), files it opens with ``open()``, and a module it imports that cannot be
imported yet. Values reached only dynamically (``getattr(module, name)``,
``globals()[name]``, ``importlib``) are not seen at all, nor are a library's settings
made by a module the code reads or by the step's own module.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import linecache
import os
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cairn.localfs.digest import digest_of, hasher
from cairn.pipelines.canonical import Encoder
from cairn.pipelines.definition import Pipeline, Step
from cairn.pipelines.executors import one_line
from cairn.pipelines.imports import Import, imported_for_effects, imports, module_source
from cairn.pipelines.origin import followed_module, followed_spec

_ENVIRONMENT_NAMES = frozenset({"environ", "environb", "getenv", "getenvb"})
_ENVIRONMENT = tuple(getattr(os, name) for name in sorted(_ENVIRONMENT_NAMES) if hasattr(os, name))
# Class attributes that are Python's bookkeeping, not the class's behaviour.
_PLUMBING = frozenset(
    {"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__", "__annotations__",
     "__dataclass_params__", "__orig_bases__", "__parameters__", "__firstlineno__",
     "__static_attributes__", "_abc_impl"}
)  # fmt: skip
# Names through which code reads a module's whole namespace (config.__dict__["LR"]).
_WHOLE_NAMESPACE = frozenset({"__dict__", "vars"})
# Functions that take a name as a string: the strings the code holds are names it reads,
# and, for the importers, modules it imports.
_IMPORTERS = frozenset({"import_module", "__import__"})
_BY_NAME = frozenset({"getattr", "hasattr"}) | _IMPORTERS
_SOURCES: dict[int, tuple[Any, str]] = {}  # code object or class id → (it, its source)


@dataclass(frozen=True, slots=True)
class CodeFingerprint:
    digest: str
    unfollowed: tuple[str, ...]  # sentences: what the digest does not cover


def code_fingerprint(function: Any) -> CodeFingerprint:
    """The digest of ``function``'s code and of the project code and values it reaches,
    with what it reaches but cannot follow."""
    walker = _Walker()
    walker.walk(function)
    state = hasher()
    for part in sorted(walker.parts):  # in any order they were met: the same digest
        state.update(b"%d:" % len(part))
        state.update(part)
    return CodeFingerprint(digest_of(state), tuple(walker.notes))


class _Walker:
    def __init__(self) -> None:
        self.parts: set[bytes] = set()
        self.notes: dict[str, None] = {}  # in the order found, once each
        self._seen: set[int] = set()
        self._bound: set[str] = set()  # global names already encoded, module-qualified
        self._modules: set[tuple[str, frozenset[str]]] = set()  # and the names read there
        self._pending: list[Any] = []
        self._local_modules: dict[str, bool] = {}
        self._entered: set[str] = set()  # modules whose imports for effects were followed
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
        pieces = [_text(source)]
        for argument, value in _defaults(function):
            pieces.append(self._encoder.encode(value, f"{name}'s default for {argument!r}"))
        for variable, value in _captured(function):
            pieces.append(self._encoder.encode(value, f"{name}'s captured {variable!r}"))
        self._add(b"def", name, pieces)
        used, statements = _reads(function.__code__, source)
        self._globals(used, function.__globals__, name)
        for statement in statements:  # the modules it imports as it runs, as globals are
            module = self._import(statement, function.__globals__, name)
            if module is not None:
                self._module(module, used, name)

    def _class(self, cls: type) -> None:
        name = f"{cls.__module__}.{cls.__qualname__}"
        pieces = [_text(_source(cls, {}))]
        for base in cls.__mro__[1:]:
            self._reach(base)
        written = getattr(sys.modules.get(cls.__module__), "__file__", None) is not None
        for attribute, member in vars(cls).items():
            if _bookkeeping(attribute, member) or (written and _generated(cls, attribute, member)):
                continue
            encoded = self._encoder.encode(member, f"{name}.{attribute}")
            pieces.append(attribute.encode() + b"=" + encoded)
        self._add(b"class", name, pieces)

    def _globals(self, used: set[str], namespace: dict[str, Any], user: str) -> None:
        module = namespace.get("__name__", "?")
        self._enter(namespace)
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
        self._enter(vars(module))
        named = _named(module, used)
        if (module.__name__, named) in self._modules:
            return  # modules that import each other
        self._modules.add((module.__name__, named))
        inner = used - _WHOLE_NAMESPACE  # config.__dict__ is not its submodules' namespaces
        for attribute in sorted(named):
            self._global(f"{module.__name__}.{attribute}", vars(module)[attribute], inner, user)

    def _import(
        self, statement: Import, namespace: dict[str, Any], user: str
    ) -> types.ModuleType | None:
        """What the import statement gives the code, imported now as the step will import
        it when it runs — unless a version covers it: an installed package is not imported
        (importing one can take seconds, and the environment's digest covers it)."""
        try:
            name = importlib.util.resolve_name(
                "." * statement.level + statement.name, namespace.get("__package__")
            )
        except (ImportError, ValueError):  # relative, outside a package: fails when run too
            return None
        if not self._is_local_name(name.partition(".")[0]):
            return None
        try:
            return importlib.__import__(
                statement.name, namespace, None, statement.fromlist, statement.level
            )
        except Exception as error:  # noqa: BLE001  # whatever the module's own code raised
            if _absent(error, name):
                self._add(b"absent", name, [])  # creating it must change the key
            else:
                self._note(
                    f"{user} imports {name}, which could not be imported ({one_line(error)}): "
                    "what it defines is not part of the cache key"
                )
            return None

    def _enter(self, namespace: dict[str, Any]) -> None:
        """A module whose code is followed: the modules it imports for what importing them
        does are followed too, where no version covers them."""
        name = namespace.get("__name__", "?")
        module = sys.modules.get(name)
        if name in self._entered or module is None or not self._is_local(module):
            return
        self._entered.add(name)
        bound = [value for value in namespace.values() if isinstance(value, types.ModuleType)]
        if any(map(self._is_local, bound)):  # else no need to read its source
            for module in imported_for_effects(namespace):
                if self._is_local(module):
                    self._effects(module)

    def _effects(self, module: types.ModuleType) -> None:
        """A module imported for its effects: its source, and the values its code reads."""
        source = module_source(vars(module))
        if source is not None:  # else a namespace package: importing it runs nothing
            self._add(b"module", module.__name__, [_text(source.text)])
            self._globals(set(source.names), vars(module), module.__name__)

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
        if isinstance(value, types.FunctionType):
            # The module it runs in, not the __module__ functools.wraps may have copied;
            # none for a function made by exec in a namespace of its own: no version
            # covers that either.
            module = sys.modules.get(value.__globals__.get("__name__") or "")
            return module is None or self._is_local(module)
        if isinstance(value, type):
            module = sys.modules.get(value.__module__)
            return module is not None and self._is_local(module)
        return False

    def _is_local(self, module: types.ModuleType) -> bool:
        name = module.__name__
        if name not in self._local_modules:
            self._local_modules[name] = followed_module(module)
        return self._local_modules[name]

    def _is_local_name(self, name: str) -> bool:
        """The same for a top-level module that may not be imported yet (found, not run)."""
        if name in sys.modules:
            return self._is_local(sys.modules[name])
        if name not in self._local_modules:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            if spec is None:  # nothing by that name: creating it must change the key
                self._add(b"absent", name, [])
            self._local_modules[name] = spec is not None and followed_spec(spec)
        return self._local_modules[name]


def _unwrapped(value: Any) -> Any:
    return value.function if isinstance(value, (Step, Pipeline)) else value


def _reads(code: types.CodeType, source: str) -> tuple[set[str], list[Import]]:
    """The names code uses and the imports it makes — names written as strings included,
    for ``getattr(config, "LR")`` and ``import_module("config")``."""
    used = set(_all_names(code)) | _decorator_names(source)
    statements = list(imports(code))
    if used & _BY_NAME:
        strings = [text for text in _strings(code) if all(map(str.isidentifier, text.split(".")))]
        used.update(part for text in strings for part in text.split("."))
        if used & _IMPORTERS:
            statements += [Import(text, None, 0) for text in strings]
    return used, statements


def _strings(code: types.CodeType) -> Iterator[str]:
    for constant in code.co_consts:
        if isinstance(constant, str):
            yield constant
        elif isinstance(constant, types.CodeType):
            yield from _strings(constant)


def _absent(error: Exception, name: str) -> bool:
    """Whether ``error`` says that the module ``name`` does not exist."""
    missing = error.name if isinstance(error, ModuleNotFoundError) else None
    return bool(missing) and (name == missing or name.startswith(f"{missing}."))


def _named(module: types.ModuleType, used: set[str]) -> frozenset[str]:
    """The names of ``module`` the code reads, from its namespace (a module's __getattr__
    may import or compute: it is not called)."""
    if used & _WHOLE_NAMESPACE:
        return frozenset(name for name in vars(module) if not _dunder(name))
    return frozenset(used & vars(module).keys())


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _text(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


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


def _generated(cls: type, attribute: str, member: Any) -> bool:
    """A method a library wrote for the class (a dataclass's ``__init__``, a namedtuple's
    ``__new__``): it follows from the class's fields, which are followed. A function made
    by ``exec`` and set on the class by hand is named otherwise, and is followed."""
    code = getattr(member, "__code__", None)
    return (
        code is not None
        and code.co_filename.startswith("<")
        and getattr(member, "__qualname__", "") == f"{cls.__qualname__}.{attribute}"
    )


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
        text = _compiled(obj) if isinstance(obj, types.CodeType) else repr(obj)
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


def _compiled(code: types.CodeType) -> str:
    """What a code object with no source computes: its instructions, names and constants,
    written the same in every process (``marshal``'s bytes depend on reference counts)."""
    constants = [
        _compiled(value) if isinstance(value, types.CodeType) else _constant(value)
        for value in code.co_consts
    ]
    shape = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
    return repr((code.co_code.hex(), code.co_names, code.co_varnames, shape, constants))


def _constant(value: Any) -> str:
    if isinstance(value, frozenset):  # ``x in {"a", "b"}``: its order changes with the process
        return "frozenset(" + ",".join(sorted(map(_constant, value))) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(map(_constant, value)) + ",)"
    return repr(value)
