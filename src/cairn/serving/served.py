"""The models a server answers for: each named by its model's name (the path segment
requests use), loaded once through the verified load path (digests checked, a flagged
package refused unless trusted), with the reference it was asked for and the version that
reference resolved to."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.core.model import parse_model_ref
from cairn.errors import InvalidInput
from cairn.serving.traffic import Canary, Traffic, check_names, parse_canary

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from cairn.models.loaded import LoadedModel
    from cairn.models.service import ModelService

# (model, environment) -> the version serving there as a canary and its share, or None
CanaryOf = Callable[[str, str], tuple[int, float] | None]


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
        return None if found is None else found["inputs"]

    @property
    def platform(self) -> str:
        return str(self.model.version.flavor)

    def warm(self) -> None:
        """Predict once on a row of zeros of the signature's shape, so that what a model
        builds on its first call (caches, lazily loaded code) is built before requests
        reach it. A model without a signature, or whose zeros it refuses, is not warmed."""
        if self.inputs is None:
            return
        try:
            self.predict(zeros(self.inputs))
        except Exception:  # noqa: BLE001  # warming is best effort: requests are checked
            logger.info("%s was not warmed: it refused a row of zeros", self.ref)

    def check(self, data: Any) -> None:
        """Raises:
        InvalidInput: ``data`` does not fit the model's signature (naming what).
        """
        self.model.check(data)

    def predict(self, data: Any) -> Any:
        """The predictions for ``data``, which ``check`` passed."""
        return self.model.predict_checked(data)


def zeros(spec: Mapping[str, Any]) -> Any:
    """One row of zeros as ``spec`` (a signature's inputs) takes it."""
    import numpy as np

    def tensor(found: Mapping[str, Any]) -> Any:
        shape = [1, *(max(d, 1) for d in found["shape"][1:])]
        return np.zeros(shape, dtype=found["dtype"])

    if spec["type"] == "columns":
        import pandas as pd

        return pd.DataFrame({c["name"]: np.zeros(1).astype(c["type"]) for c in spec["columns"]})
    if spec["type"] == "tensors":
        return {name: tensor(found) for name, found in spec["tensors"].items()}
    return tensor(spec)


class ServedModels(Mapping[str, ServedModel]):
    """The models a server answers for, by name, each kept on the version its reference
    resolves to: ``refresh`` resolves every reference again and, where one has moved (a
    promotion, a rollback), loads the new version and then puts it in the old one's place
    in one step. A request holds the version it started on until it is answered, so
    in-flight requests finish on the old one and none fails for the switch.

    A model served by environment (``churn@production``) also serves the canary that
    environment runs, if any (``canary_of``), from the look after it starts until it is
    judged — unless ``--canary`` names one for that model, which is kept.
    """

    def __init__(
        self,
        models: ModelService,
        references: Sequence[str],
        canaries: Sequence[str] = (),
        shadows: Sequence[str] = (),
        canary_of: CanaryOf | None = None,
    ) -> None:
        """``canaries``: ``churn/4=10%``, a version taking a share of its model's requests;
        ``shadows``: versions getting a copy of each of their model's requests
        (``cairn.serving.traffic``); ``canary_of``: the canary an environment runs.

        Raises:
            InvalidInput: no reference, two naming one model, a canary or shadow of a
                model not served, or two of one model.
            NotFound, UntrustedModel, IntegrityError: as loading a model raises them.
        """
        if not references:
            raise InvalidInput("name at least one model to serve (churn@production, churn/3)")
        self._models = models
        self._by_name: dict[str, ServedModel] = {}
        for reference in references:
            name = parse_model_ref(reference).name
            if name in self._by_name:
                raise InvalidInput(
                    f"{reference}: model {name!r} is served already (as "
                    f"{self._by_name[name].reference}); serve one version of each"
                )
            self._by_name[name] = self._load(name, reference, reference)
        self.traffic = self._traffic(canaries, shadows)
        self._canary_of, self._followed = canary_of, set[str]()
        try:
            self._follow_canaries()
        except Exception:  # the primary serves; the next look tries again
            logger.exception("could not load the canaries the environments run")

    def _traffic(self, canaries: Sequence[str], shadows: Sequence[str]) -> Traffic:
        split = [parse_canary(text) for text in canaries]
        for option, given in (("--canary", [ref for ref, _ in split]), ("--shadow", shadows)):
            check_names(list(self._by_name), given, option)
            names = [parse_model_ref(ref).name for ref in given]
            if len(set(names)) != len(names):
                raise InvalidInput(f"{option}: one for each model at most")
        found: dict[str, Canary] = {}
        for reference, share in split:
            name = parse_model_ref(reference).name
            found[name] = Canary(self._load(name, reference, reference), share)
        shadowed = {parse_model_ref(ref).name: ref for ref in shadows}
        return Traffic(found, {name: self._load(name, ref, ref) for name, ref in shadowed.items()})

    def __getitem__(self, name: str) -> ServedModel:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def refresh(self) -> list[ServedModel]:
        """Resolve every reference again; load and switch to each version that moved.

        Returns:
            The versions switched to.
        Raises:
            CairnError: a reference resolves to nothing now, or its version cannot be
                loaded (the old version keeps serving).
        """
        switched = []
        for name, current in list(self._by_name.items()):
            version = self._models.registry.resolve(parse_model_ref(current.reference))
            if version.version != current.model.version.version:
                new = self._load(name, current.reference, version.ref)
                new.warm()  # its first answer is not slower than the next
                self._by_name[name] = new  # one step: a request sees the old or the new
                switched.append(new)
        return switched + self._follow_canaries()

    def _follow_canaries(self) -> list[ServedModel]:
        """Start serving the canary each environment served runs now, and stop serving
        one judged or withdrawn; the canaries started."""
        if self._canary_of is None:
            return []
        started = []
        canaries = self.traffic.canaries
        for name, served in list(self._by_name.items()):
            environment = parse_model_ref(served.reference).alias
            if environment is None or (name in canaries and name not in self._followed):
                continue  # no environment, or a canary given with --canary
            found = self._canary_of(name, environment)
            serving = canaries.get(name)
            if found is None:
                if serving is not None:
                    logger.warning("canary %s of %s ended", serving.model.ref, served.reference)
                    canaries.pop(name, None)
                    self._followed.discard(name)
                continue
            version, share = found
            ref = f"{name}/{version}"
            if serving is not None and serving.share == share and serving.model.ref == ref:
                continue
            new = self._load(name, ref, ref)
            new.warm()
            canaries[name] = Canary(new, share)
            self._followed.add(name)
            logger.warning("serving canary %s at %.0f%% of %s's requests", new.ref, share * 100,
                           served.reference)  # fmt: skip
            started.append(new)
        return started

    def _load(self, name: str, reference: str, exact: str) -> ServedModel:
        started = time.perf_counter()
        model = self._models.load(exact)
        return ServedModel(name, reference, model, time.perf_counter() - started)


def load_served(
    models: ModelService,
    references: Sequence[str],
    canaries: Sequence[str] = (),
    shadows: Sequence[str] = (),
    canary_of: CanaryOf | None = None,
) -> ServedModels:
    """Each reference's model, loaded, by its model's name (see :class:`ServedModels`)."""
    return ServedModels(models, references, canaries, shadows, canary_of)
