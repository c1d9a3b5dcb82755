"""Pickle, for the models that have no other format: written with the newest protocol,
read back only after the package passed its scan (or was trusted)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

MODEL_FILE = "model.pkl"


def dump(model: Any, folder: Path) -> str:
    with (folder / MODEL_FILE).open("wb") as out:
        pickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
    return MODEL_FILE


def load(folder: Path) -> Any:
    with (folder / MODEL_FILE).open("rb") as stream:
        return pickle.load(stream)  # noqa: S301  # verified and scanned, or trusted
