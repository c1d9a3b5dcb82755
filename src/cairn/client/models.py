"""The :class:`~cairn.core.ports.ModelRegistry` and :class:`~cairn.core.ports.LineageGraph`
over a Cairn server's REST API: what ``cairn models``, ``cairn.models`` and ``cairn lineage``
use when ``CAIRN_URI`` is set. A package's files go through ``/objects`` first
(``HttpArtifactStore``); the server then reads, verifies and scans them itself."""

from __future__ import annotations

from cairn.client.transport import ServerStore, api_path
from cairn.core.access import Principal
from cairn.core.lineage import Edge, Node
from cairn.core.model import (
    ModelCard,
    ModelRef,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    check_alias,
    check_model_name,
    stored_card,
)
from cairn.core.model_codec import model_version_from_dict, registered_model_from_dict


class HttpModelRegistry(ServerStore):
    def register_version(self, new: NewModelVersion, project: str) -> ModelVersion:
        body = {"digest": new.digest, "run_id": new.run_id, "description": new.description,
                "project": project}  # fmt: skip
        path = api_path("models", check_model_name(new.name), "versions")
        return model_version_from_dict(self._http.call("POST", path, json=body))

    def get_model(self, name: str) -> RegisteredModel:
        data = self._http.call("GET", api_path("models", check_model_name(name)))
        return registered_model_from_dict(data)

    def list_models(self) -> list[RegisteredModel]:
        data = self._http.call("GET", api_path("models"))
        return [registered_model_from_dict(m) for m in data["models"]]

    def list_versions(self, name: str) -> list[ModelVersion]:
        data = self._http.call("GET", api_path("models", check_model_name(name), "versions"))
        return [model_version_from_dict(v) for v in data["versions"]]

    def resolve(self, ref: ModelRef) -> ModelVersion:
        check_model_name(ref.name)  # a name holding '/' or '@' would read as another ref
        data = self._http.call("GET", api_path("models", "resolve"), params={"ref": str(ref)})
        return model_version_from_dict(data)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        path = api_path("models", check_model_name(name), "aliases", check_alias(alias))
        return model_version_from_dict(self._http.call("PUT", path, json={"version": version}))

    def delete_alias(self, name: str, alias: str) -> None:
        self._http.call("DELETE", api_path("models", check_model_name(name), "aliases", alias))

    def set_card(self, name: str, version: int, card: ModelCard) -> ModelCard:
        path = api_path("models", check_model_name(name), "versions", str(version), "card")
        return stored_card(self._http.call("PUT", path, json=card.to_dict()))

    def get_card(self, name: str, version: int) -> ModelCard:
        path = api_path("models", check_model_name(name), "versions", str(version), "card")
        return stored_card(self._http.call("GET", path))


class HttpLineageGraph(ServerStore):
    def walk(
        self, start: Node, downstream: bool, max_hops: int = 64, reader: Principal | None = None
    ) -> list[Edge]:
        params = {"kind": start.kind, "id": start.id, "downstream": str(downstream).lower(),
                  "max_hops": str(max_hops)}  # fmt: skip
        data = self._http.call("GET", api_path("lineage", "walk"), params=params)
        return [
            Edge(Node(e["src"]["kind"], e["src"]["id"]), e["relation"],
                 Node(e["dst"]["kind"], e["dst"]["id"]))
            for e in data["edges"]
        ]  # fmt: skip
