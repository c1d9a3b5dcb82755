"""``{provenance: committed_code}``: the candidate was trained by a pipeline run from a
clean git tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.core.gates.base import Facts, GateResult, only
from cairn.errors import InvalidInput

KEY = "provenance"
RULES = ("committed_code",)


def parse(found: Mapping[str, Any], where: str) -> dict[str, Any]:
    only(found, {KEY}, where)
    if found[KEY] not in RULES:
        raise InvalidInput(f"{where}.provenance: expected {', '.join(RULES)}")
    return {"rule": found[KEY]}


def describe(spec: Mapping[str, Any]) -> str:
    return "trained by a pipeline run from a clean git tree (committed code)"


def check(spec: Mapping[str, Any], facts: Facts) -> GateResult:
    said, made = describe(spec), facts.provenance
    if not made.pipeline_run:
        return GateResult(said, False, "it was not made by a pipeline run")
    if not made.git_commit:
        return GateResult(said, False, "its pipeline run recorded no git commit")
    if made.git_dirty is not False:
        return GateResult(said, False, f"the git tree at {made.git_commit[:12]} had "
                                       "uncommitted changes")  # fmt: skip
    return GateResult(said, True, f"commit {made.git_commit[:12]}, clean tree",
                      {"git_commit": made.git_commit})  # fmt: skip
