"""A window of a model's logged traffic read straight into columns.

The payload log keeps each request's inputs and answers as JSON text
(``cairn.serving.payloads``). Read a row at a time, a million requests are a million
parsed lists and twenty million Python numbers before NumPy sees one. Here each batch's
file is read with pyarrow, its rows in the window kept, their texts joined into
newline-delimited JSON by Arrow's own string kernels, and parsed by Arrow's JSON reader
into typed columns — no Python object per value. The shapes most traffic has take this
path: rows of numbers of one width (a tensor model's), or records of numbers and text (a
table model's), answered with one value a row. Any other window — named tensors, several
answers a row, ragged rows, a column of numbers and text — is read the general way
(``window_columns``), which names what is wrong in it; both give the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cairn.core.limits import INT64_MAX
from cairn.monitoring.window import PREDICTION, REQUEST_ID, order, window_columns
from cairn.serving.payloads import logged_batches, read_window

if TYPE_CHECKING:
    from cairn.core.ports import ArtifactStore, ModelRegistry


@dataclass(frozen=True)
class LoggedWindow:
    """The window's columns (``window_columns``'s), and the version that answered each row."""

    columns: dict[str, np.ndarray]
    versions: np.ndarray


def logged_window(
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    model: str,
    since: int = 0,
    until: int = INT64_MAX,
) -> LoggedWindow:
    """What ``model`` was asked and answered in the window (milliseconds since the epoch).

    Raises:
        InvalidInput: a logged request of no shape a model is asked or answers in.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = []
    for batch, table in logged_batches(registry, artifacts, model, since, until):
        inside = pc.and_(pc.greater_equal(table["at"], since), pc.less_equal(table["at"], until))
        table = table.filter(inside)
        tables.append(table.append_column("version", pa.array([batch.version] * len(table),
                                                                 pa.int64())))  # fmt: skip
    if not tables:
        return LoggedWindow({}, np.zeros(0, dtype=np.int64))
    logged = pa.concat_tables(tables)
    found = _columnar(logged)
    if found is not None:
        return found
    rows = list(read_window(registry, artifacts, model, since, until))
    return LoggedWindow(window_columns(rows), np.array([r["version"] for r in rows], np.int64))


def _columnar(logged: Any) -> LoggedWindow | None:
    """The window's columns from Arrow's JSON reader; None when its shape is not one this
    path reads (the general path then reads it)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    if len(logged) == 0:
        return LoggedWindow({}, np.zeros(0, dtype=np.int64))
    lines = pc.binary_join_element_wise('{"i":', logged["inputs"], ',"o":', logged["outputs"],
                                        "}\n", "")  # fmt: skip
    text = pa.concat_arrays(lines.chunks) if isinstance(lines, pa.ChunkedArray) else lines
    offsets, data = text.buffers()[1], text.buffers()[2]
    bounds = np.frombuffer(offsets, dtype=np.int32, count=len(text) + 1, offset=text.offset * 4)
    ndjson = data[int(bounds[0]) : int(bounds[-1])]
    try:
        parsed = pj.read_json(pa.BufferReader(ndjson),
                              read_options=pj.ReadOptions(block_size=1 << 24))  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if parsed.column_names != ["i", "o"] or parsed.num_rows != len(logged):
        return None
    asked, answered = parsed["i"].combine_chunks(), parsed["o"].combine_chunks()
    if not (pa.types.is_list(asked.type) and pa.types.is_list(answered.type)):
        return None
    per_request = pc.list_value_length(asked)
    if not pc.all(pc.equal(per_request, pc.list_value_length(answered))).as_py():
        return None  # not one answer a row: the general path says which request
    rows = asked.flatten()
    predictions = _values(answered.flatten())
    if predictions is None:
        return None
    if pa.types.is_list(rows.type):  # rows of a tensor: numbers of one width
        widths = pc.list_value_length(rows)
        width = pc.min_max(widths).as_py()
        if width["min"] != width["max"] or not width["min"] or rows.null_count:
            return None
        matrix = _values(rows.flatten())
        if matrix is None or matrix.dtype.kind != "f":
            return None
        matrix = matrix.reshape(len(rows), width["min"])
        columns = {str(i): matrix[:, i].copy() for i in range(matrix.shape[1])}
    elif pa.types.is_struct(rows.type):  # records of a table
        columns = {}
        for index in range(rows.type.num_fields):
            name = rows.type.field(index).name
            values = _values(pc.struct_field(rows, [index]))
            if values is None:
                return None
            columns[name] = values
        columns = {name: columns[name] for name in sorted(columns, key=order)}
    else:
        return None
    parents = pc.list_parent_indices(asked)
    request_ids = pc.take(logged["request_id"], parents).to_numpy(zero_copy_only=False)
    versions = pc.take(logged["version"], parents).to_numpy()
    found = {**columns, PREDICTION: predictions, REQUEST_ID: request_ids.astype(object)}
    return LoggedWindow(found, versions)


def _values(column: Any) -> np.ndarray | None:
    """A column as the general path makes it: numbers (and booleans) as floats, missing
    as NaN; text as objects, missing as None; anything else (a list in a value) None."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        found: np.ndarray = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return found
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.array(column.to_pylist(), dtype=object)
    return None
