"""A window's performance: realised on its labels as scikit-learn computes it, and
estimated from a calibrated model's confidence within the interval it states."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from cairn.monitoring.performance import estimated_accuracy, performance


def test_a_binary_classifiers_figures_are_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 1_000)
    scores = np.clip(truth * 0.3 + rng.uniform(size=1_000) * 0.7, 0, 1)
    labels = truth.astype(object)
    labels[::4] = None  # a quarter not in yet
    found = performance(scores, labels)
    seen = ~np.equal(labels, None)
    answered = (scores[seen] >= 0.5).astype(int)
    expected = {
        "accuracy": metrics.accuracy_score(truth[seen], answered),
        "precision": metrics.precision_score(truth[seen], answered),
        "recall": metrics.recall_score(truth[seen], answered),
        "f1": metrics.f1_score(truth[seen], answered),
        "roc_auc": metrics.roc_auc_score(truth[seen], scores[seen]),
    }
    assert found["realised"] == pytest.approx(expected)
    assert (found["coverage"], found["labelled"], found["kind"]) == (0.75, 750, "classifier")


def test_classes_by_name_are_averaged_over_the_classes() -> None:
    truth = np.array(["a", "b", "c", "a", "b", "c", "a"], dtype=object)
    answered = np.array(["a", "b", "b", "a", "c", "c", "b"], dtype=object)
    found = performance(answered, truth)["realised"]
    assert found["precision"] == pytest.approx(
        metrics.precision_score(truth, answered, average="macro"))  # fmt: skip
    assert found["recall"] == pytest.approx(metrics.recall_score(truth, answered, average="macro"))
    assert "roc_auc" not in found


def test_a_regressors_errors() -> None:
    truth = np.array([1.5, 2.25, 3.0, np.nan])
    answered = np.array([1.0, 2.0, 4.0, 9.0])
    found = performance(answered, truth)
    assert found["kind"] == "regressor"
    mae = metrics.mean_absolute_error(truth[:3], answered[:3])
    rmse = np.sqrt(metrics.mean_squared_error(truth[:3], answered[:3]))
    assert found["realised"] == pytest.approx({"mae": mae, "rmse": rmse})
    assert found["coverage"] == 0.75


@pytest.mark.parametrize("seed", range(6))
def test_a_calibrated_models_estimate_holds_its_realised_accuracy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.uniform(size=5_000)
    truth = (rng.uniform(size=scores.size) < scores).astype(int)  # calibrated: P(y=1) = score
    found = performance(scores, truth)
    estimated, realised = found["estimated"], found["realised"]["accuracy"]
    assert estimated["low"] <= realised <= estimated["high"]
    assert estimated["high"] - estimated["low"] < 0.05


def test_the_estimate_moves_as_the_realised_does_when_inputs_near_the_boundary() -> None:
    rng = np.random.default_rng(7)
    confident = rng.beta(0.5, 0.5, 5_000)  # most rows far from 0.5
    unsure = rng.beta(8, 8, 5_000)  # the inputs moved to where the model hesitates
    before = performance(confident, (rng.uniform(size=5_000) < confident).astype(int))
    after = performance(unsure, (rng.uniform(size=5_000) < unsure).astype(int))
    assert after["estimated"]["accuracy"] < before["estimated"]["accuracy"] - 0.1
    assert after["realised"]["accuracy"] < before["realised"]["accuracy"] - 0.1
    assert after["estimated"]["low"] <= after["realised"]["accuracy"] <= after["estimated"]["high"]


def test_no_estimate_from_class_answers_and_none_without_labels() -> None:
    found = performance(np.array([0.0, 1.0, 1.0]), None)
    assert "estimated" not in found
    assert found["coverage"] == 0.0
    assert estimated_accuracy(np.array([0.5, 0.5]))["accuracy"] == 0.5
