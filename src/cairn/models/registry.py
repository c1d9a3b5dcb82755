"""The model registry as a service (the :class:`~cairn.core.model_api.Registry`): the
registry port's operations, and registering a package already stored, decided for one
caller by its :class:`~cairn.core.authorizer.Authorizer`.

A model of a project the caller may not read is not found, word for word as one that does
not exist, and is looked at no further (its aliases and versions are resolved only in a
model the caller may read); both answers suggest the models the caller may read, and no
other. Lists keep only readable models. A write is decided here first — what the caller
may not read is not there, what it may read but not change is PermissionDenied naming the
permission — and is then made as the caller's (``Authorizer.writing``), so the registry
decides again inside the write's transaction on the caller's standing as it is then.

A server builds one per caller (``Session.registry_for_callers``); an embedded session
builds one for the local admin (``Session.registry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cairn.core import missing
from cairn.core.access import Permission
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.limits import INT64_MAX
from cairn.core.model import check_model_name, check_traffic
from cairn.core.stored import require_stored
from cairn.errors import NotFound
from cairn.models.service import stored_version

if TYPE_CHECKING:
    from cairn.core.authorizer import Authorizer
    from cairn.core.model import (
        ModelCard,
        ModelRef,
        ModelVersion,
        NewModelVersion,
        RegisteredModel,
        TrafficBatch,
    )
    from cairn.core.ports import ArtifactStore, ModelRegistry, ProjectScopes

_SUGGESTED = 10  # model names a not-found message suggests


class RegistryService:
    """The registry ``store`` as the caller ``authorizer`` decides for may use it.

    ``scopes`` tells which project a run belongs to; ``held`` is the artifact store as the
    caller holds it, the only objects a stored package is read from.
    """

    def __init__(
        self,
        store: ModelRegistry,
        authorizer: Authorizer,
        scopes: ProjectScopes,
        held: ArtifactStore,
    ) -> None:
        self._store, self.authorizer = store, authorizer
        self._scopes, self._held = scopes, held

    def __repr__(self) -> str:
        return f"RegistryService({self._store!r}, {self.authorizer!r})"

    # reads

    def get_model(self, name: str) -> RegisteredModel:
        """Raises:
        NotFound: no model of a project the caller may read has this name; suggesting
            some that do.
        """
        try:
            found = self._store.get_model(name)
        except NotFound:
            found = None
        if found is None or not self.authorizer.readable(found.project):
            known = [m.name for m in self.list_models()][:_SUGGESTED]
            raise missing.model(name, known)
        return found

    def list_models(self) -> list[RegisteredModel]:
        return self.authorizer.only_readable(self._store.list_models())

    def list_versions(self, name: str) -> list[ModelVersion]:
        self.get_model(name)
        return self._store.list_versions(name)

    def resolve(self, ref: ModelRef) -> ModelVersion:
        self.get_model(ref.name)
        return self._store.resolve(ref)

    def get_card(self, name: str, version: int) -> ModelCard:
        self.get_model(name)
        return self._store.get_card(name, version)

    def traffic(self, name: str, since: int = 0, until: int = INT64_MAX) -> list[TrafficBatch]:
        self.get_model(name)
        return self._store.traffic(name, since, until)

    # writes

    def register_version(self, new: NewModelVersion, project: str) -> ModelVersion:
        """Record ``new`` as the caller built it (an in-process caller that wrote the
        package itself); a client's package goes through :meth:`register_stored`."""
        self._may_add(new.name, project)
        with self.authorizer.writing():
            return self._store.register_version(new, project)

    def register_stored(
        self,
        name: str,
        digest: str,
        run_id: str | None = None,
        description: str = "",
        project: str = DEFAULT_PROJECT,
    ) -> ModelVersion:
        """The next version of ``name``, from the stored package whose manifest has
        ``digest``: its files read from the objects the caller holds and verified, its
        pickles scanned here. In the model's project, else — for a new model — the project
        of the run that made it (which the caller must be able to read), else ``project``.

        Raises:
            InvalidInput: a malformed name, or ``digest`` names no package manifest.
            NotFound: the run, the project, or a file of the package (any the caller does
                not hold) is not there.
            AlreadyExists: the name is a model of a project the caller may not read.
            PermissionDenied: the caller may not write in the model's project.
            IntegrityError: a stored file does not match the manifest.
        """
        check_model_name(name)
        if run_id is not None:
            project = self._scopes.run_project(run_id)
            self.authorizer.see(project, missing.run(run_id))
        self._may_add(name, project)  # before the package is read: refused, it reads nothing
        new = stored_version(self._held, name, digest, run_id, description)
        with self.authorizer.writing():
            return self._store.register_version(new, project)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        self._may(Permission.MANAGE, name, f"set the alias {alias!r} on {name!r}")
        with self.authorizer.writing():
            return self._store.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self._may(Permission.MANAGE, name, f"delete the alias {alias!r}")
        with self.authorizer.writing():
            self._store.delete_alias(name, alias)

    def set_card(self, name: str, version: int, card: ModelCard) -> ModelCard:
        self._may(Permission.WRITE, name, f"write the card on {name!r}")
        with self.authorizer.writing():
            return self._store.set_card(name, version, card)

    def log_traffic(self, batch: TrafficBatch) -> TrafficBatch:
        """Raises:
        NotFound: the model is not there for the caller.
        PermissionDenied: it may read the model but not write there.
        InvalidInput: the batch is malformed, or its file is no object the caller holds.
        """
        check_traffic(batch)
        self._may(Permission.WRITE, batch.model, f"log traffic of {batch.model!r}")
        require_stored(self._held, [("digest", batch.digest)])
        with self.authorizer.writing():
            return self._store.log_traffic(batch)

    def _may(self, permission: Permission, name: str, what: str) -> None:
        """Raises:
        NotFound: the model is not there for the caller (as :meth:`get_model`).
        PermissionDenied: the caller may read it but lacks ``permission``.
        """
        project = self.get_model(name).project
        self.authorizer.require(permission, project, what, missing.model(name))

    def _may_add(self, name: str, project: str) -> None:
        try:
            owner: str | None = self._store.get_model(name).project
        except NotFound:
            owner = None
        self.authorizer.require_to_add("model", name, owner, project)
