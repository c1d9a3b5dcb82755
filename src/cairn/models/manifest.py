"""Reading a package's manifest, ``cairn-model.yaml``, from bytes someone else wrote.

A version is registered from the digest of a stored manifest, which anyone who may upload
an object can choose: the bytes are checked field by field before anything else reads
them — a mapping, in a format this Cairn reads, of a flavor it knows, listing files by
relative paths inside the package with their digests and sizes — and whatever is wrong is
an error naming the field, not a failure deep inside registration or loading.

A file's path is where a server or a user writes the file when it fetches the package:
it must be one any file system can create inside the package's folder (``path_problem``),
and no path may name a file that another path needs as a folder, or the manifest itself.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from cairn._version import __version__
from cairn.core.artifact import check_digest
from cairn.core.limits import text_problem
from cairn.core.yaml_text import parse_yaml
from cairn.errors import InvalidInput
from cairn.models.flavors import named

FORMAT = 1  # of the package; a package in a newer format is refused, not misread
MANIFEST = "cairn-model.yaml"  # the manifest's own path in the package
# A longer name no common file system stores (ext4, XFS, APFS, NTFS: 255), and a longer
# path leaves too little of PATH_MAX (4,096) for the folder a package is fetched into.
LONGEST_NAME = 255  # bytes of UTF-8
LONGEST_PATH = 1024
_SPEC_TYPES = ("columns", "tensor", "tensors")


class _NotAManifest(Exception):
    """What is wrong with a would-be manifest: the field, and what was expected."""


def parse_manifest(data: bytes, digest: str) -> dict[str, Any]:
    """The manifest in ``data``, the bytes of the object ``digest`` names.

    Raises:
        InvalidInput: the bytes are not a package manifest (naming the field and what was
            expected), or one in a newer format than this Cairn reads.
    """
    manifest = parse_yaml(data, f"digest: {digest} is not a model package manifest")
    try:
        _check(manifest)
    except _NotAManifest as exc:
        raise InvalidInput(f"digest: {digest} is not a model package manifest ({exc})") from None
    if manifest["format"] > FORMAT:
        raise InvalidInput(
            f"model package: written in format {manifest['format']} by Cairn "
            f"{manifest.get('cairn_version', '?')}; this Cairn ({__version__}) reads format "
            f"{FORMAT} and older: pip install -U cairn-mlops"
        )
    named(manifest["flavor"]["name"])
    return dict(manifest)


def path_problem(path: str) -> str | None:
    """What makes ``path`` unfit as the path of a file inside a package, or None.

    A path is relative: names separated by ``/``, none empty, ``.`` or ``..``, without
    ``\\`` or a control character (NUL ends a path where the system reads it), each name
    at most ``LONGEST_NAME`` bytes and the whole at most ``LONGEST_PATH``.
    """
    problem = text_problem(path)
    if problem is not None:
        return problem
    if any(c < " " or c == "\x7f" for c in path):
        return "must not contain a control character"
    names = path.split("/")
    if "\\" in path or any(name in ("", ".", "..") for name in names):
        return "expected a relative path inside the package ('/' between names, none '.' or '..')"
    if max(len(name.encode()) for name in names) > LONGEST_NAME:
        return f"a name in it is longer than {LONGEST_NAME} bytes"
    if len(path.encode()) > LONGEST_PATH:
        return f"longer than {LONGEST_PATH} bytes"
    return None


def _check(manifest: Any) -> None:
    _expect(isinstance(manifest, dict), "", "a mapping")
    _expect(_is_int(manifest.get("format")) and manifest["format"] >= 1, "format", "a number")
    flavor = manifest.get("flavor")
    _expect(isinstance(flavor, dict) and isinstance(flavor.get("name"), str),
            "flavor", "a mapping with a name")  # fmt: skip
    files = manifest.get("files")
    _expect(isinstance(files, dict), "files", "a mapping of path to digest and size")
    for path, described in files.items():
        _check_file(path, described)
    _check_layout(files)
    for field in ("pickle", "requirements"):
        listed = manifest.get(field, [])
        _expect(isinstance(listed, list) and all(isinstance(x, str) for x in listed),
                field, "a list of strings")  # fmt: skip
    _expect(isinstance(manifest.get("lineage", {}), dict), "lineage", "a mapping")
    if "signature" in manifest:
        _check_signature(manifest["signature"])


def _check_file(path: Any, described: Any) -> None:
    _expect(isinstance(path, str), f"files[{path!r}]", "a path")
    problem = path_problem(path)
    if problem is not None:
        raise _NotAManifest(f"files[{path!r}]: {problem}")
    _expect(isinstance(described, dict), f"files[{path!r}]", "a mapping with digest and size")
    try:
        check_digest(described.get("digest"))
    except InvalidInput:
        raise _NotAManifest(f"files[{path!r}].digest: expected 'blake3:' and 64 hex") from None
    size = described.get("size")
    _expect(_is_int(size) and size >= 0, f"files[{path!r}].size", "a whole number of bytes")


def _check_layout(paths: Collection[str]) -> None:
    """Each path is a file: neither the manifest, nor a folder another path is inside."""
    if MANIFEST in paths:
        raise _NotAManifest(f"files[{MANIFEST!r}]: the manifest itself; list the other files")
    files = {*paths, MANIFEST}
    for path in paths:
        folder = path.rpartition("/")[0]
        while folder:
            if folder in files:
                raise _NotAManifest(
                    f"files[{path!r}]: inside {folder!r}, which is a file of the package"
                )
            folder = folder.rpartition("/")[0]


def _check_signature(signature: Any) -> None:
    _expect(isinstance(signature, dict) and "inputs" in signature, "signature",
            "a mapping with inputs")  # fmt: skip
    for side in ("inputs", "outputs"):
        if side in signature:
            _check_spec(signature[side], f"signature.{side}")


def _check_spec(spec: Any, field: str) -> None:
    _expect(isinstance(spec, dict) and spec.get("type") in _SPEC_TYPES, field,
            f"a mapping whose type is one of {', '.join(_SPEC_TYPES)}")  # fmt: skip
    if spec["type"] == "tensor":
        _expect(isinstance(spec.get("dtype"), str), f"{field}.dtype", "a dtype name")
        shape = spec.get("shape")
        _expect(isinstance(shape, list) and all(_is_int(d) for d in shape), f"{field}.shape",
                "a list of whole numbers")  # fmt: skip
    elif spec["type"] == "tensors":
        tensors = spec.get("tensors")
        _expect(isinstance(tensors, dict), f"{field}.tensors", "a mapping of name to tensor")
        for name, tensor in tensors.items():
            _check_spec({**tensor, "type": "tensor"} if isinstance(tensor, dict) else tensor,
                        f"{field}.tensors[{name!r}]")  # fmt: skip
    else:
        columns = spec.get("columns")
        _expect(isinstance(columns, list) and all(_is_column(c) for c in columns),
                f"{field}.columns", "a list of {name, type}")  # fmt: skip


def _is_column(column: Any) -> bool:
    return (
        isinstance(column, dict)
        and isinstance(column.get("name"), str)
        and isinstance(column.get("type"), str)
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _expect(ok: bool, field: str, expected: str) -> None:
    if not ok:
        raise _NotAManifest(f"{field}: expected {expected}" if field else f"expected {expected}")
