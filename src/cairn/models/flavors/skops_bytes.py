"""Making a skops file's bytes depend on the model alone.

skops names each object in its schema by ``id()`` (a memory address), names its array
files by those ids or by random UUIDs, and stamps every zip entry (and every entry of a
sparse matrix's own ``.npz`` archive) with the time it was written: the same model saved
twice gives two files, two package digests, and a reproduced pipeline whose model "differs"
from the one it reproduced. ``canonical`` rewrites the archive: ids numbered, and files
named, in the order the schema first names them, every entry stamped 1980-01-01 (zip's
epoch) and written in name order. What skops reads back is unchanged: the same nodes, the
same references between them, the same array bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

SCHEMA = "schema.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical(path: Path) -> None:
    """Rewrite the skops archive at ``path`` as the canonical archive of its content."""
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read(SCHEMA))
        members = {n: archive.read(n) for n in archive.namelist() if n != SCHEMA}
    files = _renumber(schema)
    renamed = {files[old]: _canonical_member(old, data) for old, data in members.items()
               if old in files}  # fmt: skip
    with zipfile.ZipFile(path, "w") as archive:
        _write(archive, SCHEMA, json.dumps(schema, indent=2).encode(), zipfile.ZIP_DEFLATED)
        for name in sorted(renamed):
            _write(archive, name, renamed[name], zipfile.ZIP_DEFLATED)


def _renumber(schema: Any) -> dict[str, str]:
    """Number the schema's ids in document order, in place; the new name of each file."""
    ids: dict[Any, int] = {}
    files: dict[str, str] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "__id__" in node:
                node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
            if "__loader__" in node and isinstance(node.get("file"), str):
                old = node["file"]
                node["file"] = files.setdefault(old, f"{len(files) + 1}{Path(old).suffix}")
            pending.extend(reversed(list(node.values())))  # children in document order
        elif isinstance(node, list):
            pending.extend(reversed(node))
    return files


def _canonical_member(name: str, data: bytes) -> bytes:
    """An array file as it is; a sparse matrix's ``.npz`` (a zip archive) restamped."""
    if not name.endswith(".npz"):
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as inner, zipfile.ZipFile(out, "w") as rewritten:
        for info in sorted(inner.infolist(), key=lambda i: i.filename):
            _write(rewritten, info.filename, inner.read(info), info.compress_type)
    return out.getvalue()


def _write(archive: zipfile.ZipFile, name: str, data: bytes, compression: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
