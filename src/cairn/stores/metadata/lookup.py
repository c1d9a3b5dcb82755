"""Finding an experiment or a run inside a transaction: its key, its project, and the run
a write may change. Every aggregate of runs starts a write or a read here."""

from __future__ import annotations

from sqlalchemy import Connection, select

from cairn.core import missing
from cairn.core.access import Permission
from cairn.core.run import Lifecycle
from cairn.errors import InvalidState
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.grants import authorize


def experiment_project(conn: Connection, experiment_id: str) -> str:
    """Raises:
    NotFound: no such experiment.
    """
    e = t.experiments.c
    found = conn.execute(select(e.project).where(e.id == experiment_id)).scalar()
    if found is None:
        raise missing.experiment(experiment_id)
    return str(found)


def run_project(conn: Connection, run_id: str) -> str | None:
    e, r = t.experiments.c, t.runs.c
    statement = (
        select(e.project).select_from(t.runs.join(t.experiments, e.id == r.experiment_id))
    ).where(r.id == run_id)
    found = conn.execute(statement).scalar()
    return None if found is None else str(found)


def run_key(conn: Connection, run_id: str, what: str = "run") -> int:
    """Raises:
    NotFound: no such run (called ``what`` in the message).
    """
    pk = conn.execute(select(t.runs.c.pk).where(t.runs.c.id == run_id)).scalar()
    if pk is None:
        raise missing.run(run_id, what)
    return int(pk)


def run_for_write(conn: Connection, run_id: str, what: str, active: bool = True) -> int:
    """The run's key, once the acting principal may ``what`` (see ``grants``).

    The run's row stays locked until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway), so concurrent writes to a run rewrite its copies in turn.
    ``active``: the write needs a run that is not deleted.

    Raises:
        NotFound: no such run, or one the principal may not read.
        PermissionDenied: the principal may read the run but not ``what``.
        InvalidState: ``active`` and the run is deleted.
    """
    r, e = t.runs.c, t.experiments.c
    row = conn.execute(
        select(r.pk, r.lifecycle, e.project)
        .select_from(t.runs.join(t.experiments, e.id == r.experiment_id))
        .where(r.id == run_id)
        .with_for_update(of=t.runs)
    ).first()
    if row is None:
        raise missing.run(run_id)
    authorize(conn, Permission.WRITE, row.project, what, missing.run(run_id))
    if active and row.lifecycle == Lifecycle.DELETED.value:
        raise InvalidState(
            f"run {run_id} is deleted; restore it first (`cairn runs restore {run_id}`)"
        )
    return int(row.pk)
