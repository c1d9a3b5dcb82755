"""Release decisions end to end, embedded: real model packages, runs and data versions,
the policy's gates run on the evidence Cairn gathers, approvals given by people in
different roles — each case the expected decision with the expected reason."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import cairn
from cairn import sdk
from cairn.core.access import Principal, Role
from cairn.core.actor import on_behalf_of
from cairn.core.authorizer import Authorizer
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.model import ModelVersion
from cairn.core.release import PromotionRequest, RequestState, Verdict
from cairn.core.run import NewRun, RunStatus
from cairn.errors import InvalidInput, InvalidState, NotFound, PermissionDenied
from cairn.models.registry import RegistryService
from cairn.releases.evaluate import Evaluator
from cairn.releases.service import ReleaseService
from cairn.releases.webhooks import SIGNATURE_HEADER, deliver
from cairn.releases.workflow import record_verdict
from cairn.session import private_paths
from cairn.stores.metadata.models import SqlModelRegistry
from cairn.stores.metadata.releases import SqlReleaseLedger
from cairn.stores.metadata.sql import SqlMetadataStore
from webhook_receiver import Receiver, receiving

X, Y = load_breast_cancer(return_X_y=True)
PEOPLE = {"mia": Role.MAINTAINER, "ana": Role.APPROVER, "bob": Role.APPROVER,
          "ada": Role.ADMIN, "vic": Role.VIEWER}  # fmt: skip


def _shifted(row: Any) -> Any:  # a function a pickle names: outside the allow-list
    return row


@dataclass
class World:
    store: SqlMetadataStore
    services: dict[str, ReleaseService]
    admin: ReleaseService
    experiment: str

    def as_(self, name: str) -> ReleaseService:
        return self.services[name]

    def version(
        self,
        auc: float,
        *,
        model: Any = None,
        example: Any = None,
        dirty: bool | None = None,
        card: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """A version of ``churn`` made by a run that logged ``val_auc``; with ``dirty``,
        by a pipeline step whose pipeline ran on a tree that was (not) dirty."""
        parent = None
        if dirty is not None:
            parent = self._run({"cairn.run.kind": "pipeline", "cairn.pipeline": "train",
                                "cairn.git.dirty": str(dirty).lower()})  # fmt: skip
        run = self._run({"cairn.step": "fit"} if parent else {}, parent)
        self.store.log_batch(run, [("val_auc", auc, 0, 1)])
        self.store.end_run(run, RunStatus.FINISHED, 2)
        fitted = model if model is not None else LogisticRegression(max_iter=5000).fit(X, Y)
        example = X[:3] if example is None else example
        return sdk.models().register(fitted, "churn", run_id=run, input_example=example,
                                           card=card)  # fmt: skip

    def _run(self, tags: dict[str, str], parent: str | None = None) -> str:
        new = NewRun(self.experiment, "r", 1, "mia", parent, "a1b2c3d4e5f6a7b8", tags=tags)
        return self.store.create_run(new).id


@pytest.fixture
def world(cairn_home: Path) -> Iterator[World]:
    sdk.session()  # the embedded store, made
    store = SqlMetadataStore(f"sqlite:///{cairn_home / 'cairn.db'}")
    ledger, registry = SqlReleaseLedger(store.engine), SqlModelRegistry(store.engine)
    settings = sdk.session().settings
    evaluate = Evaluator(sdk.models(), sdk.session().data_in(cairn_home), private_paths(settings))

    def service(principal: Principal | None) -> ReleaseService:
        authorizer = Authorizer(principal) if principal else Authorizer.local_admin()
        seen = RegistryService(registry, authorizer, store, sdk.session().artifacts)
        return ReleaseService(ledger, seen, store, evaluate, authorizer,
                              notify=lambda: deliver(ledger, pause=0.01))  # fmt: skip

    services = {
        name: service(Principal(name, roles={DEFAULT_PROJECT: role}))
        for name, role in PEOPLE.items()
    }
    experiment = store.create_experiment("churn").id
    yield World(store, services, service(None), experiment)
    store.close()


PRODUCTION = """
gates:
  - metric: val_auc
    min: 0.80
  - champion: production
    metric: val_auc
    max_regression: 0.005
  - signature_compatible_with: production
  - no_unsafe_pickle: true
