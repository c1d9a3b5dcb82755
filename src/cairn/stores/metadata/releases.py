"""Releases in the metadata store: environments, promotion requests, approvals, the
deployment history, and the webhook outbox.

Every change to what an environment runs is one transaction that locks the model's row
first: the alias (``churn@production``), the history entry, the audit event and the
webhook deliveries are written together, and racing promotions and rollbacks of one model
queue on that lock, so each reads the version it replaces as the one before committed it.
The decision itself (``cairn.core.release.decide``) is made inside the same transaction,
on the approvals and the policy as they stand then.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update

from cairn.core import missing
from cairn.core.access import Permission, Role
from cairn.core.actor import current
from cairn.core.clock import now_ms
from cairn.core.gates.base import GateResult
from cairn.core.ids import new_id
from cairn.core.policy import Approval, Policy, parse_policy
from cairn.core.release import (
    Action,
    ApprovalRecord,
    Delivery,
    Deployment,
    Environment,
    Outcome,
    PromotionRequest,
    RequestState,
    Verdict,
    Webhook,
    check_approval,
    check_environment_name,
    decide,
)
from cairn.core.release_codec import gate_from_dict, gate_to_dict
from cairn.errors import (
    AlreadyExists,
    AmbiguousReference,
    InvalidInput,
    InvalidState,
    NotFound,
    PolicyChanged,
)
from cairn.stores.metadata import audit
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import (
    ALIAS_NAMES,
    dialect_insert,
    read_connection,
    serialize,
    write_transaction,
)
from cairn.stores.metadata.grants import acting, authorize, authorize_admin

_SHOWN = 10
_REQUEST_ID = re.compile(r"^[0-9a-f]{8,32}$")


class SqlReleaseLedger:
    """The :class:`~cairn.core.ports.ReleaseLedger` over a metadata database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # environments

    def create_environment(self, name: str, policy_text: str, policy: Policy) -> Environment:
        check_environment_name(name)
        e, a = t.environments.c, t.model_aliases.c
        with write_transaction(self.engine) as conn:
            authorize_admin(conn, f"create the environment {name!r}")
            serialize(conn, ALIAS_NAMES)  # with alias changes: see SqlModelRegistry.set_alias
            if conn.execute(select(e.name).where(e.name == name)).first() is not None:
                raise AlreadyExists(f"environment {name!r} exists (`cairn envs show {name}`)")
            taken = conn.execute(select(a.model).where(a.alias == name).limit(_SHOWN)).scalars()
            holders = ", ".join(taken.all())
            if holders:
                raise InvalidInput(
                    f"environment {name!r}: models use {name!r} as an alias already "
                    f"({holders}); an environment's name is the alias of what it runs: "
                    "delete those aliases or choose another name"
                )
            at, by = now_ms(), current().actor
            conn.execute(
                insert(t.environments).values(
                    name=name, policy_text=policy_text, policy_json=_json(policy.document),
                    policy_digest=policy.digest, created_by=by, created_at=at,
                    updated_by=by, updated_at=at,
                )
            )  # fmt: skip
            payload = {"policy": dict(policy.document), "policy_digest": policy.digest}
            audit.record(conn, "environment.create", "environment", name, payload)
            return _environment(conn, name)

    def set_policy(self, name: str, policy_text: str, policy: Policy) -> Environment:
        e = t.environments.c
        with write_transaction(self.engine) as conn:
            authorize_admin(conn, f"change the policy of {name!r}")
            before = _environment(conn, name)
            conn.execute(
                update(t.environments).where(e.name == name).values(
                    policy_text=policy_text, policy_json=_json(policy.document),
                    policy_digest=policy.digest, updated_by=current().actor, updated_at=now_ms(),
                )
            )  # fmt: skip
            payload = {"policy": dict(policy.document), "policy_digest": policy.digest,
                       "previous_digest": before.policy.digest}  # fmt: skip
            audit.record(conn, "environment.policy.set", "environment", name, payload)
            return _environment(conn, name)

    def get_environment(self, name: str) -> Environment:
        with read_connection(self.engine) as conn:
            return _environment(conn, name)

    def list_environments(self) -> list[Environment]:
        e = t.environments.c
        with read_connection(self.engine) as conn:
            names = conn.execute(select(e.name).order_by(e.name)).scalars().all()
            return [_environment(conn, str(n)) for n in names]

    # requests

    def project_of(self, model: str) -> str:
        m = t.models.c
        with read_connection(self.engine) as conn:
            found = conn.execute(select(m.project).where(m.name == model)).scalar()
        if found is None:
            raise missing.model(model)
        return str(found)

    def open_request(
        self,
        model: str,
        version: int,
        environment: str,
        reason: str,
        gates: Sequence[GateResult],
        policy_digest: str,
    ) -> PromotionRequest:
        """Record a request for ``model/version`` with the gates' results (run under the
        policy ``policy_digest``), or update the request for that model and environment
        that waits; deploys at once when nothing more is needed."""
        with write_transaction(self.engine) as conn:
            project = _lock_model(conn, model)
            what = f"request a promotion of {model!r}"
            authorize(conn, Permission.MANAGE, project, what, missing.model(model))
            env = _environment(conn, environment)
            _same_policy(env, policy_digest)
            digest = _version_digest(conn, model, version)
            if env.deployed.get(model) == version:
                raise InvalidState(f"{model}/{version} is what {environment} runs already")
            r = t.promotion_requests.c
            waiting = conn.execute(
                select(r.id, r.requesters).where(r.model == model, r.environment == environment,
                                                 r.state == RequestState.WAITING.value)
            ).first()  # fmt: skip
            at, by = now_ms(), current().actor
            results = [gate_to_dict(g) for g in gates]
            asked = [] if waiting is None else orjson.loads(waiting.requesters)
            requesters = [*asked, by] if by not in asked else asked
            row = {"model": model, "version": version, "digest": digest, "project": project,
                   "requester": by, "requesters": _json(requesters), "reason": reason,
                   "policy_digest": policy_digest,
                   "gates": _json(results), "updated_at": at,
                   "state": RequestState.WAITING.value, "decision": ""}  # fmt: skip
            if waiting is None:
                request_id = new_id()
                conn.execute(insert(t.promotion_requests).values(
                    id=request_id, environment=environment, created_at=at, **row))  # fmt: skip
                action = "release.request.open"
            else:
                request_id = str(waiting.id)
                conn.execute(update(t.promotion_requests).where(r.id == request_id).values(**row))
                action = "release.request.update"
            payload = {"model": model, "version": version, "environment": environment,
                       "reason": reason, "policy_digest": policy_digest,
                       "gates": results}  # fmt: skip
            audit.record(conn, action, "promotion_request", request_id, payload, digest)
            return self._settle(conn, request_id, env.policy)

    def record_verdict(
        self,
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
            InvalidState: the request is not waiting, or its package or policy changed.
            PermissionDenied: an approval that would not count (``check_approval``).
        """
        with write_transaction(self.engine) as conn:
            hidden = missing.request(request_id)  # as the caller named it
            request = _request(conn, request_id)
            request_id = request.id
            _lock_model(conn, request.model)
            request = _request(conn, request_id)  # as it stands under the lock
            what = f"{verdict.value} promotion requests of {request.model!r}"
            authorize(conn, Permission.APPROVE, request.project, what, hidden)
            if request.state is not RequestState.WAITING:
                raise InvalidState(
                    f"request {request_id} is {request.state.value}: only a waiting request "
                    f"is approved or rejected ({request.decision})"
                )
            if package_digest != request.digest:
                raise InvalidState(
                    f"request {request_id} is for {request.ref} ({request.digest}) now, not the "
                    "package you reviewed: look at it again (`cairn requests show`)"
                )
            env = _environment(conn, request.environment)
            r = t.promotion_requests.c
            if regated is not None:
                gates, digest = regated
                _same_policy(env, digest)
                conn.execute(update(t.promotion_requests).where(r.id == request_id).values(
                    gates=_json([gate_to_dict(g) for g in gates]), policy_digest=digest,
                    updated_at=now_ms()))  # fmt: skip
            else:
                _same_policy(env, request.policy_digest)
            acting, role = current(), _role(conn, request.project)
            if verdict is Verdict.APPROVE:  # one that would not count is refused, not kept
                given = Approval(acting.actor, Role(role) if role else None, package_digest,
                                 env.policy.digest)  # fmt: skip
                check_approval(env.policy, request, given)
            conn.execute(
                insert(t.request_approvals).values(
                    request_id=request_id, by=acting.actor, role=role,
                    verdict=verdict.value, comment=comment, package_digest=package_digest,
                    policy_digest=env.policy.digest, at=now_ms(),
                )
            )  # fmt: skip
            payload = {"verdict": verdict.value, "comment": comment,
                       "policy_digest": env.policy.digest}  # fmt: skip
            audit.record(conn, f"release.request.{verdict.value}", "promotion_request",
                         request_id, payload, package_digest)  # fmt: skip
            return self._settle(conn, request_id, env.policy)

    def get_request(self, request_id: str) -> PromotionRequest:
        with read_connection(self.engine) as conn:
            return _request(conn, request_id)

    def list_requests(
        self,
        environment: str | None = None,
        model: str | None = None,
        state: RequestState | None = None,
    ) -> list[PromotionRequest]:
        """Newest first."""
        r = t.promotion_requests.c
        query = select(r.id).order_by(r.created_at.desc(), r.id)
        for column, value in ((r.environment, environment), (r.model, model),
                              (r.state, state.value if state else None)):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        with read_connection(self.engine) as conn:
            return [_request(conn, str(i)) for i in conn.execute(query).scalars().all()]

    # deployments

    def rollback(
        self, environment: str, model: str, to_version: int | None, reason: str
    ) -> Deployment:
        d = t.deployments.c
        with write_transaction(self.engine) as conn:
            project = _lock_model(conn, model)
            hidden = missing.model(model)
            authorize(conn, Permission.MANAGE, project, f"roll back {model!r}", hidden)
            env = _environment(conn, environment)
            now = env.deployed.get(model)
            if now is None:
                raise NotFound(f"{environment} runs no version of {model!r}: nothing to roll back")
            ran = set(
                conn.execute(select(d.version).where(d.environment == environment,
                                                     d.model == model)).scalars()
            )  # fmt: skip
            if to_version is None:
                to_version = conn.execute(
                    select(d.previous).where(
                        d.environment == environment, d.model == model, d.version == now,
                        d.action == Action.PROMOTE.value,
                    ).order_by(d.id.desc()).limit(1)
                ).scalar()  # fmt: skip
                if to_version is None:
                    raise InvalidState(
                        f"{environment} ran no version of {model!r} before {model}/{now} was "
                        "promoted: nothing to roll back to (give --to VERSION)"
                    )
            if to_version == now:
                raise InvalidState(f"{environment} runs {model}/{now} already")
            if to_version not in ran:
                raise InvalidState(
                    f"{model}/{to_version} never ran in {environment}: a rollback returns to a "
                    f"version it ran ({', '.join(map(str, sorted(ran)))}); promote it instead"
                )
            return _deploy(conn, environment, model, to_version, project, Action.ROLLBACK,
                           reason, None)  # fmt: skip

    def history(self, environment: str, model: str | None = None) -> list[Deployment]:
        """Newest first."""
        d = t.deployments.c
        query = select(t.deployments).where(d.environment == environment)
        if model is not None:
            query = query.where(d.model == model)
        with read_connection(self.engine) as conn:
            _environment(conn, environment)
            rows = conn.execute(query.order_by(d.id.desc())).all()
        return [_deployment(row) for row in rows]

    def deployed_at(self, environment: str, at: int) -> list[Deployment]:
        """For each model, the history entry in force at ``at`` (ms), by model name."""
        d = t.deployments.c
        newest = (
            select(func.max(d.id)).where(d.environment == environment, d.at <= at)
            .group_by(d.model).scalar_subquery()
        )  # fmt: skip
        query = select(t.deployments).where(d.id.in_(newest)).order_by(d.model)
        with read_connection(self.engine) as conn:
            _environment(conn, environment)
            return [_deployment(row) for row in conn.execute(query).all()]

    # webhooks

    def add_webhook(self, url: str, secret: str, environment: str | None) -> Webhook:
        with write_transaction(self.engine) as conn:
            authorize_admin(conn, "add a webhook")
            if environment is not None:
                _environment(conn, environment)
            hook = Webhook(new_id(), url, environment, current().actor, now_ms())
            conn.execute(insert(t.webhooks).values(
                id=hook.id, url=url, secret=secret, environment=environment,
                created_by=hook.created_by, created_at=hook.created_at))  # fmt: skip
            payload = {"url": url, "environment": environment}
            audit.record(conn, "webhook.create", "webhook", hook.id, payload)
            return hook

    def list_webhooks(self) -> list[Webhook]:
        h = t.webhooks.c
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(t.webhooks).order_by(h.created_at, h.id)).all()
        return [Webhook(r.id, r.url, r.environment, r.created_by, r.created_at) for r in rows]

    def remove_webhook(self, webhook_id: str) -> None:
        h, w = t.webhooks.c, t.webhook_deliveries.c
        with write_transaction(self.engine) as conn:
            authorize_admin(conn, "remove a webhook")
            if conn.execute(select(h.id).where(h.id == webhook_id)).first() is None:
                raise NotFound(f"webhook {webhook_id!r} not found (`cairn webhooks list`)")
            conn.execute(delete(t.webhook_deliveries).where(w.webhook_id == webhook_id))
            conn.execute(delete(t.webhooks).where(h.id == webhook_id))
            audit.record(conn, "webhook.delete", "webhook", webhook_id, {})

    def pending_deliveries(self, limit: int = 100) -> list[Delivery]:
        """Deliveries not yet made, oldest first, with where and how to sign them."""
        w, h = t.webhook_deliveries.c, t.webhooks.c
        query = (
            select(w.id, w.event, w.body, w.attempts, h.url, h.secret)
            .join(t.webhooks, h.id == w.webhook_id)
            .where(w.state == "pending").order_by(w.id).limit(limit)
        )  # fmt: skip
        with read_connection(self.engine) as conn:
            rows = conn.execute(query).all()
        return [Delivery(r.id, r.url, r.secret, r.event, r.body, r.attempts) for r in rows]

    def mark_delivery(self, delivery_id: int, delivered: bool, error: str, give_up: bool) -> None:
        w = t.webhook_deliveries.c
        state = "delivered" if delivered else ("failed" if give_up else "pending")
        with write_transaction(self.engine) as conn:  # once: another deliverer may have been
            pending = (w.id == delivery_id) & (w.state == "pending")
            conn.execute(update(t.webhook_deliveries).where(pending).values(
                state=state, attempts=w.attempts + 1, last_error=error,
                delivered_at=now_ms() if delivered else None))  # fmt: skip

    # helpers

    def _settle(self, conn: Connection, request_id: str, policy: Policy) -> PromotionRequest:
        """Decide the request as it stands, write its state, deploy if it is decided so."""
        request = _request(conn, request_id)
        outcome = decide(policy, policy.digest, request.gates, request.approvals,
                         request.requesters, request.digest)  # fmt: skip
        if outcome.state is RequestState.DEPLOYED and _running(conn, request) == request.version:
            # Put there meanwhile by a rollback: there is nothing to deploy.
            already = f"{request.ref} runs in {request.environment} already (a rollback)"
            outcome = Outcome(RequestState.BLOCKED, already)
        r = t.promotion_requests.c
        decided_by = current().actor if outcome.state is not RequestState.WAITING else None
        conn.execute(
            update(t.promotion_requests).where(r.id == request_id).values(
                state=outcome.state.value, decision=outcome.decision, decided_by=decided_by,
            )
        )  # fmt: skip
        if outcome.state is RequestState.DEPLOYED:
            _deploy(conn, request.environment, request.model, request.version, request.project,
                    Action.PROMOTE, request.reason, request_id)  # fmt: skip
        return _request(conn, request_id)


def _deploy(
    conn: Connection,
    environment: str,
    model: str,
    version: int,
    project: str,
    action: Action,
    reason: str,
    request_id: str | None,
) -> Deployment:
    """Move the environment's alias, append the history entry and the audit event, and
    queue the webhooks' deliveries — in the caller's transaction, under the model's lock."""
    a = t.model_aliases.c
    previous = conn.execute(
        select(a.version).where(a.model == model, a.alias == environment)
    ).scalar()
    at, by = now_ms(), current().actor
    row = {"model": model, "alias": environment, "version": version, "updated_by": by,
           "updated_at": at}  # fmt: skip
    statement = dialect_insert(conn, t.model_aliases)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["model", "alias"],
            set_={c: statement.excluded[c] for c in ("version", "updated_by", "updated_at")},
        ),
        [row],
    )
    entry = {"environment": environment, "model": model, "version": version,
             "previous": previous, "action": action.value, "by": by, "at": at,
             "reason": reason, "project": project, "request_id": request_id}  # fmt: skip
    inserted = conn.execute(insert(t.deployments).values(**entry)).inserted_primary_key
    deployment_id = int(inserted[0]) if inserted is not None else 0
    event = {**entry, "deployment": deployment_id}
    h = t.webhooks.c
    hooks = conn.execute(
        select(h.id).where((h.environment == environment) | h.environment.is_(None))
    ).scalars().all()  # fmt: skip
    if hooks:
        body = _json({"event": f"release.{action.value}", **event})
        conn.execute(insert(t.webhook_deliveries), [
            {"webhook_id": hook, "event": f"release.{action.value}", "body": body,
             "state": "pending", "attempts": 0, "last_error": "", "created_at": at}
            for hook in hooks
        ])  # fmt: skip
    digest = _version_digest(conn, model, version)
    audit.record(conn, f"release.{action.value}", "environment", environment, event, digest)
    return Deployment(int(deployment_id), environment, model, version, previous, action, by, at,
                      reason, project, request_id)  # fmt: skip


