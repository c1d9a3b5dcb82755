"""Tags under ``cairn.`` are Cairn's own: what the pipeline runner, the cache's seal,
``cairn reproduce`` and the provenance gate record of a run and rely on (``cairn.step``,
``cairn.run.kind``, ``cairn.git.dirty``, ``cairn.step.output.digest`` …).

Anyone who may write in a project may tag its runs, so these would be claims anyone could
make about anyone's run. Written after a run is created, a system tag is accepted only
from the run's own account (its ``user``; on a server, the account whose token started
it) and only while it is still open: the run is ``RUNNING``, or the run it is nested in
is (a sweep marks its best trial, ended, while the sweep runs). A run created or recorded
whole carries its system tags from the start, as its own account's: ``cairn.core.run``
decides whose it is. Embedded and on a server without authentication there is no
account to tell one writer from another; there, only the run's being open is checked.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from cairn.core.actor import current
from cairn.core.run import RunStatus
from cairn.errors import PermissionDenied
from cairn.stores.metadata import schema as t

PREFIX = "cairn."


def check_system_tags(conn: Connection, run_pk: int, run_id: str, keys: Iterable[str]) -> None:
    """Refuse a write of system tags the acting principal may not make to the run (of key
    ``run_pk``), in the write's own transaction.

    Raises:
        PermissionDenied: naming the first system tag, when the writer is not the run's
            own account, or the run (and the run it is nested in) has ended.
    """
    reserved = sorted(key for key in keys if key.startswith(PREFIX))
    if not reserved:
        return
    r = t.runs.c
    run = conn.execute(select(r.user_name, r.status, r.parent_id).where(r.pk == run_pk)).one()
    principal = current().principal
    if principal is not None and principal.account and principal.name != run.user_name:
        raise PermissionDenied(
            f"tag {reserved[0]!r}: tags under {PREFIX!r} are Cairn's, written for the run's "
            f"own account ({run.user_name}); {principal.name} may not set them on run {run_id}"
        )
    if not _open(conn, run.status, run.parent_id):
        raise PermissionDenied(
            f"tag {reserved[0]!r}: tags under {PREFIX!r} are Cairn's, written while the run "
            f"runs; run {run_id} has ended ({run.status})"
        )


def _open(conn: Connection, status: str, parent_id: str | None) -> bool:
    if status == RunStatus.RUNNING.value:
        return True
    if parent_id is None:
        return False
    parent = conn.execute(select(t.runs.c.status).where(t.runs.c.id == parent_id)).scalar()
    return bool(parent == RunStatus.RUNNING.value)
