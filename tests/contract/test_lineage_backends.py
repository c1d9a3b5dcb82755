"""The LineageGraph contract, and lineage as users ask for it, on SQLite, PostgreSQL and
through a Cairn server: the edges a pipeline's runs record — the data versions a step
used, the object it wrote and the next step read, the model version it registered, the
pipeline run each is part of — are walked alike both ways, and a walk from something that
does not exist is refused alike.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cairn.core.lineage import (
    DATA_VERSION,
    MODEL_VERSION,
    OBJECT,
    PART_OF,
    PRODUCED,
    RUN,
    USED,
    Edge,
    Node,
)
from cairn.core.model import parse_model_ref
from cairn.core.run import NewRun
from cairn.errors import InvalidInput, NotFound
from cairn.session import Session

Unique = Callable[[str], str]


class Threshold:
    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, rows: list[list[float]]) -> list[int]:
        return [int(row[0] > self.cut) for row in rows]


@dataclass(frozen=True)
class Pipeline:
    """``customers@1 -> prepare -> (an object) -> train -> churn/1``, both steps part of
    the pipeline run; ``customers@2`` is used by nothing."""

    data: Node  # customers@1
    unused: Node  # customers@2
    pipeline: Node
    prepare: Node
    train: Node
    prepared: Node  # the object prepare wrote and train read
    model: Node  # churn/1


@pytest.fixture
def made(session: Session, unique: Unique, tmp_path: Path) -> Pipeline:
    data, metadata = session.data_in(tmp_path), session.metadata
    table, customers = tmp_path / "customers.csv", unique("customers")
    table.write_text("x,target\n1,0\n")
    first = data.add(table, customers, profile=False).version
    table.write_text("x,target\n1,0\n2,1\n")
    second = data.add(table, customers, profile=False).version
    experiment = metadata.create_experiment(unique("exp"))
    pipeline = metadata.create_run(NewRun(experiment.id, "pipeline", 1_000, "ada"))

    def step(name: str) -> str:
        return metadata.create_run(
            NewRun(experiment.id, name, 1_000, "ada", parent_id=pipeline.id)
        ).id

    prepare, train = step("prepare"), step("train")
    assert metadata.log_inputs(prepare, [f"{customers}@1"]) == [f"{customers}@1"]
    prepared = session.artifacts.put_stream(io.BytesIO(unique("prepared").encode())).digest
    metadata.log_lineage(prepare, [], [prepared])
    metadata.log_lineage(train, [prepared], [])
    version = session.models.register(Threshold(0.5), unique("churn"), run_id=train)
    return Pipeline(
        Node(DATA_VERSION, first.ref), Node(DATA_VERSION, second.ref), Node(RUN, pipeline.id),
        Node(RUN, prepare), Node(RUN, train), Node(OBJECT, prepared),
        Node(MODEL_VERSION, version.ref),
    )  # fmt: skip


def test_a_model_versions_lineage_leads_upstream_to_the_data_it_was_built_on(
    session: Session, made: Pipeline
) -> None:
    assert session.graph.walk(made.model, downstream=False) == sorted([
        Edge(made.train, PRODUCED, made.model),
        Edge(made.train, USED, made.prepared),
        Edge(made.train, PART_OF, made.pipeline),
        Edge(made.prepare, PRODUCED, made.prepared),
        Edge(made.prepare, USED, made.data),
        Edge(made.prepare, PART_OF, made.pipeline),
    ])  # fmt: skip
    assert session.graph.walk(made.model, downstream=True) == []  # nothing built on it yet
    one_hop = session.graph.walk(made.model, downstream=False, max_hops=1)
    assert one_hop == [Edge(made.train, PRODUCED, made.model)]
    assert session.graph.walk(made.model, downstream=False, max_hops=0) == []


def test_a_data_versions_lineage_leads_downstream_to_the_models_built_on_it(
    session: Session, made: Pipeline
) -> None:
    assert session.graph.walk(made.data, downstream=True) == sorted([
        Edge(made.prepare, USED, made.data),
        Edge(made.prepare, PRODUCED, made.prepared),
        Edge(made.prepare, PART_OF, made.pipeline),
        Edge(made.train, USED, made.prepared),
        Edge(made.train, PRODUCED, made.model),
        Edge(made.train, PART_OF, made.pipeline),
    ])  # fmt: skip
    assert session.graph.walk(made.data, downstream=False) == []  # data made by no run
    assert session.graph.walk(made.unused, downstream=True) == []  # another version


def test_a_runs_lineage_goes_each_way_from_the_run(session: Session, made: Pipeline) -> None:
    assert session.graph.walk(made.prepare, downstream=False) == sorted([
        Edge(made.prepare, USED, made.data),
        Edge(made.prepare, PART_OF, made.pipeline),
    ])  # fmt: skip
    assert session.graph.walk(made.train, downstream=True) == sorted([
        Edge(made.train, PRODUCED, made.model),
        Edge(made.train, PART_OF, made.pipeline),
    ])  # fmt: skip
    assert session.metadata.get_run_inputs(made.prepare.id) == [made.data.id]
    assert session.metadata.get_run_lineage(made.train.id) == ([made.prepared.id], [])


def test_lineage_is_asked_for_by_reference_with_what_each_node_is(
    session: Session, made: Pipeline
) -> None:
    lineage = session.lineage()
    model_name = made.model.id.partition("/")[0]
    session.registry.set_alias(model_name, "champion", 1)
    upstream = lineage.lineage(f"{model_name}@champion")
    assert upstream.start == made.model
    assert set(upstream.nodes) == {made.data, made.pipeline, made.prepare, made.train,
                                   made.prepared, made.model}  # fmt: skip
    train = upstream.details[made.train]
    assert (train["name"], train["status"]) == ("train", "RUNNING")
    version = session.registry.resolve(parse_model_ref(made.model.id))
    assert upstream.details[made.model] == {"flavor": "custom", "digest": version.digest}
    downstream = lineage.lineage(made.data.id, downstream=True)
    assert downstream.edges == session.graph.walk(made.data, downstream=True)
    by_run = lineage.lineage(made.train.id[:12], downstream=True)  # a prefix of its id
    assert by_run.start == made.train


def test_a_walk_from_what_does_not_exist_is_not_found(
    session: Session, made: Pipeline, unique: Unique
) -> None:
    dataset = made.data.id.partition("@")[0]
    model = made.model.id.partition("/")[0]
    unknown = {
        Node(RUN, "0" * 32): "run '0+' not found",
        Node(DATA_VERSION, f"{dataset}@9"): f"data version {dataset}@9 not found",
        Node(DATA_VERSION, f"{unique('nope')}@1"): r"data version nope-\w+@1 not found",
        Node(MODEL_VERSION, f"{model}/9"): f"model '{model}' has no version 9",
        Node(MODEL_VERSION, f"{unique('nope')}/1"): r"model 'nope-\w+' not found",
    }
    for node, says in unknown.items():
        for downstream in (False, True):
            with pytest.raises(NotFound, match=says):
                session.graph.walk(node, downstream)
    with pytest.raises(InvalidInput, match="model reference"):
        session.graph.walk(Node(MODEL_VERSION, f"{model}/one"), downstream=False)
    with pytest.raises(InvalidInput, match="kind"):
        session.graph.walk(Node("dataset", dataset), downstream=False)
    unheld = "blake3:" + "0" * 64  # an object is its digest: one nothing holds leads nowhere
    assert session.graph.walk(Node(OBJECT, unheld), downstream=True) == []
    with pytest.raises(NotFound, match="names no model version, data version or run"):
        session.lineage().lineage(unique("nothing"))
