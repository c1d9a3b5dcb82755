"""Release policies: parsing with errors that name the field, and the decision table of
gates and approvals as pure functions of the evidence."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from cairn.core.access import Role
from cairn.core.model import ModelCard
from cairn.core.policy import (
    Approval,
    Evidence,
    counted_approvals,
    parse_policy,
    run_gates,
)
from cairn.errors import InvalidInput

POLICY = parse_policy(
    yaml.safe_load("""
gates:
  - metric: val_auc
    min: 0.80
  - champion: production
    metric: val_auc
    max_regression: 0.005
  - evaluate:
      data: holdout@latest
      metrics: {accuracy: ">= 0.85"}
  - signature_compatible_with: production
  - provenance: committed_code
  - no_unsafe_pickle: true
  - card_fields: [intended_use, limitations]
approvals:
  required: 1
  role: approver
  not_requester: true
""")
)
SIGNATURE = {"inputs": {"type": "tensor", "dtype": "float64", "shape": [-1, 30]}}
GOOD = Evidence(
    metrics={"val_auc": 0.91},
    champion_metrics={"production": {"val_auc": 0.912}},
    evaluations={"holdout@latest -> target": {"accuracy": 0.9}},
    signature=SIGNATURE,
    champion_signatures={"production": SIGNATURE},
    pipeline_run=True,
    git_commit="a" * 40,
    git_dirty=False,
    card=ModelCard(intended_use="retention", limitations="EU only"),
)


def _failed(evidence: Evidence) -> dict[str, str]:
    return {r.gate: r.reason for r in run_gates(POLICY, evidence) if not r.passed}


def _with(**changes: Any) -> Evidence:
    import dataclasses

    return dataclasses.replace(GOOD, **changes)


def test_a_passing_candidate_passes_every_gate() -> None:
    results = run_gates(POLICY, GOOD)
    assert [r.passed for r in results] == [True] * 7
    assert results[1].evidence["challenger"] == 0.91
    assert results[1].evidence["champion"] == 0.912


@pytest.mark.parametrize(
    ("evidence", "gate", "reason"),
    [
        (_with(metrics={"val_auc": 0.7}, champion_metrics={"production": {"val_auc": 0.7}}),
         "metric val_auc >= 0.8", "outside [0.8, inf]"),
        (_with(metrics={"val_auc": 0.85}, evaluations=GOOD.evaluations),
         "val_auc no more than 0.005 below the version in production",
         "0.062 worse, more than 0.005"),
        (_with(evaluations={"holdout@latest -> target": {"accuracy": 0.8}}),
         "evaluated on holdout@latest (target target): accuracy >= 0.85",
         "accuracy 0.8 (want >= 0.85)"),
        (_with(signature={"inputs": {"type": "tensor", "dtype": "float64", "shape": [-1, 29]}}),
         "signature compatible with the version in production", "[-1, 29]"),
        (_with(git_dirty=True), "trained by a pipeline run from a clean git tree "
         "(committed code)", "had uncommitted changes"),
        (_with(pipeline_run=False), "trained by a pipeline run from a clean git tree "
         "(committed code)", "not made by a pipeline run"),
        (_with(unsafe_imports=("posix.system",)), "no pickle imports outside the allow-list",
         "imports posix.system"),
        (_with(card=ModelCard(intended_use="retention")),
         "model card has intended_use, limitations", "missing limitations"),
    ],
)  # fmt: skip
def test_each_failing_gate_says_which_and_why(evidence: Evidence, gate: str, reason: str) -> None:
    failed = _failed(evidence)
    assert list(failed) == [gate]
    assert reason in failed[gate]


def test_with_nothing_in_production_there_is_no_champion_to_beat() -> None:
    first = _with(champion_metrics={}, champion_signatures={})
    assert _failed(first) == {}


APPROVED = Approval("bob", Role.APPROVER, "blake3:p1", POLICY.digest)


@pytest.mark.parametrize(
    ("given", "counted", "refusal"),
    [
        ([APPROVED], 1, None),
        ([], 0, None),
        ([Approval("ada", Role.APPROVER, "blake3:p1", POLICY.digest)], 0,
         "ada requested the promotion and cannot approve it"),
        ([Approval("carl", Role.CONTRIBUTOR, "blake3:p1", POLICY.digest)], 0,
         "carl has contributor, the policy needs approver"),
        ([Approval("bob", Role.APPROVER, "blake3:p0", POLICY.digest)], 0,
         "bob approved another package (it changed since)"),
        ([Approval("bob", Role.APPROVER, "blake3:p1", "sha256:old")], 0,
         "bob approved under another version of the policy"),
        ([APPROVED, APPROVED], 1, "bob approved already: one approval each"),
    ],
)  # fmt: skip
def test_which_approvals_count(given: list[Approval], counted: int, refusal: str | None) -> None:
    found, refused = counted_approvals(POLICY.approvals, given, {"ada"}, "blake3:p1", POLICY.digest)
    assert len(found) == counted
    assert refused == ([refusal] if refusal else [])


def test_a_changed_policy_has_another_digest() -> None:
    changed = parse_policy({**POLICY.document, "approvals": {"required": 2}})
    assert changed.digest != POLICY.digest
    assert parse_policy(dict(POLICY.document)).digest == POLICY.digest


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"gates": [{"metric": "auc"}]}, r"policy.gates\[0\]: a metric gate needs min, max"),
        ({"gates": [{"metric": "auc", "min": "high"}]}, r"gates\[0\].min: expected a number"),
        ({"gates": [{"champion": "production", "metric": "auc", "max_regression": -1}]},
         r"max_regression: expected 0 or more"),
        ({"gates": [{"evaluate": {"data": "h@1", "metrics": {"accuracy": "about 0.9"}}}]},
         r"metrics.accuracy: expected a comparison such as '>= 0.85'"),
        ({"gates": [{"provenance": "vibes"}]}, r"provenance: expected committed_code"),
        ({"gates": [{"card_fields": ["owner"]}]}, r"card_fields: expected a list of"),
        ({"gates": [{"speed": 1}]}, r"unknown gate speed"),
        ({"approvals": {"role": "boss"}}, r"approvals.role: expected approver or admin"),
        ({"approvals": {"role": "maintainer"}}, r"approvals.role: expected approver or admin"),
        ({"approvals": {"required": -1}}, r"approvals.required: expected a whole number"),
        ({"gates": [{"metric": "auc", "min": 10**23}]}, r"min: expected a number between"),
        ({"owners": []}, r"policy: unknown field\(s\) owners"),
        ({"gates": [{"evaluate": {"data": "h@1", "metrics": {"speed": ">= 1"}}}]},
         r"metrics.speed: expected one of accuracy, precision"),
        ({"approvals": {"required": 0}}, r"a release without approval must be said so with "
         "auto_promote: true"),
        ({"auto_promote": True, "approvals": {"required": 1}},
         r"auto_promote: true promotes with no approval"),
    ],
)  # fmt: skip
def test_a_malformed_policy_names_the_field(document: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_policy(document)
