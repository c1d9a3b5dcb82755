"""Lineage questions in the words users ask them: "where did churn@champion come from?",
"what was built on customers@4?" — a walk over the lineage edges from a model version, a
data version or a run, with what each run was (its name, pipeline step, status, git commit
and whether the tree was dirty, its environment)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from cairn.core.lineage import DATA_VERSION, MODEL_VERSION, RUN, Lineage, Node
from cairn.core.model import MODELS_URI, parse_model_ref
from cairn.core.ports import LineageGraph, MetadataStore, ModelRegistry
from cairn.errors import InvalidInput, NotFound, PermissionDenied

_RUN_ID = re.compile(r"^[0-9a-f]{8,32}$")
ENVIRONMENT = "environment.json"  # the artifact a pipeline run keeps its environment in

DataResolver = Callable[[str], str]  # "customers@latest" -> "customers@4"


class LineageService:
    def __init__(
        self,
        graph: LineageGraph,
        metadata: MetadataStore,
        registry: ModelRegistry,
        resolve_data: DataResolver,
    ) -> None:
        self.graph, self.metadata, self.registry = graph, metadata, registry
        self.resolve_data = resolve_data

    def lineage(self, ref: str, downstream: bool = False) -> Lineage:
        """The graph from a model version (``churn@champion``, ``churn/3``), a data version
        (``customers@4``) or a run (its id or a prefix), upstream unless ``downstream``.

        Raises:
            NotFound: the reference names nothing (saying what was tried).
        """
        start = self.node(ref)
        found = Lineage(start, downstream, self.graph.walk(start, downstream))
        for node in found.nodes:
            try:
                found.details[node] = self._details(node)
            except PermissionDenied:  # in a project the caller may not read: shown bare
                found.details[node] = {"hidden": True}
        return found

    def node(self, ref: str) -> Node:
        if ref.startswith(MODELS_URI) or "/" in ref:
            return Node(MODEL_VERSION, self.registry.resolve(parse_model_ref(ref)).ref)
        if _RUN_ID.match(ref):
            try:
                return Node(RUN, self.metadata.resolve_run_id(ref))
            except NotFound:
                pass  # a dataset or model may be named like hex
        name, _, selector = ref.partition("@")
        if selector.isdigit() or _RUN_ID.match(selector):  # customers@4, customers@3f9a2c1b
            return Node(DATA_VERSION, self.resolve_data(ref))
        try:
            self.registry.get_model(name)
        except (NotFound, InvalidInput):
            pass
        else:
            return Node(MODEL_VERSION, self.registry.resolve(parse_model_ref(ref)).ref)
        try:
            return Node(DATA_VERSION, self.resolve_data(ref))
        except (NotFound, InvalidInput):
            raise NotFound(
                f"{ref!r} names no model version, data version or run (try churn/3, "
                "churn@champion, customers@4 or a run id)"
            ) from None

    def _details(self, node: Node) -> Mapping[str, Any]:
        if node.kind == RUN:
            run = self.metadata.get_run(node.id)
            tags = run.tags
            found: dict[str, Any] = {
                "name": run.name, "status": run.status.value, "git_commit": run.git_commit,
                "git_dirty": {"true": True, "false": False}.get(tags.get("cairn.git.dirty", "")),
                "pipeline": tags.get("cairn.pipeline"), "step": tags.get("cairn.step"),
            }  # fmt: skip
            environment = self.metadata.list_artifacts(node.id, ENVIRONMENT)
            if environment:
                found["environment"] = environment[0].digest
            return {k: v for k, v in found.items() if v is not None}
        if node.kind == MODEL_VERSION:
            version = self.registry.resolve(parse_model_ref(node.id))
            return {"flavor": version.flavor, "digest": version.digest}
        return {}
