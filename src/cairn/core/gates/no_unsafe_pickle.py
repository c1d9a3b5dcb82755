"""``{no_unsafe_pickle: true}``: the registry's scan found no pickle importing code outside
the allow-list in the candidate's package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.core.gates.base import Facts, GateResult, only
from cairn.errors import InvalidInput

KEY = "no_unsafe_pickle"


def parse(found: Mapping[str, Any], where: str) -> dict[str, Any]:
    only(found, {KEY}, where)
    if found[KEY] is not True:
        raise InvalidInput(f"{where}.no_unsafe_pickle: expected true (or leave the gate out)")
    return {}


def describe(spec: Mapping[str, Any]) -> str:
    return "no pickle imports outside the allow-list"


def check(spec: Mapping[str, Any], facts: Facts) -> GateResult:
    found = facts.unsafe_imports
    ok = not found
    return GateResult(describe(spec), ok, "no findings" if ok else f"imports {', '.join(found)}")
