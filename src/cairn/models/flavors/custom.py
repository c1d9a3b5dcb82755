"""Custom Python models: any object with ``predict(data)``, pickled, with the files it
needs copied into the package. After loading, ``load_context(files)`` is called on it (if
it has one) with each file's name mapped to its path, so it can open them.

Its class lives in the user's code, outside the scan's allow-list: a custom model is
always flagged, and loads with ``trust=True`` — loading it runs that code.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput
from cairn.models.flavors import Saved, pickled
from cairn.models.manifest import path_problem

FILES = "files"


class CustomFlavor:
    name = "custom"
    code_on_load: tuple[str, str] | None = (pickled.MODEL_FILE, "code of a custom model")

    def detects(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path, files: Mapping[str, Path], example: Any) -> Saved:
        written = [pickled.dump(model, folder)]
        for name, source in sorted(files.items()):
            if not Path(source).is_file():
                raise InvalidInput(f"files[{name!r}]: {source} is not a file")
            if "/" in name or name.startswith("."):
                raise InvalidInput(f"files[{name!r}]: a file name, without '/' or a leading '.'")
            if (problem := path_problem(f"{FILES}/{name}")) is not None:
                raise InvalidInput(f"files[{name!r}]: {problem}")
            (folder / FILES).mkdir(exist_ok=True)
            shutil.copyfile(source, folder / FILES / name)
            written.append(f"{FILES}/{name}")
        return Saved(tuple(written), pickled=(written[0],), details={"files": sorted(files)})

    def load(self, folder: Path, details: Mapping[str, Any], trust: bool = False) -> Any:
        model = pickled.load(folder)
        load_context = getattr(model, "load_context", None)
        if callable(load_context):
            load_context({name: folder / FILES / name for name in details.get("files", [])})
        return model

    def predict(self, model: Any, data: Any) -> Any:
        return model.predict(data)
