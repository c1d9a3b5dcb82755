"""The Monitors port: monitors and their evaluations as a monitor service keeps them, and
its operations over HTTP (one table, from which the server's routes and the HTTP client are
both made).

Through a server, a monitor's windows are evaluated where the caller runs the monitor
service (``cairn monitor run``): it reads the traffic and the reference as objects it may
read, and records each evaluation — a statement of its own, as a run's metrics are — which
the server keeps only from a caller who may write in the model's project, numbered,
audited and with its webhooks delivered by the server. Whose monitor it is, and who may
read or write it, is the server's to decide (``cairn.stores.metadata.monitors``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import Field

from cairn.core.monitor import (
    monitor_from_dict,
    monitor_to_dict,
    result_from_dict,
    result_to_dict,
)
from cairn.core.operations import (
    NOTHING,
    Access,
    Arg,
    Codec,
    Kind,
    Operation,
    Place,
    listed,
    one,
    table,
)
from cairn.core.wire import Count, Digest, Int64, Shape, Text, Timestamp

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cairn.core.monitor import Monitor, MonitorResult

LABELS_AT_ONCE = 10_000  # (request id, label) pairs one call keeps, or ids it looks up


class Monitors(Protocol):
    """Monitors and their evaluations (``cairn.core.monitor``), each of its model's
    project. Raises NotFound for a monitor or model the caller may not read, as for one
    there is none of."""

    def create_monitor(self, monitor: Monitor, alert_secret: str | None = None) -> Monitor:
        """With a webhook of its own for each ``webhook:URL`` alert, signing with
        ``alert_secret``."""

    def get_monitor(self, name: str) -> Monitor: ...

    def list_monitors(self) -> list[Monitor]: ...

    def record_result(self, result: MonitorResult) -> MonitorResult:
        """Numbered; the monitor moves to the result's state, the change audited."""

    def results(self, name: str, last: int = 50) -> list[MonitorResult]:
        """The latest ``last``, oldest first."""

    def record_action(self, name: str, action: str, payload: dict[str, object]) -> None:
        """An action the monitor took, audited as ``monitor.<action>``."""

    def log_labels(self, model: str, labels: Sequence[tuple[str, str]]) -> int:
        """Keep (request id, label as JSON text) pairs of the model; the last stands. At
        most ``LABELS_AT_ONCE`` a call."""

    def labels(self, model: str, request_ids: Sequence[str]) -> dict[str, str]:
        """The labels (JSON text) kept for those of ``request_ids`` that have one. At most
        ``LABELS_AT_ONCE`` ids a call."""


class ChoiceShape(Shape):
    method: Text | None = None
    threshold: float | None = None


class MonitorShape(Shape):
    name: Text
    model: Text
    reference: Digest
    window_seconds: Int64 = 3600
    features: list[Text] = Field(default_factory=list, max_length=10_000)
    choices: dict[Text, ChoiceShape] = Field(default_factory=dict, max_length=10_000)
    share: float = 0.5
    on_drift: Text | None = None
    alerts: list[Text] = Field(default_factory=lambda: ["log"], max_length=100)
    state: Text = "new"
    created_at: Timestamp = 0  # the server's to set: what a client sends is not kept
    created_by: Text = ""
    degraded_when: Text | None = None
    on_degradation: Text | None = None


class ResultShape(Shape):
    monitor: Text
    since: Timestamp
    until: Timestamp
    rows: Count
    state: Text
    drift_share: Annotated[float, Field(ge=0, le=1)]
    drifted: Annotated[list[Text], Field(max_length=100_000)]
    findings: Count
    report: Digest
    number: Int64 = 0  # the server's to set
    evaluated_at: Timestamp = 0
    evaluated_by: Text = ""


_NAME = Arg("name", Place.PATH, max_length=128)
_MONITOR_ = one(monitor_to_dict, monitor_from_dict)
_RESULT_ = one(result_to_dict, result_from_dict)
_MODEL = Arg("model", max_length=128)
_LISTED = Codec(list, list)

OPERATIONS = table(
    Operation("list_monitors", "GET", "/monitors", Access.AUTHENTICATED,
              listed("monitors", monitor_to_dict, monitor_from_dict)),
    Operation("create_monitor", "POST", "/monitors", Access.AUTHENTICATED,
              one(monitor_to_dict, monitor_from_dict, status=201),
              (Arg("monitor", shape=MonitorShape, codec=Codec(monitor_to_dict, monitor_from_dict)),
               Arg("alert_secret", required=False, max_length=500)),
              "Make a monitor; its reference is an object the caller holds (upload it "
              "first)."),
    Operation("get_monitor", "GET", "/monitors/{name}", Access.AUTHENTICATED, _MONITOR_,
              (_NAME,)),
    Operation("record_result", "POST", "/monitor-results", Access.AUTHENTICATED, _RESULT_,
              (Arg("result", Place.WHOLE_BODY, shape=ResultShape,
                   codec=Codec(result_to_dict, result_from_dict)),),
              "Keep an evaluation of a monitor; its report is an object the caller holds."),
    Operation("results", "GET", "/monitors/{name}/results", Access.AUTHENTICATED,
              listed("results", result_to_dict, result_from_dict),
              (_NAME, Arg("last", Place.QUERY, Kind.COUNT, required=False, default=50)),
              "The latest `last` evaluations, oldest first."),
    Operation("record_action", "POST", "/monitors/{name}/actions", Access.AUTHENTICATED,
              NOTHING,
              (_NAME, Arg("action", max_length=64),
               Arg("payload", shape=Annotated[dict[Text, Any], Field(max_length=100)])),
              "Audit an action the monitor took (`monitor.<action>`)."),
    Operation("log_labels", "POST", "/labels", Access.AUTHENTICATED,
              one(lambda kept: {"kept": kept}, lambda data: data["kept"]),
              (_MODEL, Arg("labels", codec=Codec(lambda pairs: [list(p) for p in pairs],
                                                 lambda pairs: [tuple(p) for p in pairs]),
                           shape=Annotated[list[tuple[Text, Text]],
                                           Field(max_length=LABELS_AT_ONCE)])),
              "Keep labels of the model's answered requests: [request id, label as JSON "
              "text] pairs."),
    Operation("labels", "POST", "/labels/lookup", Access.AUTHENTICATED,
              one(lambda found: {"labels": found}, lambda data: data["labels"]),
              (_MODEL, Arg("request_ids", codec=_LISTED,
                           shape=Annotated[list[Text], Field(max_length=LABELS_AT_ONCE)])),
              "The labels kept for those of the request ids that have one."),
)  # fmt: skip
