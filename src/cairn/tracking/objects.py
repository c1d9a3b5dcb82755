"""Content-addressed objects as one caller may use them (the artifact store's operations,
decided by the caller's :class:`~cairn.core.authorizer.Authorizer`).

Objects are shared by content across projects, and held by whoever may read them where a
project holds them, or uploaded their bytes (see ``cairn.stores.metadata.objects``).
Storing one needs write access to some project, and the upload is recorded: the caller
holds it from then on. Reading one needs read access to a project that holds it. Which
objects exist, and their sizes, are told only of those the caller holds: any other is
reported missing, stored or not, so the answer says nothing about other projects' objects.

``holding()`` is the view a server reads through on the caller's behalf (the package of a
version it registers, the listings of a data version): every object the caller holds, and
nothing else, which is NotFound exactly as an object that is not stored is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cairn.core.access import Permission
from cairn.core.artifact import ObjectInfo, check_digest
from cairn.core.stored import not_stored
from cairn.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from cairn.core.authorizer import Authorizer
    from cairn.core.ports import ArtifactStore, ProjectScopes


class ObjectService:
    """The artifact ``store`` as the caller ``authorizer`` decides for may use it;
    ``scopes`` tells which objects the caller holds."""

    def __init__(
        self,
        store: ArtifactStore,
        scopes: ProjectScopes,
        authorizer: Authorizer,
        reads_held: bool = False,
    ) -> None:
        self._store, self._scopes, self.authorizer = store, scopes, authorizer
        self._reads_held = reads_held

    def __repr__(self) -> str:
        return f"ObjectService({self._store!r}, {self.authorizer!r})"

    def close(self) -> None:
        """The store belongs to whoever made it."""

    def holding(self) -> ObjectService:
        return ObjectService(self._store, self._scopes, self.authorizer, reads_held=True)

    def put_file(self, path: Path) -> ObjectInfo:
        self.require_storing()
        return self._uploaded(self._store.put_file(path))

    def put_stream(self, stream: BinaryIO, expected_digest: str | None = None) -> ObjectInfo:
        self.require_storing()
        return self._uploaded(self._store.put_stream(stream, expected_digest))

    def missing(self, digests: Iterable[str]) -> set[str]:
        self.require_storing()
        wanted = {check_digest(d) for d in digests}
        held = self._scopes.held_objects(self.authorizer.principal, wanted)
        return (wanted - held) | self._store.missing(held)

    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        self.require_storing()
        wanted = {check_digest(d) for d in digests}
        return self._store.sizes(self._scopes.held_objects(self.authorizer.principal, wanted))

    def open(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        self._may_read(digest)
        return self._store.open(digest)

    def get_file(self, digest: str, dest: Path) -> None:
        self._may_read(digest)
        self._store.get_file(digest, dest)

    def require_storing(self) -> None:
        """Raises:
        PermissionDenied: the caller may write in no project, so may store no object.
        """
        p = self.authorizer.principal
        if not (p.is_admin or any(p.may(Permission.WRITE, project) for project in p.roles)):
            raise PermissionDenied(
                f"{p.name} may not store artifacts: it needs the 'write' permission in a "
                "project (a role that grants it: contributor, maintainer, admin)"
            )

    def _uploaded(self, info: ObjectInfo) -> ObjectInfo:
        self._scopes.record_upload(info.digest, self.authorizer.principal)
        return info

    def _may_read(self, digest: str) -> None:
        check_digest(digest)
        if self._reads_held:
            if self.missing([digest]):  # not the caller's, or not stored: the same
                raise NotFound(not_stored(digest))
        elif not self._scopes.readable_objects(self.authorizer.principal, [digest]):
            raise PermissionDenied(
                f"{self.authorizer.name} may not read object {digest}: it needs the 'read' "
                "permission in a project whose runs, datasets or models hold it"
            )
