"""``{metric: val_auc, min: 0.80}``: a metric of the run that made the candidate lies within
bounds (``min``, ``max`` or both)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cairn.core.gates.base import Facts, GateResult, name, number, only
from cairn.errors import InvalidInput

KEY = "metric"


def parse(found: Mapping[str, Any], where: str) -> dict[str, Any]:
    only(found, {"metric", "min", "max"}, where)
    name(found["metric"], f"{where}.metric")
    if "min" not in found and "max" not in found:
        raise InvalidInput(f"{where}: a metric gate needs min, max or both")
    for bound in ("min", "max"):
        if bound in found:
            number(found[bound], f"{where}.{bound}")
    return dict(found)


def describe(spec: Mapping[str, Any]) -> str:
    bounds = [f"{op} {spec[k]}" for k, op in (("min", ">="), ("max", "<=")) if k in spec]
    return f"metric {spec['metric']} {' and '.join(bounds)}"


def check(spec: Mapping[str, Any], facts: Facts) -> GateResult:
    said, key = describe(spec), spec["metric"]
    value = facts.metrics.get(key)
    if value is None:
        return GateResult(said, False, f"the run that made it logged no {key}")
    low, high = spec.get("min", -math.inf), spec.get("max", math.inf)
    ok = low <= value <= high
    reason = f"{key} = {value:.6g}" + ("" if ok else f", outside [{low}, {high}]")
    bounds = {"value": value, "min": spec.get("min"), "max": spec.get("max")}
    return GateResult(said, ok, reason, {**bounds, "run": facts.run_id})
