"""A fresh evaluation of a model version on a data version: what an ``evaluate`` gate
measures. The data version holds one table (``.csv`` or ``.parquet``) with the column to
predict (``target``) and the model's input columns.

The model's code never runs in this process, which may be a server holding database
credentials, signing keys and webhook secrets: a flagged package is refused before any
process starts; otherwise its files (fetched by their registered digests, each verified)
and the table are copied into a scratch folder, and a worker process
(``cairn.releases.worker``, in the sandbox of ``cairn.releases.sandbox``) predicts,
within the gate's time limit, reading none of the private paths the evaluator is given
(the home, the database, keys, the project). The metrics are computed here, against the
truth column the worker sent before the model's code ran.

A model is measured only on data of its own project: whoever may read the model reads the
gate's answer, so data of any other project is "not in the model's project", whether it
exists or not, and is looked at no further. A few evaluations run at once, and each
measurement is made once (``cairn.releases.measurements``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cairn.core.access import Principal, Role
from cairn.core.authorizer import Authorizer
from cairn.core.data import DataVersion, FileEntry, parse_data_ref
from cairn.core.gates.base import Evaluation
from cairn.core.model import ModelVersion
from cairn.core.model_codec import model_version_to_dict
from cairn.data.catalog import CatalogService
from cairn.data.service import DataService
from cairn.errors import (
    CairnError,
    InvalidInput,
    MissingExtra,
    ModelFailed,
    NotFound,
    UntrustedModel,
    error_from_code,
)
from cairn.models.package import check_package_path
from cairn.models.service import ModelService
from cairn.releases.measurements import Measurements
from cairn.releases.sandbox import Limits, run_worker, said

_TABLES = (".csv", ".parquet")
_PROBABILITIES = {"roc_auc", "log_loss"}  # the metrics computed from predict_proba
WORKER = "cairn.releases.worker"
EVALUATIONS = 2  # evaluations (worker processes) at once, unless the evaluator is told
# What a measurement is made of: the package, the table (its digest and its format), the
# target column and the metrics.
Measured = tuple[str, str, str, str, tuple[str, ...]]


class Evaluator:
    """``Evaluate`` (``cairn.releases.evidence``) over the model and data services;
    its workers read no folder that holds one of the ``private`` paths, and at most
    ``evaluations`` of them run at once."""

    def __init__(
        self, models: ModelService, data: DataService, private: Sequence[Path],
        evaluations: int = EVALUATIONS,
    ) -> None:  # fmt: skip
        self.models, self.data, self.private = models, data, tuple(private)
        self.measurements: Measurements[Measured, dict[str, float]] = Measurements(evaluations)

    def __call__(
        self, version: ModelVersion, evaluation: Evaluation
    ) -> tuple[str, dict[str, float]]:
        """The data version used, and each metric measured on it (or remembered: the same
        package on the same table, scored the same way, is measured once).

        Raises:
            NotFound: the model's project has no such data version (data of another
                project is not looked at).
            InvalidInput: the data version has no single table, or no ``target`` column.
            UntrustedModel: the package is flagged by its scan (no process is started).
            ModelFailed: the model raised, crashed, ran out of time or memory, or
                answered with something that is not predictions.
            ServerBusy: no evaluation could start (or end) within the gate's timeout.
            MissingExtra: scikit-learn (which computes the metrics) is not installed.
        """
        found, table = self._table(evaluation.data, self._project_of(version))
        if version.flagged:
            findings = "; ".join(str(f) for f in version.findings)
            raise UntrustedModel(f"model {version.ref} is flagged ({findings}): an evaluation "
                                 "does not run a flagged package's code")  # fmt: skip
        key = (version.digest, table.digest, Path(table.path).suffix, evaluation.target,
               tuple(sorted(evaluation.metrics)))  # fmt: skip

        def fresh() -> dict[str, float]:
            return self._measured(version, evaluation, found.ref, table)

        return found.ref, self.measurements.get(key, fresh, evaluation.timeout)

    def _measured(
        self, version: ModelVersion, evaluation: Evaluation, data: str, table: FileEntry
    ) -> dict[str, float]:
        # Whatever the worker left there (read-only folders …) must not fail the request.
        with tempfile.TemporaryDirectory(
            prefix="cairn-evaluate-", ignore_cleanup_errors=True
        ) as folder:
            job = self._staged(version, evaluation, data, table, Path(folder))
            limits = Limits(seconds=evaluation.timeout)
            answers = run_worker(WORKER, job, Path(folder), limits, self.private)
        truth, predicted, scores = _unpacked(answers)
        return _scored(evaluation.metrics, truth, predicted, scores)

    def _project_of(self, version: ModelVersion) -> str:
        return self.models.registry.get_model(version.name).project

    def _staged(
        self, version: ModelVersion, evaluation: Evaluation, data: str, table: FileEntry,
        scratch: Path,
    ) -> dict[str, Any]:  # fmt: skip
        """The worker's job, once what it reads is in ``scratch``."""
        return {"version": model_version_to_dict(version), "data": data,
                "model": str(self._stage_model(version, scratch / "model")),
                "table": str(self._stage_table(table, scratch / "data")),
                "target": evaluation.target,
                "probabilities": bool(_PROBABILITIES & set(evaluation.metrics))}  # fmt: skip

    def _table(self, data_ref: str, project: str) -> tuple[DataVersion, FileEntry]:
        found = self._version_in(project, data_ref)
        entries = self.data.files(found.digest, found.ref)
        tables = [e for e in entries if e.path.endswith(_TABLES)]
        if len(tables) != 1:
            listed = ", ".join(e.path for e in tables) or "none"
            raise InvalidInput(
                f"{found.ref}: an evaluation reads one table (.csv or .parquet); it has "
                f"{len(tables)} ({listed})"
            )
        return found, tables[0]

    def _version_in(self, project: str, data_ref: str) -> DataVersion:
        """The data version, read as a member of ``project`` only would read it: one of
        another project is not found, word for word as one that does not exist.

        Raises:
            NotFound: ``project`` has no such data version.
        """
        member = Principal(f"project {project}", roles={project: Role.VIEWER})
        reader = CatalogService(self.data.catalog, Authorizer(member), None)  # it only reads
        try:
            return reader.get_version(parse_data_ref(data_ref))
        except NotFound:
            raise NotFound(
                f"{data_ref} is not in the model's project ({project!r}): a model is "
                "evaluated only on data of its own project"
            ) from None

    def _stage_model(self, version: ModelVersion, folder: Path) -> Path:
        """The version's files in ``folder``, each fetched by its registered digest (the
        store checks the bytes against it as it writes them)."""
        for file in version.files:
            self.models.artifacts.get_file(file.digest, folder / check_package_path(file.path))
        return folder

    def _stage_table(self, table: FileEntry, folder: Path) -> Path:
        path = folder / f"table{Path(table.path).suffix}"  # its own name is not needed
        self.data.artifacts.get_file(table.digest, path)
        return path


