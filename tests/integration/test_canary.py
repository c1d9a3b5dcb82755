"""Canary releases, on SQLite and PostgreSQL: a version approved under a policy with a canary
gate serves a share of requests beside the version running, is judged on the labelled
requests of its logged traffic, and is promoted — or rolled back when it does worse — each
step in the environment's history and the audit trail."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from cairn import sdk
from cairn.core.release import Action, RequestState
from cairn.errors import InvalidInput, InvalidState
from cairn.releases.service import judge_canaries
from cairn.serving.payloads import PayloadLog
from cairn.session import Session
from cairn.stores.metadata.audit import AuditLog, EventQuery

POLICY = """\
auto_promote: true
gates:
  - canary: {share: 0.5, requests: 200, metric: accuracy, max_regression: 0.05}
"""
FEATURES = 3


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, FEATURES))
    return features, (features[:, 0] + 0.3 * rng.normal(size=rows) > 0).astype(int)


@pytest.fixture
def session(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Session:
    """``churn/1`` in production (a first release enters directly), a policy judging the
    next on 200 labelled requests; ``churn/2`` trained well, ``churn/3`` on shuffled labels."""
    monkeypatch.setenv("CAIRN_DB", database_url)
    opened = sdk.session()
    features, labels = _data(2_000, seed=0)
    shuffled = np.random.default_rng(1).permutation(labels)
    for truth in (labels, labels, shuffled):
        opened.models.register(LogisticRegression().fit(features, truth), "churn")
    opened.releases.create_environment("production", POLICY)
    first = opened.releases.promote("churn/1", "production", "first release")
    assert first.state is RequestState.DEPLOYED
    assert "ran no version to judge a canary against" in first.decision
    return opened


def _serve(session: Session, versions: dict[int, int], seed: int) -> None:
    """Log what each version answered for its share of live requests, and their labels."""
    features, labels = _data(sum(versions.values()), seed)
    log = PayloadLog(session.registry, session.artifacts, flush_seconds=0.1)
    ids, at = [], 0
    for version, count in versions.items():
        model = session.models.load(f"churn/{version}")
        for row in range(at, at + count):
            answer = model.predict(features[row : row + 1])
            log.record("churn", version, f"req-{seed}-{row}", features[row : row + 1], answer)
            ids.append(f"req-{seed}-{row}")
        at += count
    log.close()
    session.monitoring.log_labels("churn", ids, labels.tolist())


def _audited(session: Session) -> list[str]:
    events = AuditLog(session.database.engine).events(EventQuery(limit=1000))  # type: ignore[attr-defined]
    return [e.content.action for e in events]


def test_a_canary_that_does_as_well_is_promoted_after_its_labelled_requests(
    session: Session,
) -> None:
    releases = session.releases
    request = releases.promote("churn/2", "production", "retrained on May's data")
    assert request.state is RequestState.CANARY
    assert "serving as a canary beside version 1" in request.decision
    assert releases.get_environment("production").deployed == {"churn": 1}
    latest = releases.history("production")[0]
    assert (latest.action, latest.version, latest.previous) == (Action.CANARY, 2, 1)
    # What ran meanwhile is still version 1: the canary only serves a share.
    assert releases.deployed_at("production", latest.at)[0].version == 1
    with pytest.raises(InvalidState, match="serves as a canary in production"):
        releases.promote("churn/3", "production", "another")
    # No traffic yet: it keeps serving, the count so far recorded.
    waiting = releases.judge(request.id)
    assert waiting.state is RequestState.CANARY
    assert "0 of 200 labelled requests of the canary" in waiting.gates[0].reason
    _serve(session, {1: 300, 2: 300}, seed=5)
    judged = releases.judge(request.id)
    assert judged.state is RequestState.DEPLOYED, judged.decision
    assert judged.decision.startswith("canary passed: accuracy")
    evidence = judged.gates[0].evidence
    assert (evidence["canary_labelled"], evidence["current_labelled"]) == (300, 300)
    assert evidence["worse_by"] <= 0.05
    assert releases.get_environment("production").deployed == {"churn": 2}
    promoted = releases.history("production")[0]
    assert (promoted.action, promoted.version, promoted.previous) == (Action.PROMOTE, 2, 1)
    assert "canary passed" in promoted.reason
    actions = _audited(session)
    assert actions.index("release.canary") < actions.index("release.canary.judged")


def test_a_canary_that_does_worse_is_rolled_back_automatically(session: Session) -> None:
    releases = session.releases
    request = releases.promote("churn/3", "production", "retrained, labels mixed up")
    assert request.state is RequestState.CANARY
    _serve(session, {1: 250, 3: 250}, seed=6)
    (judged,) = judge_canaries(releases)
    assert judged.state is RequestState.ROLLED_BACK
    assert "did worse: accuracy" in judged.decision
    evidence = judged.gates[0].evidence
    assert evidence["canary_value"] < evidence["current_value"] - 0.2
    assert not judged.gates[0].passed
    assert releases.get_environment("production").deployed == {"churn": 1}
    withdrawn = releases.history("production")[0]
    assert (withdrawn.action, withdrawn.version, withdrawn.previous) == (Action.ROLLBACK, 1, 3)
    assert withdrawn.request_id == request.id
    assert "release.rollback" in _audited(session)
    # Judged for good: nothing more to judge, and the next candidate may be promoted.
    assert judge_canaries(releases) == []
    with pytest.raises(InvalidState, match="rolled_back, not a canary"):
        releases.judge(request.id)
    assert releases.promote("churn/2", "production", "the good one").state is RequestState.CANARY


def test_a_rollback_withdraws_a_serving_canary(session: Session) -> None:
    releases = session.releases
    request = releases.promote("churn/2", "production", "try it")
    with pytest.raises(InvalidState, match="roll it back first"):
        releases.rollback("production", "churn", "elsewhere", to_version=2)
    done = releases.rollback("production", "churn", "latency doubled")
    assert (done.action, done.version, done.previous) == (Action.ROLLBACK, 1, 2)
    withdrawn = releases.get_request(request.id)
    assert (withdrawn.state, withdrawn.decision) == (RequestState.ROLLED_BACK,
                                                     "rolled back: latency doubled")  # fmt: skip
    assert releases.get_environment("production").deployed == {"churn": 1}


def test_a_canary_gate_is_refused_naming_its_field(session: Session) -> None:
    refusals = [
        ("{share: 1.5}", "gates[0].canary.share"),
        ("{requests: 0}", "gates[0].canary.requests"),
        ("{metric: loss}", "gates[0].canary.metric: expected one of accuracy"),
        ("{max_regression: -1}", "gates[0].canary.max_regression"),
        ("{when: now}", "gates[0].canary: unexpected field"),
    ]
    for spec, named in refusals:
        with pytest.raises(InvalidInput, match=re.escape(named)):
            session.releases.set_policy("production", f"gates:\n  - canary: {spec}\n")
    twice = "gates:\n  - canary: {}\n  - canary: {share: 0.2}\n"
    with pytest.raises(InvalidInput, match="one canary gate at most"):
        session.releases.set_policy("production", twice)
    assert session.releases.get_environment("production").policy_text == POLICY