def _lock_model(conn: Connection, model: str) -> str:
    """Lock the model's row for the transaction (what serialises its releases) and return
    its project."""
    m = t.models.c
    project = conn.execute(select(m.project).where(m.name == model).with_for_update()).scalar()
    if project is None:  # not listing the models there are: some are others' to see
        raise missing.model(model)
    return str(project)


def _running(conn: Connection, request: PromotionRequest) -> int | None:
    a = t.model_aliases.c
    found = conn.execute(
        select(a.version).where(a.model == request.model, a.alias == request.environment)
    ).scalar()
    return int(found) if found is not None else None


def _version_digest(conn: Connection, model: str, version: int) -> str:
    v = t.model_versions.c
    found = conn.execute(select(v.digest).where(v.model == model, v.version == version)).scalar()
    if found is None:
        raise NotFound(f"model {model!r} has no version {version}")
    return str(found)


def _same_policy(env: Environment, digest: str) -> None:
    if env.policy.digest != digest:
        raise PolicyChanged(
            f"the policy of {env.name} changed while its gates ran (now {env.policy.digest}): "
            "run them again"
        )


def _role(conn: Connection, project: str) -> str | None:
    """The acting principal's role in ``project`` as it stands now (an admin's: admin)."""
    principal = acting(conn)
    if principal is None or principal.is_admin:
        return Role.ADMIN.value
    held = principal.roles.get(project)
    return held.value if held else None


