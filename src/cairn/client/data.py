"""The :class:`~cairn.core.data_api.Catalog` over a Cairn server's REST API, made from its
table of operations: what ``cairn data`` and ``cairn.data.get`` use when ``CAIRN_URI`` is
set. A version's objects go through the server's ``/objects`` first
(``HttpArtifactStore``); the server then checks them itself."""

from __future__ import annotations

from cairn.client.operations import OperationClient
from cairn.core.data_api import OPERATIONS


class HttpDataCatalog(OperationClient):
    operations = OPERATIONS
