"""The data catalog as one principal may use it (what a server hands each request).

Reads check the ``read`` permission on the dataset's project; the list keeps only
readable datasets. Adding a version is decided by the catalog inside its own transaction
(see ``cairn.stores.metadata.grants``), on the principal's behalf.
"""

from __future__ import annotations

from cairn.core.access import Permission, Principal, require
from cairn.core.actor import on_behalf_of
from cairn.core.data import DataRef, DataVersion, NewDataVersion
from cairn.core.ports import DataCatalog


class AuthorizedDataCatalog:
    def __init__(self, catalog: DataCatalog, principal: Principal) -> None:
        self._catalog, self.principal = catalog, principal

    def add_version(self, new: NewDataVersion) -> tuple[DataVersion, bool]:
        with on_behalf_of(self.principal):
            return self._catalog.add_version(new)

    def get_version(self, ref: DataRef) -> DataVersion:
        found = self._catalog.get_version(ref)
        require(self.principal, Permission.READ, found.project, f"read {found.ref}")
        return found

    def list_versions(self, name: str) -> list[DataVersion]:
        found = self._catalog.list_versions(name)
        if found:
            require(self.principal, Permission.READ, found[0].project, f"read {name!r}")
        return found

    def list_datasets(self) -> list[DataVersion]:
        return [
            v for v in self._catalog.list_datasets()
            if self.principal.may(Permission.READ, v.project)
        ]  # fmt: skip
