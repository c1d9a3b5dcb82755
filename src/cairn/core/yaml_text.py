"""Reading YAML that a person wrote or handed over — ``cairn.yaml``, ``cairn.lock``, the
credentials file, a policy, a model card, a model package's manifest — and writing the
YAML files Cairn keeps.

Such a file may be anything: not UTF-8, not YAML, a date that is no date, nested
thousands deep, or a few hundred bytes whose aliases (``*name``, a reference to a node
anchored ``&name`` earlier) stand for billions of values once anything walks the document
as plain values — turns it into JSON, stores it, answers it. Every way it can fail becomes
one ``InvalidInput`` naming the file, here, so that no reader of YAML has to know them.
A document Cairn reads is at most ``MAX_YAML_BYTES`` long and has no aliases; the YAML
Cairn writes never has any, so every file it writes reads back.

The parser is libyaml's where PyYAML has it (it does, in its wheels): it stops at a
nesting depth of 1,000 in a millisecond, where the pure-Python one recurses until Python's
stack ends, seconds later.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cairn.errors import InvalidInput

# Larger than any file Cairn writes or a person keeps by hand (a package manifest holds a
# few hundred bytes a file), and small enough to parse in well under a second.
MAX_YAML_BYTES = 4 * 1024 * 1024


def parse_yaml(data: bytes | str, where: str) -> Any:
    """The document in ``data`` (bytes must be UTF-8), with only YAML's plain types.

    Args:
        data: the file's bytes, or its text.
        where: what the text is, for the message: a path, or an option and its value.

    Raises:
        InvalidInput: naming ``where`` and what is wrong (the line and column where the
            parser has them): not UTF-8, not YAML, longer than ``MAX_YAML_BYTES``, or
            holding an alias.
    """
    import yaml  # only the commands that read YAML pay for the import

    text = _decoded(_within_limit(data, where), where)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        return _plain_document(loader, where)
    except InvalidInput:
        raise
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput(
            f"{where}: not valid YAML{_at(exc.problem_mark)}: {exc.problem or exc.context}"
        ) from None
    except yaml.YAMLError as exc:  # a character YAML does not allow, such as NUL
        raise InvalidInput(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # the pure-Python parser's limit: libyaml's words for it
        raise InvalidInput(f"{where}: not valid YAML: exceeded maximum nesting depth") from None
    except ValueError as exc:  # a value of a type YAML knows that is none: 2024-13-45
        raise InvalidInput(f"{where}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def dump_yaml(document: Any, *, sort_keys: bool) -> str:
    """``document`` as YAML that ``parse_yaml`` reads back: a value that appears twice is
    written out twice, never as an anchor and an alias."""
    import yaml

    return yaml.dump(document, Dumper=_plain_dumper(), sort_keys=sort_keys)


def _plain_document(loader: Any, where: str) -> Any:
    """The document, once its node graph is known to be a tree: an alias makes the node it
    names a child of a second parent (of many, in a "billion laughs"), which no walk of
    the values — expanding each one every time — can afford."""
    node = loader.get_single_node()
    if node is None:
        return None
    _refuse_aliases(node, where)
    return loader.construct_document(node)


def _refuse_aliases(root: Any, where: str) -> None:
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            raise InvalidInput(
                f"{where}: the value anchored{_at(node.start_mark)} is used again through an "
                "alias (*name); Cairn reads YAML without aliases: write the value out"
            )
        seen.add(id(node))
        if isinstance(node.value, list):  # a sequence's items, or a mapping's (key, value)s
            for child in node.value:
                pending.extend(child if isinstance(child, tuple) else (child,))


def _at(mark: Any) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""


@cache
def _plain_dumper() -> type:
    import yaml

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return PlainDumper


def _within_limit(data: bytes | str, where: str) -> bytes | str:
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "replace"))
    if size > MAX_YAML_BYTES:
        raise InvalidInput(
            f"{where}: {size} bytes of YAML; Cairn reads at most {MAX_YAML_BYTES // 2**20} MiB"
        )
    return data


def _decoded(data: bytes | str, where: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
