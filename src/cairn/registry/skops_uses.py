"""What loading a skops file would do with each type it names, read from its schema.

A skops file is a zip archive whose ``schema.json`` describes the object tree: each node
names a type (``__module__``, ``__class__``) and the loader that rebuilds it
(``__loader__``). skops rebuilds an ``ObjectNode`` with ``cls.__new__`` and its state (a
create), keeps a ``TypeNode`` or ``FunctionNode`` as a value and reads a sparse matrix from
its NumPy archive (a name), and calls the type of every other node with the file's data
(``ReduceNode``, containers, ``MethodNode``, ``PartialNode``, ``OperatorFuncNode`` …).
Nothing is imported to read the schema.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cairn.errors import MissingExtra
from cairn.registry.allowlist import Name, Use

SCHEMA = "schema.json"
_NAMED = frozenset({"TypeNode", "FunctionNode", "SparseMatrixNode"})
_CREATED = frozenset({"ObjectNode"})


def skops_io() -> Any:
    """The ``skops.io`` module.

    Raises:
        MissingExtra: skops is not installed (naming the extra that installs it).
    """
    try:
        import skops.io
    except ImportError:
        raise MissingExtra(
            "this scikit-learn model is stored with skops: pip install 'cairn-mlops[sklearn]'"
        ) from None
    return skops.io


def is_skops(path: Path) -> bool:
    """Whether ``path`` is a zip archive with a skops schema."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return SCHEMA in archive.namelist()


def type_uses(path: Path) -> set[tuple[Name, Use]]:
    """Each type the schema names, with what skops does with it.

    Raises:
        ValueError: the file is not a readable skops archive.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read(SCHEMA))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a skops file ({exc})") from None
    return set(_nodes(schema))


def _use(loader: str) -> Use:
    if loader in _CREATED:
        return Use.CREATE
    return Use.NAME if loader in _NAMED else Use.CALL


def _nodes(tree: Any) -> Iterator[tuple[Name, Use]]:
    """Every node of the tree, at any depth, as its type and what skops does with it (a
    partial's function is called, whatever its node says)."""
    pending: list[tuple[Any, Use | None]] = [(tree, None)]
    while pending:
        node, forced = pending.pop()
        if isinstance(node, dict):
            if "__loader__" in node:
                loader = str(node["__loader__"])
                name = Name(str(node.get("__module__")), str(node.get("__class__")))
                yield name, forced or _use(loader)
                if loader == "PartialNode" and isinstance(node.get("content"), dict):
                    pending.append((node["content"].get("func"), Use.CALL))
            pending.extend((value, None) for value in node.values())
        elif isinstance(node, list):
            pending.extend((value, None) for value in node)
