"""What changed between two data versions: files added, removed and modified, and for
tables (CSV, TSV, Parquet) the columns, their types and the row count.

Both versions' manifests are compared by digest, so unchanged files cost nothing. A
table's shape comes from its version's profile; a version without one (added with
``--no-profile``) has its changed tables profiled from the stored bytes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.core.data import FileEntry
from cairn.core.ports import ArtifactStore
from cairn.data.materialize import read_bundle
from cairn.data.profile import profile_table, table_format
from cairn.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class TableShape:
    columns: dict[str, str]  # name → type, in the table's order
    rows: int
    error: str = ""  # why the table could not be read (then it has no columns)


@dataclass(frozen=True, slots=True)
class TableChange:
    path: str
    before: TableShape | None  # None: the file is new
    after: TableShape | None  # None: the file was removed

    @property
    def columns_added(self) -> list[str]:
        old = self.before.columns if self.before else {}
        return [c for c in (self.after.columns if self.after else {}) if c not in old]

    @property
    def columns_removed(self) -> list[str]:
        new = self.after.columns if self.after else {}
        return [c for c in (self.before.columns if self.before else {}) if c not in new]

    @property
    def columns_retyped(self) -> dict[str, tuple[str, str]]:
        """Columns in both whose type changed: name → (before, after)."""
        if self.before is None or self.after is None:
            return {}
        old, new = self.before.columns, self.after.columns
        return {c: (old[c], new[c]) for c in new if c in old and old[c] != new[c]}


@dataclass
class DataDiff:
    before: str  # name@version
    after: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    unchanged: int = 0
    tables: list[TableChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Side:
    """One version as a diff sees it: its name, files, and table profiles by path."""

    ref: str
    files: list[FileEntry]
    profiles: Mapping[str, Any]


def diff(before: Side, after: Side, artifacts: ArtifactStore) -> DataDiff:
    old = {e.path: e for e in before.files}
    new = {e.path: e for e in after.files}
    result = DataDiff(before.ref, after.ref)
    result.added = sorted(p for p in new if p not in old)
    result.removed = sorted(p for p in old if p not in new)
    for path in sorted(p for p in new if p in old):
        if new[path].digest == old[path].digest:
            result.unchanged += 1
        else:
            result.modified.append(path)
    store = _Stored(artifacts)
    for path in [*result.modified, *result.added, *result.removed]:
        if table_format(path) is not None:
            shape_before = _shape(old[path], before.profiles, store) if path in old else None
            shape_after = _shape(new[path], after.profiles, store) if path in new else None
            result.tables.append(TableChange(path, shape_before, shape_after))
    return result


def _shape(entry: FileEntry, profiles: Mapping[str, Any], store: _Stored) -> TableShape:
    found = profiles.get(entry.path)
    if found is None or found.get("digest") != entry.digest:
        found = store.profile(entry)
    if "error" in found:
        return TableShape({}, 0, found["error"])
    return TableShape({c["name"]: c["type"] for c in found["columns"]}, found["rows"])


class _Stored:
    """Tables profiled from the store: a small one from its bundle (each bundle read
    once), a large one through a temporary file, so it is never held in memory whole."""

    def __init__(self, artifacts: ArtifactStore) -> None:
        self._artifacts = artifacts
        self._bundles: dict[str, bytes] = {}

    def profile(self, entry: FileEntry) -> dict[str, Any]:
        fmt = table_format(entry.path) or "csv"
        try:
            if entry.bundle:
                if entry.bundle not in self._bundles:
                    self._bundles[entry.bundle] = read_bundle(self._artifacts, entry.bundle)
                data = self._bundles[entry.bundle][entry.offset : entry.offset + entry.size]
                return profile_table(data, fmt)
            with tempfile.TemporaryDirectory(prefix="cairn-diff-") as folder:
                local = Path(folder) / "table"
                self._artifacts.get_file(entry.digest, local)
                return profile_table(str(local), fmt)
        except InvalidInput as exc:
            return {"error": exc.message}
