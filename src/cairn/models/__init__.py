"""Registered models from Python.

    import cairn

    with cairn.start_run(experiment="churn") as run:
        run.log_model(model, name="churn", input_example=X_val[:5])   # churn/1, churn/2 …

    cairn.models.set_alias("churn", "champion", 2)
    m = cairn.models.load("churn@champion")      # or "churn/2", "models:/churn@champion"
    m.predict(X_new)

A loaded model was checked file by file against the digests registered for its version;
a package whose pickles would import code outside the allow-list loads only with
``trust=True``.

The modules of this package are the model registry itself: packages and their flavors,
the scan that vets them, signatures, lineage and attestations (``service``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cairn.core.model import (
    ModelCard,
    ModelVersion,
    RegisteredModel,
    card_from_dict,
    parse_model_ref,
)

if TYPE_CHECKING:
    from cairn.models.loaded import LoadedModel
    from cairn.models.service import ModelService

__all__ = [
    "LoadedModel",
    "ModelCard",
    "ModelVersion",
    "RegisteredModel",
    "delete_alias",
    "get_card",
    "get_version",
    "list_models",
    "list_versions",
    "load",
    "set_alias",
    "set_card",
]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the registry's modules import this package, and most of them
    # never need what loading a model takes.
    if name == "LoadedModel":
        from cairn.models.loaded import LoadedModel

        return LoadedModel
    raise AttributeError(f"module 'cairn.models' has no attribute {name!r}")


def _service() -> ModelService:
    from cairn.sdk import session  # this namespace fronts the SDK's session

    return session().models


def load(ref: str, trust: bool = False) -> LoadedModel:
    """The model a reference names, verified, ready to ``predict``.

    Raises:
        NotFound: no such model, version or alias (saying what exists).
        UntrustedModel: the package is flagged by its scan and ``trust`` is not given.
        IntegrityError: a file does not match its registered digest (naming it).
    """
    return _service().load(ref, trust=trust)


def get_version(ref: str) -> ModelVersion:
    """The registered version a reference names (its files, manifest, findings)."""
    return _service().registry.resolve(parse_model_ref(ref))


def list_models() -> list[RegisteredModel]:
    return _service().registry.list_models()


def list_versions(name: str) -> list[ModelVersion]:
    """Newest first."""
    return _service().registry.list_versions(name)


def set_alias(name: str, alias: str, version: int) -> ModelVersion:
    """Point ``alias`` (``champion``) at a version; ``name@alias`` then loads it."""
    return _service().registry.set_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    _service().registry.delete_alias(name, alias)


def get_card(ref: str) -> ModelCard:
    """The model card of the version ``ref`` names (empty fields if none was written)."""
    version = get_version(ref)
    return _service().registry.get_card(version.name, version.version)


def set_card(ref: str, card: Mapping[str, Any]) -> ModelCard:
    """Replace the card of the version ``ref`` names: ``intended_use``, ``limitations``,
    ``training_data``, ``ethical_considerations`` (text) and ``metrics`` (numbers).

    Raises:
        InvalidInput: an unknown field or a value of the wrong type (naming it).
    """
    written = card_from_dict(card)
    version = get_version(ref)
    return _service().registry.set_card(version.name, version.version, written)
