"""``{canary: {share: 0.1, requests: 500, metric: accuracy, max_regression: 0.02}}``: the
candidate is judged on live traffic before it replaces the version an environment runs.

Once its other gates have passed and its approvals are given, the candidate does not enter
the environment at once: it serves ``share`` of the model's requests there beside the
version that runs (``cairn serve churn@production`` follows it), and its answers and the
current version's are logged. When the labels of ``requests`` of the canary's answers (and
as many of the current version's) have come in, ``metric`` is measured on each version's
labelled requests since the canary started, and the canary is promoted — or rolled back,
automatically, if it is more than ``max_regression`` worse. A first release, with no
version in the environment to compare with, enters directly.

At promotion time the gate only says how it will judge (it passes: there is nothing to
judge yet); its result is replaced by the verdict on live traffic (``judge``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.core.gates.base import Facts, GateResult, number, only
from cairn.core.performance import HIGHER_IS_BETTER
from cairn.errors import InvalidInput

KEY = "canary"
_FIELDS = {"share", "requests", "metric", "max_regression"}
_DEFAULTS = {"share": 0.1, "requests": 500, "metric": "accuracy", "max_regression": 0.0}
_MOST_REQUESTS = 10_000_000


@dataclass(frozen=True, slots=True)
class Live:
    """One version's live traffic since the canary started: requests answered and logged,
    how many have a label, and the metric on those (None: none has)."""

    requests: int
    labelled: int
    value: float | None


def parse(found: Mapping[str, Any], where: str) -> dict[str, Any]:
    only(found, {KEY}, where)
    given = found[KEY]
    where = f"{where}.{KEY}"
    if given is True or given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise InvalidInput(f"{where}: expected share, requests, metric and max_regression "
                           "(each optional), such as {share: 0.1, requests: 500}")  # fmt: skip
    only(given, _FIELDS, where)
    spec = {**_DEFAULTS, **given}
    share = number(spec["share"], f"{where}.share")
    if not 0 < share < 1:
        raise InvalidInput(f"{where}.share: expected a share of the requests above 0 and "
                           "below 1 (0.1: one in ten)")  # fmt: skip
    requests = spec["requests"]
    if isinstance(requests, bool) or not isinstance(requests, int):
        raise InvalidInput(f"{where}.requests: expected a whole number of requests")
    if not 1 <= requests <= _MOST_REQUESTS:
        raise InvalidInput(f"{where}.requests: expected 1 to {_MOST_REQUESTS:,}")
    if spec["metric"] not in HIGHER_IS_BETTER:
        raise InvalidInput(f"{where}.metric: expected one of {', '.join(HIGHER_IS_BETTER)}, "
                           f"got {spec['metric']!r:.80}")  # fmt: skip
    if number(spec["max_regression"], f"{where}.max_regression") < 0:
        raise InvalidInput(f"{where}.max_regression: expected 0 or more")
    return {"share": share, "requests": requests, "metric": spec["metric"],
            "max_regression": float(spec["max_regression"])}  # fmt: skip


def describe(spec: Mapping[str, Any]) -> str:
    return (f"canary at {spec['share']:.0%} of requests: {spec['metric']} over "
            f"{spec['requests']} labelled requests no more than {spec['max_regression']:g} "
            "worse than the current version")  # fmt: skip


def check(spec: Mapping[str, Any], facts: Facts) -> GateResult:
    """Before release there is no live traffic to judge: the gate passes, saying how the
    candidate will be judged once it serves."""
    return GateResult(describe(spec), True, "judged on live traffic once it serves as a canary",
                      {"canary": dict(spec)})  # fmt: skip


def started(spec: Mapping[str, Any], at: int, current: int) -> GateResult:
    """The gate's result while the canary serves: since when (ms), beside which version."""
    return GateResult(describe(spec), True,
                      f"serving {spec['share']:.0%} of requests beside version {current}; "
                      f"judged once {spec['requests']} of its requests have labels",
                      {"canary": dict(spec), "started_at": at, "current": current})  # fmt: skip


def running(gates: Sequence[GateResult]) -> GateResult | None:
    """The canary gate's result while its canary serves (``started``), among a request's
    gates."""
    return next((g for g in gates if "started_at" in g.evidence), None)


def serving_share(gates: Sequence[GateResult]) -> float | None:
    """The share of requests a canary serves, from its request's gates."""
    found = running(gates)
    return None if found is None else float(found.evidence["canary"]["share"])


def judge(result: GateResult, canary: Live, current: Live) -> tuple[GateResult, bool]:
    """The verdict on live traffic, from the running gate's result (``started``): the new
    result, and whether it is final. Not final while either version has fewer labelled
    requests than asked (the result says how many so far)."""
    spec = result.evidence["canary"]
    said, key, needed = result.gate, spec["metric"], spec["requests"]
    figures = {**result.evidence, "canary_requests": canary.requests,
               "canary_labelled": canary.labelled, "current_requests": current.requests,
               "current_labelled": current.labelled}  # fmt: skip
    mine, theirs = canary.value, current.value
    if mine is None or theirs is None or min(canary.labelled, current.labelled) < needed:
        so_far = (
            f"{canary.labelled} of {needed} labelled requests of the canary so far "
            f"({canary.requests} answered), {current.labelled} of the current version"
        )
        return GateResult(said, True, so_far, figures), False
    worse = theirs - mine if HIGHER_IS_BETTER[key] else mine - theirs
    ok = math.isfinite(worse) and worse <= spec["max_regression"]
    figures |= {"canary_value": mine, "current_value": theirs, "worse_by": worse}
    compared = (f"{key} {mine:.4g} on {canary.labelled} labelled requests against the "
                f"current version's {theirs:.4g} on {current.labelled}")  # fmt: skip
    if not ok:
        compared += f": worse by {worse:.4g}, more than {spec['max_regression']:g}"
    return GateResult(said, ok, compared, figures), True
