"""The evaluation worker: ``python -m cairn.releases.worker JOB``, started by
:class:`~cairn.releases.evaluate.Evaluator` through :mod:`cairn.releases.sandbox`.
Model code runs here, never in the process that started it.

Its scratch folder holds the model's package files and the table, both copied there and
verified by the process that started it. The worker reads the table and answers with the
column to predict *first*, before any of the model's code runs, so the model cannot
change what its predictions are scored against; it then removes the table, loads the
model from its files (checked against the registered digests once more) and answers with
the predictions, and the probabilities when a metric needs them. The metrics are computed
by the process that started it.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.errors import CairnError, InvalidInput, MissingExtra, ModelFailed
from cairn.releases.confined import Send, serve


def evaluate(job: Mapping[str, Any], send: Send) -> None:
    """Answer ``{"truth": […]}``, then ``{"predicted": […], "scores": […] | None}``.

    Raises:
        InvalidInput: the table has no ``target`` column, or not the model's inputs.
        IntegrityError: a package file is not the registered one.
        UntrustedModel: the scan flags the package.
        ModelFailed: the model's code raised.
    """
    table, target = Path(job["table"]), job["target"]
    columns = read_table(table)
    if target not in columns:
        raise InvalidInput(
            f"{job['data']}: no column {target!r} to compare predictions with (its "
            f"columns: {', '.join(list(columns)[:10])}); set the gate's target"
        )
    send({"truth": _array(columns.pop(target))})
    table.unlink()  # what the model could read it from: the truth is the parent's now
    predicted, scores = _predict(job, columns)
    send({"predicted": predicted, "scores": scores})


def _predict(job: Mapping[str, Any], columns: dict[str, Any]) -> tuple[Any, Any]:
    import numpy as np

    from cairn.core.model_codec import model_version_from_dict
    from cairn.models.loaded import LoadedModel
    from cairn.models.package import load_model, read_package

    version = model_version_from_dict(job["version"])
    package = read_package(Path(job["model"]), version.files)
    features = features_of(columns, package.manifest.get("signature"))
    try:
        # Scanned once more, here: a flagged package is refused, never trusted. Past the
        # scan, the model's code runs.
        flavor, native = load_model(package, name=version.ref)
        predicted = LoadedModel(version, package, flavor, native).predict(features)
        scores = _probabilities(native, features) if job["probabilities"] else None
    except CairnError:
        raise  # the input does not fit its signature, a library is missing …
    except BaseException as exc:  # noqa: BLE001  # whatever it raised (or exit) is its failure
        raise ModelFailed(f"the model raised {type(exc).__name__}: {exc}") from None
    return _array(np.asarray(predicted)), None if scores is None else _array(np.asarray(scores))


def read_table(path: Path) -> dict[str, Any]:
    """The table's columns by name, as numpy arrays (numbers where they parse).

    Raises:
        InvalidInput: the table is empty.
        MissingExtra: it is Parquet, and pyarrow is not installed.
    """
    import numpy as np

    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise MissingExtra("reading .parquet needs pyarrow: pip install "
                               "'cairn-mlops[tabular]'") from exc  # fmt: skip
        read = pq.read_table(path)
        return {name: read.column(name).to_numpy() for name in read.column_names}
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise InvalidInput(f"{path.name}: the table is empty")
    header, body = rows[0], rows[1:]
    columns: dict[str, Any] = {}
    for i, name in enumerate(header):
        values = [row[i] for row in body]
        try:
            columns[name] = np.asarray(values, dtype=float)
        except ValueError:
            columns[name] = np.asarray(values, dtype=object)
    return columns


def features_of(columns: dict[str, Any], signature: Mapping[str, Any] | None) -> Any:
    """What the model takes: a data frame of its signature's columns when it was logged
    with named columns, else the table's other columns as one array.

    Raises:
        InvalidInput: a column the model takes is missing, or is not numbers where it
            takes an array of numbers.
    """
    import numpy as np

    inputs = (signature or {}).get("inputs", {})
    if inputs.get("type") == "columns":
        import pandas as pd

        names = [c["name"] for c in inputs["columns"]]
        missing = [n for n in names if n not in columns]
        if missing:
            raise InvalidInput(f"the table lacks the model's input column(s) {', '.join(missing)}")
        return pd.DataFrame({n: columns[n] for n in names})
    text = [name for name, values in columns.items() if values.dtype == object]
    if text:
        raise InvalidInput(f"column(s) {', '.join(text[:5])} are not numbers, and the model "
                           "takes an array of numbers")  # fmt: skip
    table = np.column_stack(list(columns.values()))
    dtype = inputs.get("dtype") if inputs.get("type") == "tensor" else None
    return table.astype(dtype) if dtype else table


def _probabilities(native: Any, features: Any) -> Any:
    predict_proba = getattr(native, "predict_proba", None)
    if predict_proba is None:
        return None
    import numpy as np

    return np.asarray(predict_proba(features))


def _array(values: Any) -> Any:
    """Numbers as an array (orjson writes it as JSON at C speed); anything else, such as
    labels, as a list."""
    import numpy as np

    return np.ascontiguousarray(values) if values.dtype.kind in "biuf" else values.tolist()


if __name__ == "__main__":
    sys.exit(serve(evaluate))
