"""The data catalog as a service (the :class:`~cairn.core.data_api.Catalog`): datasets and
data versions, decided for one caller by its :class:`~cairn.core.authorizer.Authorizer`.

A dataset of a project the caller may not read is not found, word for word as one that
does not exist, and is looked at no further: a version number or a digest prefix is
resolved only in a dataset the caller may read. The list keeps only readable datasets.

Adding a version is decided here first — before any object it names is looked at, so a
caller refused learns nothing of them — then checked in the objects the caller holds
(every one it names stored and held; its manifest safe to check out and holding what it
claims, since whoever checks it out writes its files where its listings say), and then
recorded as the caller's (``Authorizer.writing``), so the catalog decides again inside the
write's transaction on the caller's standing as it is then.

A server builds one per caller (``Session.catalog_for_callers``); an embedded session
builds one for the local admin (``Session.catalog``).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from cairn.core import missing
from cairn.core.data import DataRef, DataVersion, NewDataVersion, check_dataset_name
from cairn.core.stored import require_stored
from cairn.data.manifest import check_new_version
from cairn.data.materialize import read_listing
from cairn.errors import NotFound

if TYPE_CHECKING:
    from cairn.core.authorizer import Authorizer
    from cairn.core.ports import ArtifactStore, DataCatalog


class CatalogService:
    """The catalog ``catalog`` as the caller ``authorizer`` decides for may use it.

    ``held_artifacts`` is the artifact store as the caller holds it: every object it may
    read where a project holds it or has uploaded, and nothing else (any other is not
    stored). A new version's objects are checked, and its listings read, there only.
    None: the caller is the embedded local account, whose versions this process built
    itself from the files it read (``DataService.add``), so nothing is read back to check
    — on 100,000 files that would add a tenth to ``cairn data add``.
    """

    def __init__(
        self,
        catalog: DataCatalog,
        authorizer: Authorizer,
        held_artifacts: ArtifactStore | None,
    ) -> None:
        self._catalog, self.authorizer, self._held = catalog, authorizer, held_artifacts

    def __repr__(self) -> str:
        return f"CatalogService({self._catalog!r}, {self.authorizer!r})"

    # reads

    def get_version(self, ref: DataRef) -> DataVersion:
        """Raises:
        InvalidInput: a malformed name.
        NotFound: no such version in a dataset the caller may read.
        AmbiguousReference: a digest prefix matches several versions.
        """
        check_dataset_name(ref.name)
        if not self.authorizer.principal.is_admin:  # who reads every project looks up none
            hidden = missing.data_version(ref)
            project = self._owner(ref.name)
            if project is None:
                raise hidden
            self.authorizer.see(project, hidden)
        return self._catalog.get_version(ref)

    def list_versions(self, name: str) -> list[DataVersion]:
        """Newest first.

        Raises:
            InvalidInput: a malformed name.
            NotFound: no dataset of a project the caller may read has this name.
        """
        found = self._catalog.list_versions(check_dataset_name(name))
        if found:
            self.authorizer.see(found[0].project, missing.dataset(name))
        return found

    def list_datasets(self) -> list[DataVersion]:
        return self.authorizer.only_readable(self._catalog.list_datasets())

    # writes

    def add_version(self, new: NewDataVersion) -> tuple[DataVersion, bool]:
        """The new version, True; or the newest one, False, if it has this manifest.

        Raises:
            InvalidInput: a malformed name; an object it names is not stored or not the
                caller's (naming the field); its manifest is not whole, not safe to check
                out, or holds other files or bytes than it claims.
            NotFound: a new dataset, in a project the caller may not read (or none).
            AlreadyExists: the name is a dataset's of a project the caller may not read.
            PermissionDenied: the caller may not write in the dataset's project.
        """
        check_dataset_name(new.name)
        owner = self._owner(new.name)
        self.authorizer.require_to_add("dataset", new.name, owner, new.project)
        if self._held is not None:
            _check_held(new, self._held)
        with self.authorizer.writing():
            return self._catalog.add_version(new)

    def _owner(self, name: str) -> str | None:
        """The project of the dataset ``name``; None for a new one."""
        try:
            return self._catalog.get_version(DataRef(name)).project
        except NotFound:
            return None


def _check_held(new: NewDataVersion, held: ArtifactStore) -> None:
    """Every object ``new`` names is stored and ``held``; its listings, read from there
    only (each once, however often it is named), are a manifest safe to check out that
    holds the files and bytes ``new`` claims.

    Raises:
        InvalidInput: naming the field that does not hold.
    """
    named = [("digest", new.digest), ("profile", new.profile)]
    named += [(f"objects[{index}]", digest) for index, digest in enumerate(new.objects)]
    require_stored(held, [(field, digest) for field, digest in named if digest])
    check_new_version(new, partial(read_listing, held))