approvals:
  required: 1
  role: approver
"""


def _production(world: World, policy: str = PRODUCTION) -> None:
    world.admin.create_environment("production", policy)


def _deployed(world: World, version: ModelVersion) -> None:
    """``version`` runs in production (promoted and approved)."""
    request = world.as_("mia").promote(version.ref, "production", "baseline")
    assert world.as_("ana").approve(request.id).state is RequestState.DEPLOYED


def _failed(request: PromotionRequest) -> list[str]:
    return [f"{g.gate}: {g.reason}" for g in request.gates if not g.passed]


# The decision table


def test_a_passing_request_deploys_once_approved_and_is_in_the_history(world: World) -> None:
    _production(world)
    version = world.version(0.91)
    request = world.as_("mia").promote(version.ref, "production", "Q4 retrain")
    assert request.state is RequestState.WAITING
    assert [g.passed for g in request.gates] == [True] * 4
    metric = request.gates[0]
    assert metric.evidence["value"] == 0.91
    assert metric.evidence["run"] == version.run_id
    done = world.as_("ana").approve(request.id, comment="reviewed")
    assert done.state is RequestState.DEPLOYED
    assert done.decision == "the gates passed, approved by ana"
    assert cairn.models.get_version("churn@production").version == version.version
    [entry] = world.admin.history("production")
    assert (entry.version, entry.previous, entry.request_id, entry.reason, entry.by) == (
        version.version, None, request.id, "Q4 retrain", "ana")  # fmt: skip


def test_a_failing_threshold_blocks_the_request(world: World) -> None:
    _production(world)
    request = world.as_("mia").promote(world.version(0.7).ref, "production", "try")
    assert request.state is RequestState.BLOCKED
    assert _failed(request) == ["metric val_auc >= 0.8: val_auc = 0.7, outside [0.8, inf]"]
    with pytest.raises(InvalidState, match="only a waiting request"):
        world.as_("ana").approve(request.id)
    assert world.admin.history("production") == []


def test_a_regression_against_the_champion_blocks_the_request(world: World) -> None:
    _production(world)
    _deployed(world, world.version(0.95))
    request = world.as_("mia").promote(world.version(0.93).ref, "production", "retrain")
    assert request.state is RequestState.BLOCKED
    [failed] = [g for g in request.gates if not g.passed]
    assert "val_auc 0.93 against the champion's 0.95: 0.02 worse, more than 0.005" in failed.reason
    assert failed.evidence["champion_version"] == "churn/1"


def test_a_missing_approval_keeps_the_request_waiting(world: World) -> None:
    _production(world)
    request = world.as_("mia").promote(world.version(0.9).ref, "production", "retrain")
    assert request.state is RequestState.WAITING
    assert request.decision == "waiting for 1 more approval(s) (role: approver)"
    assert world.admin.get_environment("production").deployed == {}


def test_a_requester_cannot_approve_their_own_request(world: World) -> None:
    _production(world)
    request = world.as_("ada").promote(world.version(0.9).ref, "production", "mine")
    rule = (f"ada may not approve request {request.id[:8]} (churn/1 → production): approvals "
            "must come from someone other than who requested it (ada); the policy asks for 1 "
            "approval(s) by an approver or an admin of project 'default' who did not")  # fmt: skip
    with pytest.raises(PermissionDenied, match=re.escape(rule)):
        world.as_("ada").approve(request.id)  # an admin may approve, but not their own
    assert world.admin.get_request(request.id).approvals == ()  # refused, not recorded
    with (
        pytest.raises(PermissionDenied, match="must come from someone other than who"),
        on_behalf_of(Principal("ada", is_admin=True)),
    ):  # the workflow decides it again, in the ledger's transaction
        record_verdict(world.admin.ledger, request.id, Verdict.APPROVE, "", request.digest)
    again = world.as_("mia").promote(request.ref, "production", "asked again, by someone else")
    assert again.requesters == ("ada", "mia")  # whoever asked for it once may not approve it
    with pytest.raises(PermissionDenied, match=r"other than who requested it \(ada, mia\)"):
        world.as_("ada").approve(request.id)
    withdrawn = world.as_("ada").reject(request.id, "not ready after all")
    assert withdrawn.state is RequestState.REJECTED  # a requester may stop their own


def test_an_approval_by_a_role_the_policy_does_not_ask_for_is_refused(world: World) -> None:
    _production(world, PRODUCTION.replace("role: approver", "role: admin"))
    request = world.as_("mia").promote(world.version(0.9).ref, "production", "retrain")
    with pytest.raises(PermissionDenied, match="the policy asks for 1 approval\\(s\\) by an "
                       "admin of project 'default'; ana is an approver there"):  # fmt: skip
        world.as_("ana").approve(request.id)
    with pytest.raises(PermissionDenied, match="'approve' permission"):
        world.as_("mia").approve(request.id)  # a maintainer may not approve at all
    assert world.admin.get_request(request.id).approvals == ()
    assert world.as_("ada").approve(request.id).state is RequestState.DEPLOYED


def test_one_approval_each(world: World) -> None:
    _production(world, PRODUCTION.replace("required: 1", "required: 2"))
    request = world.as_("mia").promote(world.version(0.9).ref, "production", "retrain")
    world.as_("ana").approve(request.id)
    with pytest.raises(InvalidState, match=r"ana approved request \w+ \(churn/1\) already: one "
                       "approval each; it waits for 1 more"):  # fmt: skip
        world.as_("ana").approve(request.id)
    assert [a.by for a in world.admin.get_request(request.id).approvals] == ["ana"]
    assert world.as_("bob").approve(request.id).state is RequestState.DEPLOYED


def test_an_approval_given_before_the_package_changed_does_not_count(world: World) -> None:
    _production(world, PRODUCTION.replace("required: 1", "required: 2"))
    first, second = world.version(0.9), world.version(0.91)
    request = world.as_("mia").promote(first.ref, "production", "retrain")
    world.as_("ana").approve(request.id)
    updated = world.as_("mia").promote(second.ref, "production", "a better one")
    assert (updated.id, updated.version) == (request.id, second.version)  # the same request
    with pytest.raises(InvalidState, match=f"is for churn/{second.version} now, not churn/1"):
        world.as_("bob").approve(request.id, version=first.version)  # what bob reviewed
    done = world.as_("bob").approve(request.id, version=second.version)
    assert done.state is RequestState.WAITING
    assert "ana approved another package (it changed since)" in done.decision
    assert world.as_("ana").approve(request.id).state is RequestState.DEPLOYED


def test_an_approval_given_under_another_policy_does_not_count(world: World) -> None:
    _production(world, PRODUCTION.replace("required: 1", "required: 2"))
    request = world.as_("mia").promote(world.version(0.9).ref, "production", "retrain")
    world.as_("ana").approve(request.id)
    world.admin.set_policy("production", PRODUCTION.replace("required: 1", "required: 2")
                           .replace("min: 0.80", "min: 0.85"))  # fmt: skip
    done = world.as_("bob").approve(request.id)
    assert done.state is RequestState.WAITING
    assert "ana approved under another version of the policy" in done.decision
    assert done.gates[0].gate == "metric val_auc >= 0.85"  # the gates ran again, under it


def test_a_missing_card_field_blocks_the_request(world: World) -> None:
    card_gate = "gates:\n  - card_fields: [intended_use, limitations]\n"
    _production(world, PRODUCTION.replace("gates:\n", card_gate))
    version = world.version(0.9, card={"intended_use": "churn scoring"})
    request = world.as_("mia").promote(version.ref, "production", "retrain")
    assert _failed(request) == ["model card has intended_use, limitations: missing limitations"]


def test_an_incompatible_signature_blocks_the_request(world: World) -> None:
    _production(world)
    _deployed(world, world.version(0.95))
    narrow = LogisticRegression(max_iter=5000).fit(X[:, :10], Y)
    request = world.as_("mia").promote(
        world.version(0.96, model=narrow, example=X[:3, :10]).ref, "production", "fewer inputs"
    )
    [failed] = _failed(request)
    assert failed.startswith("signature compatible with the version in production: input")
    assert "[-1, 10]" in failed
    assert "[-1, 30]" in failed


def test_a_model_trained_on_a_dirty_tree_fails_provenance(world: World) -> None:
    _production(world, PRODUCTION.replace("gates:\n", "gates:\n  - provenance: committed_code\n"))
    clean = world.as_("mia").promote(world.version(0.9, dirty=False).ref, "production", "ok")
    assert clean.gates[0].passed
    assert clean.gates[0].reason == "commit a1b2c3d4e5f6, clean tree"
    dirty = world.as_("mia").promote(world.version(0.9, dirty=True).ref, "production", "wip")
    assert _failed(dirty)[0].endswith("the git tree at a1b2c3d4e5f6 had uncommitted changes")
    untracked = world.as_("mia").promote(world.version(0.9).ref, "production", "notebook")
    assert _failed(untracked)[0].endswith("it was not made by a pipeline run")


def test_an_unsafe_pickle_blocks_the_request(world: World) -> None:
    _production(world)
    fitted = make_pipeline(FunctionTransformer(_shifted), LogisticRegression(max_iter=5000))
    version = world.version(0.9, model=fitted.fit(X, Y))
    assert version.flagged
    request = world.as_("mia").promote(version.ref, "production", "custom features")
    [failed] = _failed(request)
    assert failed.startswith("no pickle imports outside the allow-list: imports")
    assert "_shifted" in failed


# Around the table


def test_a_rejection_closes_the_request(world: World) -> None:
    _production(world)
    request = world.as_("mia").promote(world.version(0.9).ref, "production", "retrain")
    with pytest.raises(InvalidInput, match="reason: expected a few words"):
        world.as_("ana").reject(request.id, "  ")
    done = world.as_("ana").reject(request.id, "the holdout looks stale")
    assert (done.state, done.decision) == (
        RequestState.REJECTED, "rejected by ana: the holdout looks stale")  # fmt: skip
    with pytest.raises(InvalidState, match="is rejected"):
        world.as_("bob").approve(request.id)


def test_a_staging_environment_auto_promotes_when_its_gates_pass(world: World) -> None:
    staging = "auto_promote: true\ngates:\n  - metric: val_auc\n    min: 0.8\n"
    world.admin.create_environment("staging", staging)
    assert world.as_("mia").promote(world.version(0.7).ref, "staging", "x").state is (
        RequestState.BLOCKED)  # fmt: skip
    done = world.as_("mia").promote(world.version(0.9).ref, "staging", "nightly")
    assert (done.state, done.decision) == (RequestState.DEPLOYED, "the gates passed")
    with pytest.raises(InvalidInput, match="auto_promote: true"):
        world.admin.create_environment("production", "approvals:\n  required: 0\n")


def test_a_rollback_returns_to_the_version_before_and_is_audited(world: World) -> None:
    _production(world)
    one, two = world.version(0.9), world.version(0.91)
    _deployed(world, one)
    _deployed(world, two)
    with pytest.raises(PermissionDenied, match="'manage' permission"):
        world.as_("ana").rollback("production", "churn", "no")
    with pytest.raises(InvalidState, match="churn/9 never ran in production"):
        world.as_("mia").rollback("production", "churn", "no", to_version=9)
    with pytest.raises(NotFound, match="model 'fraud' not found"):
        world.as_("mia").rollback("production", "fraud", "no")
    back = world.as_("mia").rollback("production", "churn", "latency regression")
    assert (back.version, back.previous, back.by) == (one.version, two.version, "mia")
    assert cairn.models.get_version("churn@production").version == one.version
    history = world.admin.history("production", "churn")
    assert [(d.action.value, d.version) for d in history] == [
        ("rollback", 1), ("promote", 2), ("promote", 1)]  # fmt: skip
    waiting = world.as_("mia").promote(two.ref, "production", "once more")
    world.as_("mia").rollback("production", "churn", "meanwhile", to_version=two.version)
    late = world.as_("ana").approve(waiting.id)  # what it asks for runs already
    assert (late.state, late.decision) == (
        RequestState.BLOCKED, "churn/2 runs in production already (a rollback)")  # fmt: skip
    assert len(world.admin.history("production", "churn")) == 4


def test_permissions_of_each_action(world: World) -> None:
    _production(world)
    version = world.version(0.9)
    with pytest.raises(PermissionDenied, match="'manage' permission"):
        world.as_("ana").promote(version.ref, "production", "approvers do not request")
    with pytest.raises(PermissionDenied, match="only installation admins"):
        world.as_("ada").create_environment("qa")  # a project admin is not an installation's
    with pytest.raises(PermissionDenied, match="only installation admins"):
        world.as_("mia").set_policy("production", "")
    request = world.as_("mia").promote(version.ref, "production", "retrain")
    with pytest.raises(PermissionDenied, match="'approve' permission"):
        world.as_("vic").approve(request.id)
    assert [r.id for r in world.as_("vic").list_requests()] == [request.id]  # may read
    with pytest.raises(InvalidInput, match="state: expected one of blocked, waiting"):
        cairn.releases.requests(state="bogus")


@pytest.mark.slow  # the worker process imports scikit-learn and skops afresh
def test_a_fresh_evaluation_on_a_held_out_data_version(world: World, tmp_path: Path) -> None:
    holdout = tmp_path / "holdout"
    holdout.mkdir()
    columns = [f"f{i}" for i in range(X.shape[1])]
    rows = [",".join([*columns, "label"])]
    rows += [
        ",".join(map(str, [*map(float, x), int(y)])) for x, y in zip(X[400:], Y[400:], strict=True)
    ]
    (holdout / "holdout.csv").write_text("\n".join(rows) + "\n")
    sdk.session().data_in(tmp_path).add(holdout, name="holdout")
    policy = ("gates:\n  - evaluate:\n      data: holdout@latest\n      target: label\n"
              "      metrics: {accuracy: '>= 0.85', roc_auc: '>= 0.9'}\n"
              "  - evaluate:\n      data: holdout@latest\n      target: nope\n"
              "      metrics: {f1: '>= 0.5'}\n")  # fmt: skip
    world.admin.create_environment("production", policy)
    version = world.version(0.9)
    check = world.as_("mia").check(version.ref, "production")
    good, bad = check.gates
    assert good.passed, good.reason
    assert good.evidence["data"] == "holdout@1"
    expected = np.mean(cairn.models.load(version.ref).predict(X[400:]) == Y[400:])
    assert good.evidence["measured"]["accuracy"] == pytest.approx(expected)
    assert not bad.passed
    assert "no column 'nope'" in bad.reason
    assert world.as_("mia").list_requests() == []  # a check records nothing


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    with receiving() as found:
        yield found


def test_webhooks_are_signed_and_retried_until_delivered(
    world: World, receiver: tuple[str, type[Receiver]]
) -> None:
    url, handler = receiver
    secret = "s3cret-s3cret-s3cret"
    world.admin.create_environment("staging", "auto_promote: true\n")
    world.admin.add_webhook(url, secret, "staging")
    with pytest.raises(InvalidInput, match="secret: expected 16 characters"):
        world.admin.add_webhook(url, "short")
    for wrong in ("http://[::1", "ftp://example.com/x", "https://"):
        with pytest.raises(InvalidInput, match="url: expected an http"):
            world.admin.add_webhook(wrong, secret)
    handler.answers[:] = [503]  # the first attempt fails; the retry gets through
    version = world.version(0.9)
    request = world.as_("mia").promote(version.ref, "staging", "nightly")
    assert len(handler.received) == 2
    headers, body = handler.received[-1]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    event = json.loads(body)
    assert (event["event"], event["model"], event["version"], event["request_id"]) == (
        "release.promote", "churn", version.version, request.id)  # fmt: skip
    assert world.admin.ledger.pending_deliveries() == []
