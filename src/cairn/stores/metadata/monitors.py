"""Monitors and their evaluations in the metadata store.

A monitor belongs to its model's project: making one, or recording an evaluation, is
writing there; reading one is reading the model. Its objects (the reference profile, each
evaluation's report) are held by the model (``model_objects``). An evaluation that changes
the monitor's state records the change in the audit trail beside the evaluation, in one
transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import orjson
from sqlalchemy import Connection, Engine, func, insert, select, update

from cairn.core import missing
from cairn.core.access import Permission
from cairn.core.actor import current
from cairn.core.clock import now_ms
from cairn.core.ids import new_id
from cairn.core.model import parse_model_ref
from cairn.core.monitor import (
    ACTIONS_TAKEN,
    Monitor,
    MonitorResult,
    check_alert,
    check_label,
    check_monitor,
    check_monitor_name,
    check_result,
    monitor_from_dict,
    monitor_to_dict,
    result_from_dict,
    result_to_dict,
)
from cairn.errors import AlreadyExists, InvalidInput, NotFound
from cairn.stores.metadata import audit
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.driver_errors import unique_violation
from cairn.stores.metadata.engine import dialect_insert, read_connection, write_transaction
from cairn.stores.metadata.grants import authorize, authorize_objects

_ATTEMPTS = 3  # numbering races between concurrent evaluations of one monitor
_CHUNK = 1_000  # rows a statement writes, or request ids it asks for


class SqlMonitors:
    """Monitors over a metadata database. ``recorded`` is called after each evaluation is
    kept (a server posts the webhook events it queued)."""

    def __init__(self, engine: Engine, recorded: Callable[[], None] = lambda: None) -> None:
        self.engine, self._recorded = engine, recorded

    def create_monitor(self, monitor: Monitor, alert_secret: str | None = None) -> Monitor:
        """The monitor, with a webhook of its own for each ``webhook:URL`` alert, signing
        with ``alert_secret``.

        Raises:
        InvalidInput: the monitor is malformed.
        NotFound: its model is not there for the acting principal.
        PermissionDenied: it may read the model but not write there.
        AlreadyExists: a monitor of that name exists.
        """
        check_monitor(monitor)
        model = parse_model_ref(monitor.model).name
        try:
            with write_transaction(self.engine) as conn:
                self._writable(conn, model, f"make the monitor {monitor.name!r}")
                authorize_objects(conn, [monitor.reference], f"monitor {model!r}")
                made = dataclasses.replace(monitor, created_at=now_ms(),
                                           created_by=current().actor)  # fmt: skip
                conn.execute(insert(t.monitors).values(
                    name=made.name, model=model, definition=_json(monitor_to_dict(made)),
                    state=made.state, created_at=made.created_at, created_by=made.created_by,
                ))  # fmt: skip
                self._hold(conn, model, made.reference)
                urls = [url for url in map(check_alert, made.alerts) if url]
                if urls:
                    conn.execute(insert(t.webhooks), [
                        {"id": new_id(), "url": url, "secret": alert_secret or "",
                         "environment": None, "created_by": made.created_by,
                         "created_at": made.created_at, "monitor": made.name}
                        for url in urls
                    ])  # fmt: skip
                audit.record(conn, "monitor.created", "monitor", made.name,
                             {"model": made.model, "reference": made.reference})  # fmt: skip
        except Exception as exc:
            if unique_violation(exc):
                raise AlreadyExists(f"monitor {monitor.name!r} exists") from exc
            raise
        return made

    def get_monitor(self, name: str) -> Monitor:
        """Raises:
        NotFound: no such monitor, or its model is not there for the acting principal.
        """
        with read_connection(self.engine) as conn:
            return self._monitor(conn, name, Permission.READ, "read")

    def list_monitors(self) -> list[Monitor]:
        """The monitors of the models the acting principal may read, by name."""
        with read_connection(self.engine) as conn:
            names = conn.execute(select(t.monitors.c.name).order_by(t.monitors.c.name))
            found = []
            for name in names.scalars().all():
                try:
                    found.append(self._monitor(conn, str(name), Permission.READ, "read"))
                except NotFound:  # another project's
                    continue
            return found

    def record_result(self, result: MonitorResult) -> MonitorResult:
        """Number and keep an evaluation, and move the monitor to its state (audited when
        it changes).

        Raises:
            NotFound: no such monitor, or its model is not there for the acting principal.
            PermissionDenied: it may read the model but not write there.
        """
        check_result(result)
        for attempt in range(_ATTEMPTS):
            try:
                kept = self._record(result)
            except Exception as exc:
                if not unique_violation(exc) or attempt == _ATTEMPTS - 1:
                    raise
                continue
            self._recorded()
            return kept
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(self, result: MonitorResult) -> MonitorResult:
        c = t.monitor_results.c
        with write_transaction(self.engine) as conn:
            monitor = self._monitor(conn, result.monitor, Permission.WRITE, "evaluate")
            model = parse_model_ref(monitor.model).name
            authorize_objects(conn, [result.report], f"evaluate the monitor {monitor.name!r}")
            last = conn.execute(select(func.max(c.number)).where(c.monitor == monitor.name))
            kept = dataclasses.replace(result, number=int(last.scalar() or 0) + 1,
                                       evaluated_at=now_ms(),
                                       evaluated_by=current().actor)  # fmt: skip
            row = result_to_dict(kept)
            row["drifted"] = _json(row["drifted"])
            conn.execute(insert(t.monitor_results).values(**row))
            self._hold(conn, model, kept.report)
            if kept.state != monitor.state:
                definition = monitor_to_dict(dataclasses.replace(monitor, state=kept.state))
                conn.execute(update(t.monitors).where(t.monitors.c.name == monitor.name)
                             .values(state=kept.state, definition=_json(definition)))  # fmt: skip
                change = {"from": monitor.state, "to": kept.state, "result": kept.number,
                          "report": kept.report}  # fmt: skip
                self._queue_alert(conn, monitor, kept, change)
                audit.record(conn, "monitor.state_changed", "monitor", monitor.name, change)
        return kept

    def record_action(self, name: str, action: str, payload: dict[str, object]) -> None:
        """An action a monitor took (``retrained``, ``retrain_failed``), in the audit trail.

        Raises:
            NotFound: no such monitor, or its model is not there for the acting principal.
            PermissionDenied: it may read the model but not write there.
            InvalidInput: an action monitors do not take.
        """
        if action not in ACTIONS_TAKEN:
            raise InvalidInput(f"action: expected {' or '.join(ACTIONS_TAKEN)}, got {action!r:.40}")
        with write_transaction(self.engine) as conn:
            self._monitor(conn, name, Permission.WRITE, "act for")
            audit.record(conn, f"monitor.{action}", "monitor", name, payload)

    def results(self, name: str, last: int = 50) -> list[MonitorResult]:
        """The monitor's latest ``last`` evaluations, oldest first.

        Raises:
            NotFound: no such monitor, or its model is not there for the acting principal.
        """
        c = t.monitor_results.c
        with read_connection(self.engine) as conn:
            self._monitor(conn, name, Permission.READ, "read")
            latest = (select(t.monitor_results).where(c.monitor == name)
                      .order_by(c.number.desc()).limit(max(last, 1)))  # fmt: skip
            rows = conn.execute(latest).mappings().all()
        return [result_from_dict({**row, "drifted": orjson.loads(row["drifted"])})
                for row in reversed(rows)]  # fmt: skip

    def log_labels(self, model: str, labels: Sequence[tuple[str, str]]) -> int:
        """Keep each (request id, label as JSON text) of ``model``, a later label for a
        request replacing an earlier; one audit event for the batch.

        Raises:
            NotFound: the model is not there for the acting principal.
            PermissionDenied: it may read the model but not write there.
            InvalidInput: a label that is not the JSON text of one (naming it).
        """
        for index, (_, label) in enumerate(labels):
            check_label(label, index)  # what reads them back parses each
        with write_transaction(self.engine) as conn:
            self._writable(conn, model, "log labels")
            at, by = now_ms(), current().actor
            statement = dialect_insert(conn, t.labels)
            upsert = statement.on_conflict_do_update(
                index_elements=["model", "request_id"],
                set_={c: statement.excluded[c] for c in ("label", "logged_at", "logged_by")},
            )
            for start in range(0, len(labels), _CHUNK):
                conn.execute(upsert, [
                    {"model": model, "request_id": request_id, "label": label,
                     "logged_at": at, "logged_by": by}
                    for request_id, label in labels[start:start + _CHUNK]
                ])  # fmt: skip
            audit.record(conn, "model.labels.logged", "model", model, {"labels": len(labels)})
        return len(labels)

    def labels(self, model: str, request_ids: Sequence[str]) -> dict[str, str]:
        """The labels (JSON text) kept for those of ``request_ids`` that have one.

        Raises:
            NotFound: the model is not there for the acting principal.
        """
        c = t.labels.c
        found: dict[str, str] = {}
        with read_connection(self.engine) as conn:
            project = conn.execute(select(t.models.c.project).where(t.models.c.name == model))
            authorize(conn, Permission.READ, str(project.scalar()), "read labels",
                      missing.model(model))  # fmt: skip
            for start in range(0, len(request_ids), _CHUNK):
                asked = list(request_ids[start : start + _CHUNK])
                rows = conn.execute(select(c.request_id, c.label).where(
                    c.model == model, c.request_id.in_(asked)))  # fmt: skip
                found.update((str(r.request_id), str(r.label)) for r in rows)
        return found

    # helpers

    def _monitor(self, conn: Connection, name: str, permission: Permission, what: str) -> Monitor:
        check_monitor_name(name)
        m = t.monitors.c
        row = conn.execute(select(t.monitors).where(m.name == name)).first()
        hidden = NotFound(f"monitor {name!r} not found (`cairn monitor status` lists them)")
        if row is None:
            raise hidden
        project = conn.execute(select(t.models.c.project).where(t.models.c.name == row.model))
        authorize(conn, permission, str(project.scalar()), f"{what} the monitor {name!r}", hidden)
        return monitor_from_dict(orjson.loads(row.definition))

    def _writable(self, conn: Connection, model: str, what: str) -> None:
        project = conn.execute(select(t.models.c.project).where(t.models.c.name == model))
        found = project.scalar()
        if found is None:
            raise missing.model(model)
        authorize(conn, Permission.WRITE, str(found), what, missing.model(model))

    @staticmethod
    def _queue_alert(conn: Connection, monitor: Monitor, result: MonitorResult,
                     change: dict[str, object]) -> None:  # fmt: skip
        """The change, to each of the monitor's webhooks: in this transaction (the outbox),
        posted after it commits."""
        h = t.webhooks.c
        hooks = conn.execute(select(h.id).where(h.monitor == monitor.name)).scalars().all()
        if not hooks:
            return
        event = f"monitor.{result.state}"
        body = _json({"event": event, "monitor": monitor.name, "model": monitor.model,
                      **change, "rows": result.rows, "drift_share": result.drift_share,
                      "drifted": list(result.drifted), "since": result.since,
                      "until": result.until})  # fmt: skip
        conn.execute(insert(t.webhook_deliveries), [
            {"webhook_id": hook, "event": event, "body": body, "state": "pending",
             "attempts": 0, "last_error": "", "created_at": result.evaluated_at}
            for hook in hooks
        ])  # fmt: skip

    @staticmethod
    def _hold(conn: Connection, model: str, digest: str) -> None:
        conn.execute(dialect_insert(conn, t.model_objects).on_conflict_do_nothing(),
                     [{"digest": digest, "model": model}])  # fmt: skip


def _json(value: object) -> str:
    return orjson.dumps(value).decode()
