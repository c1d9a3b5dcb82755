"""The model registry as one principal may use it (what a server hands each request).

Reads need the ``read`` permission on the model's project; a model of a project the
principal may not read is not found, word for word as one that does not exist, and is
looked at no further (its aliases and versions are resolved only in a model the principal
may read). Both answers suggest the models the principal may read, and no other. The list
keeps only readable models. Writes are decided by the registry inside their own
transaction (see ``cairn.stores.metadata.grants``), on the principal's behalf.
"""

from __future__ import annotations

from cairn.core import missing
from cairn.core.access import Permission, Principal
from cairn.core.actor import on_behalf_of
from cairn.core.model import (
    ModelCard,
    ModelRef,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
)
from cairn.core.ports import ModelRegistry
from cairn.errors import NotFound

_SUGGESTED = 10  # model names a not-found message suggests


class AuthorizedModelRegistry:
    def __init__(self, registry: ModelRegistry, principal: Principal) -> None:
        self._registry, self.principal = registry, principal

    def register_version(self, new: NewModelVersion, project: str) -> ModelVersion:
        with on_behalf_of(self.principal):
            return self._registry.register_version(new, project)

    def get_model(self, name: str) -> RegisteredModel:
        """Raises:
        NotFound: no model of a project the principal may read has this name; suggesting
            some that do.
        """
        try:
            found = self._registry.get_model(name)
        except NotFound:
            found = None
        if found is None or not self.principal.may(Permission.READ, found.project):
            known = [m.name for m in self.list_models()][:_SUGGESTED]
            raise missing.model(name, known)
        return found

    def list_models(self) -> list[RegisteredModel]:
        found = self._registry.list_models()
        return [m for m in found if self.principal.may(Permission.READ, m.project)]

    def list_versions(self, name: str) -> list[ModelVersion]:
        self.get_model(name)
        return self._registry.list_versions(name)

    def resolve(self, ref: ModelRef) -> ModelVersion:
        self.get_model(ref.name)
        return self._registry.resolve(ref)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        with on_behalf_of(self.principal):
            return self._registry.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        with on_behalf_of(self.principal):
            self._registry.delete_alias(name, alias)

    def set_card(self, name: str, version: int, card: ModelCard) -> ModelCard:
        with on_behalf_of(self.principal):
            return self._registry.set_card(name, version, card)

    def get_card(self, name: str, version: int) -> ModelCard:
        self.get_model(name)
        return self._registry.get_card(name, version)
