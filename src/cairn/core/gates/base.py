"""What every gate kind shares: the gate as a policy names it, its result, the facts it
may ask about the candidate, and the checks of a policy's fields."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cairn.core.model import ModelCard
from cairn.errors import InvalidInput

_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")
_LARGEST_WHOLE = 2**53
EVALUATION_TIMEOUT = 300.0  # seconds an evaluation's model may take, unless the gate says
_LONGEST_EVALUATION = 86_400.0  # a day: a longer wait is a mistake, not a policy


@dataclass(frozen=True, slots=True)
class Gate:
    """One check; ``kind`` is its key in the policy, ``spec`` the rest of its fields."""

    kind: str
    spec: Mapping[str, Any]

    def describe(self) -> str:
        from cairn.core.gates import KINDS  # the registry imports this module

        return KINDS[self.kind].describe(self.spec)


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str  # as the policy says it
    passed: bool
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A fresh evaluation an ``evaluate`` gate asks for: the data version to predict on,
    the column to compare predictions with, the metrics, and how long the model may take."""

    data: str
    target: str
    metrics: tuple[str, ...]
    timeout: float = EVALUATION_TIMEOUT

    @property
    def key(self) -> str:
        """What its measurements are kept under: its data and target."""
        return f"{self.data} -> {self.target}"


@dataclass(frozen=True, slots=True)
class Provenance:
    """How the candidate was made: by a pipeline run, at which commit, from a dirty tree."""

    pipeline_run: bool = False
    git_commit: str | None = None
    git_dirty: bool | None = None


class Facts(Protocol):
    """What a gate may ask about the candidate (and the versions it would replace); the
    release service answers from the registry and the tracking store, each fact looked up
    once, never taken from whoever asks (``cairn.releases.evidence``)."""

    @property
    def run_id(self) -> str | None: ...  # the run that made it, if its project's
    @property
    def metrics(self) -> Mapping[str, float]: ...  # of that run
    @property
    def signature(self) -> Mapping[str, Any] | None: ...
    @property
    def unsafe_imports(self) -> tuple[str, ...]: ...  # the scan's findings
    @property
    def card(self) -> ModelCard: ...
    @property
    def provenance(self) -> Provenance: ...

    def champion(self, environment: str) -> str | None:
        """The version in ``environment`` now (its reference), or None."""

    def metrics_in(self, environment: str) -> Mapping[str, float]:
        """The metrics of the run that made the version in ``environment``."""

    def signature_in(self, environment: str) -> Mapping[str, Any] | None:
        """The signature of the version in ``environment``."""

    def evaluate(self, asked: Evaluation) -> tuple[str, Mapping[str, float]]:
        """The data version used and the metrics measured on it.

        Raises:
            CairnError: the evaluation could not be made (the gate fails with its message).
        """


class GateKind(Protocol):
    """A gate kind: one module with these names, listed in ``cairn.core.gates.KINDS``."""

    KEY: str  # the field that names the gate in a policy

    def parse(self, found: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The gate's spec from its mapping in the policy.

        Raises:
            InvalidInput: naming the field (``policy.gates[2].min``) and what was expected.
        """

    def describe(self, spec: Mapping[str, Any]) -> str:
        """The gate in a few words, as results and listings show it."""

    def check(self, spec: Mapping[str, Any], facts: Facts) -> GateResult:
        """Gather what the gate needs from ``facts`` and decide."""


# The checks of a policy's fields


def comparison(condition: Any, where: str) -> tuple[str, float]:
    """``">= 0.85"`` as ``(">=", 0.85)``.

    Raises:
        InvalidInput: not a comparison with a number.
    """
    match = _COMPARISON.match(condition) if isinstance(condition, str) else None
    bound = _float(match.group(2)) if match else None
    if match is None or bound is None:
        raise InvalidInput(
            f"{where}: expected a comparison such as '>= 0.85' (of a finite number), got "
            f"{condition!r:.80}"
        )
    return match.group(1), bound


def _float(text: str) -> float | None:
    """The number ``text`` writes if it is finite: the pattern lets through ``1.2.3``
    (no number) and ``1e400`` (infinity, which no bound means)."""
    try:
        found = float(text)
    except ValueError:
        return None
    return found if math.isfinite(found) else None


def compares(value: float, operator: str, bound: float) -> bool:
    return {">=": value >= bound, "<=": value <= bound, ">": value > bound,
            "<": value < bound, "==": value == bound}[operator]  # fmt: skip


def only(found: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(found) - allowed)
    if extra:
        raise InvalidInput(f"{where}: unexpected field(s) {', '.join(map(str, extra))}")


def name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}: expected a name")
    return value


def timeout(value: Any, where: str) -> float:
    seconds = number(value, where)
    if not 0 < seconds <= _LONGEST_EVALUATION:
        raise InvalidInput(f"{where}: expected a number of seconds, more than 0 and at "
                           f"most {_LONGEST_EVALUATION:g}")  # fmt: skip
    return seconds


def number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: expected a number")
    # A whole number is bounded first: one beyond a float's range cannot become one.
    if isinstance(value, int) and abs(value) > _LARGEST_WHOLE:  # beyond what JSON carries
        raise InvalidInput(f"{where}: expected a number between -2**53 and 2**53")
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: expected a finite number, got {value}")
    return float(value)
