"""Datasets and data versions in the metadata store.

A new version is numbered, authorized and audited in one transaction; adding the same
manifest as the newest version changes nothing (the newest is returned). Two adds of one
dataset at once cannot both take the same number: the unique (dataset, version) key
refuses the second, which then tries again with the next number.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Row, func, insert, select, union

from cairn.core import missing
from cairn.core.access import Principal, require_visible
from cairn.core.actor import current
from cairn.core.clock import now_ms
from cairn.core.data import (
    DataKind,
    DataRef,
    DataVersion,
    NewDataVersion,
    check_dataset_name,
    check_same_place,
    check_version_path,
)
from cairn.core.limits import MAX_MESSAGE, check_optional_text
from cairn.errors import AlreadyExists, AmbiguousReference
from cairn.stores.metadata import audit
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.driver_errors import unique_violation
from cairn.stores.metadata.engine import dialect_insert, read_connection, write_transaction
from cairn.stores.metadata.grants import authorize_objects, authorize_to_add

_ATTEMPTS = 3  # numbering races between concurrent adds of one dataset
_SHOWN_MATCHES = 5


class SqlDataCatalog:
    """The :class:`~cairn.core.ports.DataCatalog` over a metadata database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_version(self, new: NewDataVersion) -> tuple[DataVersion, bool]:
        """The new version, True; or the newest one, False, if it has this manifest.

        Raises:
            InvalidInput: the name is not a valid dataset name; the path is not inside the
                project folder, or passes through a hidden folder (``.venv``), or is not
                where the dataset's newest version lives.
            NotFound: the project does not exist, or the caller may not read it (for a
                new dataset).
            AlreadyExists: the name is a dataset's of a project the caller may not read.
            PermissionDenied: the caller may not write in the dataset's project, or the
                version names an object the caller does not hold (see ``grants``).
        """
        check_dataset_name(new.name)
        check_version_path(new.path, new.kind)  # where every checkout of it will write
        check_optional_text(new.message, "message", MAX_MESSAGE)
        for attempt in range(_ATTEMPTS):
            try:
                with write_transaction(self.engine) as conn:
                    return self._add_version(conn, new)
            except AlreadyExists as exc:  # another writer took the name or the number first?
                if attempt == _ATTEMPTS - 1 or not unique_violation(exc):
                    raise
        raise AssertionError("unreachable")

    def _add_version(self, conn: Connection, new: NewDataVersion) -> tuple[DataVersion, bool]:
        d, v = t.datasets.c, t.data_versions.c
        name = new.name
        owner = conn.execute(select(d.project).where(d.name == name).with_for_update()).scalar()
        authorize_to_add(conn, "dataset", name, owner, new.project)
        project = new.project if owner is None else str(owner)
        if owner is None:
            require_project(conn, project)
            conn.execute(insert(t.datasets).values(name=name, project=project, created_at=now_ms()))
        held = {new.digest, new.profile, *new.objects} - {""}
        authorize_objects(conn, held, f"add a version of {name!r}")
        newest = conn.execute(
            select(t.data_versions).where(v.dataset == name).order_by(v.version.desc()).limit(1)
        ).first()
        if newest is not None:
            check_same_place(name, newest.path, new.path)
            if newest.digest == new.digest:
                return _version(newest, project), False
        number = 1 if newest is None else newest.version + 1
        created = DataVersion(
            name, number, project, new.digest, DataKind(new.kind), new.path, new.files,
            new.bytes, new.message, current().actor, now_ms(), new.profile,
        )  # fmt: skip
        conn.execute(
            insert(t.data_versions).values(
                dataset=name,
                version=number,
                digest=new.digest,
                kind=created.kind.value,
                path=new.path,
                files=new.files,
                bytes=new.bytes,
                message=new.message,
                created_by=created.created_by,
                created_at=created.created_at,
                profile=new.profile,
            )
        )
        rows = [{"digest": digest, "dataset": name} for digest in sorted(held)]
        conn.execute(dialect_insert(conn, t.data_objects).on_conflict_do_nothing(), rows)
        payload = {
            "path": new.path, "files": new.files, "bytes": new.bytes, "message": new.message,
            "profile": new.profile,
        }  # fmt: skip
        audit.record(conn, "data.version.create", "data_version", created.ref, payload, new.digest)
        return created, True

    def get_version(self, ref: DataRef) -> DataVersion:
        """Raises:
        NotFound: no such dataset or version.
        AmbiguousReference: a digest prefix matches several versions.
        """
        with read_connection(self.engine) as conn:
            return find_version(conn, ref)

    def list_versions(self, name: str) -> list[DataVersion]:
        """Newest first. Raises NotFound for an unknown dataset."""
        d, v = t.datasets.c, t.data_versions.c
        with read_connection(self.engine) as conn:
            project = conn.execute(select(d.project).where(d.name == name)).scalar()
            if project is None:
                raise missing.dataset(name)
            rows = conn.execute(
                select(t.data_versions).where(v.dataset == name).order_by(v.version.desc())
            ).all()
        return [_version(row, str(project)) for row in rows]

    def list_datasets(self) -> list[DataVersion]:
        """The newest version of every dataset, by name."""
        d, v = t.datasets.c, t.data_versions.c
        newest = (
            select(v.dataset, func.max(v.version).label("version")).group_by(v.dataset).subquery()
        )
        statement = (
            select(t.data_versions, d.project)
            .select_from(
                t.data_versions.join(
                    newest,
                    (newest.c.dataset == v.dataset) & (newest.c.version == v.version),
                ).join(t.datasets, d.name == v.dataset)
            )
            .order_by(v.dataset)
        )
        with read_connection(self.engine) as conn:
            return [_version(row, row.project) for row in conn.execute(statement).all()]


