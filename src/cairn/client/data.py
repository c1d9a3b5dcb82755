"""The :class:`~cairn.core.ports.DataCatalog` over a Cairn server's REST API: what
``cairn data`` and ``cairn.data.get`` use when ``CAIRN_URI`` is set. A version's objects
go through the server's ``/objects`` first (``HttpArtifactStore``)."""

from __future__ import annotations

from cairn.client.transport import ServerStore, api_path
from cairn.core.data import DataRef, DataVersion, NewDataVersion, check_dataset_name
from cairn.core.data_codec import data_version_from_dict, new_data_version_to_dict


class HttpDataCatalog(ServerStore):
    def add_version(self, new: NewDataVersion) -> tuple[DataVersion, bool]:
        path = api_path("datasets", check_dataset_name(new.name), "versions")
        data = self._http.call("POST", path, json=new_data_version_to_dict(new))
        return data_version_from_dict(data["version"]), bool(data["created"])

    def get_version(self, ref: DataRef) -> DataVersion:
        selector = str(ref).partition("@")[2]
        path = api_path("datasets", check_dataset_name(ref.name), "versions", selector)
        return data_version_from_dict(self._http.call("GET", path))

    def list_versions(self, name: str) -> list[DataVersion]:
        data = self._http.call("GET", api_path("datasets", check_dataset_name(name), "versions"))
        return [data_version_from_dict(v) for v in data["versions"]]

    def list_datasets(self) -> list[DataVersion]:
        data = self._http.call("GET", api_path("datasets"))
        return [data_version_from_dict(v) for v in data["datasets"]]
