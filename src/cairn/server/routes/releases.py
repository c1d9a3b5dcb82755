"""Release governance (the Releases port): environments, promotion requests, approvals,
rollbacks, deployment history and webhooks.

The server gathers every gate's evidence itself, from its own registry, runs and data;
a client only names the version and the environment. Each route declares the permission
of its action (request and rollback: ``manage``; approve and reject: ``approve``;
environments, policies and webhooks: installation admins); it is decided again, in the
model's project, inside the write's transaction.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from cairn.core.ports import Releases
from cairn.core.release import RequestState
from cairn.core.release_codec import (
    deployment_to_dict,
    environment_to_dict,
    gate_check_to_dict,
    request_to_dict,
    webhook_to_dict,
)
from cairn.errors import NotFound
from cairn.server.auth import ADMIN, APPROVE, MANAGE, READ, Caller
from cairn.server.fields import Text, TimestampParameter, VersionNumber
from cairn.server.responses import JsonResponse

router = APIRouter(tags=["releases"])

_TEXT = 10_000


async def _releases(request: Request, caller: Caller) -> Releases:
    factory = request.app.state.releases
    if factory is None:
        raise NotFound("this server keeps no releases")
    found: Releases = factory(caller)
    return found


Service = Annotated[Releases, Depends(_releases)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewEnvironmentBody(_Body):
    name: Text = Field(max_length=63)
    policy: Text | None = Field(default=None, max_length=100_000)  # the YAML text


class PolicyBody(_Body):
    policy: Text = Field(max_length=100_000)


class CheckBody(_Body):
    ref: Text = Field(max_length=300)


class PromoteBody(_Body):
    ref: Text = Field(max_length=300)
    environment: Text = Field(max_length=63)
    reason: Text = Field(max_length=_TEXT)


class ApproveBody(_Body):
    comment: Text = Field(default="", max_length=_TEXT)
    version: VersionNumber | None = None  # the one reviewed


class RejectBody(_Body):
    reason: Text = Field(max_length=_TEXT)
    version: VersionNumber | None = None


class RollbackBody(_Body):
    model: Text = Field(max_length=128)
    reason: Text = Field(max_length=_TEXT)
    to_version: VersionNumber | None = None


class WebhookBody(_Body):
    url: Text = Field(max_length=2_000)
    secret: Text = Field(max_length=500)
    environment: Text | None = Field(default=None, max_length=63)


@router.get("/environments", dependencies=[READ])
def list_environments(service: Service) -> JsonResponse:
    found = service.list_environments()
    return JsonResponse({"environments": [environment_to_dict(e) for e in found]})


@router.post("/environments", status_code=201, dependencies=[ADMIN])
def create_environment(body: NewEnvironmentBody, service: Service) -> JsonResponse:
    found = service.create_environment(body.name, body.policy)
    return JsonResponse(environment_to_dict(found), status_code=201)


@router.get("/environments/{name}", dependencies=[READ])
def get_environment(name: str, service: Service) -> JsonResponse:
    return JsonResponse(environment_to_dict(service.get_environment(name)))


@router.put("/environments/{name}/policy", dependencies=[ADMIN])
def set_policy(name: str, body: PolicyBody, service: Service) -> JsonResponse:
    return JsonResponse(environment_to_dict(service.set_policy(name, body.policy)))


@router.get("/environments/{name}/history", dependencies=[READ])
def history(name: str, service: Service, model: str | None = None) -> JsonResponse:
    """Newest first."""
    found = service.history(name, model)
    return JsonResponse({"deployments": [deployment_to_dict(d) for d in found]})


@router.get("/environments/{name}/deployed", dependencies=[READ])
def deployed_at(name: str, at: TimestampParameter, service: Service) -> JsonResponse:
    """Per model, the history entry in force at ``at`` (milliseconds since the epoch)."""
    found = service.deployed_at(name, at)
    return JsonResponse({"deployments": [deployment_to_dict(d) for d in found]})


@router.post("/environments/{name}/check", dependencies=[READ])
def check(name: str, body: CheckBody, service: Service) -> JsonResponse:
    """Run the environment's gates on a version, recording nothing."""
    return JsonResponse(gate_check_to_dict(service.check(body.ref, name)))


@router.post("/environments/{name}/rollback", dependencies=[MANAGE])
def rollback(name: str, body: RollbackBody, service: Service) -> JsonResponse:
    done = service.rollback(name, body.model, body.reason, body.to_version)
    return JsonResponse(deployment_to_dict(done))


@router.post("/promotions", status_code=201, dependencies=[MANAGE])
def promote(body: PromoteBody, service: Service) -> JsonResponse:
    request = service.promote(body.ref, body.environment, body.reason)
    return JsonResponse(request_to_dict(request), status_code=201)


@router.get("/promotions", dependencies=[READ])
def list_requests(
    service: Service,
    environment: str | None = None,
    model: str | None = None,
    state: RequestState | None = None,
) -> JsonResponse:
    """Newest first."""
    found = service.list_requests(environment, model, state)
    return JsonResponse({"requests": [request_to_dict(r) for r in found]})


@router.get("/promotions/{request_id}", dependencies=[READ])
def get_request(request_id: str, service: Service) -> JsonResponse:
    return JsonResponse(request_to_dict(service.get_request(request_id)))


@router.post("/promotions/{request_id}/approve", dependencies=[APPROVE])
def approve(request_id: str, body: ApproveBody, service: Service) -> JsonResponse:
    return JsonResponse(request_to_dict(service.approve(request_id, body.comment, body.version)))


@router.post("/promotions/{request_id}/reject", dependencies=[APPROVE])
def reject(request_id: str, body: RejectBody, service: Service) -> JsonResponse:
    return JsonResponse(request_to_dict(service.reject(request_id, body.reason, body.version)))


@router.get("/webhooks", dependencies=[ADMIN])
def list_webhooks(service: Service) -> JsonResponse:
    return JsonResponse({"webhooks": [webhook_to_dict(h) for h in service.list_webhooks()]})


@router.post("/webhooks", status_code=201, dependencies=[ADMIN])
def add_webhook(body: WebhookBody, service: Service) -> JsonResponse:
    hook = service.add_webhook(body.url, body.secret, body.environment)
    return JsonResponse(webhook_to_dict(hook), status_code=201)


@router.delete("/webhooks/{webhook_id}", status_code=204, dependencies=[ADMIN])
def remove_webhook(webhook_id: str, service: Service) -> Response:
    service.remove_webhook(webhook_id)
    return Response(status_code=204)
