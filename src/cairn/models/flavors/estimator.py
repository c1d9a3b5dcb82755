"""Estimators with scikit-learn's interface (scikit-learn's own, LightGBM's wrappers):
stored with skops, scikit-learn's secure format, and pickled only where skops cannot.

skops writes the object tree as JSON plus NumPy arrays, and loading builds only the types
the loader trusts. At save, the file is read back and, with an input example, asked to
predict the same as the object in hand: a model skops cannot persist (it raises), cannot
read back, or reads back differently is pickled instead (``model.pkl``, scanned like any
pickle). Without skops installed, every estimator is pickled. Either way, a method an
estimator keeps bound to itself among its attributes is left out (``own_methods``).

At load, the types handed to ``skops.io.load`` as trusted are those the scan accepts
(``cairn.models.scan.skops_verdict``); with ``trust=True``, every type in the file.
A package written before skops was used names no format, or ``pickle``: its ``model.pkl``
loads as it always did.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from cairn.errors import MissingExtra, UntrustedModel
from cairn.models.flavors import Saved, pickled
from cairn.models.flavors.own_methods import without_own_methods
from cairn.models.flavors.skops_bytes import canonical
from cairn.models.scan import skops_verdict
from cairn.models.skops_uses import skops_io

SKOPS_FILE = "model.skops"
SKOPS, PICKLE = "skops", "pickle"


def save(model: Any, folder: Path, example: Any, libraries: tuple[str, ...]) -> Saved:
    """Write ``model`` into ``folder`` with skops, or pickle it where skops cannot.

    Raises:
        InvalidInput: skops cannot persist the model and it cannot be pickled either.
    """
    with without_own_methods(model):
        loaded = _saved_with_skops(model, folder, example)
        if loaded is not None:
            return Saved(
                (SKOPS_FILE,), libraries=(*libraries, "skops"), details={"format": SKOPS},
                loaded=loaded,
            )  # fmt: skip
        written = pickled.dump(model, folder)
    return Saved((written,), pickled=(written,), libraries=libraries, details={"format": PICKLE})


def load(folder: Path, details: Any, trust: bool) -> Any:
    """The estimator saved in ``folder``, in the format ``details`` names.

    Raises:
        UntrustedModel: the skops file names a type the scan flags and ``trust`` is not
            given.
        MissingExtra: the model was stored with skops, which is not installed.
    """
    if details.get("format") != SKOPS:
        return pickled.load(folder)
    skops, path = skops_io(), folder / SKOPS_FILE
    trusted, flagged = skops_verdict(path)
    if flagged and not trust:
        raise UntrustedModel(f"{SKOPS_FILE} names {', '.join(flagged)}: pass trust=True to load")
    everything = skops.get_untrusted_types(file=path) if trust else list(trusted)
    try:
        return skops.load(path, trusted=everything)
    except skops.exceptions.UntrustedTypesFoundException as exc:  # the scan and skops disagree
        raise UntrustedModel(f"{SKOPS_FILE}: {exc}") from None


def _saved_with_skops(model: Any, folder: Path, example: Any) -> Any:
    """The model as read back from the skops file written for it; None (and no file)
    where skops is missing or cannot persist it faithfully."""
    try:
        skops = skops_io()
    except MissingExtra:
        return None
    path = folder / SKOPS_FILE
    # A check, not a load for the user: what it warns about (a deprecated class, say) is
    # not theirs to see, and a warning turned into an error must not fail it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            skops.dump(model, path)
            canonical(path)  # the same model, the same bytes (and a tenth the size)
            # The file holds this very object's types: reading it back builds nothing new.
            loaded = skops.load(path, trusted=skops.get_untrusted_types(file=path))
        except Exception:  # noqa: BLE001  # whatever skops cannot persist is pickled instead
            path.unlink(missing_ok=True)
            return None
        if example is not None and not _predicts_alike(model, loaded, example):
            path.unlink()
            return None
    return loaded


def _predicts_alike(model: Any, loaded: Any, example: Any) -> bool:
    import numpy as np

    try:
        expected = np.asarray(model.predict(example))
    except Exception:  # noqa: BLE001  # an example the model cannot take is reported later
        return True
    try:
        found = np.asarray(loaded.predict(example))
        return bool(np.array_equal(expected, found, equal_nan=expected.dtype.kind in "fc"))
    except Exception:  # noqa: BLE001  # a copy that cannot predict is not the model
        return False
