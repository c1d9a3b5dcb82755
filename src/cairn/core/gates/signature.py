"""``{signature_compatible_with: production}``: callers of the version the environment runs
now can call the candidate (the same input columns or tensor shape, of the same kinds)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.core.gates.base import Facts, GateResult, name, only

KEY = "signature_compatible_with"


def parse(found: Mapping[str, Any], where: str) -> dict[str, Any]:
    only(found, {KEY}, where)
    return {"environment": name(found[KEY], f"{where}.{KEY}")}


def describe(spec: Mapping[str, Any]) -> str:
    return f"signature compatible with the version in {spec['environment']}"


def check(spec: Mapping[str, Any], facts: Facts) -> GateResult:
    said, environment = describe(spec), spec["environment"]
    champion = facts.champion(environment)
    if champion is None:
        return GateResult(said, True, f"nothing is in {environment} yet")
    theirs = facts.signature_in(environment)
    ok, reason = signatures_compatible(facts.signature, theirs)
    return GateResult(said, ok, reason, {"against": champion})


def signatures_compatible(
    mine: Mapping[str, Any] | None, theirs: Mapping[str, Any] | None
) -> tuple[bool, str]:
    """Whether callers of ``theirs`` can call ``mine``: the same input columns (or tensor
    shape) with the same kinds of values; ``(ok, why)``."""
    if theirs is None:
        return True, "the version it replaces has no signature"
    if mine is None:
        return False, "it has no signature (log it with an input_example)"
    a, b = mine.get("inputs", {}), theirs.get("inputs", {})
    if a.get("type") != b.get("type"):
        return False, f"its input is {a.get('type')}, the current one takes {b.get('type')}"
    if a.get("type") == "columns":
        current = {c["name"]: c["type"] for c in b["columns"]}
        wanted = {c["name"]: c["type"] for c in a["columns"]}
        missing = sorted(set(wanted) - set(current))
        if missing:
            return False, f"it needs column(s) callers do not send: {', '.join(missing)}"
        changed = sorted(n for n in wanted if wanted[n] != current[n])
        if changed:
            return False, f"column(s) of another type: {', '.join(changed)}"
        return True, "same columns and types"
    if a.get("shape") != b.get("shape") or a.get("dtype") != b.get("dtype"):
        return False, (f"input {a.get('dtype')} {a.get('shape')}, the current one takes "
                       f"{b.get('dtype')} {b.get('shape')}")  # fmt: skip
    return True, "same input shape and dtype"
