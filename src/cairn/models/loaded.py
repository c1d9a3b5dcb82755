"""A model loaded from a registered version: ``predict`` checks the input against the
signature first, then asks the flavor."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from cairn.core.model import ModelVersion
from cairn.models import signature
from cairn.models.flavors import Flavor
from cairn.models.package import Package


class LoadedModel:
    """What ``cairn.models.load`` returns; ``native`` is the library's own object."""

    def __init__(self, version: ModelVersion, package: Package, flavor: Flavor, native: Any):
        self.version, self.package, self.native = version, package, native
        self._flavor = flavor

    @cached_property
    def signature(self) -> dict[str, Any] | None:
        """Read once: a server checks every request against it."""
        found = self.package.manifest.get("signature")
        return dict(found) if found else None

    def predict(self, data: Any) -> Any:
        """Raises:
        InvalidInput: ``data`` does not fit the signature (naming the column or shape).
        """
        self.check(data)
        return self.predict_checked(data)

    def check(self, data: Any) -> None:
        """Raises:
        InvalidInput: ``data`` does not fit the signature (naming the column or shape).
        """
        if self.signature is not None:
            signature.check(self.signature["inputs"], data)

    def predict_checked(self, data: Any) -> Any:
        """The predictions for ``data`` already checked (``check``): a server checks each
        request once, before it joins a batch."""
        return self._flavor.predict(self.native, data)

    def __repr__(self) -> str:
        return f"<LoadedModel {self.version.ref} ({self._flavor.name})>"
