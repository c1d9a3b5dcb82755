"""How a step's output becomes bytes in the content-addressed store, and comes back.

The format is chosen by the value's type, the first that fits:

- ``json``: None, booleans, numbers, strings, and lists and dicts of them (canonical
  JSON: sorted keys, so equal values are equal bytes);
- ``numpy``: a NumPy array of numbers (``.npy``, never with pickled objects inside);
- ``parquet``: a pandas DataFrame or a pyarrow Table (written with pyarrow);
- ``model``: a scikit-learn, XGBoost, LightGBM or ONNX model, as a model package (the
  registry's format: each file an object, the output the manifest, which names them all;
  read back verified, and with a scan of its pickles — a flagged one is refused);
- ``pickle``: anything else, as a last resort. Loading a pickle runs code, so the runner
  warns when it stores one, and loads one only once ``cairn.pipelines.trust`` vetted it
  (``executors.load`` refuses it otherwise).

``FORMATS_VERSION`` is part of every cache key: a change to how values are written must
change it, so that no cache entry is read back in a format it was not written in.
"""

from __future__ import annotations

import math
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cairn.core.ports import ArtifactStore
from cairn.errors import InvalidInput

FORMATS_VERSION = "2"
PICKLE = "pickle"
MODEL = "model"


@dataclass(frozen=True, slots=True)
class Format:
    """A way to write a value as a file (which is stored), and read it back; a format of
    several files (a model package) stores the others itself, in ``artifacts``."""

    name: str
    accepts: Callable[[Any], bool]
    dump: Callable[[Any, Path, ArtifactStore], None]
    load: Callable[[Path, ArtifactStore], Any]


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


def _dump_json(value: Any, path: Path, _artifacts: ArtifactStore) -> None:
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _load_json(path: Path, _artifacts: ArtifactStore) -> Any:
    return orjson.loads(path.read_bytes())


def _is_array(value: Any) -> bool:
    numpy = _module("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray) and value.dtype != object


def _dump_array(value: Any, path: Path, _artifacts: ArtifactStore) -> None:
    import numpy

    with path.open("wb") as out:
        numpy.save(out, value, allow_pickle=False)


def _load_array(path: Path, _artifacts: ArtifactStore) -> Any:
    import numpy

    return numpy.load(path, allow_pickle=False)


def _is_table(value: Any) -> bool:
    pandas, pyarrow = _module("pandas"), _module("pyarrow")
    if pyarrow is None:
        return False
    return isinstance(value, pyarrow.Table) or (
        pandas is not None and isinstance(value, pandas.DataFrame)
    )


def _dump_table(value: Any, path: Path, _artifacts: ArtifactStore) -> None:
    import pyarrow
    import pyarrow.parquet

    table = value if isinstance(value, pyarrow.Table) else pyarrow.Table.from_pandas(value)
    pyarrow.parquet.write_table(table, path)


def _load_table(path: Path, _artifacts: ArtifactStore) -> Any:
    import pyarrow.parquet

    table = pyarrow.parquet.read_table(path)
    # A table that came from pandas goes back to pandas (its metadata says so).
    if table.schema.pandas_metadata is not None and _module("pandas") is not None:
        return table.to_pandas()
    return table


def _dump_pickle(value: Any, path: Path, _artifacts: ArtifactStore) -> None:
    with path.open("wb") as out:
        pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)


def _load_pickle(path: Path, _artifacts: ArtifactStore) -> Any:
    with path.open("rb") as stream:
        return pickle.load(stream)  # noqa: S301  (only vetted outputs: see executors.load)


# Models whose libraries have a format that needs nothing but the model (a PyTorch module
# is exported by running it on an example, which a step's output does not come with).
_PACKAGED_FLAVORS = ("sklearn", "xgboost", "lightgbm", "onnx")


def _is_model(value: Any) -> bool:
    from cairn.models.flavors import flavors

    return any(flavors()[name].detects(value) for name in _PACKAGED_FLAVORS)


def _dump_model(value: Any, path: Path, artifacts: ArtifactStore) -> None:
    from cairn.models.package import manifest_bytes
    from cairn.models.stored import put_package

    package = put_package(value, artifacts)
    if package.findings:
        found = "; ".join(str(f) for f in package.findings)
        raise InvalidInput(f"the model's package is flagged by its scan ({found})")
    path.write_bytes(manifest_bytes(package.manifest))


def _load_model(path: Path, artifacts: ArtifactStore) -> Any:
    from cairn.localfs.digest import hash_file
    from cairn.models.package import load_model
    from cairn.models.stored import get_package

    with tempfile.TemporaryDirectory(prefix="cairn-model-") as folder:
        package = get_package(artifacts, hash_file(path), Path(folder))
        return load_model(package)[1]


def _module(name: str) -> Any:
    """A module if it is imported already: a value of its type cannot exist otherwise, and
    importing pandas to ask would cost a second."""
    import sys

    return sys.modules.get(name)


FORMATS = (
    Format("json", _is_json, _dump_json, _load_json),
    Format("numpy", _is_array, _dump_array, _load_array),
    Format("parquet", _is_table, _dump_table, _load_table),
    Format(MODEL, _is_model, _dump_model, _load_model),
    Format(PICKLE, lambda _value: True, _dump_pickle, _load_pickle),
)
