"""``{card_fields: [intended_use, limitations]}``: the candidate's model card fills these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.core.gates.base import Facts, GateResult, only
from cairn.core.model import CARD_FIELDS
from cairn.errors import InvalidInput

KEY = "card_fields"


def parse(found: Mapping[str, Any], where: str) -> dict[str, Any]:
    only(found, {KEY}, where)
    fields = found[KEY]
    if not isinstance(fields, list) or not fields or any(f not in CARD_FIELDS for f in fields):
        raise InvalidInput(f"{where}.card_fields: expected a list of {', '.join(CARD_FIELDS)}")
    return {"fields": list(fields)}


def describe(spec: Mapping[str, Any]) -> str:
    return f"model card has {', '.join(spec['fields'])}"


def check(spec: Mapping[str, Any], facts: Facts) -> GateResult:
    missing = facts.card.missing(spec["fields"])
    ok = not missing
    return GateResult(describe(spec), ok, "all there" if ok else f"missing {', '.join(missing)}")
