"""The metadata store over SQL: SQLite by default, PostgreSQL for teams.

Writes happen in one transaction each (``write_transaction``), so a failing batch leaves
nothing behind. Metric ingest is the hot path: a batch becomes one packed chunk per metric
key (see ``chunks.py``) plus one upsert of the latest point per key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from cairn.core import missing
from cairn.core.access import Permission, Principal
from cairn.core.actor import current
from cairn.core.artifact import ArtifactEntry, check_digest, check_entries
from cairn.core.audit import AuditEvent
from cairn.core.clock import now_ms
from cairn.core.codec import new_run_to_dict
from cairn.core.data import parse_data_ref
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.ids import ID_LENGTH, check_id, check_id_reference, new_id
from cairn.core.limits import check_int64, check_key, check_params, check_tags, check_text
from cairn.core.lineage import Node
from cairn.core.packing import pack
from cairn.core.pipeline import TAGS as PIPELINE_TAGS
from cairn.core.pipeline import check_cache_key
from cairn.core.run import (
    Experiment,
    Lifecycle,
    Metric,
    MetricBatch,
    MetricPoint,
    MetricSeries,
    NewRun,
    Run,
    RunRecord,
    RunStatus,
    ViewType,
    as_batch,
    check_ending,
    check_new_run,
    run_user,
)
from cairn.core.search import RunPage, RunQuery
from cairn.errors import (
    AlreadyExists,
    AmbiguousReference,
    InvalidInput,
    InvalidState,
    ParamConflict,
)
from cairn.localfs.digest import digest_of, hasher
from cairn.stores.metadata import audit, manifest, objects, pipelines, summary
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.audit import (
    CHECKPOINT_EVERY_EVENTS,
    CHECKPOINT_EVERY_SECONDS,
    AuditLog,
    Checkpointer,
)
from cairn.stores.metadata.chunks import history
from cairn.stores.metadata.data import find_version, require_project
from cairn.stores.metadata.engine import (
    dialect_insert,
    open_engine,
    read_connection,
    write_transaction,
)
from cairn.stores.metadata.grants import acting, authorize, authorize_objects
from cairn.stores.metadata.lineage import readable_nodes
from cairn.stores.metadata.migrate import ensure_schema
from cairn.stores.metadata.search import compile_search, encode_page_token, in_view
from cairn.stores.metadata.system_tags import check_system_tags

if TYPE_CHECKING:  # the key is only passed through; cryptography loads when used
    from cairn.localfs.signing import SigningKey

_SHOWN_MATCHES = 5
# SQLite plans a search well only with table statistics, and only exact ones: a sampled
# ANALYZE misjudges how many runs a metric key has and keeps the slow plan. A full ANALYZE
# costs ~90 ms on 10,000 runs, so it runs only when the statistics are missing or the
# runs have doubled since they were taken (checked at open and every N new runs).
_STATISTICS_FROM_RUNS = 1_000


class SqlMetadataStore:
    """The :class:`~cairn.core.ports.MetadataStore` over a SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = open_engine(url)
        ensure_schema(self.engine, where=_safe_url(url))
        self._runs_created = 0
        self._checkpointer: Checkpointer | None = None
        self._refresh_statistics()

    def enable_checkpoints(
        self,
        key: Callable[[], SigningKey],
        export_to: str,
        every_events: int = CHECKPOINT_EVERY_EVENTS,
        every_seconds: float = CHECKPOINT_EVERY_SECONDS,
    ) -> None:
        """Sign and export the audit trail's head every so many events, so many seconds
        after an unsigned write, and at close, with the key ``key()`` returns (called when
        the first checkpoint is due)."""
        self._checkpointer = Checkpointer(
            AuditLog(self.engine), key, export_to, every_events, every_seconds
        )

    def _audited(self, event: AuditEvent) -> None:
        """After the transaction that appended ``event`` has committed."""
        if self._checkpointer is not None:
            self._checkpointer.written(event)

    def __repr__(self) -> str:
        return f"SqlMetadataStore({_safe_url(self.url)!r})"

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()  # sign what was written since the last checkpoint
        self.engine.dispose()

    # experiments

    def create_experiment(self, name: str, project: str = DEFAULT_PROJECT) -> Experiment:
        experiment = Experiment(new_id(), name, now_ms(), Lifecycle.ACTIVE, project)
        try:
            with write_transaction(self.engine) as conn:
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
                event = audit.record(
                    conn, "experiment.create", "experiment", experiment.id, payload
                )
        except SqlIntegrityError as exc:
            raise AlreadyExists(f"experiment {name!r} already exists") from exc
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
            pk, event = self._insert_run(conn, run_id, checked)
            if not PIPELINE_TAGS.isdisjoint(checked.tags):
                pipelines.refresh(conn, pk)
        self._audited(event)
        self._count_new_runs(1)
        return self.get_run(run_id)

    def record_runs(self, records: Sequence[RunRecord]) -> list[Run]:
        checked = [_checked_record(index, record) for index, record in enumerate(records)]
        ids = [new_id() for _ in checked]
        events: list[AuditEvent] = []
        with write_transaction(self.engine) as conn:
            for run_id, (record, batch) in zip(ids, checked, strict=True):
                pk, created = self._insert_run(conn, run_id, record.new)
                events.append(created)
                if record.params or batch:
                    events.append(self._write_batch(conn, pk, run_id, batch, record.params, {}))
                if record.used or record.produced:
                    used, produced = record.used, record.produced
                    events.append(self._insert_lineage(conn, run_id, used, produced))
                events.append(self._set_ended(conn, pk, run_id, record.status, record.end_time))
        for event in events:
            self._audited(event)
        self._count_new_runs(len(ids))
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(t.runs).where(t.runs.c.id.in_(ids))).all()
        found = {row.id: summary.run_from_row(row) for row in rows}
        return [found[run_id] for run_id in ids]

    def _insert_run(self, conn: Connection, run_id: str, new: NewRun) -> tuple[int, AuditEvent]:
        """The new run's row (RUNNING) and its tags, once the principal may write there;
        ``new`` has been checked (``check_new_run``). Its user is decided by ``run_user``."""
        project = self._experiment_project(conn, new.experiment_id)
        hidden = missing.experiment(new.experiment_id)
        authorize(conn, Permission.WRITE, project, "start a run in this experiment", hidden)
        if new.parent_id is not None:
            self._check_parent(conn, new.parent_id)
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

    def _check_parent(self, conn: Connection, parent_id: str) -> None:
        """A parent must be a run the acting principal may read. One it may not read is
        refused as one that does not exist: the answer tells nothing of other projects."""
        project, hidden = self._run_project(conn, parent_id), missing.run(parent_id, "parent run")
        if project is None:
            raise hidden
        authorize(conn, Permission.READ, project, "name this parent run", hidden)

    def _count_new_runs(self, created: int) -> None:
        before = self._runs_created
        self._runs_created += created
        if self._runs_created // _STATISTICS_FROM_RUNS > before // _STATISTICS_FROM_RUNS:
            self._refresh_statistics()

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
            pk = self._run_for_write(conn, run_id, f"end run {run_id}", active=False)
            started = conn.execute(select(t.runs.c.start_time).where(t.runs.c.pk == pk))
            check_ending(status, end_time, started.scalar_one())
            event = self._set_ended(conn, pk, run_id, status, end_time)
        self._audited(event)
        return self.get_run(run_id)

    def _set_ended(
        self, conn: Connection, pk: int, run_id: str, status: RunStatus, end_time: int
    ) -> AuditEvent:
        conn.execute(
            update(t.runs).where(t.runs.c.pk == pk).values(status=status.value, end_time=end_time)
        )
        pipelines.refresh(conn, pk)
        payload = {"status": status.value, "end_time": end_time}
        return audit.record(conn, "run.end", "run", run_id, payload)

    def set_run_deleted(self, run_id: str, deleted: bool) -> Run:
        lifecycle = Lifecycle.DELETED if deleted else Lifecycle.ACTIVE
        with write_transaction(self.engine) as conn:
            what = f"{'delete' if deleted else 'restore'} run {run_id}"
            pk = self._run_for_write(conn, run_id, what, active=False)
            conn.execute(update(t.runs).where(t.runs.c.pk == pk).values(lifecycle=lifecycle.value))
            pipelines.refresh(conn, pk)
            action = "run.delete" if deleted else "run.restore"
            event = audit.record(conn, action, "run", run_id, {"lifecycle": lifecycle.value})
        self._audited(event)
        return self.get_run(run_id)

    # recording

    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | Sequence[MetricPoint] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        batch_id: str | None = None,
    ) -> None:
        params, tags = check_params(params or {}), check_tags(tags or {})
        batch = as_batch(metrics)
        for key in batch:
            check_key(key, "metrics")
        with write_transaction(self.engine) as conn:
            pk = self._run_for_write(conn, run_id, f"log to run {run_id}")
            if batch_id is not None and not self._claim_batch(conn, pk, batch_id):
                return  # this batch was stored before; its retry changes nothing
            check_system_tags(conn, pk, run_id, tags)
            event = self._write_batch(conn, pk, run_id, batch, params, tags, batch_id)
        self._audited(event)

    def _write_batch(
        self,
        conn: Connection,
        pk: int,
        run_id: str,
        batch: MetricBatch,
        params: Mapping[str, str],
        tags: Mapping[str, str],
        batch_id: str | None = None,
    ) -> AuditEvent:
        if params:
            self._insert_params(conn, pk, run_id, params)
        if tags:
            self._upsert(conn, t.tags, ["run_pk", "key"], ["value"], _keyed_rows(pk, tags))
        digest = self._insert_chunks(conn, pk, batch) if batch else None
        summary.refresh(conn, pk, params=bool(params), tags=bool(tags), metrics=bool(batch))
        if not PIPELINE_TAGS.isdisjoint(tags):
            pipelines.refresh(conn, pk)
        # One event per batch, not per point: the points are named by their digest.
        payload = {
            "batch_id": batch_id,
            "metrics": {key: len(series) for key, series in batch.items()},
            "params": dict(params),
            "tags": dict(tags),
        }
        return audit.record(conn, "run.log_batch", "run", run_id, payload, digest)

    def _claim_batch(self, conn: Connection, pk: int, batch_id: str) -> bool:
        seen = conn.execute(
            select(t.ingest_batches.c.batch_id).where(t.ingest_batches.c.batch_id == batch_id)
        ).first()
        if seen is not None:
            return False
        conn.execute(t.ingest_batches.insert().values(batch_id=batch_id, run_pk=pk))
        return True

    def _insert_params(
        self, conn: Connection, pk: int, run_id: str, params: Mapping[str, str]
    ) -> None:
        stored = conn.execute(
            select(t.params.c.key, t.params.c.value).where(
                t.params.c.run_pk == pk, t.params.c.key.in_(list(params))
            )
        )
        existing = {row.key: row.value for row in stored}
        for key, value in params.items():
            if key in existing and existing[key] != value:
                raise ParamConflict(
                    f"param {key!r} of run {run_id} is already {existing[key]!r}; params are "
                    f"immutable, so it cannot become {value!r} (log it under another key)"
                )
        new = {k: v for k, v in params.items() if k not in existing}
        if new:
            conn.execute(t.params.insert(), _keyed_rows(pk, new))

    def _insert_chunks(self, conn: Connection, pk: int, batch: MetricBatch) -> str:
        """Store the batch's chunks; return the digest of what was stored, for the audit
        trail: BLAKE3 over each key and its packed steps, timestamps and values."""
        state = hasher()
        rows = []
        for key, series in batch.items():
            if not len(series):
                continue
            columns = (
                pack(series.steps, "q"),
                pack(series.timestamps, "q"),
                pack(series.values, "d"),
            )
            for part in (key.encode(), *columns):
                state.update(len(part).to_bytes(8, "little"))
                state.update(part)
            steps, timestamps, values = columns
            rows.append(
                {
                    "run_pk": pk,
                    "key": key,
                    "count": len(series),
                    "first_step": min(series.steps),
                    "last_step": max(series.steps),
                    "steps": steps,
                    "timestamps": timestamps,
                    "values": values,
                }
            )
        if rows:
            conn.execute(t.metric_chunks.insert(), rows)
            self._upsert_latest(conn, [_latest_row(pk, k, s) for k, s in batch.items() if len(s)])
        return digest_of(state)

    def _upsert_latest(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        statement = dialect_insert(conn, t.latest_metrics)
        new, old = statement.excluded, t.latest_metrics.c
        newer = (new.step > old.step) | ((new.step == old.step) & (new.timestamp >= old.timestamp))
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["run_pk", "key"],
                set_={"value": new.value, "step": new.step, "timestamp": new.timestamp},
                where=newer,
            ),
            rows,
        )

    def _upsert(
        self,
        conn: Connection,
        table: Table,
        keys: list[str],
        values: list[str],
        rows: list[dict[str, Any]],
    ) -> None:
        statement = dialect_insert(conn, table)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=keys, set_={c: statement.excluded[c] for c in values}
            ),
            rows,
        )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        c = t.metric_chunks.c
        with read_connection(self.engine) as conn:
            pk = self._run_key(conn, run_id)
            rows = conn.execute(
                select(c.steps, c.timestamps, c["values"])
                .where(c.run_pk == pk, c.key == key)
                .order_by(c.id)
            )
            return history(key, ((r[0], r[1], r[2]) for r in rows))

    # search

    def search_runs(self, query: RunQuery) -> RunPage:
        statement, fingerprint = compile_search(query, self.engine.dialect.name)
        with read_connection(self.engine) as conn:
            page = conn.execute(statement).all()
            more = len(page) > query.limit
            page = page[: query.limit]
            token = encode_page_token(fingerprint, list(page[-1][1:])) if more else None
            pks = [row[0] for row in page]
            rows = conn.execute(select(t.runs).where(t.runs.c.pk.in_(pks))).all() if pks else []
            by_pk = {row.pk: row for row in rows}
            runs = [summary.run_from_row(by_pk[pk]) for pk in pks]
        return RunPage(runs, token)

    # pipelines (see pipelines.py)

    def cached_output(
        self, experiment_id: str, cache_key: str, user: str | None = None
    ) -> Run | None:
        check_id(experiment_id, "experiment_id")
        check_cache_key(cache_key)
        if user is not None:
            check_text(user, "user")
        with read_connection(self.engine) as conn:
            row = pipelines.newest_entry(conn, experiment_id, cache_key, user)
            if row is None:
                self._experiment_project(conn, experiment_id)  # NotFound: no such experiment
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
                self._run_key(conn, run_id)  # NotFound: no such run
        return [summary.run_from_row(row) for row in rows]

    # project scopes (see cairn.core.ports.ProjectScopes)

    def experiment_project(self, experiment_id: str) -> str:
        with read_connection(self.engine) as conn:
            return self._experiment_project(conn, experiment_id)

    def run_project(self, run_id: str) -> str:
        with read_connection(self.engine) as conn:
            found = self._run_project(conn, run_id)
        if found is None:
            raise missing.run(run_id)
        return found

    def experiments_in(self, projects: frozenset[str]) -> list[str]:
        e = t.experiments.c
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(e.id).where(e.project.in_(sorted(projects))))
            return [str(row.id) for row in rows]

    def readable_objects(self, principal: Principal, digests: Iterable[str]) -> set[str]:
        with read_connection(self.engine) as conn:
            return objects.readable(conn, principal, digests)

    def readable_nodes(self, principal: Principal, nodes: Iterable[Node]) -> set[Node]:
        with read_connection(self.engine) as conn:
            return readable_nodes(conn, principal, nodes)

    def held_objects(self, principal: Principal, digests: Iterable[str]) -> set[str]:
        with read_connection(self.engine) as conn:
            return objects.held(conn, principal, digests)

    def record_upload(self, digest: str, principal: Principal) -> None:
        with write_transaction(self.engine) as conn:
            objects.record_upload(conn, check_digest(digest), principal.name)

    # artifacts

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        # The last entry for a path wins, as it would in a directory.
        rows_by_path = {
            e.path: {"path": e.path, "digest": e.digest, "size": e.size}
            for e in check_entries(entries)
        }
        with write_transaction(self.engine) as conn:
            what = f"add artifacts to run {run_id}"
            pk = self._run_for_write(conn, run_id, what)
            authorize_objects(conn, {str(row["digest"]) for row in rows_by_path.values()}, what)
            manifest.check_clashes(conn, pk, rows_by_path)
            rows = [{"run_pk": pk, **row} for row in rows_by_path.values()]
            if rows:
                self._upsert(conn, t.run_artifacts, ["run_pk", "path"], ["digest", "size"], rows)
            payload = {"artifacts": [[r["path"], r["digest"], r["size"]] for r in rows]}
            event = audit.record(conn, "run.add_artifacts", "run", run_id, payload)
        self._audited(event)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        a = t.run_artifacts.c
        with read_connection(self.engine) as conn:
            pk = self._run_key(conn, run_id)
            statement = select(a.path, a.digest, a.size).where(a.run_pk == pk).order_by(a.path)
            if prefix:
                statement = statement.where(
                    (a.path == prefix) | a.path.startswith(f"{prefix}/", autoescape=True)
                )
            return [ArtifactEntry(r.path, r.digest, r.size) for r in conn.execute(statement)]

    # inputs

    def log_inputs(self, run_id: str, refs: Sequence[str]) -> list[str]:
        parsed = [parse_data_ref(ref) for ref in refs]
        with write_transaction(self.engine) as conn:
            self._run_for_write(conn, run_id, f"record the inputs of run {run_id}")
            # A run's lineage must not reach into data its writer may not read: such a
            # version is not found, before its reference is resolved to a number.
            reader = acting(conn)
            resolved = sorted({find_version(conn, ref, reader).ref for ref in parsed})
            now = now_ms()
            rows = [
                {"src_kind": "run", "src_id": run_id, "relation": "used",
                 "dst_kind": "data_version", "dst_id": ref, "created_at": now}
                for ref in resolved
            ]  # fmt: skip
            if rows:
                conn.execute(dialect_insert(conn, t.lineage_edges).on_conflict_do_nothing(), rows)
            event = audit.record(conn, "run.log_input", "run", run_id, {"inputs": resolved})
        self._audited(event)
        return resolved

    def get_run_inputs(self, run_id: str) -> list[str]:
        e = t.lineage_edges.c
        with read_connection(self.engine) as conn:
            self._run_key(conn, run_id)
            found = conn.execute(
                select(e.dst_id)
                .where(e.src_kind == "run", e.src_id == run_id, e.relation == "used")
                .where(e.dst_kind == "data_version")
                .order_by(e.dst_id)
            ).scalars()
            return [str(ref) for ref in found]

    def log_lineage(self, run_id: str, used: Sequence[str], produced: Sequence[str]) -> None:
        _check_digests(used, produced)
        with write_transaction(self.engine) as conn:
            self._run_for_write(conn, run_id, f"record the lineage of run {run_id}")
            event = self._insert_lineage(conn, run_id, used, produced)
        self._audited(event)

    def _insert_lineage(
        self, conn: Connection, run_id: str, used: Sequence[str], produced: Sequence[str]
    ) -> AuditEvent:
        edges = sorted({("used", d) for d in used} | {("produced", d) for d in produced})
        now = now_ms()
        rows = [
            {"src_kind": "run", "src_id": run_id, "relation": relation,
             "dst_kind": "object", "dst_id": digest, "created_at": now}
            for relation, digest in edges
        ]  # fmt: skip
        if rows:
            conn.execute(dialect_insert(conn, t.lineage_edges).on_conflict_do_nothing(), rows)
        payload = {"used": sorted(set(used)), "produced": sorted(set(produced))}
        return audit.record(conn, "run.log_lineage", "run", run_id, payload)

    def get_run_lineage(self, run_id: str) -> tuple[list[str], list[str]]:
        e = t.lineage_edges.c
        with read_connection(self.engine) as conn:
            self._run_key(conn, run_id)
            found = conn.execute(
                select(e.relation, e.dst_id)
                .where(e.src_kind == "run", e.src_id == run_id, e.dst_kind == "object")
                .order_by(e.dst_id)
            ).all()
        used = [str(r.dst_id) for r in found if r.relation == "used"]
        return used, [str(r.dst_id) for r in found if r.relation == "produced"]

    # helpers

    def _refresh_statistics(self) -> None:
        """SQLite only: PostgreSQL's autovacuum keeps its statistics itself."""
        if self.engine.dialect.name != "sqlite":
            return
        with read_connection(self.engine) as conn:
            runs = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
            analyzed = _analyzed_runs(conn)
        if runs >= _STATISTICS_FROM_RUNS and runs >= 2 * analyzed:
            with write_transaction(self.engine) as conn:
                conn.exec_driver_sql("PRAGMA analysis_limit=0")  # exact, not sampled
                conn.exec_driver_sql("ANALYZE")

    def _experiment_project(self, conn: Connection, experiment_id: str) -> str:
        e = t.experiments.c
        found = conn.execute(select(e.project).where(e.id == experiment_id)).scalar()
        if found is None:
            raise missing.experiment(experiment_id)
        return str(found)

    def _run_project(self, conn: Connection, run_id: str) -> str | None:
        e, r = t.experiments.c, t.runs.c
        statement = (
            select(e.project).select_from(t.runs.join(t.experiments, e.id == r.experiment_id))
        ).where(r.id == run_id)
        found = conn.execute(statement).scalar()
        return None if found is None else str(found)

    def _run_key(self, conn: Connection, run_id: str, what: str = "run") -> int:
        pk = conn.execute(select(t.runs.c.pk).where(t.runs.c.id == run_id)).scalar()
        if pk is None:
            raise missing.run(run_id, what)
        return int(pk)

    def _run_for_write(self, conn: Connection, run_id: str, what: str, active: bool = True) -> int:
        """The run's key, once the acting principal may ``what`` (see ``grants``).

        The run's row stays locked until the transaction ends (PostgreSQL; SQLite has one
        writer at a time anyway), so concurrent writes to a run rewrite its copies in turn.
        ``active``: the write needs a run that is not deleted.
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


def _check_digests(used: Sequence[str], produced: Sequence[str]) -> None:
    for digest in (*used, *produced):
        check_digest(digest)


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
        _check_digests(record.used, record.produced)
        checked = dataclasses.replace(record, new=new, params=check_params(record.params))
    except InvalidInput as exc:
        raise InvalidInput(f"records[{index}]: {exc.message}") from None
    return checked, batch


def _analyzed_runs(conn: Connection) -> int:
    """How many runs the stored SQLite statistics describe (0 when there are none)."""
    if not inspect(conn).has_table("sqlite_stat1"):
        return 0
    stat = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs'").scalar()
    return int(str(stat).split()[0]) if stat else 0


def _latest_row(pk: int, key: str, series: MetricSeries) -> dict[str, Any]:
    best = series.latest()
    return {
        "run_pk": pk,
        "key": key,
        "value": _stored(series.values[best]),
        "step": series.steps[best],
        "timestamp": series.timestamps[best],
    }


def _keyed_rows(pk: int, values: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"run_pk": pk, "key": k, "value": v} for k, v in values.items()]


def _experiment(row: Row[Any]) -> Experiment:
    return Experiment(row.id, row.name, row.created_at, Lifecycle(row.lifecycle), row.project)


def _stored(value: float) -> float | None:
    return None if math.isnan(value) else value


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