def _unpacked(answers: Sequence[Mapping[str, Any]]) -> tuple[Any, Any, Any]:
    """The truth, the predictions and the probabilities, from the worker's answers.

    Raises:
        CairnError: the error the worker answered with (ModelFailed: the model's).
        ModelFailed: the answers are not what the worker sends.
    """
    failed = next((a for a in answers if "error" in a), None)
    if failed is not None:
        raise error_from_code(str(failed.get("code")), said(str(failed["error"])))
    if len(answers) < 2 or "truth" not in answers[0] or "predicted" not in answers[1]:
        raise ModelFailed("the worker process ended without predictions")
    return answers[0]["truth"], answers[1]["predicted"], answers[1].get("scores")


def _scored(wanted: Sequence[str], truth: Any, predicted: Any, scores: Any) -> dict[str, float]:
    """Raises:
    ModelFailed: the predictions (or probabilities) cannot be compared with the truth.
    """
    import numpy as np

    try:
        probabilities = None if scores is None else np.asarray(scores, dtype=float)
        return measure(wanted, np.asarray(truth), predicted, probabilities)
    except CairnError:
        raise
    except (ValueError, TypeError, IndexError) as exc:  # scikit-learn's word on them
        # It may quote the predictions (labels): words of the model's, bounded as such.
        raise ModelFailed(f"its predictions could not be scored: {said(str(exc))}") from None


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
