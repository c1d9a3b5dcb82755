"""Gate kinds: what a release policy can require of a model version.

Each kind is one module with the names of :class:`~cairn.core.gates.base.GateKind`:
``KEY`` (the field that names it in a policy), ``parse`` (its fields, with errors that name
them), ``describe`` and ``check`` (gather what it needs from the candidate's
:class:`~cairn.core.gates.base.Facts`, then decide). The checks are pure: the facts are
looked up by the release service, once each, through the ports.

To add a gate: write its module here and add it to ``KINDS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, cast

from cairn.core.gates import (
    canary,
    card_fields,
    champion,
    evaluate,
    metric,
    no_unsafe_pickle,
    provenance,
    signature,
)
from cairn.core.gates.base import Facts, Gate, GateKind, GateResult
from cairn.errors import InvalidInput

# The policy's field names each kind; a gate is of the first kind whose field it has (a
# champion gate names a metric too, so it comes first).
_MODULES: tuple[ModuleType, ...] = (
    champion, metric, evaluate, signature, provenance, no_unsafe_pickle, card_fields, canary,
)  # fmt: skip
KINDS: dict[str, GateKind] = {m.KEY: cast(GateKind, m) for m in _MODULES}
_LISTED = ("metric", "champion", *(k for k in KINDS if k not in ("metric", "champion")))


def parse_gate(found: Any, where: str) -> Gate:
    """A gate from its mapping in a policy.

    Raises:
        InvalidInput: naming the field and what was expected.
    """
    if not isinstance(found, Mapping) or not found:
        raise InvalidInput(f"{where}: expected a gate such as {{metric: val_auc, min: 0.8}}")
    for key, kind in KINDS.items():
        if key in found:
            return Gate(key, kind.parse(found, where))
    raise InvalidInput(
        f"{where}: unknown gate {', '.join(map(str, found))}; gates are {', '.join(_LISTED)}"
    )


def run_gates(gates: Sequence[Gate], facts: Facts) -> list[GateResult]:
    """Every gate's result, in the policy's order."""
    return [KINDS[gate.kind].check(gate.spec, facts) for gate in gates]
