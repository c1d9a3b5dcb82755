"""How well the model did on a window: realised from the labels that have come in, and,
before they come, estimated from the model's own confidence.

Realised, on the rows that have a label (``coverage``: their share of the window):

- a classifier (labels of at most ``MAX_CLASSES`` distinct values that are not fractional
  numbers): accuracy, and precision, recall and F1 — of the positive class (the larger of
  two), or averaged over the classes (macro) for more — and ROC AUC when the answers are
  probabilities of the positive class;
- a regressor: MAE and RMSE.

Estimated, for a binary classifier answering probabilities (confidence-based performance
estimation, as NannyML's CBPE): a row answered ``p`` is right with probability
``max(p, 1 - p)`` if the model is calibrated, so the expected accuracy of the window is the
mean of those, and its standard error ``sqrt(sum c(1 - c)) / n`` — the spread of the
accuracy labels would show. The interval given is three standard errors each side. It sees
what a shift of the inputs does to the model's confidence, not a change in what the labels
mean for the same inputs (concept drift): only labels show that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from cairn.monitoring.reference import missing_mask

if TYPE_CHECKING:
    from cairn.core.monitor import Condition

MAX_CLASSES = 20
_SPREAD = 3.0  # standard errors each side of an estimate
# Labelled rows a window needs before its realised figure decides whether the model
# degraded; with fewer, the estimate decides (accuracy), or nothing does.
LEAST_LABELLED = 30


def performance(predictions: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    """The window's realised and estimated performance: ``labels`` is one per prediction,
    missing (None or NaN) where none has come in."""
    found: dict[str, Any] = {"rows": int(predictions.size)}
    probabilities = _probabilities(predictions)
    if probabilities is not None:
        found["estimated"] = estimated_accuracy(probabilities)
    if labels is None or predictions.size == 0:
        found["coverage"] = 0.0
        return found
    labelled = ~missing_mask(labels)
    found["coverage"] = float(labelled.mean())
    found["labelled"] = int(labelled.sum())
    if not labelled.any():
        return found
    truth, answered = labels[labelled], predictions[labelled]
    if _is_classification(truth):
        found["kind"] = "classifier"
        scores = None if probabilities is None else probabilities[labelled]
        found["realised"] = _classification(truth, answered, scores)
    else:
        found["kind"] = "regressor"
        found["realised"] = _regression(truth.astype(float), answered.astype(float))
    return found


def degradation(condition: Condition, measured: Mapping[str, Any]) -> dict[str, Any] | None:
    """Whether the window's performance (``performance``) meets ``condition`` — the model
    degraded: decided on the realised figure when ``LEAST_LABELLED`` rows or more have
    labels, else on the estimated accuracy; None when neither is known."""
    realised, labelled = measured.get("realised", {}), measured.get("labelled", 0)
    if labelled >= LEAST_LABELLED and condition.metric in realised:
        value, kind = float(realised[condition.metric]), "realised"
    elif condition.metric == "accuracy" and "estimated" in measured:
        value, kind = float(measured["estimated"]["accuracy"]), "estimated"
    else:
        return None
    return {"condition": str(condition), "value": value, "kind": kind, "labelled": labelled,
            "degraded": math.isfinite(value) and condition.holds(value)}  # fmt: skip


def estimated_accuracy(probabilities: np.ndarray) -> dict[str, float]:
    """CBPE's accuracy of a window of positive-class probabilities, with its interval."""
    right = np.maximum(probabilities, 1.0 - probabilities)
    value = float(right.mean())
    error = float(math.sqrt(float((right * (1.0 - right)).sum())) / right.size)
    return {"accuracy": value, "low": max(value - _SPREAD * error, 0.0),
            "high": min(value + _SPREAD * error, 1.0), "standard_error": error}  # fmt: skip


def _probabilities(predictions: np.ndarray) -> np.ndarray | None:
    """The answers as positive-class probabilities, if that is what they are: numbers in
    [0, 1], not all whole."""
    if predictions.dtype.kind != "f" or predictions.size == 0:
        return None
    present = predictions[~np.isnan(predictions)]
    if present.size != predictions.size or present.min() < 0 or present.max() > 1:
        return None
    if np.all(present == np.round(present)):
        return None  # classes 0 and 1, not probabilities
    return predictions


def _is_classification(truth: np.ndarray) -> bool:
    if truth.dtype.kind in "fc":
        whole = np.all(np.isfinite(truth)) and np.all(truth == np.round(truth))
        return bool(whole) and np.unique(truth).size <= MAX_CLASSES
    if truth.dtype.kind == "O":
        numbers = [v for v in truth if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == truth.size:
            return _is_classification(np.asarray(numbers, dtype=float))
    return np.unique(truth.astype(str)).size <= MAX_CLASSES


def _classification(truth: np.ndarray, answered: np.ndarray,
                    scores: np.ndarray | None) -> dict[str, float]:  # fmt: skip
    if scores is not None:
        answered = (scores >= 0.5).astype(float)
    truth_s, answered_s = _as_labels(truth), _as_labels(answered)
    classes = np.unique(np.concatenate([truth_s, answered_s]))
    found = {"accuracy": float(np.mean(truth_s == answered_s))}
    if classes.size == 2:
        positive = classes[-1]
        precision, recall = _precision_recall(truth_s, answered_s, positive)
    else:
        pairs = [_precision_recall(truth_s, answered_s, c) for c in classes]
        precision = float(np.mean([p for p, _ in pairs]))
        recall = float(np.mean([r for _, r in pairs]))
    found["precision"], found["recall"] = precision, recall
    found["f1"] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    if scores is not None and classes.size == 2:
        found["roc_auc"] = _roc_auc(truth_s == classes[-1], scores)
    return found


def _as_labels(values: np.ndarray) -> np.ndarray:
    """Labels compared as text: 1, 1.0 and "1" are one class."""
    if values.dtype.kind in "fiu" or values.dtype.kind == "O":
        return np.array([_label_text(v) for v in values])
    return values.astype(str)


def _label_text(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _precision_recall(truth: np.ndarray, answered: np.ndarray, cls: Any) -> tuple[float, float]:
    hits = float(np.sum((answered == cls) & (truth == cls)))
    said, actual = float(np.sum(answered == cls)), float(np.sum(truth == cls))
    return (hits / said if said else 0.0), (hits / actual if actual else 0.0)


def _roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """The probability a positive row scores above a negative one (ties count a half): the
    Mann-Whitney U statistic over the ranks."""
    from scipy.stats import rankdata

    ones, zeros = int(positive.sum()), int((~positive).sum())
    if ones == 0 or zeros == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - ones * (ones + 1) / 2) / (ones * zeros))


def _regression(truth: np.ndarray, answered: np.ndarray) -> dict[str, float]:
    errors = answered - truth
    return {"mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2)))}
