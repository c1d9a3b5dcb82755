"""Releases as JSON: what the REST API sends and ``--json`` prints, and back."""

from __future__ import annotations

from typing import Any

from cairn.core.access import Role
from cairn.core.gates.base import GateResult
from cairn.core.policy import parse_policy
from cairn.core.release import (
    Action,
    ApprovalRecord,
    Deployment,
    Environment,
    GateCheck,
    PromotionRequest,
    RequestState,
    Verdict,
    Webhook,
)


def environment_to_dict(env: Environment) -> dict[str, Any]:
    return {
        "name": env.name, "policy": dict(env.policy.document), "policy_text": env.policy_text,
        "policy_digest": env.policy.digest, "approvals_required": env.policy.approvals.required,
        "auto_promote": env.policy.auto_promote, "created_by": env.created_by,
        "created_at": env.created_at, "updated_by": env.updated_by,
        "updated_at": env.updated_at, "deployed": dict(env.deployed),
    }  # fmt: skip


def environment_from_dict(data: dict[str, Any]) -> Environment:
    return Environment(
        data["name"], parse_policy(data["policy"]), data["policy_text"], data["created_by"],
        data["created_at"], data["updated_by"], data["updated_at"],
        {str(k): int(v) for k, v in data["deployed"].items()},
    )  # fmt: skip


def request_to_dict(request: PromotionRequest) -> dict[str, Any]:
    return {
        "id": request.id, "model": request.model, "version": request.version,
        "ref": request.ref, "digest": request.digest, "environment": request.environment,
        "project": request.project, "state": request.state.value,
        "requester": request.requester, "reason": request.reason,
        "policy_digest": request.policy_digest,
        "gates": [gate_to_dict(g) for g in request.gates],
        "created_at": request.created_at, "updated_at": request.updated_at,
        "approvals": [_approval_to_dict(a) for a in request.approvals],
        "decided_by": request.decided_by, "decision": request.decision,
        "requesters": list(request.requesters),
    }  # fmt: skip


def request_from_dict(data: dict[str, Any]) -> PromotionRequest:
    return PromotionRequest(
        id=data["id"], model=data["model"], version=data["version"], digest=data["digest"],
        environment=data["environment"], project=data["project"],
        state=RequestState(data["state"]), requester=data["requester"],
        reason=data["reason"], policy_digest=data["policy_digest"],
        gates=tuple(gate_from_dict(g) for g in data["gates"]),
        created_at=data["created_at"], updated_at=data["updated_at"],
        approvals=tuple(_approval_from_dict(a) for a in data["approvals"]),
        decided_by=data["decided_by"], decision=data["decision"],
        requesters=tuple(data["requesters"]),
    )  # fmt: skip


def deployment_to_dict(d: Deployment) -> dict[str, Any]:
    return {"id": d.id, "environment": d.environment, "model": d.model, "version": d.version,
            "previous": d.previous, "action": d.action.value, "by": d.by, "at": d.at,
            "reason": d.reason, "project": d.project, "request_id": d.request_id}  # fmt: skip


def deployment_from_dict(data: dict[str, Any]) -> Deployment:
    return Deployment(data["id"], data["environment"], data["model"], data["version"],
                      data["previous"], Action(data["action"]), data["by"], data["at"],
                      data["reason"], data["project"], data["request_id"])  # fmt: skip


def gate_check_to_dict(check: GateCheck) -> dict[str, Any]:
    return {"model": check.model, "version": check.version, "environment": check.environment,
            "policy_digest": check.policy_digest, "passed": check.passed,
            "gates": [gate_to_dict(g) for g in check.gates],
            "approvals_required": check.approvals_required}  # fmt: skip


def gate_check_from_dict(data: dict[str, Any]) -> GateCheck:
    return GateCheck(data["model"], data["version"], data["environment"],
                     data["policy_digest"], tuple(gate_from_dict(g) for g in data["gates"]),
                     data["approvals_required"])  # fmt: skip


def webhook_to_dict(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.id, "url": hook.url, "environment": hook.environment,
            "created_by": hook.created_by, "created_at": hook.created_at}  # fmt: skip


def webhook_from_dict(data: dict[str, Any]) -> Webhook:
    return Webhook(data["id"], data["url"], data["environment"], data["created_by"],
                   data["created_at"])  # fmt: skip


def _approval_to_dict(a: ApprovalRecord) -> dict[str, Any]:
    return {"by": a.by, "role": a.role.value if a.role else None, "verdict": a.verdict.value,
            "comment": a.comment, "package_digest": a.package_digest,
            "policy_digest": a.policy_digest, "at": a.at}  # fmt: skip


def _approval_from_dict(data: dict[str, Any]) -> ApprovalRecord:
    role = Role(data["role"]) if data["role"] else None
    return ApprovalRecord(data["by"], role, Verdict(data["verdict"]), data["comment"],
                          data["package_digest"], data["policy_digest"], data["at"])  # fmt: skip


def gate_to_dict(result: GateResult) -> dict[str, Any]:
    return {"gate": result.gate, "passed": result.passed, "reason": result.reason,
            "evidence": dict(result.evidence)}  # fmt: skip


def gate_from_dict(data: dict[str, Any]) -> GateResult:
    return GateResult(data["gate"], bool(data["passed"]), data["reason"],
                      dict(data.get("evidence") or {}))  # fmt: skip
