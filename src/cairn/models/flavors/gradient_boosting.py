"""XGBoost and LightGBM: each library's own model file (XGBoost's JSON, LightGBM's
text), read back by the library. LightGBM's scikit-learn wrappers keep fitted state its
text file does not hold (the classes, the label encoder), so they are stored as
scikit-learn's estimators are: with skops (LightGBM's classes verified like
scikit-learn's), pickled only where skops cannot (``cairn.models.flavors.estimator``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput
from cairn.models.flavors import Saved, estimator, module_of, unloadable

# The XGBoost classes a package may name: the loader makes one and reads the file into it.
_XGBOOST_CLASSES = frozenset(
    {"Booster", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier",
     "XGBRFRegressor"}
)  # fmt: skip
_XGBOOST_FILE = "model.json"
_LIGHTGBM_FILE = "model.txt"


class XGBoostFlavor:
    name = "xgboost"
    code_on_load: tuple[str, str] | None = None

    def detects(self, model: Any) -> bool:
        return module_of(model).startswith("xgboost.") and type(model).__name__ in _XGBOOST_CLASSES

    def save(self, model: Any, folder: Path, files: Mapping[str, Path], example: Any) -> Saved:
        model.save_model(str(folder / _XGBOOST_FILE))
        details = {"class": type(model).__name__}
        return Saved((_XGBOOST_FILE,), libraries=("xgboost",), details=details)

    def load(self, folder: Path, details: Mapping[str, Any], trust: bool = False) -> Any:
        """Raises:
        InvalidInput: the package names an unknown class, or XGBoost refuses the file.
        """
        import xgboost

        name = details.get("class")
        if name not in _XGBOOST_CLASSES:
            raise InvalidInput(f"xgboost package: unknown model class {name!r}")
        model = getattr(xgboost, str(name))()
        try:
            model.load_model(str(folder / _XGBOOST_FILE))
        except xgboost.core.XGBoostError as exc:
            raise unloadable(_XGBOOST_FILE, "XGBoost", exc) from None
        return model

    def predict(self, model: Any, data: Any) -> Any:
        if type(model).__name__ == "Booster":
            import xgboost

            return model.predict(xgboost.DMatrix(data))
        return model.predict(data)


class LightGBMFlavor:
    name = "lightgbm"
    code_on_load: tuple[str, str] | None = None

    def detects(self, model: Any) -> bool:
        return module_of(model).startswith("lightgbm.") and hasattr(model, "predict")

    def save(self, model: Any, folder: Path, files: Mapping[str, Path], example: Any) -> Saved:
        if type(model).__name__ == "Booster":
            model.save_model(str(folder / _LIGHTGBM_FILE))
            return Saved((_LIGHTGBM_FILE,), libraries=("lightgbm",), details={"format": "text"})
        return estimator.save(model, folder, example, ("lightgbm", "scikit-learn"))

    def load(self, folder: Path, details: Mapping[str, Any], trust: bool = False) -> Any:
        """Raises:
        InvalidInput: LightGBM refuses its model text.
        UntrustedModel: a wrapper's skops file names a type the scan flags, without trust.
        """
        if details.get("format") != "text":
            return estimator.load(folder, details, trust)
        import lightgbm

        try:
            return lightgbm.Booster(model_file=str(folder / _LIGHTGBM_FILE))
        except lightgbm.basic.LightGBMError as exc:
            raise unloadable(_LIGHTGBM_FILE, "LightGBM", exc) from None

    def predict(self, model: Any, data: Any) -> Any:
        return model.predict(data)
