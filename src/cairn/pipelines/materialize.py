"""How a step's output becomes bytes in the content-addressed store, and comes back.

The format is chosen by the value's type, the first that fits:

- ``json``: None, booleans, numbers, strings, and lists and dicts of them (canonical
  JSON: sorted keys, so equal values are equal bytes);
- ``numpy``: a NumPy array of numbers (``.npy``, never with pickled objects inside);
- ``parquet``: a pandas DataFrame or a pyarrow Table (written with pyarrow);
- ``pickle``: anything else, as a last resort. Loading a pickle runs code, so the runner
  warns when it stores one; models get their own package format with the registry.

``FORMATS_VERSION`` is part of every cache key: a change to how values are written must
change it, so that no cache entry is read back in a format it was not written in.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

FORMATS_VERSION = "1"
PICKLE = "pickle"


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    accepts: Callable[[Any], bool]
    dump: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


def format_for(value: Any) -> Format:
    """The first format that takes ``value`` (pickle takes anything)."""
    return next(f for f in FORMATS if f.accepts(value))


def format_named(name: str) -> Format:
    """Raises:
    KeyError: no such format (an output written by a newer Cairn).
    """
    return {f.name: f for f in FORMATS}[name]


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _dump_json(value: Any, path: Path) -> None:
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _load_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def _is_array(value: Any) -> bool:
    numpy = _module("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray) and value.dtype != object


def _dump_array(value: Any, path: Path) -> None:
    import numpy

    with path.open("wb") as out:
        numpy.save(out, value, allow_pickle=False)


def _load_array(path: Path) -> Any:
    import numpy

    return numpy.load(path, allow_pickle=False)


def _is_table(value: Any) -> bool:
    pandas, pyarrow = _module("pandas"), _module("pyarrow")
    if pyarrow is None:
        return False
    return isinstance(value, pyarrow.Table) or (
        pandas is not None and isinstance(value, pandas.DataFrame)
    )


def _dump_table(value: Any, path: Path) -> None:
    import pyarrow
    import pyarrow.parquet

    table = value if isinstance(value, pyarrow.Table) else pyarrow.Table.from_pandas(value)
    pyarrow.parquet.write_table(table, path)


def _load_table(path: Path) -> Any:
    import pyarrow.parquet

    table = pyarrow.parquet.read_table(path)
    # A table that came from pandas goes back to pandas (its metadata says so).
    if table.schema.pandas_metadata is not None and _module("pandas") is not None:
        return table.to_pandas()
    return table


def _dump_pickle(value: Any, path: Path) -> None:
    with path.open("wb") as out:
        pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)


def _load_pickle(path: Path) -> Any:
    with path.open("rb") as stream:
        return pickle.load(stream)  # noqa: S301  (only outputs this installation stored)


def _module(name: str) -> Any:
    """A module if it is imported already: a value of its type cannot exist otherwise, and
    importing pandas to ask would cost a second."""
    import sys

    return sys.modules.get(name)


FORMATS = (
    Format("json", _is_json, _dump_json, _load_json),
    Format("numpy", _is_array, _dump_array, _load_array),
    Format("parquet", _is_table, _dump_table, _load_table),
    Format(PICKLE, lambda _value: True, _dump_pickle, _load_pickle),
)
