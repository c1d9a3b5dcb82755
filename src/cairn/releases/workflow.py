"""The release workflow: opening, approving, rejecting and rolling back, each decided and
recorded in one unit of work of the ledger (``ReleaseLedger.transaction``).

A unit of work locks the model's row before anything else, so racing promotions and
rollbacks of one model queue on that lock and each reads the version it replaces as the
one before it committed it. The permission is checked again on the principal's standing
as the transaction reads it, and the decision (``cairn.core.release.decide``) is made in
the same transaction, on the approvals and the policy as they stand then: a policy
changed since the gates ran raises PolicyChanged, and the caller runs them again under
the new one. A release moves the alias, appends the history entry, queues the webhooks'
deliveries and appends its audit event together, or does none of it.

The ledger reads and writes; what is decided, and which audit events say so, is here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from cairn.core import missing
from cairn.core.access import Permission, Principal, Role, require_on
from cairn.core.actor import current
from cairn.core.clock import now_ms
from cairn.core.gates import canary as canary_gate
from cairn.core.gates.base import GateResult
from cairn.core.ids import new_id
from cairn.core.policy import Approval, Policy
from cairn.core.ports import ReleaseLedger, ReleaseWork
from cairn.core.release import (
    Action,
    ApprovalRecord,
    Deployment,
    Environment,
    Outcome,
    PromotionRequest,
    RequestState,
    Verdict,
    check_approval,
    decide,
)
from cairn.core.release_codec import gate_to_dict
from cairn.errors import CairnError, InvalidState, NotFound, PolicyChanged


def open_request(
    ledger: ReleaseLedger,
    model: str,
    version: int,
    environment: str,
    reason: str,
    gates: Sequence[GateResult],
    policy_digest: str,
) -> PromotionRequest:
    """Record a request for ``model/version`` with the gates' results (run under the
    policy ``policy_digest``), or update the request for that model and environment
    that waits; deploys at once when nothing more is needed.

    Raises:
        InvalidState: the version runs there already.
        PolicyChanged: the environment's policy is not the one the gates ran under.
    """
    with ledger.transaction(model) as work:
        what = f"request a promotion of {model!r}"
        _authorize(work, Permission.MANAGE, work.project, what, missing.model(model))
        env = work.environment(environment)
        _same_policy(env, policy_digest)
        digest = work.version_digest(model, version)
        if env.deployed.get(model) == version:
            raise InvalidState(f"{model}/{version} is what {environment} runs already")
        canary = work.request_in(model, environment, RequestState.CANARY)
        if canary is not None:
            raise InvalidState(
                f"{canary.ref} serves as a canary in {environment} (request {canary.id[:8]}): "
                f"it is judged first, or withdrawn (`cairn rollback {environment} {model}`)"
            )
        waiting = work.request_in(model, environment, RequestState.WAITING)
        at, by = now_ms(), current().actor
        asked = () if waiting is None else waiting.requesters
        request = PromotionRequest(
            id=new_id() if waiting is None else waiting.id, model=model, version=version,
            digest=digest, environment=environment, project=work.project,
            state=RequestState.WAITING, requester=by, reason=reason,
            policy_digest=policy_digest, gates=tuple(gates),
            created_at=at if waiting is None else waiting.created_at, updated_at=at,
            requesters=asked if by in asked else (*asked, by),
        )  # fmt: skip
        work.save_request(request)
        action = "release.request.open" if waiting is None else "release.request.update"
        payload = {"model": model, "version": version, "environment": environment,
                   "reason": reason, "policy_digest": policy_digest,
                   "gates": [gate_to_dict(g) for g in gates]}  # fmt: skip
        work.audit(action, "promotion_request", request.id, payload, digest)
        return _settle(work, request.id, env.policy)


def record_verdict(
    ledger: ReleaseLedger,
    request_id: str,
    verdict: Verdict,
    comment: str,
    package_digest: str,
    regated: tuple[Sequence[GateResult], str] | None = None,
) -> PromotionRequest:
    """Record an approval or a rejection of the request for the package
    ``package_digest`` (the one its giver saw), under the environment's policy as it
    is now; with ``regated``, the gates' results under that policy first (they ran
    under another). Deploys when the approvals now suffice.

    Raises:
        InvalidState: the request is not waiting, or its package changed.
        PolicyChanged: the environment's policy changed since the gates ran.
        PermissionDenied: an approval that would not count (``check_approval``).
    """
    hidden = missing.request(request_id)  # as the caller named it
    model = ledger.get_request(request_id).model  # a request's model never changes
    with ledger.transaction(model) as work:
        request = work.request(request_id)  # as it stands under the lock
        what = f"{verdict.value} promotion requests of {request.model!r}"
        principal = _authorize(work, Permission.APPROVE, request.project, what, hidden)
        if request.state is not RequestState.WAITING:
            raise InvalidState(
                f"request {request.id} is {request.state.value}: only a waiting request "
                f"is approved or rejected ({request.decision})"
            )
        if package_digest != request.digest:
            raise InvalidState(
                f"request {request.id} is for {request.ref} ({request.digest}) now, not the "
                "package you reviewed: look at it again (`cairn requests show`)"
            )
        env = work.environment(request.environment)
        if regated is not None:
            gates, digest = regated
            _same_policy(env, digest)
            request = dataclasses.replace(request, gates=tuple(gates), policy_digest=digest,
                                          updated_at=now_ms())  # fmt: skip
            work.save_request(request)
        else:
            _same_policy(env, request.policy_digest)
        by, role = current().actor, _role(principal, request.project)
        if verdict is Verdict.APPROVE:  # one that would not count is refused, not kept
            check_approval(env.policy, request, Approval(by, role, package_digest,
                                                         env.policy.digest))  # fmt: skip
        given = ApprovalRecord(by, role, verdict, comment, package_digest, env.policy.digest,
                               now_ms())  # fmt: skip
        work.add_approval(request.id, given)
        payload = {"verdict": verdict.value, "comment": comment,
                   "policy_digest": env.policy.digest}  # fmt: skip
        work.audit(f"release.request.{verdict.value}", "promotion_request", request.id,
                   payload, package_digest)  # fmt: skip
        return _settle(work, request.id, env.policy)


def rollback(
    ledger: ReleaseLedger, environment: str, model: str, to_version: int | None, reason: str
) -> Deployment:
    """Run ``to_version`` (one the environment ran) in the environment again, else the
    version the current one replaced when it was promoted.

    Raises:
        NotFound: the environment runs no version of the model.
        InvalidState: there is nothing to roll back to, or the version never ran there.
    """
    with ledger.transaction(model) as work:
        what = f"roll back {model!r}"
        _authorize(work, Permission.MANAGE, work.project, what, missing.model(model))
        now = work.environment(environment).deployed.get(model)
        if now is None:
            raise NotFound(f"{environment} runs no version of {model!r}: nothing to roll back")
        canary = work.request_in(model, environment, RequestState.CANARY)
        if canary is not None:
            if to_version not in (None, now):
                raise InvalidState(f"{canary.ref} serves as a canary in {environment}: roll it "
                                   "back first (without --to)")  # fmt: skip
            withdrawn = dataclasses.replace(
                canary, state=RequestState.ROLLED_BACK, decision=f"rolled back: {reason}",
                decided_by=current().actor, updated_at=now_ms(),
            )  # fmt: skip
            work.save_request(withdrawn)
            return _withdraw(work, withdrawn, now, reason)
        history = [d for d in work.history(environment, model) if d.action is not Action.CANARY]
        if to_version is None:
            came = (d for d in history if d.version == now and d.action is Action.PROMOTE)
            promoted = next(came, None)  # the newest: what the current version replaced
            to_version = promoted.previous if promoted is not None else None
            if to_version is None:
                raise InvalidState(
                    f"{environment} ran no version of {model!r} before {model}/{now} was "
                    "promoted: nothing to roll back to (give --to VERSION)"
                )
        ran = {d.version for d in history}
        if to_version == now:
            raise InvalidState(f"{environment} runs {model}/{now} already")
        if to_version not in ran:
            raise InvalidState(
                f"{model}/{to_version} never ran in {environment}: a rollback returns to a "
                f"version it ran ({', '.join(map(str, sorted(ran)))}); promote it instead"
            )
        return _deploy(work, environment, model, to_version, work.project, Action.ROLLBACK,
                       reason, None)  # fmt: skip


def _settle(work: ReleaseWork, request_id: str, policy: Policy) -> PromotionRequest:
    """Decide the request as it stands, write its state, and deploy it — or start its
    canary — if it is decided so."""
    request = work.request(request_id)
    outcome = decide(policy, policy.digest, request.gates, request.approvals,
                     request.requesters, request.digest)  # fmt: skip
    running = work.running(request.environment, request.model)
    releasing = outcome.state in (RequestState.DEPLOYED, RequestState.CANARY)
    if releasing and running == request.version:
        # Put there meanwhile by a rollback: there is nothing to deploy.
        already = f"{request.ref} runs in {request.environment} already (a rollback)"
        outcome = Outcome(RequestState.BLOCKED, already)
    canary = policy.canary
    if outcome.state is RequestState.CANARY and canary is not None:
        if running is None:  # a first release: nothing to judge it against
            nothing = f"; {request.environment} ran no version to judge a canary against"
            outcome = Outcome(RequestState.DEPLOYED, outcome.decision + nothing)
        else:
            gates = tuple(canary_gate.started(canary.spec, now_ms(), running)
                          if g.gate == canary.describe() else g for g in request.gates)  # fmt: skip
            request = dataclasses.replace(request, gates=gates)
            serving = f"; serving as a canary beside version {running} until live traffic judges it"
            outcome = Outcome(RequestState.CANARY, outcome.decision + serving)
    decided_by = current().actor if outcome.state is not RequestState.WAITING else None
    decided = dataclasses.replace(
        request, state=outcome.state, decision=outcome.decision, decided_by=decided_by
    )
    work.save_request(decided)
    if outcome.state is RequestState.CANARY:
        _record(work, Deployment(0, request.environment, request.model, request.version,
                                 running, Action.CANARY, current().actor, now_ms(),
                                 request.reason, request.project, request.id))  # fmt: skip
    if outcome.state is RequestState.DEPLOYED:
        _deploy(work, request.environment, request.model, request.version, request.project,
                Action.PROMOTE, request.reason, request.id)  # fmt: skip
    return work.request(request_id)


def conclude_canary(ledger: ReleaseLedger, request_id: str, result: GateResult,
                    final: bool) -> PromotionRequest:  # fmt: skip
    """Record the canary gate's ``result`` on the request serving as a canary; when it is
    ``final``, promote the canary (it passed) or withdraw it (it did worse).

    Raises:
        InvalidState: the request no longer serves as a canary (judged, or rolled back,
            meanwhile).
    """
    model = ledger.get_request(request_id).model
    with ledger.transaction(model) as work:
        request = work.request(request_id)
        what = f"judge the canary of {request.model!r}"
        _authorize(work, Permission.MANAGE, request.project, what, missing.request(request_id))
        if request.state is not RequestState.CANARY:
            raise InvalidState(f"request {request.id} is {request.state.value}, not a canary "
                               f"({request.decision})")  # fmt: skip
        gates = tuple(result if g.gate == result.gate else g for g in request.gates)
        judged = dataclasses.replace(request, gates=gates, updated_at=now_ms())
        if not final:
            work.save_request(judged)
            return work.request(request_id)
        running = work.running(request.environment, request.model)
        verdict = f"canary {'passed' if result.passed else 'did worse'}: {result.reason}"
        state = RequestState.DEPLOYED if result.passed else RequestState.ROLLED_BACK
        work.save_request(dataclasses.replace(judged, state=state, decision=verdict,
                                              decided_by=current().actor))  # fmt: skip
        judgement = {"passed": result.passed, "gate": gate_to_dict(result)}
        work.audit("release.canary.judged", "promotion_request", request.id, judgement,
                   request.digest)  # fmt: skip
        if result.passed:
            _deploy(work, request.environment, request.model, request.version, request.project,
                    Action.PROMOTE, f"{request.reason}; {verdict}", request.id)  # fmt: skip
        elif running is not None:
            _withdraw(work, judged, running, verdict)
        return work.request(request_id)


def _deploy(
    work: ReleaseWork,
    environment: str,
    model: str,
    version: int,
    project: str,
    action: Action,
    reason: str,
    request_id: str | None,
) -> Deployment:
    """Move the environment's alias and record it (``_record``)."""
    previous = work.running(environment, model)
    at, by = now_ms(), current().actor
    work.move_alias(model, environment, version, by, at)
    return _record(work, Deployment(0, environment, model, version, previous, action, by, at,
                                    reason, project, request_id))  # fmt: skip


