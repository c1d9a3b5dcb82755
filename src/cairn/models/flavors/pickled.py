"""Pickle, for the models no safer format holds (a custom Python model, an estimator skops
cannot persist): written with the newest protocol, read back only after the package passed
its scan (or was trusted)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput

MODEL_FILE = "model.pkl"


def dump(model: Any, folder: Path) -> str:
    """Raises:
    InvalidInput: the model cannot be pickled (a class defined inside a function, an
        open file or lock held by it …).
    """
    try:
        with (folder / MODEL_FILE).open("wb") as out:
            pickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InvalidInput(
            f"model: a {type(model).__qualname__} cannot be pickled ({exc}); define its class "
            "at the top level of a module, and keep what it cannot pickle out of its state"
        ) from None
    return MODEL_FILE


def load(folder: Path) -> Any:
    with (folder / MODEL_FILE).open("rb") as stream:
        return pickle.load(stream)  # noqa: S301  # verified and scanned, or trusted
