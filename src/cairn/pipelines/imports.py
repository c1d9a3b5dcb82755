"""What code imports, for the code fingerprint: what a module's namespace does not show.

- The import statements in a function's compiled code (``from config import LR`` in a
  step's body): they run when the function is called, so what they bind is in no
  module's namespace when the key is computed.
- The modules a module imports only for what importing them does (``import settings  #
  noqa: F401``, where ``settings`` sets NumPy's print options or decimal's precision):
  no code names them again, so following names never reaches them.

Both are read without running anything: the bytecode, and the module's source parsed.
"""

from __future__ import annotations

import ast
import dis
import linecache
import sys
import types
from collections.abc import Iterator
from typing import Any, NamedTuple

_IMPORT_NAME = dis.opmap["IMPORT_NAME"]
# A module's namespace id → (it, its source read): read once, as it was when imported.
_READ: dict[int, tuple[dict[str, Any], ModuleSource]] = {}


# Named tuples, not dataclasses: making a dataclass costs a millisecond at import, which
# every `cairn run` pays.
class Import(NamedTuple):
    """One import statement: ``__import__``'s arguments."""

    name: str  # "config", "pkg.settings"; "" in ``from . import x``
    fromlist: tuple[str, ...] | None  # the names of ``from … import``; None for ``import``
    level: int  # how many leading dots


class ModuleSource(NamedTuple):
    """A module's source, read."""

    text: str
    names: frozenset[str]  # every name and attribute its code uses
    # What it imports and never names again: (the name the import binds, the module
    # ``import a.b`` imports, or "" for ``from … import``).
    unnamed: tuple[tuple[str, str], ...]


def imports(code: types.CodeType) -> Iterator[Import]:
    """The import statements ``code`` runs, nested functions and comprehensions included."""
    if _IMPORT_NAME in code.co_code:  # a cheap test first: most code imports nothing
        constants: tuple[Any, Any] = (0, None)  # the level and names pushed before it
        for instruction in dis.get_instructions(code):
            if instruction.opname == "LOAD_CONST":
                constants = (constants[1], instruction.argval)
            elif instruction.opname == "IMPORT_NAME":
                level, fromlist = constants
                yield Import(instruction.argval, fromlist, level)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from imports(constant)


def imported_for_effects(namespace: dict[str, Any]) -> list[types.ModuleType]:
    """The modules the module whose namespace this is imports and never names again."""
    source = module_source(namespace)
    found = []
    for bound, dotted in source.unnamed if source else ():
        if isinstance(namespace.get(bound), types.ModuleType):
            # ``import a.b`` binds a: what it was for is a.b
            found.append(sys.modules.get(dotted) or namespace[bound])
    return found


def module_source(namespace: dict[str, Any]) -> ModuleSource | None:
    """The source of the module whose namespace this is, read and parsed once per module
    object; None for a module with no file (a namespace package, a notebook)."""
    cached = _READ.get(id(namespace))
    if cached is not None and cached[0] is namespace:
        return cached[1]
    file = namespace.get("__file__")
    if not file:
        return None
    linecache.checkcache(file)  # lines kept from an earlier version of the file are stale
    source = _read("".join(linecache.getlines(file, namespace)))
    _READ[id(namespace)] = (namespace, source)
    return source


def _read(text: str) -> ModuleSource:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):  # not Python source (a compiled extension)
        return ModuleSource(text, frozenset(), ())
    bound: dict[str, str] = {}
    loaded: set[str] = set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:  # ``import a.b`` binds a, and imports a.b
                bound[alias.asname or alias.name.partition(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom):
            bound.update((alias.asname or alias.name, "") for alias in node.names)
        elif isinstance(node, ast.Name):
            names.add(node.id)
            if not isinstance(node.ctx, ast.Store):
                loaded.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    unnamed = tuple((name, dotted) for name, dotted in bound.items() if name not in loaded)
    return ModuleSource(text, frozenset(names | bound.keys()), unnamed)