def _withdraw(work: ReleaseWork, canary: PromotionRequest, running: int, reason: str) -> Deployment:
    """Take a canary out of service: the history's ``rollback`` entry says the version
    running serves all requests again, replacing the canary (its ``previous``); the alias
    never moved."""
    return _record(work, Deployment(0, canary.environment, canary.model, running,
                                    canary.version, Action.ROLLBACK, current().actor, now_ms(),
                                    reason, canary.project, canary.id))  # fmt: skip


def _record(work: ReleaseWork, entry: Deployment) -> Deployment:
    """Append the history entry, queue the webhooks' deliveries and append the audit
    event, in the work's transaction."""
    entry = work.append_history(entry)
    event: dict[str, object] = {
        "environment": entry.environment, "model": entry.model, "version": entry.version,
        "previous": entry.previous, "action": entry.action.value, "by": entry.by,
        "at": entry.at, "reason": entry.reason, "project": entry.project,
        "request_id": entry.request_id, "deployment": entry.id,
    }  # fmt: skip
    work.queue_event(entry.environment, f"release.{entry.action.value}", event)
    digest = work.version_digest(entry.model, entry.version)
    work.audit(f"release.{entry.action.value}", "environment", entry.environment, event, digest)
    return entry


def _authorize(
    work: ReleaseWork, permission: Permission, project: str, what: str, hidden: CairnError
) -> Principal | None:
    """The acting principal, as its account stands in the work's transaction, once it may
    do ``what``; None for a trusted caller.

    Raises:
        CairnError: ``hidden``, when the principal may not read in ``project``.
        PermissionDenied: it may read there, but lacks ``permission``.
        Unauthenticated: its account has been disabled or removed meanwhile.
    """
    principal = work.acting()
    if principal is not None:
        require_on(principal, permission, project, what, hidden)
    return principal


def _role(principal: Principal | None, project: str) -> Role | None:
    """The principal's role in ``project`` (an admin's, and a trusted caller's: admin)."""
    if principal is None or principal.is_admin:
        return Role.ADMIN
    return principal.roles.get(project)


def _same_policy(env: Environment, digest: str) -> None:
    if env.policy.digest != digest:
        raise PolicyChanged(
            f"the policy of {env.name} changed while its gates ran (now {env.policy.digest}): "
            "run them again"
        )
