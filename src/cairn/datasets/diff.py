"""What changed between two data versions: files added, removed and modified, and for
tables (CSV, TSV) the columns and the row count.

Both versions' manifests are compared by digest, so unchanged files cost nothing; a
table's shape is read from the stored bytes (its header, and its lines counted as they
stream by), so a large file is never held in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from cairn.core.data import FileEntry
from cairn.core.ports import ArtifactStore
from cairn.datasets.materialize import read_object

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}


@dataclass(frozen=True, slots=True)
class TableShape:
    columns: list[str]
    rows: int  # lines after the header (a quoted field spanning lines counts as several)


@dataclass(frozen=True, slots=True)
class TableChange:
    path: str
    before: TableShape | None  # None: the file is new
    after: TableShape | None  # None: the file was removed

    @property
    def columns_added(self) -> list[str]:
        old = set(self.before.columns) if self.before else set()
        return [c for c in (self.after.columns if self.after else []) if c not in old]

    @property
    def columns_removed(self) -> list[str]:
        new = set(self.after.columns) if self.after else set()
        return [c for c in (self.before.columns if self.before else []) if c not in new]


@dataclass
class DataDiff:
    before: str  # name@version
    after: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    unchanged: int = 0
    tables: list[TableChange] = field(default_factory=list)


def diff(
    before: tuple[str, list[FileEntry]],
    after: tuple[str, list[FileEntry]],
    artifacts: ArtifactStore,
) -> DataDiff:
    old = {e.path: e for e in before[1]}
    new = {e.path: e for e in after[1]}
    result = DataDiff(before[0], after[0])
    result.added = sorted(p for p in new if p not in old)
    result.removed = sorted(p for p in old if p not in new)
    for path in sorted(p for p in new if p in old):
        if new[path].digest == old[path].digest:
            result.unchanged += 1
        else:
            result.modified.append(path)
    bundles: dict[str, bytes] = {}  # each bundle is read once, however many tables it holds
    for path in [*result.modified, *result.added, *result.removed]:
        if PurePosixPath(path).suffix.lower() in TABLE_SUFFIXES:
            shape_before = _shape(old[path], artifacts, bundles) if path in old else None
            shape_after = _shape(new[path], artifacts, bundles) if path in new else None
            result.tables.append(TableChange(path, shape_before, shape_after))
    return result


def _shape(entry: FileEntry, artifacts: ArtifactStore, bundles: dict[str, bytes]) -> TableShape:
    delimiter = TABLE_SUFFIXES[PurePosixPath(entry.path).suffix.lower()]
    if entry.bundle:
        if entry.bundle not in bundles:
            bundles[entry.bundle] = read_object(artifacts, entry.bundle)
        data = bundles[entry.bundle][entry.offset : entry.offset + entry.size]
        return _measure([data], delimiter)
    with artifacts.open(entry.digest) as chunks:
        return _measure(chunks, delimiter)


def _measure(chunks: Iterable[bytes], delimiter: str) -> TableShape:
    header = b""
    lines = 0
    last = b"\n"
    for chunk in chunks:
        if not chunk:
            continue
        if not header or b"\n" not in header:
            header += chunk[: 1 << 16]
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    if last != b"\n":
        lines += 1  # a last line without its newline
    first = header.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    columns = next(csv.reader(io.StringIO(first), delimiter=delimiter), []) if first else []
    return TableShape(columns, max(lines - 1, 0))