def _environment(conn: Connection, name: str) -> Environment:
    e, a = t.environments.c, t.model_aliases.c
    row = conn.execute(select(t.environments).where(e.name == name)).first()
    if row is None:
        known = conn.execute(select(e.name).order_by(e.name).limit(_SHOWN)).scalars().all()
        raise NotFound(
            f"environment {name!r} not found (environments: {', '.join(known) or 'none yet'}; "
            f"`cairn envs create {name}` makes it)"
        )
    deployed = conn.execute(select(a.model, a.version).where(a.alias == name).order_by(a.model))
    return Environment(
        name=row.name,
        policy=parse_policy(orjson.loads(row.policy_json)),
        policy_text=row.policy_text,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        deployed={str(m): int(v) for m, v in deployed},
    )


def _request_id(conn: Connection, ref: str) -> str:
    """The id a request is referred to by: whole, or its first 8 or more characters."""
    r = t.promotion_requests.c
    if not isinstance(ref, str) or not _REQUEST_ID.match(ref):
        raise InvalidInput(f"request {ref!r}: expected its id, or its first 8 characters or more")
    found = conn.execute(select(r.id).where(r.id.startswith(ref)).limit(2)).scalars().all()
    if not found:
        raise missing.request(ref)
    if len(found) > 1:
        raise AmbiguousReference(f"request {ref!r}: several requests start so; give more of it")
    return str(found[0])


