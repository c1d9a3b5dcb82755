"""The models a server answers for: each named by its model's name (the path segment
requests use), loaded once through the verified load path (digests checked, a flagged
package refused unless trusted), with the reference it was asked for and the version that
reference resolved to."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.core.model import parse_model_ref
from cairn.errors import InvalidInput
from cairn.models import signature

if TYPE_CHECKING:
    from cairn.models.loaded import LoadedModel
    from cairn.models.service import ModelService


@dataclass(frozen=True)
class ServedModel:
    name: str
    reference: str  # as asked for: churn@production, churn/3, churn
    model: LoadedModel
    load_seconds: float

    @property
    def version(self) -> str:
        """The version's number, as text (the protocol's ``model_version``)."""
        return str(self.model.version.version)

    @property
    def ref(self) -> str:
        """The version that answers: ``churn/3``."""
        return self.model.version.ref

    @property
    def signature(self) -> dict[str, Any] | None:
        return self.model.signature

    @property
    def inputs(self) -> dict[str, Any] | None:
        """What the model takes (its signature's inputs); None: it has no signature."""
        found = self.signature
        return None if found is None else dict(found["inputs"])

    @property
    def platform(self) -> str:
        return str(self.model.version.flavor)

    def check(self, data: Any) -> None:
        """Raises:
        InvalidInput: ``data`` does not fit the model's signature (naming what).
        """
        if self.inputs is not None:
            signature.check(self.inputs, data)

    def predict(self, data: Any) -> Any:
        """Raises:
        InvalidInput: ``data`` does not fit the model's signature (naming what).
        """
        return self.model.predict(data)


def load_served(models: ModelService, references: Sequence[str]) -> dict[str, ServedModel]:
    """Each reference's model, loaded, by its model's name.

    Raises:
        InvalidInput: no reference, or two naming one model.
        NotFound, UntrustedModel, IntegrityError: as loading a model raises them.
    """
    if not references:
        raise InvalidInput("name at least one model to serve (churn@production, churn/3)")
    served: dict[str, ServedModel] = {}
    for reference in references:
        name = parse_model_ref(reference).name
        if name in served:
            raise InvalidInput(
                f"{reference}: model {name!r} is served already (as "
                f"{served[name].reference}); serve one version of each"
            )
        started = time.perf_counter()
        model = models.load(reference)
        served[name] = ServedModel(name, reference, model, time.perf_counter() - started)
    return served
