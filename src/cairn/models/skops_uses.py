"""What loading a skops file would do with each type it names, read from its schema.

A skops file is a zip archive whose ``schema.json`` describes the object tree: each node
names a type (``__module__``, ``__class__``) and the loader that rebuilds it
(``__loader__``). skops rebuilds an ``ObjectNode`` with ``cls.__new__`` and its state (a
create, and a restore from a value that is not a dict where its state is one), keeps a
``TypeNode`` or ``FunctionNode`` as a value and reads a sparse matrix from its NumPy
archive (a name), and calls the type of every other node with the file's data
(``ReduceNode``, containers, ``MethodNode``, ``PartialNode``, ``OperatorFuncNode`` …), as
it calls each type a dict lists for its keys. Nothing is imported to read the schema.

The archive may come from anyone, and a few hundred bytes of zip can inflate to gigabytes:
``read_schema`` inflates nothing before the members are known to stay within bounds — each
stored or deflated (``zipfile`` inflates a bzip2 or LZMA member whole, whatever size it
declares; skops and NumPy write neither), none declaring more than deflate can produce
from its bytes, the schema at most ``SCHEMA_LIMIT`` and ``SCHEMA_INFLATION`` times its
compressed size, and no member named by two different nodes (skops would inflate it once
for each). What skops is asked about the types is an
archive of the schema alone (``Schema.as_archive``): telling which types it trusts needs
no array, so a scan inflates the schema and nothing else.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput, MissingExtra
from cairn.models.allowlist import Name, Use

SCHEMA = "schema.json"
# A schema takes about 20 kB a tree: 20 MB for gradient boosting of 1,000 stumps, which
# Cairn writes deflated 55 to 1. A bomb is one or the other: too large, or too deflated.
SCHEMA_LIMIT = 256 * 1024 * 1024
SCHEMA_INFLATION = 256  # times its compressed size, beyond its first MiB
# The methods a member may be compressed with, and the most each inflates one byte to
# (deflate's limit is 1,032 to 1): a member declaring more is forged.
_INFLATION = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}
_SLACK = 1024 * 1024  # what any member may inflate to, whatever it is compressed to
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


@dataclass(frozen=True, slots=True)
class Schema:
    """A skops archive's ``schema.json``, as bytes and parsed, and its other members."""

    text: bytes
    document: Any
    members: tuple[str, ...]

    def type_uses(self) -> set[tuple[Name, Use]]:
        """Each type the schema names, with what skops does with it."""
        return set(_nodes(self.document))

    def as_archive(self) -> bytes:
        """The archive with every member but the schema emptied: what skops reads to say
        which types it trusts (it reads a member's bytes only to keep them for building
        the object, which this never asks it to do)."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(SCHEMA, self.text)
            for name in self.members:
                archive.writestr(name, b"")
        return out.getvalue()


def read_schema(path: Path) -> Schema:
    """The schema of the skops archive at ``path``, read once its members are known to
    inflate within bounds (see the module's docstring).

    Raises:
        InvalidInput: a member out of bounds (naming the file and the member).
        ValueError: the file is not a readable skops archive.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a skops file ({exc})") from None
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        for info in infos.values():
            _check_member(info, path.name)
        text = _read_schema_text(archive, infos.get(SCHEMA), path.name)
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a skops file ({SCHEMA}: {exc})") from None
    _check_named_once(document, path.name)
    return Schema(text, document, tuple(name for name in infos if name != SCHEMA))


def _check_member(info: zipfile.ZipInfo, where: str) -> None:
    most = _INFLATION.get(info.compress_type)
    if most is None:
        raise InvalidInput(
            f"{where}: member {info.filename!r} is compressed with method "
            f"{info.compress_type}; a skops file's members are stored or deflated"
        )
    if info.file_size > most * info.compress_size + _SLACK:
        raise InvalidInput(
            f"{where}: member {info.filename!r} declares {info.file_size} bytes from "
            f"{info.compress_size}, more than its compression can produce (a forged size)"
        )


def _read_schema_text(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None, where: str) -> bytes:
    if info is None:
        raise ValueError(f"no {SCHEMA}")
    if info.file_size > min(SCHEMA_LIMIT, SCHEMA_INFLATION * info.compress_size + _SLACK):
        raise InvalidInput(
            f"{where}: member {SCHEMA!r} inflates to {info.file_size} bytes from "
            f"{info.compress_size}; a skops schema is at most {SCHEMA_LIMIT // 2**20} MiB, "
            f"and {SCHEMA_INFLATION} times its compressed size"
        )
    try:
        with archive.open(info) as member:  # stops at the size declared, checked above
            return member.read()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a CRC or a stream that is wrong
        raise ValueError(f"not a skops file ({SCHEMA}: {exc})") from None


def _check_named_once(document: Any, where: str) -> None:
    """skops reads a member for each node naming it, unless the nodes share an ``__id__``
    (the same array, written once): a member named under two ids is inflated twice."""
    named: dict[str, Any] = {}
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            file = node.get("file")
            if "__loader__" in node and isinstance(file, str):
                node_id = node.get("__id__", object())  # no id: no sharing
                if named.setdefault(file, node_id) != node_id:
                    raise InvalidInput(
                        f"{where}: member {file!r} is named by two nodes of the schema; "
                        "skops writes each array once"
                    )
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


def _use(loader: str) -> Use:
    if loader in _CREATED:
        return Use.CREATE
    return Use.NAME if loader in _NAMED else Use.CALL


def _nodes(tree: Any) -> Iterator[tuple[Name, Use]]:
    """Every node of the tree, at any depth, as its type and what skops does with it (a
    partial's function and a dict's key types are called, whatever their nodes say)."""
    pending: list[tuple[Any, Use | None]] = [(tree, None)]
    while pending:
        node, forced = pending.pop()
        if isinstance(node, dict):
            if "__loader__" in node:
                loader = str(node["__loader__"])
                name = Name(str(node.get("__module__")), str(node.get("__class__")))
                yield name, forced or _use(loader)
                yield from _restored(loader, name, node)
                pending.extend((child, Use.CALL) for child in _called_children(loader, node))
            pending.extend((value, None) for value in node.values())
        elif isinstance(node, list):
            pending.extend((value, None) for value in node)


def _restored(loader: str, name: Name, node: dict[str, Any]) -> Iterator[tuple[Name, Use]]:
    """An ``ObjectNode`` whose state is neither absent (or JSON's null) nor a ``DictNode``."""
    content = node.get("content")
    if loader not in _CREATED or content is None or not isinstance(content, dict):
        return  # no state, or one skops cannot read (it refuses the file)
    if content.get("__loader__") == "DictNode" or _null(content):
        return
    yield name, Use.RESTORE_FROM_VALUE


def _null(node: dict[str, Any]) -> bool:
    return node.get("__loader__") == "JsonNode" and node.get("content") == "null"


def _called_children(loader: str, node: dict[str, Any]) -> list[Any]:
    """The nodes skops calls whatever they are: a partial's function, a dict's key types."""
    content = node.get("content")
    if loader == "PartialNode" and isinstance(content, dict):
        return [content.get("func")]
    key_types = node.get("key_types")
    if loader == "DictNode" and isinstance(key_types, dict):
        listed = key_types.get("content")
        return listed if isinstance(listed, list) else []
    return []
