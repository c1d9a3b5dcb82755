"""Walks of the lineage graph, decided for one caller (the
:class:`~cairn.core.lineage_api.Walks` service, and the ``LineageGraph`` port).

The node a walk starts from must be one the caller may read, as the capability that owns
it decides: a model version through the caller's registry, a data version through its
catalog, a run through its tracking service — each answering what it may not read as not
there — and an object where a run, dataset or model the caller may read holds it. The
graph then walks only through nodes the caller may read, whatever reader a client names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cairn.core.data import parse_data_ref
from cairn.core.lineage import DATA_VERSION, MODEL_VERSION, RUN, Edge, Node
from cairn.core.lineage_api import MAX_HOPS, check_kind
from cairn.core.model import parse_model_ref
from cairn.errors import PermissionDenied

if TYPE_CHECKING:
    from cairn.core.access import Principal
    from cairn.core.authorizer import Authorizer
    from cairn.core.ports import (
        DataCatalog,
        LineageGraph,
        MetadataStore,
        ModelRegistry,
        ProjectScopes,
    )


class WalkService:
    """The ``graph`` walked for the caller ``authorizer`` decides for; ``registry``,
    ``catalog`` and ``metadata`` are the caller's own services, ``scopes`` tells which
    objects it may read."""

    def __init__(
        self,
        graph: LineageGraph,
        authorizer: Authorizer,
        scopes: ProjectScopes,
        registry: ModelRegistry,
        catalog: DataCatalog,
        metadata: MetadataStore,
    ) -> None:
        self._graph, self.authorizer, self._scopes = graph, authorizer, scopes
        self._registry, self._catalog, self._metadata = registry, catalog, metadata

    def __repr__(self) -> str:
        return f"WalkService({self._graph!r}, {self.authorizer!r})"

    def walk_from(
        self, kind: str, node_id: str, downstream: bool = False, max_hops: int = MAX_HOPS
    ) -> list[Edge]:
        start = Node(check_kind(kind), node_id)
        self._see(start)
        return self._graph.walk(start, downstream, max_hops, reader=self.authorizer.principal)

    def walk(
        self,
        start: Node,
        downstream: bool,
        max_hops: int = MAX_HOPS,
        reader: Principal | None = None,
    ) -> list[Edge]:
        """The ``LineageGraph`` port's walk, for this service's caller (``reader`` is
        not the caller's to choose)."""  # fmt: skip
        return self.walk_from(start.kind, start.id, downstream, max_hops)

    def _see(self, start: Node) -> None:
        """Raises:
        NotFound: a run, data version or model version the caller may not read, or none.
        PermissionDenied: an object no project the caller may read holds.
        """
        if start.kind == MODEL_VERSION:
            self._registry.resolve(parse_model_ref(start.id))
        elif start.kind == DATA_VERSION:
            self._catalog.get_version(parse_data_ref(start.id))
        elif start.kind == RUN:
            self._metadata.get_run(start.id)
        elif not self._scopes.readable_objects(self.authorizer.principal, [start.id]):
            raise PermissionDenied(
                f"{self.authorizer.name} may not see the lineage of {start.id}: it needs the "
                "'read' permission in a project that holds it"
            )
