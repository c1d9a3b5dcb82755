"""Flavors: how each kind of model is saved into a package and loaded back.

A flavor knows one library's models. It saves a model in that library's own portable
format where there is one (XGBoost's JSON, LightGBM's text, ONNX, ``torch.export``),
scikit-learn's secure format (skops) for estimators, and pickle only where neither will do
(a custom Python model, an estimator skops cannot persist) — marking the files that rely
on it — and loads a package back with the library's own loader, the only code loading
runs. The flavor is found from the model object; a package names its flavor, and only
flavors listed here can be named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cairn.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Saved:
    """What a flavor wrote into the package folder."""

    files: tuple[str, ...]  # paths inside the package
    pickled: tuple[str, ...] = ()  # those that rely on pickle
    libraries: tuple[str, ...] = ()  # distributions the model needs, pinned at save time
    details: Mapping[str, Any] = field(default_factory=dict)  # kept in the manifest
    loaded: Any = None  # the model as read back from the files, where the flavor checked them


class Flavor(Protocol):
    name: str
    # A file its loader runs code of the file's choosing from, whatever the scan finds in
    # it, and why: such a package is always flagged.
    code_on_load: tuple[str, str] | None

    def detects(self, model: Any) -> bool:
        """Whether ``model`` is of this flavor's library."""

    def save(self, model: Any, folder: Path, files: Mapping[str, Path], example: Any) -> Saved:
        """Write the model into ``folder``; ``files`` are extra files it needs (custom),
        ``example`` an input it takes, or None (a PyTorch module is traced with it)."""

    def load(self, folder: Path, details: Mapping[str, Any], trust: bool = False) -> Any:
        """The model saved in ``folder`` (``trust``: build even the types the scan flags)."""

    def predict(self, model: Any, data: Any) -> Any:
        """The model's predictions for ``data``."""


def flavors() -> dict[str, Flavor]:
    """Every flavor by name, in the order they are tried on a model (custom last: it takes
    any object with a ``predict`` method)."""
    from cairn.models.flavors import custom, gradient_boosting, onnx, pytorch, sklearn

    found: list[Flavor] = [
        onnx.OnnxFlavor(),
        pytorch.PyTorchFlavor(),
        gradient_boosting.XGBoostFlavor(),
        gradient_boosting.LightGBMFlavor(),
        sklearn.SklearnFlavor(),
        custom.CustomFlavor(),
    ]
    return {flavor.name: flavor for flavor in found}


def detect(model: Any) -> Flavor:
    """Raises:
    InvalidInput: no flavor knows the object (listing them, and how to write a custom one).
    """
    for flavor in flavors().values():
        if flavor.detects(model):
            return flavor
    raise InvalidInput(
        f"model: a {type(model).__module__}.{type(model).__qualname__} is of no known flavor "
        f"({', '.join(flavors())}). For another kind of model, wrap it in a class with a "
        "predict(data) method (a custom Python model); the files it needs go in "
        "log_model(..., files={'name': path}) and reach it through load_context(files)"
    )


def named(name: str) -> Flavor:
    """Raises:
    InvalidInput: a package names a flavor this Cairn does not have.
    """
    known = flavors()
    if name not in known:
        raise InvalidInput(
            f"flavor {name!r}: this Cairn knows {', '.join(known)}; a package made by a newer "
            "Cairn may need an upgrade (pip install -U cairn-mlops)"
        )
    return known[name]


def unloadable(path: str, library: str, exc: Exception) -> InvalidInput:
    """The error for a package file its library's loader refuses: the bytes are the ones
    registered (checked before), so they are not a model this library reads."""
    cause = " ".join(str(exc).split())[:300]
    return InvalidInput(f"{path}: {library} cannot load it ({type(exc).__name__}: {cause})")


def module_of(model: Any) -> str:
    return type(model).__module__
