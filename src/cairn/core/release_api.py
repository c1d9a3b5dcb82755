"""The Releases port: release governance as a user drives it, and its operations over HTTP
(one table, from which the server's routes and the HTTP client are both made)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from cairn.core.operations import (
    NOTHING,
    Access,
    Arg,
    Kind,
    Operation,
    Place,
    listed,
    one,
    table,
)
from cairn.core.release import RequestState
from cairn.core.release_codec import (
    deployment_from_dict,
    deployment_to_dict,
    environment_from_dict,
    environment_to_dict,
    gate_check_from_dict,
    gate_check_to_dict,
    request_from_dict,
    request_to_dict,
    webhook_from_dict,
    webhook_to_dict,
)

if TYPE_CHECKING:
    from cairn.core.release import Deployment, Environment, GateCheck, PromotionRequest, Webhook


class Releases(Protocol):
    """Release governance as a user drives it (``cairn envs``, ``promote``, ``approve``,
    ``rollback``, ``gate check``): gates run on evidence gathered where the registry is —
    in process, or by the server, never taken from the client."""

    def create_environment(self, name: str, policy_text: str | None = None) -> Environment:
        """With no policy: no gates, one approval by an approver."""

    def set_policy(self, name: str, policy_text: str) -> Environment: ...

    def get_environment(self, name: str) -> Environment: ...

    def list_environments(self) -> list[Environment]: ...

    def check(self, ref: str, environment: str) -> GateCheck:
        """Run the environment's gates on the version, recording nothing."""

    def promote(self, ref: str, environment: str, reason: str) -> PromotionRequest: ...

    def approve(
        self, request_id: str, comment: str = "", version: int | None = None
    ) -> PromotionRequest:
        """Approve (for ``version``, the one reviewed, when given); InvalidState when the
        request names another version now, or is not waiting."""

    def reject(
        self, request_id: str, reason: str, version: int | None = None
    ) -> PromotionRequest: ...

    def get_request(self, request_id: str) -> PromotionRequest: ...

    def list_requests(
        self,
        environment: str | None = None,
        model: str | None = None,
        state: RequestState | None = None,
    ) -> list[PromotionRequest]:
        """Newest first."""

    def judge(self, request_id: str) -> PromotionRequest:
        """Judge the request serving as a canary on its live traffic now: promoted, rolled
        back, or still a canary with the labelled requests counted so far."""

    def rollback(
        self, environment: str, model: str, reason: str, to_version: int | None = None
    ) -> Deployment:
        """Run the version before again; while a canary serves, withdraw the canary."""

    def history(self, environment: str, model: str | None = None) -> list[Deployment]:
        """Newest first."""

    def deployed_at(self, environment: str, at: int) -> list[Deployment]:
        """Per model, the history entry in force at ``at`` (milliseconds since the epoch)."""

    def add_webhook(self, url: str, secret: str, environment: str | None = None) -> Webhook: ...

    def list_webhooks(self) -> list[Webhook]: ...

    def get_webhook(self, webhook_id: str) -> Webhook: ...

    def remove_webhook(self, webhook_id: str) -> None: ...

    def close(self) -> None: ...


_TEXT = 10_000  # a reason or a comment
_NAME = 63  # an environment's name
_MODEL = 128  # a model's name
_REF = 300  # a model version's reference

# Any valid token reaches an operation: the service decides for the caller on the objects
# it reaches (installation admins for environments, policies and webhooks).
_DECIDED = Access.AUTHENTICATED
_ENVIRONMENT = Arg("name", Place.PATH)
_IN_ENVIRONMENT = Arg("environment", Place.PATH, wire="name")
_REQUEST = Arg("request_id", Place.PATH)
_REVIEWED = Arg("version", kind=Kind.VERSION, required=False)  # the version reviewed
_POLICY = Arg("policy_text", max_length=100_000, wire="policy")  # the YAML text
_ENVIRONMENT_ = one(environment_to_dict, environment_from_dict)
_REQUEST_ = one(request_to_dict, request_from_dict)
_DEPLOYMENTS = listed("deployments", deployment_to_dict, deployment_from_dict)

