"""Data versions from Python.

    import cairn

    path = cairn.data.get("customers@2")    # a local copy: the file, or the folder
    with cairn.start_run(experiment="churn") as run:
        run.log_input("customers@2")          # the run used it: a lineage edge

``get`` materialises a version once into the Cairn home (``data/checkouts/NAME/VERSION``)
and returns that copy's path on later calls; it works on the embedded store, the database
``CAIRN_DB`` names, or a server (``CAIRN_URI``).

The modules of this package are data versioning itself: content-addressed snapshots of
files and folders (``service``), their manifests, checkouts, remotes and profiles.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cairn.data.service import DataService

__all__ = ["get"]


def _service() -> DataService:
    from cairn.sdk import session  # this namespace fronts the SDK's session

    return session().data


def get(ref: str) -> Path:
    """A local copy of a data version (``customers@2``; ``customers`` for the newest).

    Raises:
        NotFound: no such version. InvalidInput: a malformed reference.
        PermissionDenied: through a server, the caller may not read the dataset.
    """
    return _service().get(ref)
