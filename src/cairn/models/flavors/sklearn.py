"""scikit-learn estimators and pipelines: stored with skops, scikit-learn's secure format,
and pickled (then scanned) only where skops cannot (``cairn.models.flavors.estimator``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.models.flavors import Saved, estimator, module_of


class SklearnFlavor:
    name = "sklearn"
    code_on_load: tuple[str, str] | None = None

    def detects(self, model: Any) -> bool:
        return module_of(model).startswith("sklearn.") and hasattr(model, "predict")

    def save(self, model: Any, folder: Path, files: Mapping[str, Path], example: Any) -> Saved:
        return estimator.save(model, folder, example, ("scikit-learn",))

    def load(self, folder: Path, details: Mapping[str, Any], trust: bool = False) -> Any:
        return estimator.load(folder, details, trust)

    def predict(self, model: Any, data: Any) -> Any:
        return model.predict(data)
