"""Releases in the metadata store: environments, promotion requests, approvals, the
deployment history, and the webhook outbox.

Every change to what an environment runs is decided by the release workflow
(``cairn.releases.workflow``) in a unit of work this ledger opens (``transaction``): one
write transaction that locks the model's row first, so racing promotions and rollbacks of
one model queue on that lock, and in which the alias (``churn@production``), the history
entry, the webhook deliveries and the audit event are written together. The unit of work
(``SqlReleaseWork``) only reads and writes; environments, webhooks and the history's
queries are this ledger's own.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, Table, delete, func, insert, select, update

from cairn.core import missing
from cairn.core.access import Principal, Role
from cairn.core.actor import current
from cairn.core.clock import now_ms
from cairn.core.ids import new_id
from cairn.core.policy import Policy, parse_policy
from cairn.core.release import (
    Action,
    ApprovalRecord,
    Delivery,
    Deployment,
    Environment,
    PromotionRequest,
    RequestState,
    Verdict,
    Webhook,
    check_environment_name,
)
from cairn.core.release_codec import gate_from_dict, gate_to_dict
from cairn.errors import AlreadyExists, AmbiguousReference, InvalidInput, NotFound
from cairn.stores.metadata import audit
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import (
    ALIAS_NAMES,
    dialect_insert,
    read_connection,
    serialize,
    write_transaction,
)
from cairn.stores.metadata.grants import acting, authorize_admin

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

    @contextmanager
    def transaction(self, model: str) -> Iterator[SqlReleaseWork]:
        """A write transaction that locks the model's row first (``_lock_model``)."""
        with write_transaction(self.engine) as conn:
            yield SqlReleaseWork(conn, _lock_model(conn, model))

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

    def history(self, environment: str, model: str | None = None) -> list[Deployment]:
        """Newest first."""
        with read_connection(self.engine) as conn:
            _environment(conn, environment)
            return _history(conn, environment, model)

    def deployed_at(self, environment: str, at: int) -> list[Deployment]:
        """For each model, the history entry in force at ``at`` (ms), by model name."""
        d = t.deployments.c
        # A canary's entry is not what ran: the version it served beside did, until the
        # canary was promoted or withdrawn (an entry of its own).
        newest = (
            select(func.max(d.id))
            .where(d.environment == environment, d.at <= at, d.action != Action.CANARY.value)
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
            rows = conn.execute(select(t.webhooks).where(h.monitor.is_(None))
                                .order_by(h.created_at, h.id)).all()  # fmt: skip
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


class SqlReleaseWork:
    """The :class:`~cairn.core.ports.ReleaseWork` of one write transaction, which holds the
    lock of the model's row."""

    def __init__(self, conn: Connection, project: str) -> None:
        self.conn, self.project = conn, project

    def acting(self) -> Principal | None:
        return acting(self.conn)

    def environment(self, name: str) -> Environment:
        return _environment(self.conn, name)

    def request(self, ref: str) -> PromotionRequest:
        return _request(self.conn, ref)

    def request_in(
        self, model: str, environment: str, state: RequestState
    ) -> PromotionRequest | None:
        r = t.promotion_requests.c
        found = self.conn.execute(
            select(r.id).where(r.model == model, r.environment == environment,
                               r.state == state.value)
        ).scalar()  # fmt: skip
        return None if found is None else _request(self.conn, str(found))

    def version_digest(self, model: str, version: int) -> str:
        v = t.model_versions.c
        query = select(v.digest).where(v.model == model, v.version == version)
        found = self.conn.execute(query).scalar()
        if found is None:
            raise NotFound(f"model {model!r} has no version {version}")
        return str(found)

    def running(self, environment: str, model: str) -> int | None:
        a = t.model_aliases.c
        query = select(a.version).where(a.model == model, a.alias == environment)
        found = self.conn.execute(query).scalar()
        return int(found) if found is not None else None

    def history(self, environment: str, model: str) -> list[Deployment]:
        return _history(self.conn, environment, model)

    def save_request(self, request: PromotionRequest) -> None:
        row = {"id": request.id, "model": request.model, "version": request.version,
               "digest": request.digest, "environment": request.environment,
               "project": request.project, "state": request.state.value,
               "requester": request.requester, "requesters": _json(list(request.requesters)),
               "reason": request.reason, "policy_digest": request.policy_digest,
               "gates": _json([gate_to_dict(g) for g in request.gates]),
               "created_at": request.created_at, "updated_at": request.updated_at,
               "decided_by": request.decided_by, "decision": request.decision}  # fmt: skip
        self._upsert(t.promotion_requests, ["id"], row)

    def add_approval(self, request_id: str, given: ApprovalRecord) -> None:
        self.conn.execute(
            insert(t.request_approvals).values(
                request_id=request_id, by=given.by, role=given.role.value if given.role else None,
                verdict=given.verdict.value, comment=given.comment,
                package_digest=given.package_digest, policy_digest=given.policy_digest,
                at=given.at,
            )
        )  # fmt: skip

    def move_alias(self, model: str, environment: str, version: int, by: str, at: int) -> None:
        row = {"model": model, "alias": environment, "version": version, "updated_by": by,
               "updated_at": at}  # fmt: skip
        self._upsert(t.model_aliases, ["model", "alias"], row)

    def append_history(self, entry: Deployment) -> Deployment:
        row = {"environment": entry.environment, "model": entry.model,
               "version": entry.version, "previous": entry.previous,
               "action": entry.action.value, "by": entry.by, "at": entry.at,
               "reason": entry.reason, "project": entry.project,
               "request_id": entry.request_id}  # fmt: skip
        inserted = self.conn.execute(insert(t.deployments).values(**row)).inserted_primary_key
        return dataclasses.replace(entry, id=int(inserted[0]) if inserted is not None else 0)

    def queue_event(self, environment: str, event: str, body: Mapping[str, object]) -> None:
        h = t.webhooks.c
        hooks = self.conn.execute(
            select(h.id).where((h.environment == environment) | h.environment.is_(None),
                               h.monitor.is_(None))
        ).scalars().all()  # fmt: skip
        if not hooks:
            return
        text, at = _json({"event": event, **body}), now_ms()
        self.conn.execute(insert(t.webhook_deliveries), [
            {"webhook_id": hook, "event": event, "body": text, "state": "pending",
             "attempts": 0, "last_error": "", "created_at": at}
            for hook in hooks
        ])  # fmt: skip

    def audit(
        self,
        action: str,
        object_type: str,
        object_id: str,
        payload: Mapping[str, object],
        object_digest: str | None = None,
    ) -> None:
        audit.record(self.conn, action, object_type, object_id, dict(payload), object_digest)

    def _upsert(self, table: Table, key: list[str], row: dict[str, Any]) -> None:
        statement = dialect_insert(self.conn, table)
        changed = {c: statement.excluded[c] for c in row if c not in key}
        self.conn.execute(statement.on_conflict_do_update(index_elements=key, set_=changed), [row])


def _lock_model(conn: Connection, model: str) -> str:
    """Lock the model's row for the transaction (what serialises its releases) and return
    its project."""
    m = t.models.c
    project = conn.execute(select(m.project).where(m.name == model).with_for_update()).scalar()
    if project is None:  # not listing the models there are: some are others' to see
        raise missing.model(model)
    return str(project)


def _history(conn: Connection, environment: str, model: str | None) -> list[Deployment]:
    """Newest first."""
    d = t.deployments.c
    query = select(t.deployments).where(d.environment == environment)
    if model is not None:
        query = query.where(d.model == model)
    return [_deployment(row) for row in conn.execute(query.order_by(d.id.desc())).all()]


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
