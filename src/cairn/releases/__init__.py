"""Release governance from Python: environments, promotions, approvals and rollbacks.

    import cairn

    cairn.releases.create_environment("production", policy=open("policies/production.yaml").read())
    request = cairn.releases.promote("churn/3", to="production", reason="Q4 retrain")
    request.state, [(g.gate, g.passed, g.reason) for g in request.gates]
    cairn.releases.approve(request.id, comment="looks good")      # as an approver
    cairn.releases.rollback("production", model="churn", reason="latency regression")
    cairn.releases.deployed("production", at="2026-10-01T12:00")  # what ran then

The same calls work against a server (``CAIRN_URI``), which gathers the evidence and
decides; see ``docs/governance.md``.

The modules of this package are release governance itself: the release service
(``service``), the workflow that decides and records each request, approval, rejection and
rollback in one unit of work of the ledger (``workflow``), the evidence a policy's gates
decide on, fresh evaluations in a confined worker, and webhook deliveries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cairn.core.clock import parse_time
from cairn.core.release import (
    Deployment,
    Environment,
    GateCheck,
    PromotionRequest,
    RequestState,
    Webhook,
)
from cairn.errors import InvalidInput

if TYPE_CHECKING:
    from cairn.core.ports import Releases

__all__ = [
    "Deployment",
    "Environment",
    "GateCheck",
    "PromotionRequest",
    "RequestState",
    "Webhook",
    "approve",
    "check",
    "create_environment",
    "deployed",
    "environment",
    "environments",
    "history",
    "promote",
    "reject",
    "request",
    "requests",
    "rollback",
    "set_policy",
]


def _service() -> Releases:
    from cairn.sdk import session  # this namespace fronts the SDK's session

    return session().releases


def create_environment(name: str, policy: str | None = None) -> Environment:
    """An environment (``staging``), with its policy as YAML text (default: no gates, one
    approval by an approver). Installation admins only.

    Raises:
        InvalidInput: a bad name, or a malformed policy (naming the field).
    """
    return _service().create_environment(name, policy)


def set_policy(name: str, policy: str) -> Environment:
    """Replace the environment's policy (YAML text); approvals given under the old one
    stop counting. Installation admins only."""
    return _service().set_policy(name, policy)


def environment(name: str) -> Environment:
    """The environment, its policy, and the version of each model it runs now."""
    return _service().get_environment(name)


def environments() -> list[Environment]:
    return _service().list_environments()


def check(ref: str, env: str) -> GateCheck:
    """Run the environment's gates on a version (``churn/3``), recording nothing."""
    return _service().check(ref, env)


def promote(ref: str, to: str, reason: str) -> PromotionRequest:
    """Request that ``to`` run ``ref``: the gates run and are recorded; the request waits
    for approvals, or deploys at once when the policy needs none."""
    return _service().promote(ref, to, reason)


def approve(request_id: str, comment: str = "", version: int | None = None) -> PromotionRequest:
    """Approve a waiting request; with ``version`` (the one you reviewed), refused if the
    request names another version by then."""
    return _service().approve(request_id, comment, version)


def reject(request_id: str, reason: str, version: int | None = None) -> PromotionRequest:
    return _service().reject(request_id, reason, version)


def request(request_id: str) -> PromotionRequest:
    return _service().get_request(request_id)


def requests(
    env: str | None = None, model: str | None = None, state: str | None = None
) -> list[PromotionRequest]:
    """Newest first; ``state``: blocked, waiting, rejected or deployed."""
    try:
        wanted = RequestState(state) if state else None
    except ValueError:
        raise InvalidInput(
            f"state: expected one of {', '.join(s.value for s in RequestState)}"
        ) from None
    return _service().list_requests(env, model, wanted)


def rollback(env: str, model: str, reason: str, to: int | None = None) -> Deployment:
    """Run the version the current one replaced again (or version ``to``, one the
    environment ran before)."""
    return _service().rollback(env, model, reason, to)


def history(env: str, model: str | None = None) -> list[Deployment]:
    """Every change to what the environment runs, newest first."""
    return _service().history(env, model)


def deployed(env: str, at: str | None = None) -> dict[str, int]:
    """The version of each model the environment runs — or ran at ``at``
    (``2026-10-01T12:00``, UTC unless it says otherwise)."""
    if at is None:
        return dict(environment(env).deployed)
    return {d.model: d.version for d in _service().deployed_at(env, parse_time(at, "at"))}
