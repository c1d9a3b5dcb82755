"""The Releases contract, on SQLite, PostgreSQL and through a Cairn server, for an
installation admin: environments and their policies, gate checks, promotions that deploy
at once or wait for approvals, approvals and rejections, rollbacks, the history and what
ran when, and webhooks — recorded, answered and refused alike on every backend. Who may
release what is the security suites' (``tests/security``, ``tests/e2e/test_releases.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cairn.core.model import ModelCard, ModelRef, ModelVersion
from cairn.core.release import Action, RequestState
from cairn.core.run import NewRun
from cairn.errors import AlreadyExists, InvalidInput, InvalidState, NotFound, PermissionDenied
from cairn.session import Session

Unique = Callable[[str], str]
AUTO = "auto_promote: true\n"
ONE_APPROVAL = "approvals:\n  required: 1\n  not_requester: false\n"


class Threshold:
    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, rows: list[list[float]]) -> list[int]:
        return [int(row[0] > self.cut) for row in rows]


def _versions(session: Session, name: str, count: int) -> list[ModelVersion]:
    """``count`` versions of ``name``, each made by a run that logged ``val_auc``."""
    metadata = session.metadata
    experiment = metadata.create_experiment(f"{name}-training")
    made = []
    for number in range(count):
        run = metadata.create_run(NewRun(experiment.id, f"train-{number}", 1_000, "ada"))
        metadata.log_batch(run.id, [("val_auc", 0.9, 0, 1_000)])
        made.append(session.models.register(Threshold(number / 10), name, run_id=run.id))
    return made


def test_an_environment_keeps_its_policy_as_written(
    session: Session, unique: Unique, actor: str
) -> None:
    releases, name = session.releases, unique("staging")
    created = releases.create_environment(name, AUTO)
    assert (created.name, created.policy_text, created.created_by, created.deployed) == (
        name, AUTO, actor, {})  # fmt: skip
    assert (created.policy.auto_promote, created.policy.approvals.required) == (True, 0)
    assert releases.get_environment(name) == created
    assert created in releases.list_environments()
    changed = releases.set_policy(name, ONE_APPROVAL)
    assert (changed.policy_text, changed.policy.auto_promote, changed.updated_by) == (
        ONE_APPROVAL, False, actor)  # fmt: skip
    assert changed.policy.digest != created.policy.digest
    assert changed.created_at == created.created_at
    default = releases.create_environment(unique("production"))  # one approval, no gates
    assert (default.policy_text, default.policy.gates, default.policy.approvals.required) == (
        "", (), 1)  # fmt: skip


def test_an_environment_is_refused_a_taken_or_malformed_name_or_policy(
    session: Session, unique: Unique
) -> None:
    releases, name = session.releases, unique("staging")
    releases.create_environment(name, AUTO)
    with pytest.raises(AlreadyExists, match=name):
        releases.create_environment(name, AUTO)
    for bad in ("Staging", "1st", "a b"):
        with pytest.raises(InvalidInput, match="environment"):
            releases.create_environment(bad, AUTO)
    refusals = {
        "gates: [{metric: val_auc}]": r"policy.gates\[0\]",
        "approvals: {required: 0}": "policy.approvals.required: expected 1 or more",
        "auto_promote: yes please": "policy.auto_promote: expected true or false",
        "schedule: nightly": "unknown field",
        "[1, 2]": "expected a mapping",
    }
    for policy, says in refusals.items():
        with pytest.raises(InvalidInput, match=says):
            releases.create_environment(unique("qa"), policy)
        with pytest.raises(InvalidInput, match=says):
            releases.set_policy(name, policy)
    assert releases.get_environment(name).policy_text == AUTO  # unchanged
    missing = unique("nowhere")
    with pytest.raises(NotFound, match=f"environment '{missing}' not found"):
        releases.get_environment(missing)
    with pytest.raises(NotFound, match=f"environment '{missing}' not found"):
        releases.set_policy(missing, AUTO)


def test_a_gate_check_reports_each_gate_and_records_nothing(
    session: Session, unique: Unique
) -> None:
    releases, model, env = session.releases, unique("churn"), unique("production")
    policy = ("gates:\n  - metric: val_auc\n    min: 0.8\n  - card_fields: [intended_use]\n"
              "  - no_unsafe_pickle: true\n" + AUTO)  # fmt: skip
    releases.create_environment(env, policy)
    _versions(session, model, 1)
    check = releases.check(f"{model}/1", env)
    assert (check.model, check.version, check.environment, check.approvals_required) == (
        model, 1, env, 0)  # fmt: skip
    assert check.policy_digest == releases.get_environment(env).policy.digest
    assert [(g.passed, g.gate) for g in check.gates] == [
        (True, "metric val_auc >= 0.8"),
        (False, "model card has intended_use"),
        (False, "no pickle imports outside the allow-list"),  # a custom model is pickled
    ]
    assert "missing intended_use" in check.gates[1].reason
    assert not check.passed
    session.registry.set_card(model, 1, ModelCard(intended_use="Retention offers."))
    assert [g.passed for g in releases.check(f"{model}/1", env).gates] == [True, True, False]
    assert releases.list_requests(env) == []  # a check records nothing
    blocked = releases.promote(f"{model}/1", env, "launch")
    assert blocked.state is RequestState.BLOCKED
    assert "1 gate(s) failed: no pickle imports" in blocked.decision
    assert releases.get_environment(env).deployed == {}


def test_a_promotion_under_auto_promote_deploys_at_once(
    session: Session, unique: Unique, actor: str
) -> None:
    releases, model, env = session.releases, unique("churn"), unique("staging")
    releases.create_environment(env, AUTO)
    one, _ = _versions(session, model, 2)
    request = releases.promote(f"{model}/1", env, "nightly")
    assert (request.state, request.ref, request.requester, request.reason) == (
        RequestState.DEPLOYED, f"{model}/1", actor, "nightly")  # fmt: skip
    assert (request.digest, request.project, request.gates) == (one.digest, "default", ())
    assert releases.get_request(request.id) == request
    assert releases.get_environment(env).deployed == {model: 1}
    assert session.registry.resolve(ModelRef(model, alias=env)).version == 1
    with pytest.raises(InvalidState, match=f"is what {env} runs already"):
        releases.promote(f"{model}/1", env, "again")
    releases.promote(f"{model}/2", env, "better")
    assert releases.get_environment(env).deployed == {model: 2}


def test_a_promotion_names_a_version_and_a_reason(session: Session, unique: Unique) -> None:
    releases, model, env = session.releases, unique("churn"), unique("staging")
    releases.create_environment(env, AUTO)
    _versions(session, model, 1)
    with pytest.raises(InvalidInput, match="name the version to release"):
        releases.promote(model, env, "the newest")
    with pytest.raises(InvalidInput, match="reason: expected a few words"):
        releases.promote(f"{model}/1", env, "  ")
    with pytest.raises(NotFound, match=f"model '{model}' has no version 3"):
        releases.promote(f"{model}/3", env, "go")
    with pytest.raises(NotFound, match=r"environment 'nowhere-.*' not found"):
        releases.promote(f"{model}/1", unique("nowhere"), "go")
    with pytest.raises(NotFound, match=r"model 'nope-.*' not found"):
        releases.promote(f"{unique('nope')}/1", env, "go")
    assert releases.list_requests(env) == []


def test_a_promotion_waits_for_its_approval_then_deploys(
    session: Session, unique: Unique, actor: str
) -> None:
    releases, model, env = session.releases, unique("churn"), unique("production")
    releases.create_environment(env, ONE_APPROVAL)
    one, two = _versions(session, model, 2)
    waiting = releases.promote(f"{model}/1", env, "launch")
    assert waiting.state is RequestState.WAITING
    assert "waiting for 1 more approval(s)" in waiting.decision
    assert releases.get_environment(env).deployed == {}
    updated = releases.promote(f"{model}/2", env, "retrained")  # the waiting one, updated
    assert (updated.id, updated.version, updated.digest) == (waiting.id, 2, two.digest)
    with pytest.raises(InvalidState, match=f"is for {model}/2 now, not {model}/1"):
        releases.approve(waiting.id, "looked at version 1", version=1)
    done = releases.approve(waiting.id, "reviewed the card", version=2)
    assert (done.state, done.decided_by, done.version) == (RequestState.DEPLOYED, actor, 2)
    assert [(a.by, a.comment, a.package_digest) for a in done.approvals] == [
        (actor, "reviewed the card", two.digest)]  # fmt: skip
    assert releases.get_environment(env).deployed == {model: 2}
    with pytest.raises(InvalidState):
        releases.approve(waiting.id)  # deployed: nothing left to approve
    assert one.digest != two.digest


def test_an_approval_counts_once_and_the_requester_may_not_give_it(
    session: Session, unique: Unique
) -> None:
    releases, model = session.releases, unique("churn")
    twice, own = unique("production"), unique("audited")
    releases.create_environment(twice, "approvals:\n  required: 2\n  not_requester: false\n")
    releases.create_environment(own)  # the default policy: not by whoever requested it
    _versions(session, model, 1)
    request = releases.promote(f"{model}/1", twice, "launch")
    first = releases.approve(request.id, "one")
    assert (first.state, len(first.approvals)) == (RequestState.WAITING, 1)
    with pytest.raises(InvalidState, match="already: one approval each; it waits for 1 more"):
        releases.approve(request.id, "two")
    assert len(releases.get_request(request.id).approvals) == 1
    mine = releases.promote(f"{model}/1", own, "launch")
    with pytest.raises(PermissionDenied, match="someone other than who requested it"):
        releases.approve(mine.id)
    assert releases.get_request(mine.id).state is RequestState.WAITING


def test_a_rejected_promotion_stays_rejected(session: Session, unique: Unique) -> None:
    releases, model, env = session.releases, unique("churn"), unique("production")
    releases.create_environment(env, ONE_APPROVAL)
    _versions(session, model, 1)
    request = releases.promote(f"{model}/1", env, "launch")
    with pytest.raises(InvalidInput, match="reason: expected a few words"):
        releases.reject(request.id, "")
    rejected = releases.reject(request.id, "fails on EU data")
    assert rejected.state is RequestState.REJECTED
    assert rejected.decision.endswith(": fails on EU data")
    with pytest.raises(InvalidState):
        releases.approve(request.id)
    with pytest.raises(InvalidState):
        releases.reject(request.id, "again")
    assert releases.get_environment(env).deployed == {}
    with pytest.raises(NotFound, match=r"promotion request '0+' not found"):
        releases.approve("0" * 32)


def test_requests_are_listed_newest_first_and_filtered(session: Session, unique: Unique) -> None:
    releases, churn, fraud = session.releases, unique("churn"), unique("fraud")
    staging, production = unique("staging"), unique("production")
    releases.create_environment(staging, AUTO)
    releases.create_environment(production, ONE_APPROVAL)
    _versions(session, churn, 1)
    _versions(session, fraud, 1)
    a = releases.promote(f"{churn}/1", staging, "a")
    b = releases.promote(f"{fraud}/1", staging, "b")
    c = releases.promote(f"{churn}/1", production, "c")

    def ids(**where: object) -> list[str]:
        return [r.id for r in releases.list_requests(**where)]  # type: ignore[arg-type]

    assert ids(environment=staging) == [b.id, a.id]
    assert ids(model=churn) == [c.id, a.id]
    assert ids(environment=production, state=RequestState.WAITING) == [c.id]
    assert ids(environment=staging, model=churn, state=RequestState.DEPLOYED) == [a.id]
    assert ids(environment=staging, state=RequestState.WAITING) == []
    assert ids()[:3] == [c.id, b.id, a.id]


def test_a_rollback_returns_to_a_version_the_environment_ran(
    session: Session, unique: Unique, actor: str
) -> None:
    releases, model, env = session.releases, unique("churn"), unique("production")
    releases.create_environment(env, AUTO)
    _versions(session, model, 3)
    with pytest.raises(NotFound, match=f"{env} runs no version of '{model}'"):
        releases.rollback(env, model, "nothing ran yet")
    first = releases.promote(f"{model}/1", env, "launch")
    with pytest.raises(InvalidState, match=f"{env} ran no version of '{model}' before"):
        releases.rollback(env, model, "nothing before it")
    releases.promote(f"{model}/2", env, "retrain")
    back = releases.rollback(env, model, "p99 latency")
    assert (back.version, back.previous, back.action, back.by, back.reason, back.request_id) == (
        1, 2, Action.ROLLBACK, actor, "p99 latency", None)  # fmt: skip
    assert releases.get_environment(env).deployed == {model: 1}
    assert session.registry.resolve(ModelRef(model, alias=env)).version == 1
    forward = releases.rollback(env, model, "fixed upstream", to_version=2)
    assert (forward.version, forward.previous) == (2, 1)
    with pytest.raises(InvalidState, match=rf"{model}/3 never ran in {env}: .* \(1, 2\)"):
        releases.rollback(env, model, "never ran", to_version=3)
    with pytest.raises(InvalidState, match=f"{env} runs {model}/2 already"):
        releases.rollback(env, model, "same", to_version=2)
    with pytest.raises(InvalidInput, match="reason"):
        releases.rollback(env, model, "")
    history = releases.history(env, model)  # newest first
    assert [(d.action, d.version, d.previous) for d in history] == [
        (Action.ROLLBACK, 2, 1),
        (Action.ROLLBACK, 1, 2),
        (Action.PROMOTE, 2, 1),
        (Action.PROMOTE, 1, None),
    ]
    assert history[-1].request_id == first.id
    assert releases.history(env) == history  # the only model there
    assert releases.history(env, unique("other")) == []


def test_a_canary_serves_until_judged_or_withdrawn(session: Session, unique: Unique) -> None:
    releases, model, env = session.releases, unique("churn"), unique("production")
    canary = "  - canary: {share: 0.2, requests: 50, metric: accuracy, max_regression: 0.01}\n"
    releases.create_environment(env, f"{AUTO}gates:\n{canary}")
    _versions(session, model, 3)
    releases.promote(f"{model}/1", env, "launch")  # nothing to judge it against: it enters
    request = releases.promote(f"{model}/2", env, "retrain")
    assert request.state is RequestState.CANARY
    assert releases.list_requests(env, state=RequestState.CANARY) == [request]
    assert releases.get_environment(env).deployed == {model: 1}
    with pytest.raises(InvalidState, match="serves as a canary"):
        releases.promote(f"{model}/3", env, "another")
    waiting = releases.judge(request.id)  # no traffic logged: it serves on
    assert (waiting.state, waiting.gates[0].reason.split(" (")[0]) == (
        RequestState.CANARY, "0 of 50 labelled requests of the canary so far")  # fmt: skip
    back = releases.rollback(env, model, "error budget")
    assert (back.action, back.version, back.previous) == (Action.ROLLBACK, 1, 2)
    assert releases.get_request(request.id).state is RequestState.ROLLED_BACK
    assert [(d.action, d.version, d.previous) for d in releases.history(env, model)] == [
        (Action.ROLLBACK, 1, 2), (Action.CANARY, 2, 1), (Action.PROMOTE, 1, None),
    ]  # fmt: skip
    with pytest.raises(InvalidState, match="rolled_back, not a canary"):
        releases.judge(request.id)


def test_what_ran_at_a_time_follows_the_history(session: Session, unique: Unique) -> None:
    releases, churn, fraud, env = (session.releases, unique("churn"), unique("fraud"),
                                   unique("production"))  # fmt: skip
    releases.create_environment(env, AUTO)
    _versions(session, churn, 2)
    _versions(session, fraud, 1)
    releases.promote(f"{churn}/1", env, "launch")
    releases.promote(f"{fraud}/1", env, "launch")
    releases.promote(f"{churn}/2", env, "retrain")
    releases.rollback(env, churn, "latency")
    entries = list(reversed(releases.history(env)))  # oldest first

    def ran(at: int) -> dict[str, int]:
        return {d.model: d.version for d in releases.deployed_at(env, at)}

    assert ran(entries[0].at - 1) == {}
    after = [{churn: 1}, {churn: 1, fraud: 1}, {churn: 2, fraud: 1}, {churn: 1, fraud: 1}]
    for entry in entries:  # what the last entry made by then put there
        latest = max(i for i, e in enumerate(entries) if e.at <= entry.at)
        assert ran(entry.at) == after[latest]
    now = releases.deployed_at(env, entries[-1].at)
    assert {d.model: (d.action, d.version) for d in now} == {
        churn: (Action.ROLLBACK, 1), fraud: (Action.PROMOTE, 1)}  # fmt: skip
    assert {d.environment for d in now} == {env}


def test_webhooks_are_added_listed_and_removed(
    session: Session, unique: Unique, actor: str
) -> None:
    releases, env = session.releases, unique("staging")
    releases.create_environment(env, AUTO)
    url = f"http://127.0.0.1:9/hooks/{unique('deploy')}"  # nothing listens: nothing posted
    hook = releases.add_webhook(url, "a-secret-of-sixteen-or-more", env)
    assert (hook.url, hook.environment, hook.created_by) == (url, env, actor)
    assert hook in releases.list_webhooks()
    assert releases.get_webhook(hook.id) == hook
    assert releases.get_webhook(hook.id[:8]) == hook  # as `cairn webhooks list` shows it
    with pytest.raises(NotFound, match="webhook"):
        releases.get_webhook(hook.id[:7])  # too short to name one
    assert not any("a-secret" in repr(h) for h in releases.list_webhooks())  # never shown
    everywhere = releases.add_webhook(url + "/all", "another-secret-of-sixteen")
    assert everywhere.environment is None
    releases.remove_webhook(hook.id[:8])
    releases.remove_webhook(everywhere.id)
    listed = [h.id for h in releases.list_webhooks()]
    assert hook.id not in listed
    assert everywhere.id not in listed
    with pytest.raises(NotFound, match="webhook"):
        releases.remove_webhook(hook.id)
    with pytest.raises(NotFound, match=r"webhook .* not found"):
        releases.get_webhook(hook.id)
    with pytest.raises(InvalidInput, match="url: expected an http:// or https:// address"):
        releases.add_webhook("ftp://example.com/hook", "a-secret-of-sixteen-or-more", env)
    with pytest.raises(InvalidInput, match="secret: expected 16 characters or more"):
        releases.add_webhook(url, "short", env)
    with pytest.raises(NotFound, match=r"environment 'nowhere-.*' not found"):
        releases.add_webhook(url, "a-secret-of-sixteen-or-more", unique("nowhere"))
