"""ONNX models: the ``.onnx`` file itself, run by ONNX Runtime on the CPU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.models.flavors import Saved, module_of, unloadable

_FILE = "model.onnx"


class OnnxFlavor:
    name = "onnx"
    code_on_load: tuple[str, str] | None = None

    def detects(self, model: Any) -> bool:
        return module_of(model).startswith("onnx") and type(model).__name__ == "ModelProto"

    def save(self, model: Any, folder: Path, files: Mapping[str, Path], example: Any) -> Saved:
        import onnx

        onnx.save_model(model, str(folder / _FILE))
        return Saved((_FILE,), libraries=("onnx", "onnxruntime"))

    def load(self, folder: Path, details: Mapping[str, Any], trust: bool = False) -> Any:
        """Raises:
        InvalidInput: ONNX Runtime refuses the file (not ONNX, or external data it will not
            read: outside the package folder, or absent).
        """
        import onnxruntime

        path = str(folder / _FILE)
        try:
            return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  # its errors are its own pybind11 classes
            raise unloadable(_FILE, "ONNX Runtime", exc) from None

    def predict(self, model: Any, data: Any) -> Any:
        """The first output, for the model's first input fed with ``data`` (an array, or a
        dict of arrays by input name)."""
        import numpy as np

        if isinstance(data, Mapping):
            feeds = {name: np.asarray(value) for name, value in data.items()}
        else:
            first = model.get_inputs()[0]
            array = np.asarray(data)
            if "float" in first.type and array.dtype != np.float32:
                array = array.astype(np.float32)  # what converted models take
            feeds = {first.name: array}
        return model.run(None, feeds)[0]
