"""Pipeline runs, step runs and the step cache, kept from the runs' system tags.

The runs and their tags stay the source of truth, and what searches and ``cairn runs
show`` read; these tables answer what a pipeline asks — which finished step run holds
the output for a cache key, which steps a pipeline run had — in one indexed query. A
write that changes what they are made of (a run's tags in ``cairn.core.pipeline.TAGS``,
its status, whether it is deleted) rewrites the run's rows here in its own transaction,
so they are never ahead of or behind the run, however it was recorded: one call at a
time, whole in a batch, through a server. They are made of system tags only, which no
account but the run's own may write (``system_tags``); whether a cached output may be
loaded is still the reader's to decide (``cairn.pipelines.trust``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, bindparam, delete, select

from cairn.core.ids import check_id
from cairn.core.limits import check_text
from cairn.core.pipeline import (
    CACHE_KEY,
    OUTPUT_DIGEST,
    PIPELINE,
    PIPELINE_KIND,
    RUN_KIND,
    STEP,
    STEP_STATE,
    TAGS,
    check_cache_key,
    is_cache_key,
)
from cairn.core.run import Lifecycle, Run, RunStatus, ViewType
from cairn.stores.metadata import schema as t
from cairn.stores.metadata import summary
from cairn.stores.metadata.engine import read_connection
from cairn.stores.metadata.lookup import experiment_project, run_key
from cairn.stores.metadata.search import in_view

_ENDED_STATES = {RunStatus.RUNNING: "running", RunStatus.FAILED: "failed",
                 RunStatus.KILLED: "killed"}  # fmt: skip
_TABLES = (t.pipeline_runs, t.step_runs, t.cache_entries)
# Built once: a pipeline's cached steps are recorded many at a time, each refreshed.
_r, _tg = t.runs.c, t.tags.c
_RUN_COLUMNS = (_r.pk, _r.id, _r.experiment_id, _r.status, _r.lifecycle, _r.user_name,
                _r.parent_id, _r.start_time)  # fmt: skip
_RUN_AND_TAGS: Select[Any] = (
    select(*_RUN_COLUMNS, _tg.key, _tg.value)
    .select_from(t.runs.outerjoin(t.tags, (_tg.run_pk == _r.pk) & _tg.key.in_(sorted(TAGS))))
    .where(_r.pk == bindparam("pk"))
)
_DELETES = [delete(table).where(table.c.run_pk == bindparam("pk")) for table in _TABLES]


def refresh(conn: Connection, pk: int) -> None:
    """Rewrite the pipeline rows of the run with key ``pk`` from what it records now."""
    rows = conn.execute(_RUN_AND_TAGS, {"pk": pk}).all()
    run, tags = rows[0], {row.key: row.value for row in rows if row.key is not None}
    if not tags:  # tags are never taken away: a run without them never had rows here
        return
    for statement in _DELETES:
        conn.execute(statement, {"pk": pk})
    if tags.get(RUN_KIND) == PIPELINE_KIND:
        conn.execute(t.pipeline_runs.insert(), _pipeline_run(run, tags))
    if STEP in tags:
        conn.execute(t.step_runs.insert(), _step_run(run, tags))
    if _is_cache_entry(run, tags):
        conn.execute(t.cache_entries.insert(), _cache_entry(run, tags))


def newest_entry(
    conn: Connection, experiment_id: str, cache_key: str, user: str | None
) -> Row[Any] | None:
    """The ``runs`` row of the newest cache entry for ``cache_key`` (of ``user``'s, when
    given): the run started last, of those the one recorded last — the first a search
    would show (``cairn.core.filter.DEFAULT_ORDER``)."""
    c = t.cache_entries.c
    statement = (
        select(t.runs)
        .select_from(t.cache_entries.join(t.runs, t.runs.c.pk == c.run_pk))
        .where(c.experiment_id == experiment_id, c.cache_key == cache_key)
    )
    if user is not None:
        statement = statement.where(c.user_name == user)
    newest = statement.order_by(c.start_time.desc(), c.run_pk.desc()).limit(1)
    return conn.execute(newest).first()


class SqlPipelineRuns:
    """``cached_output`` and ``child_runs`` of the metadata store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def cached_output(
        self, experiment_id: str, cache_key: str, user: str | None = None
    ) -> Run | None:
        check_id(experiment_id, "experiment_id")
        check_cache_key(cache_key)
        if user is not None:
            check_text(user, "user")
        with read_connection(self.engine) as conn:
            row = newest_entry(conn, experiment_id, cache_key, user)
            if row is None:
                experiment_project(conn, experiment_id)  # NotFound: no such experiment
                return None
        return summary.run_from_row(row)

    def child_runs(self, run_id: str, view: ViewType = ViewType.ACTIVE) -> list[Run]:
        check_id(run_id, "run_id")
        r = t.runs.c
        statement = (
            select(t.runs)
            .where(r.parent_id == run_id, *in_view(view))
            .order_by(r.start_time.desc(), r.pk.desc())  # as a search would list them
        )
        with read_connection(self.engine) as conn:
            rows = conn.execute(statement).all()
            if not rows:
                run_key(conn, run_id)  # NotFound: no such run
        return [summary.run_from_row(row) for row in rows]


def _pipeline_run(run: Row[Any], tags: dict[str, str]) -> dict[str, Any]:
    return {
        "run_pk": run.pk,
        "run_id": run.id,
        "experiment_id": run.experiment_id,
        "pipeline": tags.get(PIPELINE, ""),
        "parent_run_id": run.parent_id,
        "start_time": run.start_time,
    }


def _step_run(run: Row[Any], tags: dict[str, str]) -> dict[str, Any]:
    status = RunStatus(run.status)
    state = _ENDED_STATES.get(status) or ("cached" if tags.get(STEP_STATE) == "cached" else "ran")
    return {
        "run_pk": run.pk,
        "run_id": run.id,
        "pipeline_run_id": run.parent_id,
        "experiment_id": run.experiment_id,
        "step": tags[STEP],
        "state": state,
        "cache_key": tags.get(CACHE_KEY),
        "output_digest": tags.get(OUTPUT_DIGEST),
    }


def _is_cache_entry(run: Row[Any], tags: dict[str, str]) -> bool:
    """A finished run, not deleted, whose output is recorded under a cache key."""
    return (
        run.status == RunStatus.FINISHED.value
        and run.lifecycle == Lifecycle.ACTIVE.value
        and is_cache_key(tags.get(CACHE_KEY, ""))
        and bool(tags.get(OUTPUT_DIGEST))
    )


def _cache_entry(run: Row[Any], tags: dict[str, str]) -> dict[str, Any]:
    return {
        "run_pk": run.pk,
        "experiment_id": run.experiment_id,
        "cache_key": tags[CACHE_KEY],
        "user_name": run.user_name,
        "output_digest": tags[OUTPUT_DIGEST],
        "start_time": run.start_time,
    }
