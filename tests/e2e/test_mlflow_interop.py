"""Moving scikit-learn models in and out of MLflow, checked with MLflow itself: a model
MLflow saved is registered and loaded by Cairn; a model Cairn exports is loaded by
``mlflow.pyfunc`` and ``mlflow.sklearn``, to the same predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cairn
from cli_process import cairn_cli

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.filterwarnings("ignore")  # MLflow's own warnings are not Cairn's

X, Y = load_breast_cancer(return_X_y=True)


def _trained() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)


class Doubler:
    """A custom model: not of a flavor MLflow's sklearn loader reads."""

    def predict(self, data: object) -> object:
        return np.asarray(data) * 2


_cli = cairn_cli


@pytest.mark.parametrize("serialization", ["pickle", "cloudpickle"])
def test_a_model_mlflow_saved_is_registered_and_loaded(tmp_path: Path, serialization: str) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    model = _trained()
    saved = tmp_path / "mlflow-model"
    signature = infer_signature(X[:5], model.predict(X[:5]))  # type: ignore[attr-defined]
    mlflow.sklearn.save_model(model, saved, signature=signature, serialization_format=serialization)
    shown = _cli("models", "import-mlflow", str(saved), "--name", "churn").stdout
    assert "as churn/1" in shown
    assert "flagged" not in shown
    version = cairn.models.get_version("churn/1")
    assert version.flavor == "sklearn"
    assert version.manifest["signature"]["inputs"] == {
        "type": "tensor", "dtype": "float64", "shape": [-1, 30]
    }  # fmt: skip
    assert any(r.startswith("scikit-learn==") for r in version.manifest["requirements"])
    loaded = cairn.models.load("churn/1")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))  # type: ignore[attr-defined]


def test_a_model_cairn_exports_is_loaded_by_mlflow(tmp_path: Path) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn

    model = _trained()
    with cairn.start_run(experiment="churn") as run:
        run.log_model(model, name="churn", input_example=X[:5])
    exported = tmp_path / "exported"
    assert "exported to" in _cli("models", "export", "churn/1", "-o", str(exported)).stdout
    expected = model.predict(X)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(str(exported)).predict(X), expected)
    np.testing.assert_array_equal(mlflow.sklearn.load_model(str(exported)).predict(X), expected)
    again = _cli("models", "export", "churn/1", "-o", str(exported), ok=False)
    assert "exists: give a new folder" in again.stderr


def test_what_cannot_move_says_why(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    missing = _cli("models", "import-mlflow", str(tmp_path / "empty"), "--name", "m", ok=False)
    assert "not an MLflow model folder (it has no MLmodel file)" in missing.stderr
    skops = tmp_path / "skops"
    skops.mkdir()
    (skops / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.skops\n    serialization_format: skops\n"
    )
    refused = _cli("models", "import-mlflow", str(skops), "--name", "m", ok=False)
    assert "serialization_format 'skops'; Cairn imports pickle and cloudpickle" in refused.stderr
    with cairn.start_run(experiment="churn") as run:
        run.log_model(Doubler(), name="custom")
    custom = _cli("models", "export", "custom/1", "-o", str(tmp_path / "out"), ok=False)
    assert "a custom package; Cairn exports the sklearn flavor" in custom.stderr
    assert json.loads(_cli("models", "list", "--json").stdout)[0]["name"] == "custom"
