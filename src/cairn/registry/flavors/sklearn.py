"""scikit-learn estimators and pipelines: pickle, scikit-learn's own way to persist them
(it has no portable format), scanned before registration."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.registry.flavors import Saved, module_of, pickled


class SklearnFlavor:
    name = "sklearn"

    def detects(self, model: Any) -> bool:
        return module_of(model).startswith("sklearn.") and hasattr(model, "predict")

    def save(self, model: Any, folder: Path, files: Mapping[str, Path], example: Any) -> Saved:
        written = pickled.dump(model, folder)
        return Saved((written,), pickled=(written,), libraries=("scikit-learn",))

    def load(self, folder: Path, details: Mapping[str, Any]) -> Any:
        return pickled.load(folder)

    def predict(self, model: Any, data: Any) -> Any:
        return model.predict(data)
