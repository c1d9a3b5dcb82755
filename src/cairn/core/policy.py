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
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from cairn.core.access import Role
from cairn.core.model import CARD_FIELDS, ModelCard
from cairn.errors import InvalidInput

_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")
PROVENANCE_RULES = ("committed_code",)
_APPROVING_ROLES = (Role.APPROVER.value, Role.ADMIN.value)
_LARGEST_WHOLE = 2**53
# What an evaluate gate can measure (``cairn.releases.evaluate`` computes them).
EVALUATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
                      "r2", "mae", "mse", "rmse")  # fmt: skip
EVALUATION_TIMEOUT = 300.0  # seconds an evaluation's model may take, unless the gate says
_LONGEST_EVALUATION = 86_400.0  # a day: a longer wait is a mistake, not a policy


@dataclass(frozen=True, slots=True)
class Gate:
    """One check; ``kind`` is its key in the policy, ``spec`` the rest of its fields."""

    kind: str
    spec: Mapping[str, Any]

    def describe(self) -> str:
        spec = self.spec
        if self.kind == "metric":
            bounds = [f"{op} {spec[k]}" for k, op in (("min", ">="), ("max", "<=")) if k in spec]
            return f"metric {spec['metric']} {' and '.join(bounds)}"
        if self.kind == "champion":
            return (f"{spec['metric']} no more than {spec['max_regression']} below the "
                    f"version in {spec['champion']}")  # fmt: skip
        if self.kind == "evaluate":
            wanted = ", ".join(f"{k} {v}" for k, v in spec["metrics"].items())
            return f"evaluated on {spec['data']} (target {spec['target']}): {wanted}"
        if self.kind == "signature_compatible_with":
            return f"signature compatible with the version in {spec['environment']}"
        if self.kind == "provenance":
            return "trained by a pipeline run from a clean git tree (committed code)"
        if self.kind == "no_unsafe_pickle":
            return "no pickle imports outside the allow-list"
        return f"model card has {', '.join(spec['fields'])}"


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
    parsed = tuple(_gate(g, f"{where}.gates[{i}]") for i, g in enumerate(gates))
    auto = document.get("auto_promote", False)
    if not isinstance(auto, bool):
        raise InvalidInput(f"{where}.auto_promote: expected true or false")
    approvals = _approvals(document.get("approvals"), f"{where}.approvals", auto)
    return Policy(parsed, approvals, auto, dict(document))


def _gate(found: Any, where: str) -> Gate:
    if not isinstance(found, Mapping) or not found:
        raise InvalidInput(f"{where}: expected a gate such as {{metric: val_auc, min: 0.8}}")
    if "metric" in found and "champion" not in found:
        _only(found, {"metric", "min", "max"}, where)
        _name(found["metric"], f"{where}.metric")
        if "min" not in found and "max" not in found:
            raise InvalidInput(f"{where}: a metric gate needs min, max or both")
        for bound in ("min", "max"):
            if bound in found:
                _number(found[bound], f"{where}.{bound}")
        return Gate("metric", dict(found))
    if "champion" in found:
        _only(found, {"champion", "metric", "max_regression"}, where)
        _name(found["champion"], f"{where}.champion")
        _name(found.get("metric"), f"{where}.metric")
        if _number(found.get("max_regression"), f"{where}.max_regression") < 0:
            raise InvalidInput(f"{where}.max_regression: expected 0 or more")
        return Gate("champion", dict(found))
    if "evaluate" in found:
        _only(found, {"evaluate"}, where)
        spec = found["evaluate"]
        if not isinstance(spec, Mapping):
            raise InvalidInput(f"{where}.evaluate: expected data and metrics")
        _only(spec, {"data", "target", "metrics", "timeout"}, f"{where}.evaluate")
        _name(spec.get("data"), f"{where}.evaluate.data")
        target = _name(spec.get("target", "target"), f"{where}.evaluate.target")
        metrics = spec.get("metrics")
        if not isinstance(metrics, Mapping) or not metrics:
            raise InvalidInput(f"{where}.evaluate.metrics: expected {{metric: '>= 0.85'}}")
        for key, condition in metrics.items():
            if key not in EVALUATION_METRICS:
                raise InvalidInput(f"{where}.evaluate.metrics.{key}: expected one of "
                                   f"{', '.join(EVALUATION_METRICS)}")  # fmt: skip
            comparison(condition, f"{where}.evaluate.metrics.{key}")
        timeout = _timeout(spec.get("timeout", EVALUATION_TIMEOUT), f"{where}.evaluate.timeout")
        return Gate("evaluate", {"data": spec["data"], "target": target,
                                 "metrics": dict(metrics), "timeout": timeout})  # fmt: skip
    if "signature_compatible_with" in found:
        _only(found, {"signature_compatible_with"}, where)
        environment = _name(
            found["signature_compatible_with"], f"{where}.signature_compatible_with"
        )
        return Gate("signature_compatible_with", {"environment": environment})
    if "provenance" in found:
        _only(found, {"provenance"}, where)
        if found["provenance"] not in PROVENANCE_RULES:
            raise InvalidInput(f"{where}.provenance: expected {', '.join(PROVENANCE_RULES)}")
        return Gate("provenance", {"rule": found["provenance"]})
    if "no_unsafe_pickle" in found:
        _only(found, {"no_unsafe_pickle"}, where)
        if found["no_unsafe_pickle"] is not True:
            raise InvalidInput(f"{where}.no_unsafe_pickle: expected true (or leave the gate out)")
        return Gate("no_unsafe_pickle", {})
    if "card_fields" in found:
        _only(found, {"card_fields"}, where)
        fields = found["card_fields"]
        if not isinstance(fields, list) or not fields or any(f not in CARD_FIELDS for f in fields):
            raise InvalidInput(f"{where}.card_fields: expected a list of {', '.join(CARD_FIELDS)}")
        return Gate("card_fields", {"fields": list(fields)})
    raise InvalidInput(
        f"{where}: unknown gate {', '.join(map(str, found))}; gates are metric, champion, "
        "evaluate, signature_compatible_with, provenance, no_unsafe_pickle, card_fields"
    )


