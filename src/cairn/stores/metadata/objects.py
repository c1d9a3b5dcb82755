"""Who holds an object, in the metadata store.

Objects are stored once by content, whichever project they belong to. A project holds an
object when one of its runs lists it among its artifacts, one of its datasets' versions is
made of it, or one of its models' packages is. An account holds an object it may read
through such a project, or whose bytes it has uploaded (``object_uploads``): sending bytes
that hash to a digest proves one has them, while naming a digest proves nothing.

Every question here is asked of many digests at once, in chunks small enough for every
database's limit on bound parameters: a data version may be made of 100,000 objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from sqlalchemy import CompoundSelect, Connection, Executable, Select, select

from cairn.core.access import Principal
from cairn.core.clock import now_ms
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import dialect_insert

# Digests per IN (…): a chunk is named three times in one query (runs, datasets, models),
# which stays under the 999 bound parameters older SQLite builds allow.
_CHUNK = 300
_Query = Callable[[list[str]], Executable]  # the digests of a chunk that answer a question


def record_upload(conn: Connection, digest: str, user: str) -> None:
    """Remember that ``user`` sent the bytes of ``digest`` (once; later uploads change
    nothing)."""
    row = {"digest": digest, "user_name": user, "created_at": now_ms()}
    conn.execute(dialect_insert(conn, t.object_uploads).on_conflict_do_nothing(), [row])


def held(conn: Connection, principal: Principal, digests: Iterable[str]) -> set[str]:
    """Of ``digests``, those ``principal`` may read where a project holds them, or has
    uploaded itself (all of them, for an installation admin)."""
    wanted = set(digests)
    if principal.is_admin:
        return wanted
    uploaded = _each_chunk(conn, wanted, lambda chunk: _uploaded(principal.name, chunk))
    return uploaded | readable(conn, principal, wanted - uploaded)


def readable(conn: Connection, principal: Principal, digests: Iterable[str]) -> set[str]:
    """Of ``digests``, those a project ``principal`` may read holds (all of them, for an
    installation admin)."""
    wanted = set(digests)
    projects = principal.readable_projects()
    if projects is None:
        return wanted
    if not projects or not wanted:
        return set()
    return _each_chunk(conn, wanted, lambda chunk: _held_in(sorted(projects), chunk))


def _each_chunk(conn: Connection, digests: set[str], query: _Query) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(digests):
        found.update(str(digest) for digest in conn.execute(query(chunk)).scalars())
    return found


def _uploaded(user: str, chunk: list[str]) -> Select[tuple[str]]:
    u = t.object_uploads.c
    return select(u.digest).where(u.user_name == user, u.digest.in_(chunk))


def _held_in(projects: list[str], chunk: list[str]) -> CompoundSelect[tuple[str]]:
    """The digests of ``chunk`` that runs, datasets or models of ``projects`` hold."""
    e, r, a = t.experiments.c, t.runs.c, t.run_artifacts.c
    of_runs = (
        select(a.digest)
        .select_from(
            t.run_artifacts.join(t.runs, r.pk == a.run_pk).join(
                t.experiments, e.id == r.experiment_id
            )
        )
        .where(a.digest.in_(chunk), e.project.in_(projects))
    )
    d, o = t.datasets.c, t.data_objects.c
    of_datasets = (
        select(o.digest)
        .select_from(t.data_objects.join(t.datasets, d.name == o.dataset))
        .where(o.digest.in_(chunk), d.project.in_(projects))
    )
    m, mo = t.models.c, t.model_objects.c
    of_models = (
        select(mo.digest)
        .select_from(t.model_objects.join(t.models, m.name == mo.model))
        .where(mo.digest.in_(chunk), m.project.in_(projects))
    )
    return of_runs.union(of_datasets, of_models)


def _chunks(digests: set[str]) -> Iterator[list[str]]:
    ordered = sorted(digests)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]
