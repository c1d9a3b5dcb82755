"""A fresh evaluation of a model version on a data version: what an ``evaluate`` gate
measures. The data version holds one table (``.csv`` or ``.parquet``) with the column to
predict (``target``) and the model's input columns; the model is loaded as any user loads
it — verified file by file, and a flagged package is refused, not trusted."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cairn.core.model import ModelVersion
from cairn.datasets.service import DataService
from cairn.errors import InvalidInput, MissingExtra
from cairn.registry.service import ModelService

_TABLES = (".csv", ".parquet")


class Evaluator:
    """``Evaluate`` (``cairn.governance.evidence``) over the model and data services."""

    def __init__(self, models: ModelService, data: DataService) -> None:
        self.models, self.data = models, data

    def __call__(
        self, version: ModelVersion, data_ref: str, target: str, wanted: list[str]
    ) -> tuple[str, dict[str, float]]:
        """Raises:
        InvalidInput: the data version has no single table, or no ``target`` column.
        UntrustedModel: the package is flagged by its scan.
        MissingExtra: scikit-learn (which computes the metrics) is not installed.
        """
        found, entries = self.data.ls(data_ref)
        tables = [e for e in entries if e.path.endswith(_TABLES)]
        if len(tables) != 1:
            listed = ", ".join(e.path for e in tables) or "none"
            raise InvalidInput(
                f"{found.ref}: an evaluation reads one table (.csv or .parquet); it has "
                f"{len(tables)} ({listed})"
            )
        with tempfile.TemporaryDirectory(prefix="cairn-evaluate-") as folder:
            path = Path(folder) / Path(tables[0].path).name
            self.data.artifacts.get_file(tables[0].digest, path)
            columns = _read_table(path)
        if target not in columns:
            raise InvalidInput(
                f"{found.ref}: no column {target!r} to compare predictions with (its "
                f"columns: {', '.join(list(columns)[:10])}); set the gate's target"
            )
        loaded = self.models.load(version.ref)  # UntrustedModel when flagged
        truth = columns.pop(target)
        features = _features(columns, loaded.signature)
        predicted = loaded.predict(features)
        scores = None
        if {"roc_auc", "log_loss"} & set(wanted):
            scores = _probabilities(loaded.native, features)
        return found.ref, measure(wanted, truth, predicted, scores)


def measure(
    wanted: Sequence[str], truth: Any, predicted: Any, scores: Any = None
) -> dict[str, float]:
    """Each wanted metric of the predictions against the truth (``scores``: the predicted
    probabilities, for roc_auc and log_loss)."""
    try:
        import numpy as np
        from sklearn import metrics
    except ImportError as exc:
        raise MissingExtra(
            "an evaluate gate computes its metrics with scikit-learn: "
            "pip install 'cairn-mlops[sklearn]'"
        ) from exc
    truth, predicted = np.asarray(truth), np.asarray(predicted).reshape(len(truth), -1)
    predicted = predicted[:, 0] if predicted.shape[1] == 1 else predicted.argmax(axis=1)
    average = "binary" if len(np.unique(truth)) <= 2 else "macro"
    found: dict[str, float] = {}
    for name in wanted:
        if name in ("roc_auc", "log_loss"):
            if scores is None:
                raise InvalidInput(f"{name} needs predicted probabilities: the model has no "
                                   "predict_proba")  # fmt: skip
            positive = scores[:, 1] if scores.shape[1] == 2 and name == "roc_auc" else scores
            value = (metrics.roc_auc_score(truth, positive, multi_class="ovr")
                     if name == "roc_auc" else metrics.log_loss(truth, scores))  # fmt: skip
        elif name == "accuracy":
            value = metrics.accuracy_score(truth, predicted)
        elif name in ("precision", "recall", "f1"):
            score = {"precision": metrics.precision_score, "recall": metrics.recall_score,
                     "f1": metrics.f1_score}[name]  # fmt: skip
            value = score(truth, predicted, average=average, zero_division=0)
        elif name == "r2":
            value = metrics.r2_score(truth, predicted)
        elif name == "mae":
            value = metrics.mean_absolute_error(truth, predicted)
        else:
            mse = metrics.mean_squared_error(truth, predicted)
            value = mse if name == "mse" else mse**0.5
        found[name] = float(value)
    return found


def _read_table(path: Path) -> dict[str, Any]:
    """The table's columns by name, as numpy arrays (numbers where they parse)."""
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


def _features(columns: dict[str, Any], signature: dict[str, Any] | None) -> Any:
    """What the model takes: a data frame of its signature's columns when it was logged
    with named columns, else the table's other columns as one array."""
    import numpy as np

    inputs = (signature or {}).get("inputs", {})
    if inputs.get("type") == "columns":
        import pandas as pd  # type: ignore[import-untyped]

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
