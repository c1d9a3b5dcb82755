"""The :class:`~cairn.core.ports.Releases` over a Cairn server's REST API: what ``cairn
envs``, ``promote``, ``approve``, ``rollback`` and ``cairn.releases`` use when
``CAIRN_URI`` is set. The server gathers the evidence and decides."""

from __future__ import annotations

from typing import Any

from cairn.client.transport import ServerStore, api_path
from cairn.core.release import (
    Deployment,
    Environment,
    GateCheck,
    PromotionRequest,
    RequestState,
    Webhook,
)
from cairn.core.release_codec import (
    deployment_from_dict,
    environment_from_dict,
    gate_check_from_dict,
    request_from_dict,
    webhook_from_dict,
)


class HttpReleases(ServerStore):
    def create_environment(self, name: str, policy_text: str | None = None) -> Environment:
        body = {"name": name, "policy": policy_text}
        return environment_from_dict(self._call("POST", "environments", json=body))

    def set_policy(self, name: str, policy_text: str) -> Environment:
        found = self._call("PUT", "environments", name, "policy", json={"policy": policy_text})
        return environment_from_dict(found)

    def get_environment(self, name: str) -> Environment:
        return environment_from_dict(self._call("GET", "environments", name))

    def list_environments(self) -> list[Environment]:
        found = self._call("GET", "environments")["environments"]
        return [environment_from_dict(e) for e in found]

    def check(self, ref: str, environment: str) -> GateCheck:
        found = self._call("POST", "environments", environment, "check", json={"ref": ref})
        return gate_check_from_dict(found)

    def promote(self, ref: str, environment: str, reason: str) -> PromotionRequest:
        body = {"ref": ref, "environment": environment, "reason": reason}
        return request_from_dict(self._call("POST", "promotions", json=body))

    def approve(
        self, request_id: str, comment: str = "", version: int | None = None
    ) -> PromotionRequest:
        body = {"comment": comment, "version": version}
        return request_from_dict(self._call("POST", "promotions", request_id, "approve", json=body))

    def reject(self, request_id: str, reason: str, version: int | None = None) -> PromotionRequest:
        body = {"reason": reason, "version": version}
        return request_from_dict(self._call("POST", "promotions", request_id, "reject", json=body))

    def get_request(self, request_id: str) -> PromotionRequest:
        return request_from_dict(self._call("GET", "promotions", request_id))

    def list_requests(
        self,
        environment: str | None = None,
        model: str | None = None,
        state: RequestState | None = None,
    ) -> list[PromotionRequest]:
        params = {k: v for k, v in (("environment", environment), ("model", model),
                                    ("state", state.value if state else None)) if v}  # fmt: skip
        found = self._call("GET", "promotions", params=params)["requests"]
        return [request_from_dict(r) for r in found]

    def rollback(
        self, environment: str, model: str, reason: str, to_version: int | None = None
    ) -> Deployment:
        body = {"model": model, "reason": reason, "to_version": to_version}
        return deployment_from_dict(self._call("POST", "environments", environment, "rollback",
                                               json=body))  # fmt: skip

    def history(self, environment: str, model: str | None = None) -> list[Deployment]:
        params = {"model": model} if model else {}
        found = self._call("GET", "environments", environment, "history", params=params)
        return [deployment_from_dict(d) for d in found["deployments"]]

    def deployed_at(self, environment: str, at: int) -> list[Deployment]:
        found = self._call("GET", "environments", environment, "deployed", params={"at": str(at)})
        return [deployment_from_dict(d) for d in found["deployments"]]

    def add_webhook(self, url: str, secret: str, environment: str | None = None) -> Webhook:
        body = {"url": url, "secret": secret, "environment": environment}
        return webhook_from_dict(self._call("POST", "webhooks", json=body))

    def list_webhooks(self) -> list[Webhook]:
        return [webhook_from_dict(h) for h in self._call("GET", "webhooks")["webhooks"]]

    def remove_webhook(self, webhook_id: str) -> None:
        self._call("DELETE", "webhooks", webhook_id)

    def _call(self, method: str, *parts: str, **kwargs: Any) -> Any:
        return self._http.call(method, api_path(*parts), **kwargs)