OPERATIONS = table(
    Operation("list_environments", "GET", "/environments", _DECIDED,
              listed("environments", environment_to_dict, environment_from_dict)),
    Operation("create_environment", "POST", "/environments", _DECIDED,
              one(environment_to_dict, environment_from_dict, status=201),
              (Arg("name", max_length=_NAME), replace(_POLICY, required=False))),
    Operation("get_environment", "GET", "/environments/{name}", _DECIDED, _ENVIRONMENT_,
              (_ENVIRONMENT,)),
    Operation("set_policy", "PUT", "/environments/{name}/policy", _DECIDED, _ENVIRONMENT_,
              (_ENVIRONMENT, _POLICY)),
    Operation("check", "POST", "/environments/{name}/check", _DECIDED,
              one(gate_check_to_dict, gate_check_from_dict),
              (Arg("ref", max_length=_REF), _IN_ENVIRONMENT),
              "Run the environment's gates on a version, recording nothing."),
    Operation("promote", "POST", "/promotions", _DECIDED,
              one(request_to_dict, request_from_dict, status=201),
              (Arg("ref", max_length=_REF), Arg("environment", max_length=_NAME),
               Arg("reason", max_length=_TEXT))),
    Operation("approve", "POST", "/promotions/{request_id}/approve", _DECIDED, _REQUEST_,
              (_REQUEST, Arg("comment", required=False, default="", max_length=_TEXT),
               _REVIEWED)),
    Operation("reject", "POST", "/promotions/{request_id}/reject", _DECIDED, _REQUEST_,
              (_REQUEST, Arg("reason", max_length=_TEXT), _REVIEWED)),
    Operation("get_request", "GET", "/promotions/{request_id}", _DECIDED, _REQUEST_,
              (_REQUEST,)),
    Operation("list_requests", "GET", "/promotions", _DECIDED,
              listed("requests", request_to_dict, request_from_dict),
              (Arg("environment", Place.QUERY, required=False, max_length=_NAME),
               Arg("model", Place.QUERY, required=False, max_length=_MODEL),
               Arg("state", Place.QUERY, RequestState, required=False)),
              "Newest first."),
    Operation("judge", "POST", "/promotions/{request_id}/judge", _DECIDED, _REQUEST_,
              (_REQUEST,), "Judge a canary on its live traffic now."),
    Operation("rollback", "POST", "/environments/{name}/rollback", _DECIDED,
              one(deployment_to_dict, deployment_from_dict),
              (_IN_ENVIRONMENT, Arg("model", max_length=_MODEL), Arg("reason", max_length=_TEXT),
               Arg("to_version", kind=Kind.VERSION, required=False))),
    Operation("history", "GET", "/environments/{name}/history", _DECIDED, _DEPLOYMENTS,
              (_IN_ENVIRONMENT, Arg("model", Place.QUERY, required=False, max_length=_MODEL)),
              "Newest first."),
    Operation("deployed_at", "GET", "/environments/{name}/deployed", _DECIDED, _DEPLOYMENTS,
              (_IN_ENVIRONMENT, Arg("at", Place.QUERY, Kind.TIMESTAMP)),
              "Per model, the history entry in force at `at` (milliseconds since the epoch)."),
    Operation("add_webhook", "POST", "/webhooks", _DECIDED,
              one(webhook_to_dict, webhook_from_dict, status=201),
              (Arg("url", max_length=2_000), Arg("secret", max_length=500),
               Arg("environment", required=False, max_length=_NAME))),
    Operation("list_webhooks", "GET", "/webhooks", _DECIDED,
              listed("webhooks", webhook_to_dict, webhook_from_dict)),
    Operation("get_webhook", "GET", "/webhooks/{webhook_id}", _DECIDED,
              one(webhook_to_dict, webhook_from_dict), (Arg("webhook_id", Place.PATH),)),
    Operation("remove_webhook", "DELETE", "/webhooks/{webhook_id}", _DECIDED, NOTHING,
              (Arg("webhook_id", Place.PATH),)),
)  # fmt: skip
