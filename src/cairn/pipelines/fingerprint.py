"""A step's code fingerprint: its own source, and the source of every project-local
function and class it reaches, so that changing a helper in another module invalidates
the step's cache, and changing a file the step never reaches does not.

"Reaches" follows the names the code uses (its bytecode's global names, nested functions
and comprehensions included): a global that is a function or class defined in a project
module is fingerprinted in turn; a project module used as ``helpers.clean`` contributes
the attributes the code names; a global constant (a number, a string, a tuple of them)
contributes its value. Project modules are those whose file lies below the project root
and outside any installed package; installed packages are covered by the environment's
digest instead, and Cairn's own code by its version.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cairn.localfs.digest import digest_of, hasher

_INSTALLED = ("site-packages", "dist-packages")
_CONSTANTS = (int, float, str, bytes, bool, type(None))


def code_fingerprint(function: Any, root: Path) -> str:
    """The digest of ``function``'s source and of the project code it reaches."""
    walker = _Walker(root.resolve())
    walker.visit(function)
    state = hasher()
    for part in walker.parts:
        state.update(part.encode("utf-8", "surrogateescape"))
        state.update(b"\0")
    return digest_of(state)


class _Walker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.parts: list[str] = []
        self._seen: set[int] = set()
        self._local_modules: dict[str, bool] = {}

    def visit(self, obj: Any) -> None:
        inner = getattr(obj, "function", None)  # a Step: its function
        if inner is not None and callable(inner) and not isinstance(obj, types.FunctionType):
            obj = inner
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, type):
            self._class(obj)

    def _function(self, function: types.FunctionType) -> None:
        self.parts.append(f"def {function.__module__}.{function.__qualname__}")
        self.parts.append(_source(function))
        self._names(function.__code__, function.__globals__)

    def _class(self, cls: type) -> None:
        self.parts.append(f"class {cls.__module__}.{cls.__qualname__}")
        self.parts.append(_source(cls))
        namespace = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
        for member in vars(cls).values():
            function = getattr(member, "__func__", member)  # static and class methods
            if isinstance(function, types.FunctionType):
                self._names(function.__code__, function.__globals__ or namespace)

    def _names(self, code: types.CodeType, namespace: dict[str, Any]) -> None:
        used = set(_all_names(code))
        for name in sorted(used):
            if name not in namespace:
                continue  # a builtin, an attribute name, or a local
            value = namespace[name]
            if isinstance(value, types.ModuleType):
                if self._is_local(value):
                    for attribute in sorted(used):
                        member = getattr(value, attribute, None)
                        if member is not None and self._defined_locally(member):
                            self.visit(member)
            elif self._defined_locally(value):
                self.visit(value)
            elif _is_constant(value):
                self.parts.append(f"{name} = {value!r}")

    def _defined_locally(self, value: Any) -> bool:
        if getattr(value, "function", None) is not None and callable(value):
            value = value.function  # a Step
        if not isinstance(value, (types.FunctionType, type)):
            return False
        module = sys.modules.get(getattr(value, "__module__", "") or "")
        return module is not None and self._is_local(module)

    def _is_local(self, module: types.ModuleType) -> bool:
        name = module.__name__
        if name not in self._local_modules:
            self._local_modules[name] = _project_module(module, self.root)
        return self._local_modules[name]


def _project_module(module: types.ModuleType, root: Path) -> bool:
    if module.__name__ == "cairn" or module.__name__.startswith("cairn."):
        return False  # Cairn's own code: its version is in the environment's digest
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = Path(file).resolve()
    if any(part in _INSTALLED for part in path.parts):
        return False
    return path.is_relative_to(root)


def _all_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):  # nested functions, comprehensions
            yield from _all_names(constant)


def _source(obj: Any) -> str:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):  # defined where no source is kept (a REPL, exec)
        code = getattr(obj, "__code__", None)
        return repr((code.co_code, code.co_consts)) if code is not None else repr(obj)


def _is_constant(value: Any) -> bool:
    if isinstance(value, _CONSTANTS):
        return True
    return isinstance(value, (tuple, frozenset)) and all(_is_constant(v) for v in value)
