"""The data catalog as one principal may use it (what a server hands each request).

Reads need the ``read`` permission on the dataset's project; a dataset of a project the
principal may not read is not found, word for word as one that does not exist, and is
looked at no further: a version number or a digest prefix is resolved only in a dataset
the principal may read. The list keeps only readable datasets. Adding a version is decided
by the catalog inside its own transaction (see ``cairn.stores.metadata.grants``), on the
principal's behalf.
"""

from __future__ import annotations

from cairn.core import missing
from cairn.core.access import Permission, Principal, require_visible
from cairn.core.actor import on_behalf_of
from cairn.core.data import DataRef, DataVersion, NewDataVersion
from cairn.core.ports import DataCatalog
from cairn.errors import NotFound


class AuthorizedDataCatalog:
    def __init__(self, catalog: DataCatalog, principal: Principal) -> None:
        self._catalog, self.principal = catalog, principal

    def add_version(self, new: NewDataVersion) -> tuple[DataVersion, bool]:
        with on_behalf_of(self.principal):
            return self._catalog.add_version(new)

    def get_version(self, ref: DataRef) -> DataVersion:
        if not self.principal.is_admin:  # an admin needs no lookup of the project first
            self._see(ref)
        return self._catalog.get_version(ref)

    def list_versions(self, name: str) -> list[DataVersion]:
        found = self._catalog.list_versions(name)
        if found:
            require_visible(self.principal, found[0].project, missing.dataset(name))
        return found

    def list_datasets(self) -> list[DataVersion]:
        return [
            v for v in self._catalog.list_datasets()
            if self.principal.may(Permission.READ, v.project)
        ]  # fmt: skip

    def _see(self, ref: DataRef) -> None:
        """Raises NotFound, as for no such version, unless the principal may read the
        dataset (whose newest version says where it is)."""
        try:
            project = self._catalog.get_version(DataRef(ref.name)).project
        except NotFound:
            raise missing.data_version(ref) from None
        require_visible(self.principal, project, missing.data_version(ref))