def recorded_objects(engine: Engine) -> set[str]:
    """Every object a run's artifacts, a model version's package or a data version refer
    to (what ``cairn data gc`` keeps)."""
    recorded = union(
        select(t.run_artifacts.c.digest),
        select(t.model_objects.c.digest),
        select(t.data_objects.c.digest),
    )
    with read_connection(engine) as conn:
        return {str(digest) for digest in conn.execute(recorded).scalars() if digest}


def find_version(conn: Connection, ref: DataRef, reader: Principal | None = None) -> DataVersion:
    """The version ``ref`` names, read on ``conn`` (so inside a caller's transaction too);
    for a ``reader``, only in a dataset it may read: another is not found, before the
    reference is resolved, so the answer tells nothing of its versions.

    Raises:
        NotFound: no such dataset or version (or none the reader may read).
        AmbiguousReference: a digest prefix matches several versions.
    """
    d, v = t.datasets.c, t.data_versions.c
    project = conn.execute(select(d.project).where(d.name == ref.name)).scalar()
    if project is None:
        raise missing.data_version(ref)
    if reader is not None:
        require_visible(reader, str(project), missing.data_version(ref))
    statement = select(t.data_versions).where(v.dataset == ref.name)
    if ref.version is not None:
        statement = statement.where(v.version == ref.version)
    elif ref.digest_prefix is not None:
        statement = statement.where(v.digest.startswith(f"blake3:{ref.digest_prefix}"))
    rows = conn.execute(statement.order_by(v.version.desc()).limit(_SHOWN_MATCHES + 1)).all()
    if not rows:
        raise missing.data_version(ref)
    if ref.digest_prefix is not None and len({r.digest for r in rows}) > 1:
        shown = ", ".join(f"{r.dataset}@{r.version}" for r in rows[:_SHOWN_MATCHES])
        raise AmbiguousReference(
            f"{ref}: the digest prefix matches several versions ({shown}); give more digits"
        )
    return _version(rows[0], str(project))


def require_project(conn: Connection, project: str) -> None:
    p = t.projects.c
    if conn.execute(select(p.name).where(p.name == project)).first() is None:
        raise missing.project(project)


def _version(row: Row[Any], project: str) -> DataVersion:
    return DataVersion(
        row.dataset,
        row.version,
        project,
        row.digest,
        DataKind(row.kind),
        row.path,
        row.files,
        row.bytes,
        row.message,
        row.created_by,
        row.created_at,
        row.profile,
    )
