"""The :class:`~cairn.core.model_api.Registry` (made from its table of operations) and the
:class:`~cairn.core.ports.LineageGraph` over a Cairn server's REST API: what ``cairn
models``, ``cairn.models`` and ``cairn lineage`` use when ``CAIRN_URI`` is set. A
package's files go through ``/objects`` first (``HttpArtifactStore``); the server then
reads, verifies and scans them itself."""

from __future__ import annotations

from cairn.client.operations import OperationClient
from cairn.core import lineage_api
from cairn.core.access import Principal
from cairn.core.lineage import Edge, Node
from cairn.core.model import ModelVersion, NewModelVersion
from cairn.core.model_api import OPERATIONS


class HttpModelRegistry(OperationClient):
    operations = OPERATIONS

    def register_version(self, new: NewModelVersion, project: str) -> ModelVersion:
        """Only the package's manifest digest travels (its files are uploaded first): the
        server reads, verifies and scans the package itself."""
        found: ModelVersion = self.register_stored(
            new.name, new.digest, new.run_id, new.description, project
        )
        return found


class HttpLineageGraph(OperationClient):
    """Walks, made from their table of operations (``cairn.core.lineage_api``): the server
    walks for the token's holder, whatever reader a caller names."""

    operations = lineage_api.OPERATIONS

    def walk(
        self, start: Node, downstream: bool, max_hops: int = 64, reader: Principal | None = None
    ) -> list[Edge]:
        found: list[Edge] = self.walk_from(start.kind, start.id, downstream, max_hops)
        return found