def _request(conn: Connection, request_id: str) -> PromotionRequest:
    r, p = t.promotion_requests.c, t.request_approvals.c
    request_id = _request_id(conn, request_id)
    row = conn.execute(select(t.promotion_requests).where(r.id == request_id)).one()
    given = conn.execute(
        select(t.request_approvals).where(p.request_id == request_id).order_by(p.pk)
    ).all()
    approvals = tuple(
        ApprovalRecord(
            a.by, Role(a.role) if a.role else None, Verdict(a.verdict), a.comment,
            a.package_digest, a.policy_digest, a.at,
        )
        for a in given
    )  # fmt: skip
    return PromotionRequest(
        id=row.id, model=row.model, version=row.version, digest=row.digest,
        environment=row.environment, project=row.project, state=RequestState(row.state),
        requester=row.requester, reason=row.reason, policy_digest=row.policy_digest,
        gates=tuple(gate_from_dict(g) for g in orjson.loads(row.gates)),
        created_at=row.created_at, updated_at=row.updated_at, approvals=approvals,
        decided_by=row.decided_by, decision=row.decision,
        requesters=tuple(orjson.loads(row.requesters)),
    )  # fmt: skip


def _deployment(row: Row[Any]) -> Deployment:
    return Deployment(row.id, row.environment, row.model, row.version, row.previous,
                      Action(row.action), row.by, row.at, row.reason, row.project,
                      row.request_id)  # fmt: skip


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
