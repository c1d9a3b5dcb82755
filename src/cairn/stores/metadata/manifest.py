"""A run's artifact manifest in the metadata store: one object per path, and no path
both a file and a folder.

A file ``a`` beside ``a/b`` would hide the folder's files from a listing of ``a`` and make
a download fail half-way (the file is in the way of the folder), so adding either to a
run that has the other is refused. Entries added together are checked against each other
in ``cairn.core.artifact.check_entries``, and here against what the run has.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from cairn.core.artifact import first_folder_clash, folder_clash_message
from cairn.errors import InvalidInput
from cairn.stores.metadata import schema as t


def check_clashes(conn: Connection, pk: int, paths: Iterable[str]) -> None:
    """Raises:
    InvalidInput: a path is inside a file the run has, or a file the run has is inside
        it; naming both.
    """
    a = t.run_artifacts.c
    # The run's paths, read once: one indexed range of the primary key, where a query per
    # path (or a LIKE per path) would cost as much for each path added.
    stored = set(conn.execute(select(a.path).where(a.run_pk == pk)).scalars())
    if not stored:
        return
    new = sorted(set(paths))
    for path in new:
        folder = path.rpartition("/")[0]
        while folder:
            if folder in stored:
                raise InvalidInput(folder_clash_message(folder, path))
            folder = folder.rpartition("/")[0]
    clash = first_folder_clash(set(new) - stored, stored)
    if clash is not None:
        raise InvalidInput(folder_clash_message(*clash))
