"""The model registry in the metadata store.

A registration numbers the version, records its package's files, manifest and scan
findings, the objects the package is made of, the lineage edge from the run that made it,
and its audit event — in one transaction. Two registrations of one model at once cannot
take the same number: the unique (model, version) key refuses the second, which then tries
again with the next number.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, delete, func, insert, select

from cairn.core import missing
from cairn.core.access import Permission
from cairn.core.actor import current
from cairn.core.clock import now_ms
from cairn.core.limits import INT64_MAX, MAX_MESSAGE, check_optional_text
from cairn.core.lineage import RUN, Node
from cairn.core.model import (
    ModelCard,
    ModelRef,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    TrafficBatch,
    card_from_dict,
    check_alias,
    check_model_name,
    check_traffic,
    stored_card,
)
from cairn.core.model_codec import (
    files_from_list,
    files_to_list,
    findings_from_list,
    findings_to_list,
    traffic_from_dict,
    traffic_to_dict,
)
from cairn.errors import AlreadyExists, InvalidInput, NotFound
from cairn.stores.metadata import audit
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.data import require_project
from cairn.stores.metadata.driver_errors import unique_violation
from cairn.stores.metadata.engine import (
    ALIAS_NAMES,
    dialect_insert,
    read_connection,
    serialize,
    write_transaction,
)
from cairn.stores.metadata.grants import (
    acting,
    authorize,
    authorize_objects,
    authorize_to_add,
)
from cairn.stores.metadata.lineage import readable_nodes

_ATTEMPTS = 3  # numbering races between concurrent registrations of one model
_SHOWN = 10  # versions or aliases named in a not-found message


class SqlModelRegistry:
    """The :class:`~cairn.core.ports.ModelRegistry` over a metadata database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register_version(self, new: NewModelVersion, project: str) -> ModelVersion:
        check_model_name(new.name)
        check_optional_text(new.description, "description", MAX_MESSAGE)
        for attempt in range(_ATTEMPTS):
            try:
                with write_transaction(self.engine) as conn:
                    return self._register(conn, new, project)
            except AlreadyExists as exc:  # another writer took the name or the number first?
                if attempt == _ATTEMPTS - 1 or not unique_violation(exc):
                    raise
        raise AssertionError("unreachable")

    def _register(self, conn: Connection, new: NewModelVersion, project: str) -> ModelVersion:
        m, v = t.models.c, t.model_versions.c
        name = new.name
        owner = conn.execute(select(m.project).where(m.name == name).with_for_update()).scalar()
        authorize_to_add(conn, "model", name, owner, project)
        if owner is None:
            require_project(conn, project)
            conn.execute(
                insert(t.models).values(
                    name=name, project=project, created_by=current().actor, created_at=now_ms()
                )
            )
        else:
            project = str(owner)
        held = sorted({f.digest for f in new.files})
        authorize_objects(conn, held, f"register a version of {name!r}")
        if new.run_id is not None:
            _require_run(conn, new.run_id)
        newest = conn.execute(select(func.max(v.version)).where(v.model == name)).scalar()
        number = (newest or 0) + 1
        files, findings = files_to_list(new.files), findings_to_list(new.findings)
        created_at, created_by = now_ms(), current().actor
        conn.execute(
            insert(t.model_versions).values(
                model=name, version=number, digest=new.digest, flavor=new.flavor,
                run_id=new.run_id, files=_json(files), manifest=_json(new.manifest),
                findings=_json(findings), description=new.description,
                created_by=created_by, created_at=created_at,
            )
        )  # fmt: skip
        rows = [{"digest": digest, "model": name} for digest in held]
        conn.execute(dialect_insert(conn, t.model_objects).on_conflict_do_nothing(), rows)
        ref = f"{name}/{number}"
        if new.run_id is not None:
            edge = {"src_kind": "run", "src_id": new.run_id, "relation": "produced",
                    "dst_kind": "model_version", "dst_id": ref,
                    "created_at": created_at}  # fmt: skip
            conn.execute(dialect_insert(conn, t.lineage_edges).on_conflict_do_nothing(), [edge])
        payload = {"flavor": new.flavor, "run_id": new.run_id, "files": files,
                   "findings": findings, "project": project}  # fmt: skip
        audit.record(conn, "model.version.create", "model_version", ref, payload, new.digest)
        return self._version(conn, name, number)

    def get_model(self, name: str) -> RegisteredModel:
        with read_connection(self.engine) as conn:
            return self._model(conn, name)

    def list_models(self) -> list[RegisteredModel]:
        m = t.models.c
        with read_connection(self.engine) as conn:
            names = conn.execute(select(m.name).order_by(m.name)).scalars().all()
            return [self._model(conn, str(name)) for name in names]

    def list_versions(self, name: str) -> list[ModelVersion]:
        v = t.model_versions.c
        with read_connection(self.engine) as conn:
            self._model(conn, name)
            rows = conn.execute(
                select(t.model_versions).where(v.model == name).order_by(v.version.desc())
            ).all()
            aliases = _aliases(conn, name)
        return [_version(row, aliases) for row in rows]

    def resolve(self, ref: ModelRef) -> ModelVersion:
        v = t.model_versions.c
        with read_connection(self.engine) as conn:
            model = self._model(conn, ref.name)
            if ref.alias is not None:
                if ref.alias not in model.aliases:
                    known = ", ".join(sorted(model.aliases)[:_SHOWN]) or "none yet"
                    raise NotFound(
                        f"model {ref.name!r} has no alias {ref.alias!r} (its aliases: {known}; "
                        f"`cairn models alias set {ref.name} {ref.alias} VERSION` makes one)"
                    )
                number = model.aliases[ref.alias]
            else:
                number = ref.version if ref.version is not None else model.latest_version
            exists = conn.execute(
                select(v.version).where(v.model == ref.name, v.version == number)
            ).first()
            if exists is None:
                raise NotFound(
                    f"model {ref.name!r} has no version {number} (its versions: 1 to "
                    f"{model.latest_version})"
                )
            return self._version(conn, ref.name, number)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        check_alias(alias)
        a = t.model_aliases.c
        with write_transaction(self.engine) as conn:
            _not_an_environment(conn, alias)
            ref = ModelRef(name, version=version)
            target = self._for_write(conn, ref, f"set the alias {alias!r}", Permission.MANAGE)
            before = conn.execute(
                select(a.version).where(a.model == name, a.alias == alias)
            ).scalar()
            row = {"model": name, "alias": alias, "version": version,
                   "updated_by": current().actor, "updated_at": now_ms()}  # fmt: skip
            statement = dialect_insert(conn, t.model_aliases)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["model", "alias"],
                    set_={
                        c: statement.excluded[c] for c in ("version", "updated_by", "updated_at")
                    },
                ),
                [row],
            )
            payload = {"alias": alias, "version": version, "previous": before}
            audit.record(conn, "model.alias.set", "model", name, payload, target.digest)
            return self._version(conn, name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        a = t.model_aliases.c
        with write_transaction(self.engine) as conn:
            _not_an_environment(conn, alias)
            model = self._model(conn, name)
            what = f"delete the alias {alias!r}"
            authorize(conn, Permission.MANAGE, model.project, what, missing.model(name))
            if alias not in model.aliases:
                known = ", ".join(sorted(model.aliases)[:_SHOWN]) or "none"
                raise NotFound(f"model {name!r} has no alias {alias!r} (its aliases: {known})")
            conn.execute(delete(t.model_aliases).where(a.model == name, a.alias == alias))
            payload = {"alias": alias, "version": model.aliases[alias]}
            audit.record(conn, "model.alias.delete", "model", name, payload)

    def set_card(self, name: str, version: int, card: ModelCard) -> ModelCard:
        """Raises:
        InvalidInput: the card holds what cannot be kept (as ``card_from_dict`` says).
        """
        card = card_from_dict(card.to_dict())  # its text trimmed, as a server keeps it
        c = t.model_cards.c
        with write_transaction(self.engine) as conn:
            target = self._for_write(conn, ModelRef(name, version=version), "write the card")
            document = _json(card.to_dict())
            conn.execute(delete(t.model_cards).where(c.model == name, c.version == version))
            conn.execute(
                insert(t.model_cards).values(
                    model=name, version=version, card=document, updated_by=current().actor,
                    updated_at=now_ms(),
                )
            )  # fmt: skip
            audit.record(conn, "model.card.set", "model_version", target.ref, card.to_dict())
        return card

    def get_card(self, name: str, version: int) -> ModelCard:
        c = t.model_cards.c
        with read_connection(self.engine) as conn:
            model = self._model(conn, name)
            if not 1 <= version <= model.latest_version:
                raise NotFound(
                    f"model {name!r} has no version {version} (its versions: 1 to "
                    f"{model.latest_version})"
                )
            found = conn.execute(
                select(c.card).where(c.model == name, c.version == version)
            ).scalar()
        return stored_card(orjson.loads(found)) if found is not None else ModelCard()

    def log_traffic(self, batch: TrafficBatch) -> TrafficBatch:
        """Raises:
        InvalidInput: a window that ends before it starts, a count below 1, a malformed
            digest.
        NotFound: no such model or version.
        PermissionDenied: the acting principal may not write in the model's project, or
            does not hold the batch's object.
        """
        check_traffic(batch)
        with write_transaction(self.engine) as conn:
            target = self._for_write(conn, ModelRef(batch.model, version=batch.version),
                                     "log traffic")  # fmt: skip
            authorize_objects(conn, [batch.digest], f"log traffic of {target.ref}")
            logged = dataclasses.replace(batch, logged_at=now_ms(), logged_by=current().actor)
            row = traffic_to_dict(logged)
            conn.execute(insert(t.model_traffic).values(**row))
            conn.execute(dialect_insert(conn, t.model_objects).on_conflict_do_nothing(),
                         [{"digest": batch.digest, "model": batch.model}])  # fmt: skip
            said = {k: row[k] for k in ("first_at", "last_at", "rows", "digest")}
            audit.record(conn, "model.traffic.logged", "model_version", target.ref, said)
        return logged

    def traffic(self, name: str, since: int = 0, until: int = INT64_MAX) -> list[TrafficBatch]:
        c = t.model_traffic.c
        with read_connection(self.engine) as conn:
            self._model(conn, name)
            rows = conn.execute(
                select(t.model_traffic).where(c.model == name, c.last_at >= since,
                                              c.first_at <= until).order_by(c.first_at, c.id)
            ).mappings().all()  # fmt: skip
        return [traffic_from_dict(dict(row)) for row in rows]

    # helpers

    def _for_write(
        self,
        conn: Connection,
        ref: ModelRef,
        what: str,
        permission: Permission = Permission.WRITE,
    ) -> ModelVersion:
        model = self._model(conn, ref.name)
        what = f"{what} on {ref.name!r}"
        authorize(conn, permission, model.project, what, missing.model(ref.name))
        if ref.version is None or not 1 <= ref.version <= model.latest_version:
            raise NotFound(
                f"model {ref.name!r} has no version {ref.version} (its versions: 1 to "
                f"{model.latest_version})"
            )
        return self._version(conn, ref.name, ref.version)

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        """Raises:
        InvalidInput: ``name`` cannot be a model's (no model is looked up).
        NotFound: there is no such model.
        """
        check_model_name(name)
        m, v = t.models.c, t.model_versions.c
        row = conn.execute(select(t.models).where(m.name == name)).first()
        if row is None:  # not listing the models there are: some are others' to see
            raise missing.model(name)
        latest = conn.execute(select(func.max(v.version)).where(v.model == name)).scalar()
        return RegisteredModel(
            row.name, row.project, row.created_at, int(latest or 0), _aliases(conn, name)
        )

    def _version(self, conn: Connection, name: str, number: int) -> ModelVersion:
        v = t.model_versions.c
        row = conn.execute(
            select(t.model_versions).where(v.model == name, v.version == number)
        ).one()
        return _version(row, _aliases(conn, name))


def _not_an_environment(conn: Connection, alias: str) -> None:
    """An environment's alias moves only by promotion or rollback, which keep its history
    (checked under the lock an environment's creation takes, so neither slips past)."""
    serialize(conn, ALIAS_NAMES)
    e = t.environments.c
    if conn.execute(select(e.name).where(e.name == alias)).first() is not None:
        raise InvalidInput(
            f"alias {alias!r} is the environment {alias!r}: what it runs changes with "
            f"`cairn promote MODEL/VERSION --to {alias}` or `cairn rollback {alias}`"
        )


def _require_run(conn: Connection, run_id: str) -> None:
    """The run that made a version: one its registrar may read (another is not found)."""
    found = conn.execute(select(t.runs.c.pk).where(t.runs.c.id == run_id)).first()
    reader = acting(conn)
    if found is None or (reader and not readable_nodes(conn, reader, [Node(RUN, run_id)])):
        raise missing.run(run_id)


def _aliases(conn: Connection, name: str) -> dict[str, int]:
    a = t.model_aliases.c
    rows = conn.execute(select(a.alias, a.version).where(a.model == name).order_by(a.alias))
    return {str(alias): int(version) for alias, version in rows}


def _version(row: Row[Any], aliases: dict[str, int]) -> ModelVersion:
    files = files_from_list(orjson.loads(row.files))
    findings = findings_from_list(orjson.loads(row.findings))
    return ModelVersion(
        name=row.model,
        version=row.version,
        digest=row.digest,
        flavor=row.flavor,
        files=files,
        manifest=orjson.loads(row.manifest),
        run_id=row.run_id,
        findings=findings,
        created_at=row.created_at,
        created_by=row.created_by,
        description=row.description,
        aliases=tuple(a for a, number in aliases.items() if number == row.version),
    )


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
