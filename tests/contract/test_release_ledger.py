"""The ReleaseLedger contract, on SQLite and PostgreSQL: racing promotions and rollbacks
keep one current version whose history and audit trail agree; "what ran at time T"
against a scripted history; environments' aliases move only through releases."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cairn.core.authorizer import Authorizer
from cairn.core.model import ModelVersion, NewModelVersion, PackageFile
from cairn.core.release import Action, RequestState
from cairn.errors import InvalidInput, InvalidState, NotFound
from cairn.releases import workflow
from cairn.releases.service import ReleaseService
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.models import SqlModelRegistry
from cairn.stores.metadata.releases import SqlReleaseLedger
from cairn.stores.metadata.sql import SqlMetadataStore

AUTO = "auto_promote: true\n"  # no gates, no approvals: a request deploys at once


@pytest.fixture
def store(database_url: str) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(database_url)
    yield opened
    opened.close()


def _not_evaluated(*_: Any) -> Any:
    raise AssertionError("no gate here evaluates")


def _service(store: SqlMetadataStore) -> ReleaseService:
    return ReleaseService(SqlReleaseLedger(store.engine), SqlModelRegistry(store.engine), store,
                          _not_evaluated, Authorizer.local_admin())  # fmt: skip


def _versions(store: SqlMetadataStore, name: str, count: int) -> list[ModelVersion]:
    registry = SqlModelRegistry(store.engine)
    made = []
    for i in range(count):
        digest = f"blake3:{i:064x}"
        files = (PackageFile("model.pkl", digest, 1),)
        made.append(registry.register_version(
            NewModelVersion(name, digest, "sklearn", files, {"format": 1}), "default"))  # fmt: skip
    return made


def test_racing_promotions_and_rollbacks_keep_one_version_and_agreeing_records(
    store: SqlMetadataStore,
) -> None:
    service = _service(store)
    service.create_environment("production", AUTO)
    _versions(store, "churn", 6)
    errors: list[BaseException] = []

    def release(seed: int) -> None:
        chosen = random.Random(seed)
        for _ in range(12):
            try:
                if chosen.random() < 0.6:
                    service.promote(f"churn/{chosen.randint(1, 6)}", "production", "race")
                else:
                    to = chosen.choice([None, chosen.randint(1, 6)])
                    service.rollback("production", "churn", "race", to)
            except (InvalidState, NotFound):
                pass  # already running it, nothing to roll back: refused, recorded nowhere
            except BaseException as exc:  # noqa: BLE001  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=release, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    history = list(reversed(service.history("production", "churn")))  # oldest first
    assert len(history) >= 2
    # Each entry replaced exactly what the one before it put there: no lost update.
    assert history[0].previous is None
    for before, after in itertools.pairwise(history):
        assert after.previous == before.version
        assert after.version != before.version
    current = service.get_environment("production").deployed["churn"]
    assert current == history[-1].version
    assert SqlModelRegistry(store.engine).get_model("churn").aliases["production"] == current
    # The audit trail holds one event per entry, in the same order, saying the same.
    events = [
        e for e in AuditLog(store.engine).events(EventQuery(object_type="environment", limit=1000))
        if e.content.action in ("release.promote", "release.rollback")
    ]  # fmt: skip
    said = [(e.content.action, _payload(e)["version"], _payload(e)["previous"]) for e in events]
    assert said == [(f"release.{d.action.value}", d.version, d.previous) for d in history]
    promotions = [d for d in history if d.action is Action.PROMOTE]
    requests = service.list_requests("production", "churn", RequestState.DEPLOYED)
    assert {d.request_id for d in promotions} == {r.id for r in requests}


def _payload(event: Any) -> dict[str, Any]:
    import orjson

    found: dict[str, Any] = orjson.loads(event.content.payload)
    return found


def test_what_ran_at_a_time_follows_a_scripted_history(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(store)
    service.create_environment("production", AUTO)
    _versions(store, "churn", 3)
    _versions(store, "fraud", 1)
    script = [
        (1_000, lambda: service.promote("churn/1", "production", "first")),
        (2_000, lambda: service.promote("churn/2", "production", "better")),
        (2_500, lambda: service.promote("fraud/1", "production", "new model")),
        (3_000, lambda: service.rollback("production", "churn", "latency")),
        (4_000, lambda: service.promote("churn/3", "production", "fixed")),
    ]
    for moment, step in script:
        monkeypatch.setattr(workflow, "now_ms", lambda moment=moment: moment)
        step()

    def ran(at: int) -> dict[str, int]:
        return {d.model: d.version for d in service.deployed_at("production", at)}

    assert ran(999) == {}
    assert ran(1_000) == {"churn": 1}
    assert ran(1_999) == {"churn": 1}
    assert ran(2_000) == {"churn": 2}
    assert ran(2_700) == {"churn": 2, "fraud": 1}
    assert ran(3_500) == {"churn": 1, "fraud": 1}  # rolled back
    assert ran(10_000) == {"churn": 3, "fraud": 1}
    [at_3500] = [d for d in service.deployed_at("production", 3_500) if d.model == "churn"]
    assert (at_3500.action, at_3500.reason, at_3500.previous) == (Action.ROLLBACK, "latency", 2)


def test_an_environments_alias_moves_only_through_a_release(store: SqlMetadataStore) -> None:
    service = _service(store)
    registry = SqlModelRegistry(store.engine)
    _versions(store, "churn", 2)
    registry.set_alias("churn", "champion", 1)
    with pytest.raises(InvalidInput, match="models use 'champion' as an alias already"):
        service.create_environment("champion", AUTO)
    service.create_environment("production", AUTO)
    with pytest.raises(InvalidInput, match="cairn promote MODEL/VERSION --to production"):
        registry.set_alias("churn", "production", 2)
    service.promote("churn/2", "production", "go")
    with pytest.raises(InvalidInput, match="is the environment 'production'"):
        registry.delete_alias("churn", "production")
    assert registry.resolve(registry_ref("churn@production")).version == 2
    with pytest.raises(InvalidState, match="is what production runs already"):
        service.promote("churn/2", "production", "again")


def registry_ref(text: str) -> Any:
    from cairn.core.model import parse_model_ref

    return parse_model_ref(text)


def test_gates_run_again_when_the_policy_changes_while_they_run(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.releases import service as service_module

    service = _service(store)
    service.create_environment("production", AUTO)
    _versions(store, "churn", 1)
    ran = service_module.run_gates
    seen: list[int] = []

    def run_gates(gates: Any, facts: Any) -> Any:
        seen.append(len(gates))
        if len(seen) == 1:  # an admin changes the policy meanwhile
            service.set_policy("production", AUTO + "gates:\n  - no_unsafe_pickle: true\n")
        return ran(gates, facts)

    monkeypatch.setattr(service_module, "run_gates", run_gates)
    request = service.promote("churn/1", "production", "go")
    assert seen == [0, 1]  # the gates ran again, under the new policy
    assert request.policy_digest == service.get_environment("production").policy.digest
    assert [g.gate for g in request.gates] == ["no pickle imports outside the allow-list"]
