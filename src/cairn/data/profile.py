"""Profiles of tables (CSV, TSV, Parquet): the schema, the row count, and per column the
missing rate, min and max, quantile bins and category frequencies.

A profile is small (a few kilobytes per table, whatever the table's size) and is kept
with the data version as one content-addressed JSON object; it is the reference that
drift monitoring compares new data against.

Tables are read in batches with pyarrow, so memory stays flat however large the file:
min, max, missing and category counts are exact; the quantile bins of a numeric column
are cut and counted over at most ``SAMPLE_SIZE`` values spread evenly through the table
(every k-th value), which the profile says (``bins.sample``).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cairn.errors import InvalidInput, MissingExtra

PROFILE_FORMAT = "cairn-profile/1"
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
SAMPLE_SIZE = 100_000  # values per numeric column the quantile bins are computed over
BINS = 10
TOP_CATEGORIES = 20
MAX_DISTINCT = 1_000  # past this many distinct values a text column is an identifier
MAX_TABLES = 1_000  # tables profiled per version (the rest are counted, not read)
# A profile is read whole: a stored one past this is refused, not held in memory. It is a
# few hundred bytes per column (more for long text values): this is millions of columns.
MAX_PROFILE_BYTES = 1 << 30
_BATCH_ROWS = 65_536
_CSV_BLOCK = 4 << 20


def table_format(path: str) -> str | None:
    """``csv``, ``tsv`` or ``parquet`` by the file's suffix; None for anything else."""
    # Asked of every file an add stores: string operations, not a PurePosixPath each.
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return TABLE_FORMATS.get(name[dot:].lower()) if dot > 0 else None


def profile_table(source: str | bytes, fmt: str) -> dict[str, Any]:
    """The profile of one table: a file's path, or its bytes.

    Raises:
        InvalidInput: the bytes are not a table of that format (naming the first problem).
        MissingExtra: pyarrow is not installed.
    """
    pa, _ = _arrow()
    try:
        if fmt == "parquet":
            return _profile(_parquet_batches(source))
        try:
            return _profile(_csv_batches(source, fmt))
        except pa.ArrowInvalid:
            # A column whose values stop fitting the type its first block suggested (a
            # number column with "n/a" far down): profile every column as text instead.
            return _profile(_csv_batches(source, fmt, as_text=True))
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"not a readable {fmt.upper()} table: {_first_line(exc)}") from exc


def _profile(batches: Iterator[Any]) -> dict[str, Any]:
    columns: list[_Column] | None = None
    rows = 0
    for batch in batches:
        if columns is None:
            columns = [_Column(f.name, f.type) for f in batch.schema]
        rows += batch.num_rows
        for column, values in zip(columns, batch.columns, strict=True):
            column.update(values)
    return {"rows": rows, "columns": [c.result(rows) for c in columns or []]}


def _csv_batches(source: str | bytes, fmt: str, as_text: bool = False) -> Iterator[Any]:
    pa, _ = _arrow()
    from pyarrow import csv

    def opened(convert: Any) -> Any:
        stream = pa.BufferReader(source) if isinstance(source, bytes) else source
        return csv.open_csv(
            stream,
            read_options=csv.ReadOptions(block_size=_CSV_BLOCK),
            parse_options=csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
            convert_options=convert,
        )

    reader = opened(csv.ConvertOptions())
    if as_text:
        names = reader.schema.names
        reader = opened(csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())))
    yield from reader


def _parquet_batches(source: str | bytes) -> Iterator[Any]:
    pa, pq = _arrow()
    table_file = pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source)
    if table_file.metadata.num_rows == 0:  # no batches to learn the columns from
        yield pa.RecordBatch.from_pylist([], schema=table_file.schema_arrow)
        return
    yield from table_file.iter_batches(batch_size=_BATCH_ROWS)


