"""Tracking as a user drives it — experiments, runs, what they record, their artifacts —
and the artifact store's objects, with their operations over HTTP (one table each, from
which the server's routes and the HTTP client are both made).

Two operations keep routes of their own, since their bodies are no JSON value a table
describes: recording a batch (the ingest path, parsed column by column without a model
per point: ``cairn.server.routes.metrics``) and an object's bytes (streamed both ways:
``cairn.server.routes.objects``); they call the same services.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import Field

from cairn.core import missing
from cairn.core.artifact import clean_artifact_path
from cairn.core.codec import (
    batch_from_dict,
    batch_to_dict,
    entry_from_dict,
    entry_to_dict,
    experiment_from_dict,
    experiment_to_dict,
    new_run_to_dict,
    query_to_dict,
    run_from_dict,
    run_record_to_dict,
    run_to_dict,
)
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.ids import check_id
from cairn.core.limits import INT64_MAX, check_name
from cairn.core.operations import (
    NOTHING,
    Access,
    Arg,
    Codec,
    Kind,
    Operation,
    Place,
    Result,
    listed,
    one,
    one_or_none,
    table,
)
from cairn.core.pipeline import check_cache_key
from cairn.core.ports import MetadataStore
from cairn.core.run import NewRun, RunRecord, RunStatus, ViewType
from cairn.core.search import RunPage, RunQuery
from cairn.core.wire import Int64, Shape, Text, Timestamp

if TYPE_CHECKING:
    from cairn.core.run import Run


class Tracking(MetadataStore, Protocol):
    """Experiments, runs and what they record, as one caller may use them: what it may
    not read is not there for it."""

    def delete_run(self, run_id: str) -> Run:
        """Soft delete: the run is hidden from searches until it is restored."""

    def restore_run(self, run_id: str) -> Run: ...


# The shapes of what a client sends (what the codec's ``*_to_dict`` write).


class NewRunShape(Shape):
    experiment_id: Text
    name: Text
    start_time: Timestamp
    # The run's user is the caller's account; a body may leave it out, or repeat it.
    user: Text | None = None
    parent_id: Text | None = None
    git_commit: Text | None = None
    source: Text | None = None
    tags: dict[str, str] = Field(default_factory=dict)  # checked by the store, as from the SDK


class RunRecordShape(Shape):
    """A run recorded whole, already ended."""

    run: NewRunShape
    status: RunStatus
    end_time: Timestamp
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)  # a batch, as /batch takes it
    used: list[Text] = Field(default_factory=list)
    produced: list[Text] = Field(default_factory=list)


class QueryShape(Shape):
    """A search; ``filter`` and ``order_by`` as the user wrote them."""

    experiment_ids: list[Text] = Field(default_factory=list)
    filter: Text = ""
    order_by: list[Text] = Field(default_factory=list)
    limit: Int64 = 1000
    page_token: Text | None = None
    view: ViewType = ViewType.ACTIVE


class EntryShape(Shape):
    path: str  # checked with the rest of the entry (check_entries), as the store checks it
    digest: str
    size: Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]


def _as_caller(new: NewRun) -> dict[str, Any]:
    """A server makes the account whose token calls it the user of the runs it starts
    (``cairn.core.run.run_user``): the name a client process runs under is not the
    client's to claim there, and a name other than the account's would be refused."""
    return new_run_to_dict(dataclasses.replace(new, user=None))


def _new_run(data: dict[str, Any]) -> NewRun:
    return NewRun(**data)


def _record(data: dict[str, Any]) -> RunRecord:
    return RunRecord(
        new=_new_run(data["run"]),
        status=data["status"],
        end_time=data["end_time"],
        params=data["params"],
        metrics=batch_from_dict(data["metrics"]),
        used=data["used"],
        produced=data["produced"],
    )


def _sent_record(record: RunRecord) -> dict[str, Any]:
    return {**run_record_to_dict(record), "run": _as_caller(record.new)}


def _maybe(key: str, to_dict: Any, from_dict: Any) -> Result:
    """One object or none, as ``{key: {...} | null}``."""
    return Result(
        lambda found: {key: None if found is None else to_dict(found)},
        lambda data: None if data[key] is None else from_dict(data[key]),
    )


def _texts(key: str) -> Result:
    return Result(lambda found: {key: list(found)}, lambda data: [str(t) for t in data[key]])


def _history_to_dict(history: Any) -> dict[str, Any]:
    return {"metrics": batch_to_dict([(m.key, m.value, m.step, m.timestamp) for m in history])}


def _history_from_dict(data: dict[str, Any]) -> Any:
    return [point for key, series in batch_from_dict(data["metrics"]).items()
            for point in series.points(key)]  # fmt: skip


_RUN = Arg("run_id", Place.PATH)
_RUN_ = one(run_to_dict, run_from_dict)
_RUNS = listed("runs", run_to_dict, run_from_dict)
_EXPERIMENT_ = one(experiment_to_dict, experiment_from_dict)
_ID = Codec(lambda value: value, lambda value: check_id(value, "experiment_id"))
_PAGE = Result(
    lambda page: {"runs": [run_to_dict(r) for r in page.runs],
                  "next_page_token": page.next_page_token},
    lambda data: RunPage([run_from_dict(r) for r in data["runs"]], data["next_page_token"]),
)  # fmt: skip
_LISTED = Codec(list, list)  # a sequence travels as a list
_SORTED = Codec(lambda digests: sorted(set(digests)), list)  # each once, in one order
_DIGESTS = Annotated[list[Text], Field(max_length=10_000)]


def _experiment_name(name: Any) -> str:
    return check_name(name, "name")


def _run_id(run_id: Any) -> str:
    return check_id(run_id, "run_id")


def _prefix(prefix: Any) -> str:
    return clean_artifact_path(prefix, "prefix")


OPERATIONS = table(
    # experiments
    Operation("create_experiment", "POST", "/experiments", Access.AUTHENTICATED,
              one(experiment_to_dict, experiment_from_dict, status=201),
              (Arg("name", codec=Codec(_experiment_name, _experiment_name)),
               Arg("project", required=False, default=DEFAULT_PROJECT))),
    Operation("list_experiments", "GET", "/experiments", Access.AUTHENTICATED,
              listed("experiments", experiment_to_dict, experiment_from_dict)),
    Operation("get_experiment_by_name", "GET", "/experiments/by-name", Access.AUTHENTICATED,
              one_or_none(experiment_to_dict, experiment_from_dict,
                          lambda args: missing.experiment(args["name"])),
              (Arg("name", Place.QUERY),), "The experiment of this name; 404 when there is none."),
    Operation("get_experiment", "GET", "/experiments/{experiment_id}", Access.AUTHENTICATED,
              _EXPERIMENT_, (Arg("experiment_id", Place.PATH),)),
    # runs
    Operation("create_run", "POST", "/runs", Access.AUTHENTICATED,
              one(run_to_dict, run_from_dict, status=201),
              (Arg("new", Place.WHOLE_BODY, shape=NewRunShape,
                   codec=Codec(_as_caller, _new_run)),)),
    Operation("record_runs", "POST", "/runs/record", Access.AUTHENTICATED,
              Result(lambda runs: {"runs": [run_to_dict(r) for r in runs]},
                     lambda data: [run_from_dict(r) for r in data["runs"]], status=201),
              (Arg("records", wire="runs",
                   shape=Annotated[list[RunRecordShape], Field(max_length=10_000)],
                   codec=Codec(lambda records: [_sent_record(r) for r in records],
                               lambda records: [_record(r) for r in records])),),
              "Runs recorded whole and already ended, in one transaction (a pipeline's "
              "cached steps): one request instead of a create, a log and an end for each."),
    Operation("search_runs", "POST", "/runs/search", Access.AUTHENTICATED, _PAGE,
              (Arg("query", Place.WHOLE_BODY, shape=QueryShape,
                   codec=Codec(query_to_dict, lambda data: RunQuery(**data))),)),
    # Before /runs/{run_id}, which would otherwise match "resolve" and "cached".
    Operation("resolve_run_id", "GET", "/runs/resolve", Access.AUTHENTICATED,
              Result(lambda run_id: {"run_id": run_id}, lambda data: str(data["run_id"])),
              (Arg("ref", Place.QUERY),),
              "The full id of a run from its id or a unique prefix of 8+ characters."),
    Operation("cached_output", "GET", "/runs/cached", Access.AUTHENTICATED,
              _maybe("run", run_to_dict, run_from_dict),
              (Arg("experiment_id", Place.QUERY, codec=_ID),
               Arg("cache_key", Place.QUERY, codec=Codec(check_cache_key, check_cache_key)),
               Arg("user", Place.QUERY, required=False)),
              "The step run a pipeline's cache holds for `cache_key` in the experiment (the "
              "newest; `user`'s, when given), or null."),
    Operation("get_run", "GET", "/runs/{run_id}", Access.AUTHENTICATED, _RUN_, (_RUN,)),
    Operation("child_runs", "GET", "/runs/{run_id}/children", Access.AUTHENTICATED, _RUNS,
              (Arg("run_id", Place.PATH, codec=Codec(_run_id, _run_id)),
               Arg("view", Place.QUERY, ViewType, required=False, default=ViewType.ACTIVE)),
              "The runs nested directly in the run, newest first: a pipeline run's steps."),
    Operation("end_run", "POST", "/runs/{run_id}/end", Access.AUTHENTICATED, _RUN_,
              (_RUN, Arg("status", kind=RunStatus), Arg("end_time", kind=Kind.TIMESTAMP))),
    Operation("delete_run", "DELETE", "/runs/{run_id}", Access.AUTHENTICATED, _RUN_, (_RUN,),
              "Soft delete: the run is hidden from searches until it is restored."),
    Operation("restore_run", "POST", "/runs/{run_id}/restore", Access.AUTHENTICATED, _RUN_,
              (_RUN,)),
    # what a run records
    Operation("get_metric_history", "GET", "/runs/{run_id}/metrics/history",
              Access.AUTHENTICATED, Result(_history_to_dict, _history_from_dict),
              (_RUN, Arg("key", Place.QUERY)),
              "Every point of one metric, as `{\"metrics\": {key: series}}`; `key` is a query "
              "parameter since metric keys may contain '/'."),
    Operation("log_inputs", "POST", "/runs/{run_id}/inputs", Access.AUTHENTICATED,
              _texts("inputs"),
              (_RUN, Arg("refs", shape=Annotated[list[Text], Field(max_length=1_000)],
                         codec=_LISTED)),
              "The data versions the run used (`customers@2`, or `customers` for the newest)."),
    Operation("get_run_inputs", "GET", "/runs/{run_id}/inputs", Access.AUTHENTICATED,
              _texts("inputs"), (_RUN,)),
    Operation("log_lineage", "POST", "/runs/{run_id}/lineage", Access.AUTHENTICATED, NOTHING,
              (_RUN, Arg("used", shape=_DIGESTS, codec=_LISTED),
               Arg("produced", shape=_DIGESTS, codec=_LISTED)),
              "The objects the run read (`used`) and wrote (`produced`): a pipeline step's "
              "inputs and output."),
    Operation("get_run_lineage", "GET", "/runs/{run_id}/lineage", Access.AUTHENTICATED,
              Result(lambda found: {"used": found[0], "produced": found[1]},
                     lambda data: ([str(d) for d in data["used"]],
                                   [str(d) for d in data["produced"]])),
              (_RUN,)),
    Operation("add_artifacts", "POST", "/runs/{run_id}/artifacts", Access.AUTHENTICATED,
              NOTHING,
              (_RUN, Arg("entries", shape=list[EntryShape],
                         codec=Codec(lambda entries: [entry_to_dict(e) for e in entries],
                                     lambda entries: [entry_from_dict(e) for e in entries]))),
              "Add files to the manifest; a path logged again is replaced. Each file is an "
              "object the caller has stored (or may read), with its size."),
    Operation("list_artifacts", "GET", "/runs/{run_id}/artifacts", Access.AUTHENTICATED,
              listed("artifacts", entry_to_dict, entry_from_dict),
              (_RUN, Arg("prefix", Place.QUERY, required=False, default="",
                         codec=Codec(_prefix, _prefix))),
              "Every manifest file under `prefix` (all of them when it is empty)."),
)  # fmt: skip

OBJECT_OPERATIONS = table(
    Operation("missing", "POST", "/objects/missing", Access.AUTHENTICATED,
              Result(lambda found: {"missing": sorted(found)},
                     lambda data: {str(d) for d in data["missing"]}),
              (Arg("digests", shape=list[str], codec=_SORTED),),
              "Which of these digests the store does not hold for the caller (one batched "
              "check): every one the caller neither may read nor has uploaded is missing."),
    Operation("sizes", "POST", "/objects/sizes", Access.AUTHENTICATED,
              Result(lambda found: {"sizes": found},
                     lambda data: {str(d): int(n) for d, n in data["sizes"].items()}),
              (Arg("digests", shape=list[str], codec=_SORTED),),
              "The size of each of these objects the store holds for the caller (as "
              "`missing`)."),
)  # fmt: skip
