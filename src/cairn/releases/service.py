"""Release governance over the ledger: policies read from YAML, gates run on evidence
gathered here, then the request, approval or rollback decided and recorded by the
workflow (``cairn.releases.workflow``) in one unit of work of the ledger. What
``cairn envs``, ``promote``, ``approve``, ``rollback`` and ``gate check`` use embedded,
and what a server runs for its callers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence

from cairn.core import missing
from cairn.core.access import Permission
from cairn.core.authorizer import Authorizer
from cairn.core.gates import canary as canary_gate
from cairn.core.gates import run_gates
from cairn.core.gates.base import GateResult
from cairn.core.limits import check_text
from cairn.core.model import ModelRef, ModelVersion, parse_model_ref
from cairn.core.policy import Approval, Policy, parse_policy
from cairn.core.ports import MetadataStore, ModelRegistry, ReleaseLedger, Releases
from cairn.core.release import (
    Deployment,
    Environment,
    GateCheck,
    PromotionRequest,
    RequestState,
    Verdict,
    Webhook,
    check_approval,
)
from cairn.core.yaml_text import parse_yaml
from cairn.errors import (
    AmbiguousReference,
    CairnError,
    InvalidInput,
    InvalidState,
    NotFound,
    PermissionDenied,
    PolicyChanged,
)
from cairn.releases import workflow
from cairn.releases.evidence import CandidateFacts, Evaluate
from cairn.releases.webhooks import check_url

logger = logging.getLogger(__name__)
# A new environment's policy: no gates, and one approval by an approver.
DEFAULT_POLICY = ""
_ID_PREFIX = 8  # the fewest characters of a webhook's id that name it
_REGATE_ATTEMPTS = 3  # the policy may change while the gates run; they run again
# A canary's live evidence: (model, versions, since in ms, metric) -> each version's figures
# (cairn.monitoring.canary reads them from the payload log and the labels).
LiveTraffic = Callable[[str, Sequence[int], int, str], Mapping[int, canary_gate.Live]]


def load_policy(text: str, where: str = "policy") -> Policy:
    """A policy from its YAML text.

    Raises:
        InvalidInput: not YAML, or not a policy (naming the field).
    """
    document = parse_yaml(text, where) if text.strip() else {}
    return parse_policy(document, where)


class ReleaseService:
    """The :class:`~cairn.core.ports.Releases` over a ledger, the registry and the runs.

    ``authorizer`` decides each call for its caller (a server's; embedded, the local admin):
    what it may see — the rest is answered as not there — and what it may do; writes are
    decided again on the caller's standing inside their transaction. ``notify`` is called
    after every change to what an environment runs (webhook deliveries); ``live`` reads a
    canary's live traffic (None: canaries are not judged here)."""

    def __init__(
        self,
        ledger: ReleaseLedger,
        registry: ModelRegistry,
        metadata: MetadataStore,
        evaluate: Evaluate,
        authorizer: Authorizer,
        notify: Callable[[], None] = lambda: None,
        release: Callable[[], None] = lambda: None,
        live: LiveTraffic | None = None,
    ) -> None:
        self.ledger, self.registry, self.metadata = ledger, registry, metadata
        self.evaluate, self.auth = evaluate, authorizer
        self._notify, self._release, self._live = notify, release, live

    def close(self) -> None:
        self._release()

    # environments

    def create_environment(self, name: str, policy_text: str | None = None) -> Environment:
        text = policy_text if policy_text is not None else DEFAULT_POLICY
        policy = load_policy(text)
        self.auth.admin(f"create the environment {name!r}")
        with self.auth.writing():
            return self._visible([self.ledger.create_environment(name, text, policy)])[0]

    def set_policy(self, name: str, policy_text: str) -> Environment:
        policy = load_policy(policy_text)
        self.auth.admin(f"set the policy of {name!r}")
        with self.auth.writing():
            return self._visible([self.ledger.set_policy(name, policy_text, policy)])[0]

    def get_environment(self, name: str) -> Environment:
        return self._visible([self.ledger.get_environment(name)])[0]

    def list_environments(self) -> list[Environment]:
        return self._visible(self.ledger.list_environments())

    # requests

    def check(self, ref: str, environment: str) -> GateCheck:
        """Every gate's result for ``ref`` in ``environment``, recording nothing.

        It needs only ``read`` (a CI job's token), yet may start fresh evaluations: what
        a reader can name is what writers registered, the evaluator runs a few at once for
        everyone and answers a measurement made before from memory
        (``cairn.releases.measurements``), and the ``promote`` that follows a check
        starts none again.

        Raises:
            InvalidInput: ``ref`` names no version (the newest is not released).
            NotFound: no such version or environment.
        """
        version = self._version(ref)
        policy = self.ledger.get_environment(environment).policy
        gates = self._gates(version, policy)
        return GateCheck(version.name, version.version, environment, policy.digest,
                         tuple(gates), policy.approvals.required)  # fmt: skip

    def promote(self, ref: str, environment: str, reason: str) -> PromotionRequest:
        """Open (or update) the request to run ``ref`` in ``environment``, with every
        gate's result; it deploys at once when the policy asks nothing more.

        Raises:
            InvalidInput: no reason given.
            InvalidState: the version runs there already.
        """
        reason = _required(reason, "reason")
        name = parse_model_ref(ref).name
        project = self.ledger.project_of(name)
        self.auth.require(Permission.MANAGE, project, f"promote {name!r}", missing.model(name))
        version = self._version(ref)

        def record(policy: Policy) -> PromotionRequest:
            gates = self._gates(version, policy)
            return workflow.open_request(self.ledger, version.name, version.version,
                                         environment, reason, gates, policy.digest)  # fmt: skip

        return self._under_policy(environment, record)

    def approve(
        self, request_id: str, comment: str = "", version: int | None = None
    ) -> PromotionRequest:
        """Approve the request — for ``version``, the one reviewed, when given: a request
        updated to another version meanwhile is refused rather than approved unseen. An
        approval that would not count is refused, not recorded.

        Raises:
            PermissionDenied: the caller may not approve it: no ``approve`` permission, the
                policy's role missing, or they requested it (under ``not_requester``).
            InvalidState: the request is not waiting, names another version now, or the
                caller's approval counts already.
        """
        return self._verdict(request_id, Verdict.APPROVE, comment, version)

    def reject(self, request_id: str, reason: str, version: int | None = None) -> PromotionRequest:
        """Reject the request: whoever holds the ``approve`` permission in the model's
        project may stop it, whatever the policy's role (a rejection releases nothing) —
        its requester too, when they hold it; a requester without it cannot withdraw.

        Raises:
            InvalidInput: no reason given.
            PermissionDenied: the caller has no ``approve`` permission.
            InvalidState: the request is not waiting, or names another version now.
        """
        return self._verdict(request_id, Verdict.REJECT, _required(reason, "reason"), version)

    def get_request(self, request_id: str) -> PromotionRequest:
        request = self.ledger.get_request(request_id)
        self.auth.see(request.project, missing.request(request_id))
        return request

    def list_requests(
        self,
        environment: str | None = None,
        model: str | None = None,
        state: RequestState | None = None,
    ) -> list[PromotionRequest]:
        found = self.ledger.list_requests(environment, model, state)
        return [r for r in found if self.auth.readable(r.project)]

    def judge(self, request_id: str) -> PromotionRequest:
        """Judge the request serving as a canary on its live traffic now: promote it, roll
        it back, or — while too few of its requests have labels — record how many have.

        Raises:
            InvalidState: the request does not serve as a canary.
            PermissionDenied: the caller may not manage the model.
            InvalidInput: canaries are not judged here (no payload log to read).
        """
        request = self.ledger.get_request(request_id)
        what = f"judge the canary of {request.model!r}"
        hidden = missing.request(request_id)
        self.auth.require(Permission.MANAGE, request.project, what, hidden)
        if request.state is not RequestState.CANARY:
            raise InvalidState(f"request {request.id[:8]} is {request.state.value}, not a "
                               f"canary ({request.decision})")  # fmt: skip
        if self._live is None:
            raise InvalidInput("canaries are judged where the payload log and the labels are "
                               "read: install cairn[monitoring]")  # fmt: skip
        running = canary_gate.running(request.gates)
        assert running is not None  # a request serving as a canary holds its started gate
        spec = running.evidence["canary"]
        current = self.ledger.get_environment(request.environment).deployed[request.model]
        figures = self._live(request.model, (request.version, current),
                             running.evidence["started_at"], spec["metric"])  # fmt: skip
        result, final = canary_gate.judge(running, figures[request.version], figures[current])
        with self.auth.writing():
            judged = workflow.conclude_canary(self.ledger, request.id, result, final)
        if final:
            self._notify()
        return judged

    # deployments

    def rollback(
        self, environment: str, model: str, reason: str, to_version: int | None = None
    ) -> Deployment:
        reason = _required(reason, "reason")
        project = self.ledger.project_of(model)
        self.auth.require(Permission.MANAGE, project, f"roll back {model!r}", missing.model(model))
        with self.auth.writing():
            deployment = workflow.rollback(self.ledger, environment, model, to_version, reason)
        self._notify()
        return deployment

    def history(self, environment: str, model: str | None = None) -> list[Deployment]:
        found = self.ledger.history(environment, model)
        return [d for d in found if self.auth.readable(d.project)]

    def deployed_at(self, environment: str, at: int) -> list[Deployment]:
        found = self.ledger.deployed_at(environment, at)
        return [d for d in found if self.auth.readable(d.project)]

    # webhooks

    def add_webhook(self, url: str, secret: str, environment: str | None = None) -> Webhook:
        check_url(url)
        if len(secret) < 16:
            raise InvalidInput("secret: expected 16 characters or more (it signs each event)")
        self.auth.admin("add a webhook")
        with self.auth.writing():
            return self.ledger.add_webhook(url, secret, environment)

    def list_webhooks(self) -> list[Webhook]:
        self.auth.admin("list the webhooks")
        return self.ledger.list_webhooks()

    def get_webhook(self, webhook_id: str) -> Webhook:
        """A webhook by its id, or a prefix of 8 or more characters that one id starts with
        (``cairn webhooks list`` shows 8).

        Raises:
            NotFound: no webhook has this id.
            AmbiguousReference: the prefix starts several ids.
        """
        ids = webhook_id if len(webhook_id) >= _ID_PREFIX else None
        found = [h for h in self.list_webhooks() if h.id == webhook_id
                 or (ids is not None and h.id.startswith(ids))]  # fmt: skip
        if not found:
            raise NotFound(f"webhook {webhook_id!r} not found (`cairn webhooks list`)")
        if len(found) > 1:
            raise AmbiguousReference(
                f"webhook {webhook_id!r} starts {len(found)} ids: give more of it"
            )
        return found[0]

    def remove_webhook(self, webhook_id: str) -> None:
        """``webhook_id``: its id, or a prefix of 8 or more characters (see get_webhook)."""
        self.auth.admin("remove a webhook")
        hook = self.get_webhook(webhook_id)
        with self.auth.writing():
            self.ledger.remove_webhook(hook.id)

    # helpers

    def _verdict(
        self, request_id: str, verdict: Verdict, comment: str, version: int | None
    ) -> PromotionRequest:
        check_text(comment, "comment")
        request = self.ledger.get_request(request_id)
        what = f"{verdict.value} promotion requests of {request.model!r}"
        self.auth.require(Permission.APPROVE, request.project, what, missing.request(request_id))
        if version is not None and version != request.version:
            raise InvalidState(
                f"request {request.id[:8]} is for {request.ref} now, not {request.model}/"
                f"{version}: review it again (`cairn requests show {request.id[:8]}`)"
            )
        if verdict is Verdict.APPROVE and request.state.open:
            # Early, before the gates run again; the workflow decides again as it records.
            policy = self.ledger.get_environment(request.environment).policy
            by, role = self.auth.name, self.auth.role_in(request.project)
            check_approval(policy, request, Approval(by, role, request.digest, policy.digest))

        def record(policy: Policy) -> PromotionRequest:
            ran_under = self.ledger.get_request(request.id).policy_digest
            regated: tuple[list[GateResult], str] | None = None
            if policy.digest != ran_under:  # the gates ran under another policy
                named = self.registry.resolve(ModelRef(request.model, version=request.version))
                regated = (self._gates(named, policy), policy.digest)
            return workflow.record_verdict(self.ledger, request.id, verdict, comment,
                                           request.digest, regated)  # fmt: skip

        return self._under_policy(request.environment, record)

    def _under_policy(
        self, environment: str, record: Callable[[Policy], PromotionRequest]
    ) -> PromotionRequest:
        """``record`` under the environment's policy as it is now; when the policy changes
        before the workflow records (PolicyChanged), again under the new one."""
        for attempt in range(_REGATE_ATTEMPTS):
            policy = self.ledger.get_environment(environment).policy
            try:
                with self.auth.writing():
                    settled = record(policy)
            except PolicyChanged:
                if attempt == _REGATE_ATTEMPTS - 1:
                    raise
                continue
            if settled.state is RequestState.DEPLOYED:
                self._notify()
            return settled
        raise AssertionError("unreachable")

    def _gates(self, version: ModelVersion, policy: Policy) -> list[GateResult]:
        facts = CandidateFacts(version, self.registry, self.metadata, self.evaluate)
        return run_gates(policy.gates, facts)

    def _version(self, ref: str) -> ModelVersion:
        parsed = parse_model_ref(ref)
        if parsed.version is None and parsed.alias is None:
            raise InvalidInput(
                f"{ref!r}: name the version to release (churn/3 or churn@candidate), not "
                "the newest, which may change under you"
            )
        return self.registry.resolve(parsed)

    def _visible(self, environments: list[Environment]) -> list[Environment]:
        """The environments with only the models the caller may read (looked up once)."""
        if self.auth.readable_projects() is None:  # an admin
            return environments
        readable = {m.name for m in self.registry.list_models()}
        return [
            dataclasses.replace(e, deployed={m: v for m, v in e.deployed.items() if m in readable})
            for e in environments
        ]


def judge_canaries(releases: Releases) -> list[PromotionRequest]:
    """Judge every canary the caller may judge (``Releases.judge``), embedded or through a
    server; each one's request as it is now. One that cannot be judged is logged and left
    for the next time."""
    judged = []
    for request in releases.list_requests(state=RequestState.CANARY):
        try:
            judged.append(releases.judge(request.id))
        except PermissionDenied:
            continue  # readable, not the caller's to judge
        except CairnError as error:
            logger.warning("canary %s (%s) not judged: %s", request.id[:8], request.ref, error)
    return judged


def _required(text: str, field: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{field}: expected a few words on why (it is kept in the history)")
    return check_text(text.strip(), field)