def _approvals(found: Any, where: str, auto_promote: bool) -> Approvals:
    """Releases are approved unless the policy says ``auto_promote: true``: then no approval
    is asked for, and asking for one is a contradiction named here."""
    if found is None:
        found = {}
    if not isinstance(found, Mapping):
        raise InvalidInput(f"{where}: expected required, role and not_requester")
    _only(found, {"required", "role", "not_requester"}, where)
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


def comparison(condition: Any, where: str) -> tuple[str, float]:
    """``">= 0.85"`` as ``(">=", 0.85)``.

    Raises:
        InvalidInput: not a comparison with a number.
    """
    match = _COMPARISON.match(condition) if isinstance(condition, str) else None
    bound = _float(match.group(2)) if match else None
    if match is None or bound is None:
        raise InvalidInput(
            f"{where}: expected a comparison such as '>= 0.85' (of a finite number), got "
            f"{condition!r:.80}"
        )
    return match.group(1), bound


def _float(text: str) -> float | None:
    """The number ``text`` writes if it is finite: the pattern lets through ``1.2.3``
    (no number) and ``1e400`` (infinity, which no bound means)."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def compares(value: float, operator: str, bound: float) -> bool:
    return {">=": value >= bound, "<=": value <= bound, ">": value > bound,
            "<": value < bound, "==": value == bound}[operator]  # fmt: skip


def _only(found: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(found) - allowed)
    if extra:
        raise InvalidInput(f"{where}: unexpected field(s) {', '.join(map(str, extra))}")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}: expected a name")
    return value


def _timeout(value: Any, where: str) -> float:
    seconds = _number(value, where)
    if not 0 < seconds <= _LONGEST_EVALUATION:
        raise InvalidInput(f"{where}: expected a number of seconds, more than 0 and at "
                           f"most {_LONGEST_EVALUATION:g}")  # fmt: skip
    return seconds


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: expected a number")
    # A whole number is bounded first: one beyond a float's range cannot become one.
    if isinstance(value, int) and abs(value) > _LARGEST_WHOLE:  # beyond what JSON carries
        raise InvalidInput(f"{where}: expected a number between -2**53 and 2**53")
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: expected a finite number, got {value}")
    return float(value)


# Deciding


@dataclass(frozen=True, slots=True)
class Evidence:
    """What is known about the candidate (and the version it would replace) when the
    gates are run."""

    metrics: Mapping[str, float]  # of the run that made the candidate
    champion_metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # env ->
    evaluations: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # see below
    run_id: str | None = None  # the run that made the candidate
    champions: Mapping[str, str] = field(default_factory=dict)  # env -> the version it runs
    # Keyed by evaluation_key(the gate's spec): the data version used, and why not.
    evaluated: Mapping[str, str] = field(default_factory=dict)
    evaluation_errors: Mapping[str, str] = field(default_factory=dict)
    signature: Mapping[str, Any] | None = None
    champion_signatures: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    pipeline_run: bool = False
    git_commit: str | None = None
    git_dirty: bool | None = None
    unsafe_imports: Sequence[str] = ()
    card: ModelCard = field(default_factory=ModelCard)


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str  # as the policy says it
    passed: bool
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def evaluation_key(spec: Mapping[str, Any]) -> str:
    """What an evaluate gate's measurements are kept under: its data and target."""
    return f"{spec['data']} -> {spec['target']}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A fresh evaluation an ``evaluate`` gate asks for: the data version to predict on,
    the column to compare predictions with, the metrics, and how long the model may take."""

    data: str
    target: str
    metrics: tuple[str, ...]
    timeout: float = EVALUATION_TIMEOUT

    @classmethod
    def of(cls, gate: Gate) -> Evaluation:
        spec = gate.spec
        return cls(spec["data"], spec["target"], tuple(spec["metrics"]), spec["timeout"])


def run_gates(policy: Policy, evidence: Evidence) -> list[GateResult]:
    """Every gate's result, in the policy's order."""
    return [_decide(gate, evidence) for gate in policy.gates]


def _decide(gate: Gate, found: Evidence) -> GateResult:  # one branch a kind
    spec, said = gate.spec, gate.describe()
    if gate.kind == "metric":
        key = spec["metric"]
        value = found.metrics.get(key)
        if value is None:
            return GateResult(said, False, f"the run that made it logged no {key}")
        low, high = spec.get("min", -math.inf), spec.get("max", math.inf)
        ok = low <= value <= high
        reason = f"{key} = {value:.6g}" + ("" if ok else f", outside [{low}, {high}]")
        bounds = {"value": value, "min": spec.get("min"), "max": spec.get("max")}
        return GateResult(said, ok, reason, {**bounds, "run": found.run_id})
    if gate.kind == "champion":
        key, environment = spec["metric"], spec["champion"]
        mine = found.metrics.get(key)
        if mine is None:
            return GateResult(said, False, f"the run that made it logged no {key}")
        theirs = found.champion_metrics.get(environment)
        if theirs is None:
            return GateResult(said, True, f"nothing is in {environment} yet: no champion to beat")
        if key not in theirs:
            return GateResult(said, True, f"the version in {environment} has no {key}")
        drop = theirs[key] - mine
        ok = drop <= spec["max_regression"]
        worse = f": {drop:.6g} worse, more than {spec['max_regression']}"
        reason = f"{key} {mine:.6g} against the champion's {theirs[key]:.6g}" + (
            "" if ok else worse
        )
        return GateResult(said, ok, reason, {
            "challenger": mine, "champion": theirs[key], "run": found.run_id,
            "champion_version": found.champions.get(environment),
            "max_regression": spec["max_regression"],
        })  # fmt: skip
    if gate.kind == "evaluate":
        key = evaluation_key(spec)
        if key in found.evaluation_errors:
            return GateResult(said, False, found.evaluation_errors[key], {"data": spec["data"]})
        measured = found.evaluations.get(key, {})
        failed = []
        for metric, condition in spec["metrics"].items():
            operator, bound = comparison(condition, metric)
            value = measured.get(metric)
            if value is None or not compares(value, operator, bound):
                failed.append(
                    f"{metric} {'missing' if value is None else f'{value:.6g}'} (want {condition})"
                )
        ok = not failed
        reason = "all met" if ok else "; ".join(failed)
        used = found.evaluated.get(key, spec["data"])
        return GateResult(said, ok, reason, {"data": used, "measured": dict(measured),
                                             "wanted": dict(spec["metrics"])})  # fmt: skip
    if gate.kind == "signature_compatible_with":
        environment = spec["environment"]
        if environment not in found.champion_signatures:
            return GateResult(said, True, f"nothing is in {environment} yet")
        theirs = found.champion_signatures[environment]
        ok, reason = signatures_compatible(found.signature, theirs)
        return GateResult(said, ok, reason, {"against": found.champions.get(environment)})
    if gate.kind == "provenance":
        if not found.pipeline_run:
            return GateResult(said, False, "it was not made by a pipeline run")
        if not found.git_commit:
            return GateResult(said, False, "its pipeline run recorded no git commit")
        if found.git_dirty is not False:
            return GateResult(said, False, f"the git tree at {found.git_commit[:12]} had "
                                           "uncommitted changes")  # fmt: skip
        return GateResult(said, True, f"commit {found.git_commit[:12]}, clean tree",
                          {"git_commit": found.git_commit})  # fmt: skip
    if gate.kind == "no_unsafe_pickle":
        ok = not found.unsafe_imports
        reason = "no findings" if ok else f"imports {', '.join(found.unsafe_imports)}"
        return GateResult(said, ok, reason)
    missing = found.card.missing(spec["fields"])
    ok = not missing
    return GateResult(said, ok, "all there" if ok else f"missing {', '.join(missing)}")


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
