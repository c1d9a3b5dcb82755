"""Release policies: parsing with errors that name the field, and the decision table of
gates and approvals as pure functions of the evidence."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from cairn.core.access import Role
from cairn.core.gates import KINDS, run_gates
from cairn.core.gates import evaluate as evaluate_gate
from cairn.core.gates.base import Evaluation, Provenance
from cairn.core.model import ModelCard
from cairn.core.policy import (
    Approval,
    Evidence,
    counted_approvals,
    parse_policy,
)
from cairn.core.release import (
    ApprovalRecord,
    PromotionRequest,
    RequestState,
    Verdict,
    check_approval,
)
from cairn.errors import InvalidInput, InvalidState, PermissionDenied

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
    provenance=Provenance(pipeline_run=True, git_commit="a" * 40, git_dirty=False),
    champions={"production": "churn/1"},
    card=ModelCard(intended_use="retention", limitations="EU only"),
)


PROVENANCE = "trained by a pipeline run from a clean git tree (committed code)"


def _failed(evidence: Evidence) -> dict[str, str]:
    return {r.gate: r.reason for r in run_gates(POLICY.gates, evidence) if not r.passed}


def _with(**changes: Any) -> Evidence:
    import dataclasses

    return dataclasses.replace(GOOD, **changes)


def test_a_passing_candidate_passes_every_gate() -> None:
    results = run_gates(POLICY.gates, GOOD)
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
        (_with(provenance=Provenance(True, "a" * 40, git_dirty=True)), PROVENANCE,
         "had uncommitted changes"),
        (_with(provenance=Provenance(False, "a" * 40, False)), PROVENANCE,
         "not made by a pipeline run"),
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
    first = _with(champions={}, champion_metrics={}, champion_signatures={})
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
        ({"gates": [{"evaluate": {"data": "h@1", "metrics": {"f1": ">= 0.5"}, "timeout": 0}}]},
         r"gates\[0\].evaluate.timeout: expected a number of seconds, more than 0 and at most"),
        ({"gates": [{"evaluate": {"data": "h@1", "metrics": {"f1": ">= 0.5"},
                                  "timeout": "5m"}}]}, r"evaluate.timeout: expected a number"),
        ({"gates": [{"evaluate": {"data": "h@1", "metrics": {"f1": ">= 0.5"},
                                  "timeout": 86401}}]}, r"evaluate.timeout: .* at most 86400"),
    ],
)  # fmt: skip
def test_a_malformed_policy_names_the_field(document: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_policy(document)


def test_an_evaluation_waits_five_minutes_unless_its_gate_says() -> None:
    gates = parse_policy({"gates": [
        {"evaluate": {"data": "h@1", "metrics": {"f1": ">= 0.5"}}},
        {"evaluate": {"data": "h@1", "target": "y", "metrics": {"f1": ">= 0.5"}, "timeout": 2}},
    ]}).gates  # fmt: skip
    assert [evaluate_gate.evaluation(g.spec) for g in gates] == [
        Evaluation("h@1", "target", ("f1",), 300.0),
        Evaluation("h@1", "y", ("f1",), 2.0),
    ]


WAITING = PromotionRequest(
    "3f9a2c1b00", "churn", 4, "blake3:p1", "production", "fraud", RequestState.WAITING, "ada",
    "retrain", POLICY.digest, (), 1, 2, requesters=("ada", "mia"),
)  # fmt: skip


def _given(by: str, role: Role | None = Role.APPROVER, required: int = 1,
           before: tuple[ApprovalRecord, ...] = ()) -> None:  # fmt: skip
    policy = parse_policy({**POLICY.document, "approvals": {"required": required}})
    approval = Approval(by, role, "blake3:p1", policy.digest)
    request = dataclasses.replace(WAITING, policy_digest=policy.digest, approvals=before)
    check_approval(policy, request, approval)


def test_an_approval_that_counts_is_accepted() -> None:
    _given("bob")
    _given("carl", Role.ADMIN)


@pytest.mark.parametrize("requester", ["ada", "mia"])
def test_a_requester_is_refused_naming_who_may_approve(requester: str) -> None:
    with pytest.raises(PermissionDenied) as refused:
        _given(requester, Role.ADMIN)
    assert refused.value.message.startswith(
        f"{requester} may not approve request 3f9a2c1b (churn/4 → production): approvals must "
        "come from someone other than who requested it (ada, mia); the policy asks for 1 "
        "approval(s) by an approver or an admin of project 'fraud' who did not"
    )


def test_a_role_the_policy_does_not_ask_for_is_refused() -> None:
    with pytest.raises(PermissionDenied, match="by an approver or an admin of project 'fraud'; "
                       "carl is a contributor there"):  # fmt: skip
        _given("carl", Role.CONTRIBUTOR)
    with pytest.raises(PermissionDenied, match="dan has no role there"):
        _given("dan", None)


def test_a_second_approval_by_the_same_person_is_refused() -> None:
    policy = parse_policy({**POLICY.document, "approvals": {"required": 2}})
    bob = ApprovalRecord("bob", Role.APPROVER, Verdict.APPROVE, "", "blake3:p1", policy.digest, 1)
    with pytest.raises(InvalidState, match=r"bob approved request 3f9a2c1b \(churn/4\) already: "
                       "one approval each; it waits for 1 more"):  # fmt: skip
        _given("bob", required=2, before=(bob,))
    stale = dataclasses.replace(bob, package_digest="blake3:p0")  # for the package before
    _given("bob", required=2, before=(stale,))


def test_every_gate_kind_is_a_module_with_the_names_a_gate_needs() -> None:
    for key, kind in KINDS.items():
        assert key == kind.KEY
        assert all(callable(getattr(kind, f)) for f in ("parse", "describe", "check"))


def test_an_evaluation_that_cannot_be_made_fails_its_gate_with_the_reason() -> None:
    cannot = _with(evaluation_errors={"holdout@latest -> target": "holdout@9 does not exist"})
    reason = _failed(cannot)["evaluated on holdout@latest (target target): accuracy >= 0.85"]
    assert reason == "could not evaluate on holdout@latest: holdout@9 does not exist"