class _Column:
    """One column's running statistics, fed batch by batch."""

    def __init__(self, name: str, arrow_type: Any) -> None:
        pa, _ = _arrow()
        types = pa.types
        self.name, self.type = name, arrow_type
        if (
            types.is_integer(arrow_type)
            or types.is_floating(arrow_type)
            or types.is_decimal(arrow_type)
        ):
            self.kind = "numeric"
        elif types.is_temporal(arrow_type):
            self.kind = "temporal"
        elif types.is_boolean(arrow_type):
            self.kind = "boolean"
        elif (
            types.is_string(arrow_type)
            or types.is_large_string(arrow_type)
            or (types.is_dictionary(arrow_type))
        ):
            self.kind = "text"
        else:
            self.kind = "other"
        self.missing = 0
        self.low: Any = None
        self.high: Any = None
        self.categories: Counter[str] | None = Counter()
        self._kept: list[Any] = []  # numpy arrays: every stride-th value
        self._kept_count = 0
        self._stride = 1
        self._seen = 0

    def update(self, values: Any) -> None:
        self.missing += values.null_count
        if self.kind == "numeric":
            self._numbers(values)
        elif self.kind == "temporal":
            self._extremes(values)
        elif self.kind in ("boolean", "text"):
            self._count(values)

    def _numbers(self, values: Any) -> None:
        import numpy as np

        pa, _ = _arrow()
        present = values.drop_null().cast(pa.float64()).to_numpy(zero_copy_only=False)
        nan = np.isnan(present)
        if nan.any():
            self.missing += int(nan.sum())
            present = present[~nan]
        if present.size == 0:
            return
        low, high = float(present.min()), float(present.max())
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        start = (-self._seen) % self._stride
        self._seen += present.size
        taken = present[start :: self._stride]
        self._kept.append(taken)
        self._kept_count += taken.size
        while self._kept_count > 2 * SAMPLE_SIZE:  # keep every other kept value
            every = np.concatenate(self._kept)[::2]
            self._kept, self._kept_count, self._stride = [every], every.size, self._stride * 2

    def _extremes(self, values: Any) -> None:
        import pyarrow.compute as pc

        found = pc.min_max(values)
        low, high = found["min"].as_py(), found["max"].as_py()
        if low is None:
            return
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def _count(self, values: Any) -> None:
        if self.categories is None:
            return
        import pyarrow.compute as pc

        pa, _ = _arrow()
        if pa.types.is_dictionary(values.type):
            values = values.cast(pa.string())
        counted = pc.value_counts(values.drop_null())
        for value, count in zip(
            counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
        ):
            key = str(value).lower() if isinstance(value, bool) else str(value)
            self.categories[key] += count
        if len(self.categories) > MAX_DISTINCT:
            self.categories = None  # an identifier, not a category: no frequencies

    def result(self, rows: int) -> dict[str, Any]:
        found: dict[str, Any] = {
            "name": self.name,
            "type": str(self.type),
            "kind": self.kind,
            "missing": self.missing,
            "missing_rate": self.missing / rows if rows else 0.0,
        }
        if self.kind == "numeric" and self.low is not None:
            integral = self.low.is_integer() and self.high.is_integer()
            found["min"], found["max"] = _number(self.low, integral), _number(self.high, integral)
            found["bins"] = self._bins()
        elif self.kind == "temporal" and self.low is not None:
            found["min"], found["max"] = str(self.low), str(self.high)
        elif self.kind in ("boolean", "text"):
            found.update(self._frequencies())
        return found

    def _bins(self) -> dict[str, Any]:
        import numpy as np

        sample = np.concatenate(self._kept)
        inner = np.quantile(sample, np.linspace(0.0, 1.0, BINS + 1))[1:-1]
        # The outer edges are the column's true extremes, which the sample may have missed.
        edges = np.unique(np.concatenate([[self.low], inner, [self.high]]))
        if edges.size == 1:  # one value throughout
            return {"edges": [float(edges[0])] * 2, "counts": [int(sample.size)],
                    "sample": int(sample.size)}  # fmt: skip
        counts, _ = np.histogram(sample, edges)
        return {
            "edges": [float(e) for e in edges],
            "counts": [int(c) for c in counts],
            "sample": int(sample.size),
        }

    def _frequencies(self) -> dict[str, Any]:
        if self.categories is None:
            return {"distinct": None, "categories": {}, "other": 0}
        top = sorted(self.categories.items(), key=lambda item: (-item[1], item[0]))
        shown = dict(top[:TOP_CATEGORIES])
        return {
            "distinct": len(self.categories),
            "categories": shown,
            "other": sum(self.categories.values()) - sum(shown.values()),
        }


def _number(value: float, integral: bool) -> float | int | str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if integral else value


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _arrow() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, imported on first use (most commands never need them).

    Raises:
        MissingExtra: naming the extra that installs them.
    """
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise MissingExtra(
            "profiling tables needs pyarrow: pip install 'cairn-mlops[tabular]'"
        ) from exc
    return pyarrow, pyarrow.parquet


def profile_files(
    files: Iterable[tuple[str, str, str]], reused: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The profile of a version's tables, or None if it has none.

    ``files`` are (path in the version, digest, where the bytes are on disk); ``reused``
    is an earlier profile's ``tables``: a table with the same digest keeps its profile
    instead of being read again. A table that cannot be read is kept with its ``error``;
    past ``MAX_TABLES`` the rest are counted in ``not_profiled``.

    Raises:
        MissingExtra: pyarrow is not installed (and there are tables to profile).
    """
    tables: dict[str, Any] = {}
    not_profiled = 0
    for path, digest, local in files:
        fmt = table_format(path)
        if fmt is None:
            continue
        earlier = reused.get(path)
        if earlier is not None and earlier.get("digest") == digest:
            tables[path] = earlier
        elif len(tables) >= MAX_TABLES:
            not_profiled += 1
        else:
            tables[path] = {"digest": digest, "format": fmt, **_profile_or_error(local, fmt)}
    if not tables and not not_profiled:
        return None
    return {"format": PROFILE_FORMAT, "tables": tables, "not_profiled": not_profiled}


def _profile_or_error(local: str, fmt: str) -> dict[str, Any]:
    try:
        before = os.stat(local)
        found = profile_table(local, fmt)
        after = os.stat(local)
    except InvalidInput as exc:
        return {"error": exc.message}
    except OSError as exc:
        return {"error": f"could not be read: {exc.strerror or exc}"}
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return {"error": "it changed while it was profiled; add it again"}
    return found
