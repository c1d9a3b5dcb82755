"""Releases: environments, promotion requests, approvals and the deployment history.

An environment (``staging``, ``production``) has a policy (``cairn.core.policy``). A model
version enters it through a promotion request: the gates run on evidence, the approvals
the policy asks for are given, and then the environment's alias moves (``churn@production``
names the version it runs) and the deployment history gets an entry. A rollback moves the
alias back to a version the environment ran before, with a history entry of its own.

There is at most one open request per model and environment: promoting another version
while one waits updates it, and the approvals given so far stop counting (they were given
for another package).

Under a policy with a canary gate, an approved request does not deploy at once: it serves
as a canary (``RequestState.CANARY``, a ``canary`` entry in the history) until live traffic
judges it; then it deploys, or is rolled back (``ROLLED_BACK``, a ``rollback`` entry whose
``previous`` is the canary withdrawn). No other version of the model is promoted to that
environment while a canary runs.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cairn.core.access import Role
from cairn.core.gates.base import GateResult
from cairn.core.policy import (
    Approval,
    Approvals,
    Policy,
    Uncounted,
    counted_approvals,
    uncounted,
)
from cairn.errors import CairnError, InvalidInput, InvalidState, PermissionDenied

_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class RequestState(StrEnum):
    BLOCKED = "blocked"  # a gate failed: nothing more happens to it
    WAITING = "waiting"  # the gates passed; approvals are missing
    REJECTED = "rejected"  # an approver said no
    DEPLOYED = "deployed"  # the alias moved
    CANARY = "canary"  # approved; serving a share of requests until its canary gate decides
    ROLLED_BACK = "rolled_back"  # its canary did worse than the version running: withdrawn

    @property
    def open(self) -> bool:
        return self is RequestState.WAITING


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Action(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    CANARY = "canary"  # a version serves a share of requests; the alias has not moved


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    policy: Policy
    policy_text: str  # the YAML as given ("" for the default policy)
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int
    deployed: dict[str, int] = field(default_factory=dict)  # model -> version it runs now


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """An approval or a rejection as given: bound to the package and policy it was for."""

    by: str
    role: Role | None  # in the model's project when it was given (admin: an admin)
    verdict: Verdict
    comment: str
    package_digest: str
    policy_digest: str
    at: int

    def as_approval(self) -> Approval:
        return Approval(self.by, self.role, self.package_digest, self.policy_digest)


@dataclass(frozen=True, slots=True)
class PromotionRequest:
    id: str
    model: str
    version: int
    digest: str  # the package's manifest digest
    environment: str
    project: str  # the model's: whose roles decide
    state: RequestState
    requester: str  # who asked for the version it names now
    reason: str
    policy_digest: str  # the version of the policy the gates ran under
    gates: tuple[GateResult, ...]
    created_at: int
    updated_at: int
    approvals: tuple[ApprovalRecord, ...] = ()
    decided_by: str | None = None
    decision: str = ""  # why it is in its state, in words
    requesters: tuple[str, ...] = ()  # everyone who opened or updated it: none may approve it

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    @property
    def gates_passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One entry of an environment's history: a version entered it."""

    id: int
    environment: str
    model: str
    version: int
    previous: int | None  # the version it replaced
    action: Action
    by: str
    at: int
    reason: str
    project: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class GateCheck:
    """The gates' results for a version and an environment, recorded nowhere (CI's check)."""

    model: str
    version: int
    environment: str
    policy_digest: str
    gates: tuple[GateResult, ...]
    approvals_required: int

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where release events are posted (every environment's when ``environment`` is None),
    signed with a secret the subscriber shares (kept by the store, never shown again)."""

    id: str
    url: str
    environment: str | None
    created_by: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A release event waiting to be posted to one webhook."""

    id: int
    url: str
    secret: str
    event: str
    body: str  # the JSON posted, as signed
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request's gates and approvals decide now."""

    state: RequestState
    decision: str
    counted: tuple[str, ...] = ()  # who counts toward the approvals required
    refused: tuple[str, ...] = ()  # why each other approval does not count


def decide(
    policy: Policy,
    policy_digest: str,
    gates: Sequence[GateResult],
    records: Sequence[ApprovalRecord],
    requesters: Collection[str],
    package_digest: str,
) -> Outcome:
    """The state a request is in: blocked by a failed gate, rejected by an approver,
    deployable once enough approvals count (``policy_digest`` and ``package_digest`` are
    what the approvals must have been given for), else waiting."""
    failed = [g for g in gates if not g.passed]
    if failed:
        said = "; ".join(f"{g.gate}: {g.reason}" for g in failed)
        return Outcome(RequestState.BLOCKED, f"{len(failed)} gate(s) failed: {said}")
    rejected = next((r for r in records if r.verdict is Verdict.REJECT), None)
    if rejected is not None:
        return Outcome(RequestState.REJECTED, f"rejected by {rejected.by}: {rejected.comment}")
    approvals = [r.as_approval() for r in records if r.verdict is Verdict.APPROVE]
    counted, refused = counted_approvals(
        policy.approvals, approvals, requesters, package_digest, policy_digest
    )
    names = tuple(a.by for a in counted)
    needed = policy.approvals.required
    if len(counted) >= needed:
        how = "the gates passed" + (f", approved by {', '.join(names)}" if names else "")
        if policy.canary is not None:  # judged on live traffic first
            return Outcome(RequestState.CANARY, how, names, tuple(refused))
        return Outcome(RequestState.DEPLOYED, how, names, tuple(refused))
    missing = needed - len(counted)
    waiting = f"waiting for {missing} more approval(s) (role: {policy.approvals.role.value})"
    if refused:
        waiting += "; not counted: " + "; ".join(refused)
    return Outcome(RequestState.WAITING, waiting, names, tuple(refused))


def check_approval(policy: Policy, request: PromotionRequest, approval: Approval) -> None:
    """Refuse an approval of the waiting ``request`` that would not count under ``policy``
    (the environment's now), saying who may give one: an approval is refused when it is
    given, not recorded and then silently left out.

    Raises:
        PermissionDenied: its giver asked for the release (and the policy says
            ``not_requester``), or lacks the policy's role.
        InvalidState: its giver's approval counts already, or it is for another package.
    """
    rule = policy.approvals
    given = [r.as_approval() for r in request.approvals if r.verdict is Verdict.APPROVE]
    counted, _ = counted_approvals(rule, given, request.requesters, request.digest, policy.digest)
    counted_by = {a.by for a in counted}
    why = uncounted(rule, approval, request.requesters, request.digest, policy.digest, counted_by)
    if why is not None:
        raise _refusal(why, rule, request, approval, len(counted))


def _refusal(
    why: Uncounted, rule: Approvals, request: PromotionRequest, approval: Approval, counted: int
) -> CairnError:
    """Why an approval is refused, saying who may give one instead."""
    who = (f"{approval.by} may not approve request {request.id[:8]} ({request.ref} → "
           f"{request.environment})")  # fmt: skip
    holders = "an admin" if rule.role is Role.ADMIN else "an approver or an admin"
    asked = (f"the policy asks for {rule.required} approval(s) by {holders} of project "
             f"{request.project!r}")  # fmt: skip
    if why is Uncounted.REQUESTER:
        return PermissionDenied(
            f"{who}: approvals must come from someone other than who requested it "
            f"({', '.join(request.requesters)}); {asked} who did not (a one-person "
            "installation's policy says not_requester: false)"
        )
    if why is Uncounted.ROLE:
        held = f"is {_a(approval.role.value)}" if approval.role else "has no role"
        return PermissionDenied(f"{who}: {asked}; {approval.by} {held} there")
    if why is Uncounted.REPEATED:
        return InvalidState(f"{approval.by} approved request {request.id[:8]} ({request.ref}) "
                            f"already: one approval each; it waits for {rule.required - counted} "
                            "more")  # fmt: skip
    return InvalidState(
        f"{who}: the request changed since (`cairn requests show {request.id[:8]}`)"
    )


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def check_environment_name(name: str) -> str:
    """Raises:
    InvalidInput: not 1 to 63 lowercase letters, digits, ``_`` or ``-``, starting with a
    letter (it becomes an alias: ``churn@production``).
    """
    if not isinstance(name, str) or not _ENVIRONMENT.match(name):
        raise InvalidInput(
            f"environment {name!r}: expected 1 to 63 lowercase letters, digits, '_' or '-', "
            "starting with a letter (it names an alias too: churn@production)"
        )
    if name == "latest":
        raise InvalidInput("environment 'latest': the name is reserved (churn@latest)")
    return name
