"""``{champion: production, metric: val_auc, max_regression: 0.005}``: the candidate's metric
is no more than so much worse than the version the environment runs now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.core.gates.base import Facts, GateResult, name, number, only
from cairn.errors import InvalidInput

KEY = "champion"


def parse(found: Mapping[str, Any], where: str) -> dict[str, Any]:
    only(found, {"champion", "metric", "max_regression"}, where)
    name(found["champion"], f"{where}.champion")
    name(found.get("metric"), f"{where}.metric")
    if number(found.get("max_regression"), f"{where}.max_regression") < 0:
        raise InvalidInput(f"{where}.max_regression: expected 0 or more")
    return dict(found)


def describe(spec: Mapping[str, Any]) -> str:
    return (f"{spec['metric']} no more than {spec['max_regression']} below the "
            f"version in {spec['champion']}")  # fmt: skip


def check(spec: Mapping[str, Any], facts: Facts) -> GateResult:
    said, key, environment = describe(spec), spec["metric"], spec["champion"]
    mine = facts.metrics.get(key)
    if mine is None:
        return GateResult(said, False, f"the run that made it logged no {key}")
    champion = facts.champion(environment)
    if champion is None:
        return GateResult(said, True, f"nothing is in {environment} yet: no champion to beat")
    theirs = facts.metrics_in(environment)
    if key not in theirs:
        return GateResult(said, True, f"the version in {environment} has no {key}")
    drop = theirs[key] - mine
    ok = drop <= spec["max_regression"]
    worse = f": {drop:.6g} worse, more than {spec['max_regression']}"
    reason = f"{key} {mine:.6g} against the champion's {theirs[key]:.6g}" + ("" if ok else worse)
    return GateResult(said, ok, reason, {
        "challenger": mine, "champion": theirs[key], "run": facts.run_id,
        "champion_version": champion, "max_regression": spec["max_regression"],
    })  # fmt: skip
