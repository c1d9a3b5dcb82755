"""Release policies: the gates a model version must pass to enter an environment, and the
approvals it needs — parsed from YAML, and decided as pure functions of the evidence.

```yaml
gates:
  - metric: val_auc                 # from the model version's run
    min: 0.80
  - champion: production            # challenger vs the version now in production
    metric: val_auc
    max_regression: 0.005
  - evaluate:                       # a fresh evaluation on a held-out data version
      data: holdout@latest
      target: label                 # the column to predict (default: target)
      metrics: {accuracy: ">= 0.85"}
      timeout: 300                  # seconds the model may take (default 300)
  - signature_compatible_with: production
  - provenance: committed_code      # trained by a pipeline run from a clean git tree
  - no_unsafe_pickle: true
  - card_fields: [intended_use, limitations]
  - canary:                         # then judged on live traffic (cairn.core.gates.canary)
      share: 0.1
      requests: 500
      metric: accuracy
      max_regression: 0.02
approvals:
  required: 1
  role: approver
  not_requester: true
```

A release needs at least one approval unless the policy says ``auto_promote: true`` (and
then none: the version enters as soon as its gates pass).

A policy is named by the digest of its canonical form: an approval is bound to the policy
digest and the package digest it was given for, and stops counting when either changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from cairn.core.access import Role
from cairn.core.gates import parse_gate
from cairn.core.gates.base import Evaluation, Gate, Provenance, only
from cairn.core.model import ModelCard
from cairn.errors import InvalidInput, InvalidState

_APPROVING_ROLES = (Role.APPROVER.value, Role.ADMIN.value)


@dataclass(frozen=True, slots=True)
class Approvals:
    required: int = 1
    role: Role = Role.APPROVER
    not_requester: bool = True


@dataclass(frozen=True, slots=True)
class Policy:
    gates: tuple[Gate, ...] = ()
    approvals: Approvals = field(default_factory=Approvals)
    auto_promote: bool = False  # promote as soon as the gates pass, with no approval
    document: Mapping[str, Any] = field(default_factory=dict)  # as given, for the record

    @property
    def canary(self) -> Gate | None:
        """The canary gate, if the policy has one: a release is then judged on live
        traffic before it replaces the version running."""
        return next((g for g in self.gates if g.kind == "canary"), None)

    @property
    def digest(self) -> str:
        """The policy's version: a digest of its canonical JSON (sha256, short)."""
        canonical = orjson.dumps(self.document, option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(canonical).hexdigest()[:16]


def parse_policy(document: Any, where: str = "policy") -> Policy:
    """A policy from its YAML document (already loaded).

    Raises:
        InvalidInput: naming the field (``policy.gates[2].min``) and what was expected.
    """
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise InvalidInput(f"{where}: expected a mapping with gates and approvals")
    unknown = sorted(set(document) - {"gates", "approvals", "auto_promote"})
    if unknown:
        raise InvalidInput(f"{where}: unknown field(s) {', '.join(map(str, unknown))}; "
                           "a policy has gates, approvals and auto_promote")  # fmt: skip
    gates = document.get("gates") or []
    if not isinstance(gates, list):
        raise InvalidInput(f"{where}.gates: expected a list of gates")
    parsed = tuple(parse_gate(g, f"{where}.gates[{i}]") for i, g in enumerate(gates))
    if sum(g.kind == "canary" for g in parsed) > 1:
        raise InvalidInput(f"{where}.gates: one canary gate at most (a release serves as one "
                           "canary)")  # fmt: skip
    auto = document.get("auto_promote", False)
    if not isinstance(auto, bool):
        raise InvalidInput(f"{where}.auto_promote: expected true or false")
    approvals = _approvals(document.get("approvals"), f"{where}.approvals", auto)
    return Policy(parsed, approvals, auto, dict(document))


def _approvals(found: Any, where: str, auto_promote: bool) -> Approvals:
    """Releases are approved unless the policy says ``auto_promote: true``: then no approval
    is asked for, and asking for one is a contradiction named here."""
    if found is None:
        found = {}
    if not isinstance(found, Mapping):
        raise InvalidInput(f"{where}: expected required, role and not_requester")
    only(found, {"required", "role", "not_requester"}, where)
    required = found.get("required", 0 if auto_promote else 1)
    if not isinstance(required, int) or isinstance(required, bool) or not 0 <= required <= 100:
        raise InvalidInput(f"{where}.required: expected a whole number from 0 to 100")
    if auto_promote and required:
        raise InvalidInput(
            f"{where}.required: auto_promote: true promotes with no approval; set required: 0 "
            "or drop auto_promote"
        )
    if not auto_promote and not required:
        raise InvalidInput(
            f"{where}.required: expected 1 or more; a release without approval must be said "
            "so with auto_promote: true"
        )
    role = found.get("role", Role.APPROVER.value)
    if role not in _APPROVING_ROLES:
        # Only these roles carry the approve permission: another could never approve.
        raise InvalidInput(f"{where}.role: expected {' or '.join(_APPROVING_ROLES)}")
    role = Role(role)
    not_requester = found.get("not_requester", True)
    if not isinstance(not_requester, bool):
        raise InvalidInput(f"{where}.not_requester: expected true or false")
    return Approvals(required, role, not_requester)


# Deciding


@dataclass(frozen=True, slots=True)
class Evidence:
    """Facts about a candidate known in advance (the gates' ``Facts``): what a decision is
    replayed or tested on. The release service looks facts up as the gates ask."""

    metrics: Mapping[str, float] = field(default_factory=dict)  # of the run that made it
    run_id: str | None = None  # that run
    signature: Mapping[str, Any] | None = None
    unsafe_imports: tuple[str, ...] = ()
    card: ModelCard = field(default_factory=ModelCard)
    provenance: Provenance = field(default_factory=Provenance)
    champions: Mapping[str, str] = field(default_factory=dict)  # env -> the version it runs
    champion_metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # env ->
    champion_signatures: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    # Keyed by Evaluation.key: what was measured, the data version used, or why not.
    evaluations: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    evaluated: Mapping[str, str] = field(default_factory=dict)
    evaluation_errors: Mapping[str, str] = field(default_factory=dict)

    def champion(self, environment: str) -> str | None:
        return self.champions.get(environment)

    def metrics_in(self, environment: str) -> Mapping[str, float]:
        return self.champion_metrics.get(environment, {})

    def signature_in(self, environment: str) -> Mapping[str, Any] | None:
        return self.champion_signatures.get(environment)

    def evaluate(self, asked: Evaluation) -> tuple[str, Mapping[str, float]]:
        if asked.key in self.evaluation_errors:
            raise InvalidState(self.evaluation_errors[asked.key])
        return self.evaluated.get(asked.key, asked.data), self.evaluations.get(asked.key, {})


@dataclass(frozen=True, slots=True)
class Approval:
    """An approval as given: by whom, with which role in the project then, and for which
    package and policy version."""

    by: str
    role: Role | None
    package_digest: str
    policy_digest: str


class Uncounted(StrEnum):
    """Why an approval does not count toward the approvals a policy requires."""

    REQUESTER = "requester"  # its giver asked for the release (under not_requester)
    ROLE = "role"  # its giver lacks the policy's role
    PACKAGE = "package"  # it was given for a package the request no longer names
    POLICY = "policy"  # it was given under another version of the policy
    REPEATED = "repeated"  # its giver's approval counts already


def uncounted(
    approvals: Approvals,
    approval: Approval,
    requesters: Collection[str],
    package_digest: str,
    policy_digest: str,
    counted: Collection[str] = (),
) -> Uncounted | None:
    """Why ``approval`` does not count, or None when it does (``counted``: whose
    approvals count already)."""
    if approvals.not_requester and approval.by in requesters:
        return Uncounted.REQUESTER
    if approval.role not in (approvals.role, Role.ADMIN):
        return Uncounted.ROLE
    if approval.package_digest != package_digest:
        return Uncounted.PACKAGE
    if approval.policy_digest != policy_digest:
        return Uncounted.POLICY
    if approval.by in counted:
        return Uncounted.REPEATED
    return None


def counted_approvals(
    approvals: Approvals,
    given: Sequence[Approval],
    requesters: Collection[str],
    package_digest: str,
    policy_digest: str,
) -> tuple[list[Approval], list[str]]:
    """The approvals that count toward ``approvals.required``, and why each other one does
    not: given by someone who requested it (when the policy forbids it), by someone without the
    required role, for another package, or under another version of the policy."""
    counted: list[Approval] = []
    refused: list[str] = []
    for approval in given:
        why = uncounted(approvals, approval, requesters, package_digest, policy_digest,
                        {a.by for a in counted})  # fmt: skip
        if why is None:
            counted.append(approval)
        else:
            refused.append(_not_counted(why, approval, approvals))
    return counted, refused


def _not_counted(why: Uncounted, approval: Approval, approvals: Approvals) -> str:
    by = approval.by
    if why is Uncounted.ROLE:
        held = approval.role.value if approval.role else "no role"
        return f"{by} has {held}, the policy needs {approvals.role.value}"
    return {
        Uncounted.REQUESTER: f"{by} requested the promotion and cannot approve it",
        Uncounted.PACKAGE: f"{by} approved another package (it changed since)",
        Uncounted.POLICY: f"{by} approved under another version of the policy",
        Uncounted.REPEATED: f"{by} approved already: one approval each",
    }[why]
