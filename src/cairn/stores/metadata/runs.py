"""Experiments and the lifecycle of runs: creating (one at a time, or whole finished runs
in one transaction), ending, deleting and restoring them, and resolving an id prefix."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, select, update

from cairn.core import missing
from cairn.core.access import Permission
from cairn.core.actor import current
from cairn.core.audit import AuditEvent
from cairn.core.clock import now_ms
from cairn.core.codec import new_run_to_dict
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.ids import ID_LENGTH, check_id_reference, new_id
from cairn.core.limits import check_int64, check_key, check_params
from cairn.core.pipeline import TAGS as PIPELINE_TAGS
from cairn.core.run import (
    Experiment,
    Lifecycle,
    MetricBatch,
    NewRun,
    Run,
    RunRecord,
    RunStatus,
    as_batch,
    check_ending,
    check_new_run,
    run_user,
)
from cairn.errors import AmbiguousReference, InvalidInput
from cairn.stores.metadata import audit, pipelines, summary
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.data import require_project
from cairn.stores.metadata.driver_errors import already_exists
from cairn.stores.metadata.engine import read_connection, write_transaction
from cairn.stores.metadata.grants import authorize
from cairn.stores.metadata.inputs import check_digests, insert_lineage
from cairn.stores.metadata.lookup import experiment_project, run_for_write, run_project
from cairn.stores.metadata.recording import write_batch

_SHOWN_MATCHES = 5


class SqlRuns:
    """The experiments and runs of the metadata store."""

    def __init__(
        self,
        engine: Engine,
        audited: Callable[[AuditEvent], None],
        runs_added: Callable[[int], None],
    ) -> None:
        self.engine = engine
        self._audited = audited
        self._runs_added = runs_added  # the planner's statistics follow (``planner.py``)

    # experiments

    def create_experiment(self, name: str, project: str = DEFAULT_PROJECT) -> Experiment:
        experiment = Experiment(new_id(), name, now_ms(), Lifecycle.ACTIVE, project)
        with (
            already_exists(f"experiment {name!r} already exists"),
            write_transaction(self.engine) as conn,
        ):
            require_project(conn, project)
            what = f"create experiment {name!r}"
            authorize(conn, Permission.WRITE, project, what, missing.project(project))
            conn.execute(
                t.experiments.insert().values(
                    id=experiment.id,
                    name=name,
                    lifecycle=experiment.lifecycle.value,
                    created_at=experiment.created_at,
                    project=project,
                )
            )
            payload = {"name": name, "project": project}
            event = audit.record(conn, "experiment.create", "experiment", experiment.id, payload)
        self._audited(event)
        return experiment

    def get_experiment(self, experiment_id: str) -> Experiment:
        with read_connection(self.engine) as conn:
            row = conn.execute(
                select(t.experiments).where(t.experiments.c.id == experiment_id)
            ).first()
        if row is None:
            raise missing.experiment(experiment_id)
        return _experiment(row)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with read_connection(self.engine) as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
        return None if row is None else _experiment(row)

    def list_experiments(self) -> list[Experiment]:
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                select(t.experiments).order_by(t.experiments.c.created_at, t.experiments.c.id)
            )
            return [_experiment(row) for row in rows]

    # runs

    def create_run(self, new: NewRun) -> Run:
        checked, run_id = check_new_run(new), new_id()
        with write_transaction(self.engine) as conn:
            pk, event = _insert_run(conn, run_id, checked)
            if not PIPELINE_TAGS.isdisjoint(checked.tags):
                pipelines.refresh(conn, pk)
        self._audited(event)
        self._runs_added(1)
        return self.get_run(run_id)

    def record_runs(self, records: Sequence[RunRecord]) -> list[Run]:
        checked = [_checked_record(index, record) for index, record in enumerate(records)]
        ids = [new_id() for _ in checked]
        events: list[AuditEvent] = []
        with write_transaction(self.engine) as conn:
            for run_id, (record, batch) in zip(ids, checked, strict=True):
                pk, created = _insert_run(conn, run_id, record.new)
                events.append(created)
                if record.params or batch:
                    events.append(write_batch(conn, pk, run_id, batch, record.params, {}))
                if record.used or record.produced:
                    events.append(insert_lineage(conn, run_id, record.used, record.produced))
                events.append(_set_ended(conn, pk, run_id, record.status, record.end_time))
        for event in events:
            self._audited(event)
        self._runs_added(len(ids))
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(t.runs).where(t.runs.c.id.in_(ids))).all()
        found = {row.id: summary.run_from_row(row) for row in rows}
        return [found[run_id] for run_id in ids]

    def get_run(self, run_id: str) -> Run:
        with read_connection(self.engine) as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
            if row is None:
                raise missing.run(run_id)
            return summary.run_from_row(row)

    def resolve_run_id(self, ref: str, projects: frozenset[str] | None = None) -> str:
        """The run an id or a unique prefix names, among the runs of ``projects`` (every
        run: None), so the answer names no run of any other project.

        Raises:
            InvalidInput: not an id or a prefix of 8 characters or more.
            NotFound: no run (of those projects) has it.
            AmbiguousReference: several do; naming a few.
        """
        prefix, r, e = check_id_reference(ref), t.runs.c, t.experiments.c
        if len(prefix) == ID_LENGTH:
            statement = select(r.id).where(r.id == prefix)
        else:
            statement = (
                select(r.id)
                .where(r.id.startswith(prefix, autoescape=True))
                .order_by(r.id)
                .limit(_SHOWN_MATCHES + 1)
            )
        if projects is not None:
            statement = statement.join(t.experiments, e.id == r.experiment_id).where(
                e.project.in_(sorted(projects))
            )
        with read_connection(self.engine) as conn:
            found = conn.execute(statement).all()
        if not found:
            raise missing.run(ref)
        if len(found) > 1:
            shown = ", ".join(row.id for row in found[:_SHOWN_MATCHES])
            more = " …" if len(found) > _SHOWN_MATCHES else ""
            raise AmbiguousReference(
                f"run id prefix {ref!r} matches several runs ({shown}{more}); give more characters"
            )
        return str(found[0].id)

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        check_int64(end_time, "end_time")
        with write_transaction(self.engine) as conn:
            pk = run_for_write(conn, run_id, f"end run {run_id}", active=False)
            started = conn.execute(select(t.runs.c.start_time).where(t.runs.c.pk == pk))
            check_ending(status, end_time, started.scalar_one())
            event = _set_ended(conn, pk, run_id, status, end_time)
        self._audited(event)
        return self.get_run(run_id)

    def set_run_deleted(self, run_id: str, deleted: bool) -> Run:
        lifecycle = Lifecycle.DELETED if deleted else Lifecycle.ACTIVE
        with write_transaction(self.engine) as conn:
            what = f"{'delete' if deleted else 'restore'} run {run_id}"
            pk = run_for_write(conn, run_id, what, active=False)
            conn.execute(update(t.runs).where(t.runs.c.pk == pk).values(lifecycle=lifecycle.value))
            pipelines.refresh(conn, pk)
            action = "run.delete" if deleted else "run.restore"
            event = audit.record(conn, action, "run", run_id, {"lifecycle": lifecycle.value})
        self._audited(event)
        return self.get_run(run_id)


def _insert_run(conn: Connection, run_id: str, new: NewRun) -> tuple[int, AuditEvent]:
    """The new run's row (RUNNING) and its tags, once the principal may write there;
    ``new`` has been checked (``check_new_run``). Its user is decided by ``run_user``."""
    project = experiment_project(conn, new.experiment_id)
    hidden = missing.experiment(new.experiment_id)
    authorize(conn, Permission.WRITE, project, "start a run in this experiment", hidden)
    if new.parent_id is not None:
        _check_parent(conn, new.parent_id)
    new = dataclasses.replace(new, user=run_user(new.user, current()))
    inserted = conn.execute(
        t.runs.insert().values(
            id=run_id,
            experiment_id=new.experiment_id,
            name=new.name,
            status=RunStatus.RUNNING.value,
            start_time=new.start_time,
            end_time=None,
            user_name=new.user,
            parent_id=new.parent_id,
            git_commit=new.git_commit,
            source=new.source,
            lifecycle=Lifecycle.ACTIVE.value,
            tags_json=summary.string_map_json(dict(new.tags)),
        )
    )
    pk = int(inserted.inserted_primary_key[0])  # type: ignore[index]  # an INSERT has one
    if new.tags:
        rows = [{"run_pk": pk, "key": k, "value": v} for k, v in new.tags.items()]
        conn.execute(t.tags.insert(), rows)
    return pk, audit.record(conn, "run.create", "run", run_id, new_run_to_dict(new))


def _check_parent(conn: Connection, parent_id: str) -> None:
    """A parent must be a run the acting principal may read. One it may not read is
    refused as one that does not exist: the answer tells nothing of other projects."""
    project, hidden = run_project(conn, parent_id), missing.run(parent_id, "parent run")
    if project is None:
        raise hidden
    authorize(conn, Permission.READ, project, "name this parent run", hidden)


def _set_ended(
    conn: Connection, pk: int, run_id: str, status: RunStatus, end_time: int
) -> AuditEvent:
    conn.execute(
        update(t.runs).where(t.runs.c.pk == pk).values(status=status.value, end_time=end_time)
    )
    pipelines.refresh(conn, pk)
    payload = {"status": status.value, "end_time": end_time}
    return audit.record(conn, "run.end", "run", run_id, payload)


def _checked_record(index: int, record: RunRecord) -> tuple[RunRecord, MetricBatch]:
    """The record with its params and tags checked, and its metrics as a batch.

    Raises:
        InvalidInput: naming the record (``records[2]``) and what is wrong with it.
    """
    try:
        new = check_new_run(record.new)
        check_ending(record.status, record.end_time, new.start_time)
        batch = as_batch(record.metrics)
        for key in batch:
            check_key(key, "metrics")
        check_digests(record.used, record.produced)
        checked = dataclasses.replace(record, new=new, params=check_params(record.params))
    except InvalidInput as exc:
        raise InvalidInput(f"records[{index}]: {exc.message}") from None
    return checked, batch


def _experiment(row: Row[Any]) -> Experiment:
    return Experiment(row.id, row.name, row.created_at, Lifecycle(row.lifecycle), row.project)
