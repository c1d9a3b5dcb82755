"""Access control through a real server: every route declares a permission, and every
route × role × (own project | other project) cell is allowed or denied as the roles say.

The objects all live in project ``churn``. For each role there are two accounts: one
holding the role in ``churn`` (own project) and one holding it in ``fraud`` (another
project). Installation admins may do everything; callers without a valid token get 401.
A caller refused for want of a permission is told which (403); but for a caller who may
not read ``churn`` at all, churn's things are not there: it gets what a request naming
nothing gets (404), whatever its role elsewhere: every route lets any valid token through
to the service built for the caller, which alone decides on the objects the call reaches.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import httpx
import orjson
import pytest
from fastapi.routing import APIRoute

from cairn.core.access import ROLE_PERMISSIONS, Permission, Role
from cairn.core.codec import batch_to_dict
from cairn.core.data import DataKind, NewDataVersion
from cairn.data.manifest import TREE_FORMAT
from cairn.server.app import API_ROUTERS
from cairn.server.auth import declared_permission
from cairn.server.routes import health
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import running_server

OWN, OTHER = "churn", "fraud"
BYSTANDER = "bystander"  # an account the matrix changes the standing of


def test_every_route_declares_a_permission_or_is_public() -> None:
    undeclared, declared = [], 0
    for router in (*API_ROUTERS, health.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            found = [declared_permission(d.call) for d in route.dependant.dependencies]
            if sum(f is not None for f in found) != 1:
                undeclared.append(route.path)
            declared += 1
    assert undeclared == []
    assert declared == len(CASES) + 1  # every route is in the matrix below, and /health


# Beyond the project permissions: any valid token, or installation admins only.
AUTHENTICATED, ADMIN = "authenticated", "admin"


@dataclass(frozen=True)
class Case:
    name: str
    permission: Permission | str
    on_object: bool  # checked on the object's project (else: held in any project)
    request: Callable[[httpx.Client, dict[str, Any]], httpx.Response]
    # What a caller who may not read the object's project gets: what the request gets
    # when it names nothing that exists (404; objects: 403 to whoever does not hold them;
    # a version added to a name unique across projects: 409, the name is taken).
    unseen: int = 404
    absent: bool = False  # may name nothing there is: a 404 even to whoever may do it
    private: bool = False  # another account's: not there for all but installation admins


def _fresh_run(admin: httpx.Client, world: dict[str, Any]) -> str:
    body = {"experiment_id": world["experiment"], "name": "r", "start_time": 1}
    run_id: str = admin.post("/api/v1/runs", json=body).json()["id"]
    return run_id


def _own_token(client: httpx.Client) -> str:
    """A token the caller makes for itself (a dummy id when the caller cannot)."""
    made = client.post("/api/v1/tokens", json={"name": "own"})
    return str(made.json()["id"]) if made.status_code == 201 else "0" * 16


def _bystanders_token(admin: httpx.Client) -> str:
    made = admin.post("/api/v1/tokens", json={"user": BYSTANDER, "name": "b"})
    return str(made.json()["id"])


def _batch() -> dict[str, Any]:
    return {"metrics": batch_to_dict([("loss", 0.5, 1, 1)], packed=True)}


CASES = [
    Case("create experiment", Permission.WRITE, True, lambda c, w: c.post(
        "/api/v1/experiments", json={"name": uuid.uuid4().hex, "project": OWN})),
    Case("list experiments", Permission.READ, False, lambda c, w: c.get("/api/v1/experiments")),
    Case("experiment by name", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/experiments/by-name", params={"name": "e-churn"})),
    Case("get experiment", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/experiments/{w['experiment']}")),
    Case("create run", Permission.WRITE, True, lambda c, w: c.post("/api/v1/runs", json={
        "experiment_id": w["experiment"], "name": "r", "start_time": 1})),
    Case("record runs", Permission.WRITE, True, lambda c, w: c.post("/api/v1/runs/record", json={
        "runs": [{"run": {"experiment_id": w["experiment"], "name": "r", "start_time": 1},
                  "status": "FINISHED", "end_time": 2}]})),
    Case("search runs", Permission.READ, True, lambda c, w: c.post(
        "/api/v1/runs/search", json={"experiment_ids": [w["experiment"]]})),
    Case("resolve run id", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/runs/resolve", params={"ref": w["run"][:8]})),
    Case("get run", Permission.READ, True, lambda c, w: c.get(f"/api/v1/runs/{w['run']}")),
    Case("child runs", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/runs/{w['run']}/children")),
    Case("cached output", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/runs/cached", params={"experiment_id": w["experiment"],
                                       "cache_key": "blake3:" + "c" * 64})),
    Case("end run", Permission.WRITE, True, lambda c, w: c.post(
        f"/api/v1/runs/{_fresh_run(w['admin'], w)}/end",
        json={"status": "FINISHED", "end_time": 2})),
    Case("delete run", Permission.WRITE, True, lambda c, w: c.delete(
        f"/api/v1/runs/{_fresh_run(w['admin'], w)}")),
    Case("restore run", Permission.WRITE, True, lambda c, w: c.post(
        f"/api/v1/runs/{_fresh_run(w['admin'], w)}/restore")),
    Case("log batch", Permission.WRITE, True, lambda c, w: c.post(
        f"/api/v1/runs/{w['run']}/batch", json=_batch())),
    Case("metric history", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/runs/{w['run']}/metrics/history", params={"key": "loss"})),
    Case("log inputs", Permission.WRITE, True, lambda c, w: c.post(
        f"/api/v1/runs/{w['run']}/inputs", json={"refs": ["d-churn@1"]})),
    Case("run inputs", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/runs/{w['run']}/inputs")),
    Case("log lineage", Permission.WRITE, True, lambda c, w: c.post(
        f"/api/v1/runs/{w['run']}/lineage", json={"used": [w["digest"]], "produced": []})),
    Case("run lineage", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/runs/{w['run']}/lineage")),
    Case("add artifacts", Permission.WRITE, True, lambda c, w: c.post(
        f"/api/v1/runs/{w['run']}/artifacts", json={"entries": [
            {"path": "b.txt", "digest": w["digest"], "size": w["size"]}]})),
    Case("list artifacts", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/runs/{w['run']}/artifacts")),
    Case("artifact file", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/runs/{w['run']}/artifacts/file", params={"path": "a.txt"})),
    Case("missing objects", Permission.WRITE, False, lambda c, w: c.post(
        "/api/v1/objects/missing", json={"digests": [w["digest"]]})),
    Case("object sizes", Permission.WRITE, False, lambda c, w: c.post(
        "/api/v1/objects/sizes", json={"digests": [w["digest"]]})),
    Case("put object", Permission.WRITE, False, lambda c, w: c.put(
        f"/api/v1/objects/{w['digest']}", content=w["content"])),
    Case("post object", Permission.WRITE, False, lambda c, w: c.post(
        "/api/v1/objects", content=uuid.uuid4().bytes)),
    Case("get object", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/objects/{w['digest']}"), unseen=403),
    Case("head object", Permission.WRITE, False, lambda c, w: c.head(
        f"/api/v1/objects/{w['digest']}")),
    Case("list datasets", AUTHENTICATED, False, lambda c, w: c.get("/api/v1/datasets")),
    Case("list models", AUTHENTICATED, False, lambda c, w: c.get("/api/v1/models")),
    Case("resolve model", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/models/resolve", params={"ref": "m-churn@latest"})),
    Case("get model", Permission.READ, True, lambda c, w: c.get("/api/v1/models/m-churn")),
    Case("list model versions", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/models/m-churn/versions")),
    Case("register model version", Permission.WRITE, True, lambda c, w: c.post(
        "/api/v1/models/m-churn/versions", json={"digest": w["package"]}), unseen=409),
    Case("set alias", Permission.MANAGE, True, lambda c, w: c.put(
        "/api/v1/models/m-churn/aliases/champion", json={"version": 1})),
    Case("delete alias", Permission.MANAGE, True, lambda c, w: c.delete(
        "/api/v1/models/m-churn/aliases/none-such"), absent=True),
    Case("get model card", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/models/m-churn/versions/1/card")),
    Case("set model card", Permission.WRITE, True, lambda c, w: c.put(
        "/api/v1/models/m-churn/versions/1/card", json={"intended_use": "tests"})),
    Case("log traffic", Permission.WRITE, True, lambda c, w: c.post("/api/v1/traffic", json={
        "model": "m-churn", "version": 1, "first_at": 1, "last_at": 2, "rows": 1,
        "digest": w["digest"]})),
    Case("model traffic", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/traffic", params={"model": "m-churn"})),
    Case("walk lineage", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/lineage/walk", params={"kind": "model_version", "id": "m-churn/1"})),
    Case("list data versions", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/datasets/d-churn/versions")),
    Case("get data version", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/datasets/d-churn/versions/1")),
    Case("add data version", Permission.WRITE, True, lambda c, w: c.post(
        "/api/v1/datasets/d-churn/versions", json={
            "digest": w["digest"], "kind": "file", "path": "d.csv", "files": 1, "bytes": 5}),
         unseen=409),
    Case("whoami", AUTHENTICATED, False, lambda c, w: c.get("/api/v1/whoami")),
    Case("list accounts", ADMIN, False, lambda c, w: c.get("/api/v1/users")),
    Case("add account", ADMIN, False, lambda c, w: c.post(
        "/api/v1/users", json={"name": uuid.uuid4().hex})),
    Case("disable account", ADMIN, False, lambda c, w: c.post(
        f"/api/v1/users/{BYSTANDER}/disable")),
    Case("enable account", ADMIN, False, lambda c, w: c.post(
        f"/api/v1/users/{BYSTANDER}/enable")),
    Case("list own tokens", AUTHENTICATED, False, lambda c, w: c.get("/api/v1/tokens")),
    Case("create own token", AUTHENTICATED, False, lambda c, w: c.post(
        "/api/v1/tokens", json={"name": "laptop"})),
    Case("revoke own token", AUTHENTICATED, False, lambda c, w: c.post(
        f"/api/v1/tokens/{_own_token(c)}/revoke")),
    Case("list projects", AUTHENTICATED, False, lambda c, w: c.get("/api/v1/projects")),
    Case("add project", ADMIN, False, lambda c, w: c.post(
        "/api/v1/projects", json={"name": uuid.uuid4().hex})),
    Case("list members", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/projects/{OWN}/members")),
    Case("give a role", Permission.ADMINISTER, True, lambda c, w: c.put(
        f"/api/v1/projects/{OWN}/members/{BYSTANDER}", json={"role": "viewer"})),
    Case("take a role away", Permission.ADMINISTER, True, lambda c, w: c.delete(
        f"/api/v1/projects/{OWN}/members/{BYSTANDER}")),
    Case("list environments", Permission.READ, False, lambda c, w: c.get(
        "/api/v1/environments")),
    Case("create environment", ADMIN, False, lambda c, w: c.post(
        "/api/v1/environments", json={"name": f"e{uuid.uuid4().hex[:12]}"})),
    Case("get environment", Permission.READ, False, lambda c, w: c.get(
        "/api/v1/environments/prod")),
    Case("set a policy", ADMIN, False, lambda c, w: c.put(
        "/api/v1/environments/prod/policy", json={"policy": ""})),
    Case("environment history", Permission.READ, False, lambda c, w: c.get(
        "/api/v1/environments/prod/history")),
    Case("deployed at a time", Permission.READ, False, lambda c, w: c.get(
        "/api/v1/environments/prod/deployed", params={"at": 1})),
    Case("check gates", Permission.READ, True, lambda c, w: c.post(
        "/api/v1/environments/prod/check", json={"ref": "m-churn/1"})),
    Case("roll back", Permission.MANAGE, True, lambda c, w: c.post(
        "/api/v1/environments/prod/rollback", json={"model": "m-churn", "reason": "r"}),
         absent=True),  # before the approval below, prod runs nothing to roll back
    # To another environment: whoever joins the request approved below could not approve it.
    Case("promote", Permission.MANAGE, True, lambda c, w: c.post("/api/v1/promotions", json={
        "ref": "m-churn/1", "environment": "dev", "reason": "r"})),
    Case("list requests", Permission.READ, False, lambda c, w: c.get("/api/v1/promotions")),
    Case("get request", Permission.READ, True, lambda c, w: c.get(
        f"/api/v1/promotions/{w['request']}")),
    Case("approve", Permission.APPROVE, True, lambda c, w: c.post(
        f"/api/v1/promotions/{w['request']}/approve", json={})),
    Case("reject", Permission.APPROVE, True, lambda c, w: c.post(
        f"/api/v1/promotions/{w['request']}/reject", json={"reason": "r"})),
    Case("judge a canary", Permission.MANAGE, True, lambda c, w: c.post(
        f"/api/v1/promotions/{w['request']}/judge")),  # not a canary: 409 to who may
    Case("list monitors", AUTHENTICATED, False, lambda c, w: c.get("/api/v1/monitors")),
    Case("create monitor", Permission.WRITE, True, lambda c, w: c.post("/api/v1/monitors", json={
        "monitor": {"name": f"m{uuid.uuid4().hex[:12]}", "model": "m-churn/1",
                    "reference": w["digest"]}})),
    Case("get monitor", Permission.READ, True, lambda c, w: c.get("/api/v1/monitors/mon-churn")),
    Case("record an evaluation", Permission.WRITE, True, lambda c, w: c.post(
        "/api/v1/monitor-results", json={
            "monitor": "mon-churn", "since": 0, "until": 1, "rows": 0, "state": "ok",
            "drift_share": 0.0, "drifted": [], "findings": 0, "report": w["digest"]})),
    Case("monitor results", Permission.READ, True, lambda c, w: c.get(
        "/api/v1/monitors/mon-churn/results")),
    Case("record a monitor action", Permission.WRITE, True, lambda c, w: c.post(
        "/api/v1/monitors/mon-churn/actions", json={"action": "retrained", "payload": {}})),
    Case("log labels", Permission.WRITE, True, lambda c, w: c.post("/api/v1/labels", json={
        "model": "m-churn", "labels": [["r1", "1"]]})),
    Case("look up labels", Permission.READ, True, lambda c, w: c.post(
        "/api/v1/labels/lookup", json={"model": "m-churn", "request_ids": ["r1"]})),
    Case("list webhooks", ADMIN, False, lambda c, w: c.get("/api/v1/webhooks")),
    Case("show a webhook", ADMIN, False, lambda c, w: c.get(f"/api/v1/webhooks/{'0' * 32}"),
         absent=True),
    Case("add webhook", ADMIN, False, lambda c, w: c.post("/api/v1/webhooks", json={
        "url": "http://127.0.0.1:9/hook", "secret": "s" * 16, "environment": "prod"})),
    Case("remove webhook", ADMIN, False, lambda c, w: c.delete(f"/api/v1/webhooks/{'0' * 32}"),
         absent=True),
]  # fmt: skip

# Routes above, asked about another account: installation admins only.
OTHER_ACCOUNT_CASES = [
    Case("list another's tokens", ADMIN, False, lambda c, w: c.get(
        "/api/v1/tokens", params={"user": BYSTANDER})),
    Case("create a token for another", ADMIN, False, lambda c, w: c.post(
        "/api/v1/tokens", json={"user": BYSTANDER, "name": "t"})),
    Case("revoke another's token", ADMIN, False, lambda c, w: c.post(
        f"/api/v1/tokens/{_bystanders_token(w['admin'])}/revoke"), private=True),
]  # fmt: skip
MATRIX = CASES + OTHER_ACCOUNT_CASES


@contextmanager
def _failures_audited_one_by_one() -> Iterator[None]:
    """These tests fail to authenticate hundreds of times on purpose, from one address: a
    server started here audits each failure rather than answer 429 past its budget (which
    tests/security/test_server_limits.py tests)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAIRN_SERVER_AUTH_FAILURES", "100000")
        yield


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with accounts for every role in each project, and objects in ``churn``."""
    folder = tmp_path_factory.mktemp("access")
    db = f"sqlite:///{folder / 'c.db'}"
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    identity.add_project(OWN)
    identity.add_project(OTHER)
    tokens: dict[str, str] = {}
    names: list[str] = []
    identity.add_user(BYSTANDER)
    identity.add_user("root", admin=True)
    tokens["installation admin"] = identity.create_token("root", "t")[1]
    for role in Role:
        for project in (OWN, OTHER):
            name = f"{role.value}-{project}"
            identity.add_user(name)
            names.append(name)
            identity.set_role(project, name, role)
            tokens[f"{role.value} in {'own' if project == OWN else 'other'} project"] = (
                identity.create_token(name, "t")[1]
            )
    version = NewDataVersion("d-churn", "blake3:" + "1" * 64, DataKind.FILE, "d.csv", 1, 1, "", OWN)
    SqlDataCatalog(store.engine).add_version(version)
    store.close()
    with (
        _failures_audited_one_by_one(),
        running_server(db, str(folder / "artifacts"), auth=True) as base_url,
    ):
        admin = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {tokens['installation admin']}"},
            timeout=60,  # the first scan of a model package imports its library on the server
        )
        experiment = admin.post(
            "/api/v1/experiments", json={"name": "e-churn", "project": OWN}
        ).json()["id"]
        content = b"alpha"
        digest = f"blake3:{blake3.blake3(content).hexdigest()}"
        admin.put(f"/api/v1/objects/{digest}", content=content).raise_for_status()
        world: dict[str, Any] = {
            "db": db,
            "admin": admin,
            "base_url": base_url,
            "tokens": tokens,
            "names": names,
            "experiment": experiment,
            "digest": digest,
            "content": content,
            "size": len(content),
            "folder": folder,
        }
        world["package"] = _registered_model(admin, folder)
        for environment in ("prod", "dev"):
            admin.post("/api/v1/environments", json={"name": environment}).raise_for_status()
        body = {"ref": "m-churn/1", "environment": "prod", "reason": "the matrix"}
        # Opened by a maintainer: whoever asked for a release may not approve it.
        maintainer = {"Authorization": f"Bearer {tokens['maintainer in own project']}"}
        opened = admin.post("/api/v1/promotions", json=body, headers=maintainer)
        world["request"] = opened.raise_for_status().json()["id"]
        monitor = {"name": "mon-churn", "model": "m-churn/1", "reference": digest}
        admin.post("/api/v1/monitors", json={"monitor": monitor}).raise_for_status()
        world["run"] = _fresh_run(admin, world)
        entry = {"path": "a.txt", "digest": digest, "size": len(content)}
        added = admin.post(f"/api/v1/runs/{world['run']}/artifacts", json={"entries": [entry]})
        added.raise_for_status()
        yield world
        admin.close()


def _registered_model(admin: httpx.Client, folder: Path) -> str:
    """Register m-churn/1 in the own project (its package's objects uploaded first); the
    manifest digest, which the matrix registers again."""
    from sklearn.linear_model import LogisticRegression

    from cairn.models.package import write_package

    (folder / "package").mkdir()
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    package = write_package(model, folder / "package")
    for file in package.files:
        content = (package.folder / file.path).read_bytes()
        admin.put(f"/api/v1/objects/{file.digest}", content=content).raise_for_status()
    body = {"digest": package.digest, "project": OWN}
    admin.post("/api/v1/models/m-churn/versions", json=body).raise_for_status()
    return package.digest


def _expected(principal: str, case: Case) -> bool:
    if principal == "installation admin" or case.permission == AUTHENTICATED:
        return True
    if case.permission == ADMIN:
        return False
    role_name, _, where = principal.partition(" in ")
    granted = case.permission in ROLE_PERMISSIONS[Role(role_name)]
    return granted and (where.startswith("own") or not case.on_object)


def _unseen(principal: str, case: Case) -> bool:
    """The caller may not read the object's project: for it, the object is not there."""
    if principal == "installation admin":
        return False
    if case.private or not isinstance(case.permission, Permission):
        return case.private
    where = principal.partition(" in ")[2]
    return case.on_object and where.startswith("other")


def _refused(answer: httpx.Response, case: Case) -> None:
    """A 401 or 403 names what was missing (a HEAD answer has no body)."""
    if answer.request.method == "HEAD":
        return
    error = answer.json()["error"]
    assert error["code"] == "PERMISSION_DENIED"
    needed = (
        f"{case.permission.value!r} permission"
        if isinstance(case.permission, Permission)
        else "installation admins"
    )
    assert needed in error["message"], (case.name, error["message"])


def _hidden(answer: httpx.Response, case: Case) -> None:
    """Answered as a request naming nothing: no permission, no project of the object's."""
    if answer.request.method == "HEAD" or case.unseen == 403:
        return
    error = answer.json()["error"]
    assert error["code"] in ("NOT_FOUND", "ALREADY_EXISTS"), (case.name, error)
    assert "permission" not in error["message"], (case.name, error["message"])


def test_the_authorization_matrix(world: dict[str, Any]) -> None:
    cells = unexpected_allows = unexpected_denials = forbidden = hidden = 0
    wrong: list[str] = []
    for principal, token in world["tokens"].items():
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=world["base_url"], headers=headers) as client:
            for case in MATRIX:
                answer, cells = case.request(client, world), cells + 1
                status = answer.status_code
                forbidden += status == 403  # what the audit trail must hold, one by one
                if _unseen(principal, case):
                    hidden += 1
                    if status != case.unseen:
                        unexpected_allows += status not in (401, 403, 404, 409)
                        wrong.append(f"{principal} / {case.name}: {status}, not {case.unseen}")
                    else:
                        _hidden(answer, case)
                elif _expected(principal, case):
                    if status in (401, 403) or (status == 404 and not case.absent):
                        unexpected_denials += 1
                        wrong.append(f"{principal} / {case.name}: {status}")
                elif status in (401, 403):
                    _refused(answer, case)
                else:
                    unexpected_allows += 1
                    wrong.append(f"{principal} / {case.name}: {status}")
    print(
        f"\nauthorization matrix: {cells} cells, {hidden} answered as not there, "
        f"{unexpected_allows} unexpected allows, {unexpected_denials} unexpected denials"
    )
    assert cells == len(world["tokens"]) * len(MATRIX)
    assert wrong == [], "\n".join(wrong)
    assert (unexpected_allows, unexpected_denials) == (0, 0)
    store = SqlMetadataStore(world["db"])
    audited = AuditLog(store.engine).events(EventQuery(action="auth.denied", limit=10_000))
    store.close()
    assert len(audited) == forbidden  # every refusal is in the audit trail, with who
    assert {e.content.actor for e in audited} <= set(world["names"])


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic YTpi"}],
    ids=["no token", "malformed token", "another scheme"],
)
def test_every_declared_route_refuses_a_caller_without_a_valid_token(
    world: dict[str, Any], headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=world["base_url"], headers=headers) as client:
        for case in CASES:
            answer = case.request(client, world)
            assert answer.status_code == 401, case.name
            if answer.request.method != "HEAD":  # a HEAD answer has no body
                assert answer.json()["error"]["code"] == "UNAUTHENTICATED"
        assert client.get("/health").status_code == 200  # public


def test_lists_show_only_what_the_caller_may_read(world: dict[str, Any]) -> None:
    admin = world["admin"]
    admin.post("/api/v1/experiments", json={"name": "e-fraud", "project": OTHER})
    headers = {"Authorization": f"Bearer {world['tokens']['viewer in other project']}"}
    with httpx.Client(base_url=world["base_url"], headers=headers) as client:
        names = [e["name"] for e in client.get("/api/v1/experiments").json()["experiments"]]
        assert names == ["e-fraud"]
        found = client.post("/api/v1/runs/search", json={}).json()["runs"]
        assert found == []  # the runs are all in churn
        assert client.get("/api/v1/datasets").json()["datasets"] == []  # d-churn is churn's


# Objects are stored once by content, whatever project holds them. Below, a contributor of
# fraud names objects only churn holds, wherever a digest can be named: each answer is the
# one an object never stored gets, the bytes never come back, and nothing is recorded.
# (These tests come after the matrix, whose count of audited refusals they would change.)

ABSENT = "blake3:" + "0" * 64  # never stored
REPORT = b"churn's report: auc 0.91"  # a run artifact of churn's only
TABLE = b"id,age\n1,2\n"  # a file of a data version of churn's only


def _blake3(content: bytes) -> str:
    return f"blake3:{blake3.blake3(content).hexdigest()}"


@dataclass(frozen=True)
class ObjectCell:
    name: str
    status: int
    # The request naming ``target`` (another project's object, or one never stored),
    # with ``own`` an object the caller uploaded itself.
    request: Callable[[httpx.Client, dict[str, Any], str], httpx.Response]


def _version(digest: str, **fields: Any) -> dict[str, Any]:
    return {"digest": digest, "kind": "file", "path": "t.csv", "files": 1, "bytes": 9,
            "project": OTHER, **fields}  # fmt: skip


def _listing(file: str, size: int) -> bytes:
    """A data version's listing of one file, ``t.csv``."""
    return orjson.dumps({"format": TREE_FORMAT, "entries": [["t.csv", "f", file, size, "", 0]]})


def _put(client: httpx.Client, content: bytes) -> str:
    client.put(f"/api/v1/objects/{_blake3(content)}", content=content).raise_for_status()
    return _blake3(content)


OBJECT_CELLS = [
    ObjectCell("run artifacts", 400, lambda c, w, target: c.post(
        f"/api/v1/runs/{w['fraud run']}/artifacts",
        json={"entries": [{"path": "copied.txt", "digest": target, "size": 5}]})),
    ObjectCell("data version digest", 400, lambda c, w, target: c.post(
        "/api/v1/datasets/d-fraud/versions", json=_version(target))),
    ObjectCell("data version profile", 400, lambda c, w, target: c.post(
        "/api/v1/datasets/d-fraud/versions", json=_version(w["own"], profile=target))),
    ObjectCell("data version objects", 400, lambda c, w, target: c.post(
        "/api/v1/datasets/d-fraud/versions",
        json=_version(w["own"], objects=[w["own"], target]))),
    ObjectCell("model version package", 404, lambda c, w, target: c.post(
        "/api/v1/models/m-fraud/versions", json={"digest": target, "project": OTHER})),
    ObjectCell("model version package file", 404, lambda c, w, target: c.post(
        "/api/v1/models/m-fraud/versions",
        json={"digest": w["manifest naming"](c, target), "project": OTHER})),
    ObjectCell("missing objects", 200, lambda c, w, target: c.post(
        "/api/v1/objects/missing", json={"digests": [target]})),
    ObjectCell("object sizes", 200, lambda c, w, target: c.post(
        "/api/v1/objects/sizes", json={"digests": [target]})),
    ObjectCell("head object", 404, lambda c, w, target: c.head(f"/api/v1/objects/{target}")),
    ObjectCell("get object", 403, lambda c, w, target: c.get(f"/api/v1/objects/{target}")),
    ObjectCell("walk an object's lineage", 403, lambda c, w, target: c.get(
        "/api/v1/lineage/walk", params={"kind": "object", "id": target})),
]  # fmt: skip


def _manifest_naming(folder: Path) -> Callable[[httpx.Client, str], str]:
    """Uploads, as the caller, a manifest made from m-churn/1's, with the digest of one of
    its files replaced by ``target``; the manifest's digest (never m-churn/1's own)."""
    from cairn.models.package import MANIFEST

    text = (folder / "package" / MANIFEST).read_text() + "# made by the caller\n"
    weights = sorted(set(re.findall(r"blake3:[0-9a-f]{64}", text)))[0]

    def upload(client: httpx.Client, target: str) -> str:
        content = text.replace(weights, target).encode()
        client.put(f"/api/v1/objects/{_blake3(content)}", content=content).raise_for_status()
        return _blake3(content)

    return upload


@pytest.fixture(scope="module")
def churn_objects(world: dict[str, Any]) -> dict[str, str]:
    """Objects only churn holds, each as a run artifact, a data version's digest, profile
    or object, or a file of a model package."""
    admin = world["admin"]
    found = {"run artifact": _put(admin, REPORT), "table": _put(admin, TABLE)}
    entry = {"path": "report.txt", "digest": found["run artifact"], "size": len(REPORT)}
    run = _fresh_run(admin, world)
    admin.post(f"/api/v1/runs/{run}/artifacts", json={"entries": [entry]}).raise_for_status()
    found["profile"] = _put(admin, b'{"tables": {}}')
    found["listing"] = _put(admin, _listing(found["table"], len(TABLE)))
    body = _version(found["listing"], project=OWN, profile=found["profile"], bytes=len(TABLE),
                    objects=[found["listing"], found["table"]])  # fmt: skip
    admin.post("/api/v1/datasets/d-churn-objects/versions", json=body).raise_for_status()
    package = admin.get("/api/v1/models/m-churn/versions").json()["versions"][-1]
    weights = next(f["digest"] for f in package["files"] if f["path"] != "cairn-model.yaml")
    return {"package": world["package"], "package file": weights, **found}


def _as(world: dict[str, Any], who: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {world['tokens'][who]}"}
    return httpx.Client(base_url=world["base_url"], headers=headers)


@pytest.fixture(scope="module")
def mallory(world: dict[str, Any]) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """The contributor of fraud, with a run of its own and an object it uploaded."""
    admin = world["admin"]
    experiment = admin.post(
        "/api/v1/experiments", json={"name": "objects-fraud", "project": OTHER}
    ).json()["id"]
    with _as(world, "contributor in other project") as client:
        run = client.post("/api/v1/runs", json={
            "experiment_id": experiment, "name": "r", "start_time": 1}).json()["id"]  # fmt: skip
        found = {"fraud run": run, "own": _put(client, b"mallory's own table"),
                 "manifest naming": _manifest_naming(world["folder"])}  # fmt: skip
        yield client, found


def _answer(response: httpx.Response, digest: str) -> tuple[int, str]:
    """What a response tells, with the digest named taken out, and any other digest (the
    caller's own manifest, made around the one named) marked as such."""
    text = response.text.replace(digest, "<digest>")
    return response.status_code, re.sub(r"blake3:[0-9a-f]{64}", "<the caller's>", text)


@pytest.mark.parametrize("cell", OBJECT_CELLS, ids=[c.name for c in OBJECT_CELLS])
def test_another_projects_object_is_answered_as_one_never_stored(
    world: dict[str, Any],
    churn_objects: dict[str, str],
    mallory: tuple[httpx.Client, dict[str, Any]],
    cell: ObjectCell,
) -> None:
    client, found = mallory
    never = cell.request(client, found, ABSENT)
    assert never.status_code == cell.status, never.text
    for what, digest in churn_objects.items():
        answer = cell.request(client, found, digest)
        assert _answer(answer, digest) == _answer(never, ABSENT), (what, answer.text)
        for content in (REPORT, TABLE):  # churn's bytes never come back
            assert content not in answer.content
    assert client.get(f"/api/v1/runs/{found['fraud run']}/artifacts").json()["artifacts"] == []
    assert client.get("/api/v1/datasets/d-fraud/versions").status_code == 404
    assert client.get("/api/v1/models/m-fraud").status_code == 404


def test_uploading_the_bytes_lets_another_project_record_them(
    world: dict[str, Any],
    churn_objects: dict[str, str],
    mallory: tuple[httpx.Client, dict[str, Any]],
) -> None:
    """The same file in two projects is stored once: the second uploads it (proving it has
    the bytes), then records and reads it like any object of its own."""
    client, found = mallory
    digest, content = churn_objects["run artifact"], REPORT
    assert client.post("/api/v1/objects/missing", json={"digests": [digest]}).json() == {
        "missing": [digest]
    }
    client.put(f"/api/v1/objects/{digest}", content=content).raise_for_status()
    assert client.post("/api/v1/objects/missing", json={"digests": [digest]}).json() == {
        "missing": []
    }
    assert client.get(f"/api/v1/objects/{digest}").status_code == 403  # uploading is no read
    entry = {"path": "report.txt", "digest": digest, "size": len(content)}
    added = client.post(f"/api/v1/runs/{found['fraud run']}/artifacts", json={"entries": [entry]})
    assert added.status_code == 204, added.text
    assert client.get(f"/api/v1/objects/{digest}").content == content  # fraud holds it now
    listing = _put(client, _listing(digest, len(content)))
    body = _version(listing, bytes=len(content), objects=[listing, digest])
    version = client.post("/api/v1/datasets/d-fraud/versions", json=body)
    assert version.status_code == 201, version.text
    with _as(world, "contributor in own project") as churn:  # churn's hold is unchanged
        assert churn.get(f"/api/v1/objects/{digest}").content == content


def test_a_reader_of_the_other_project_records_its_objects_without_uploading(
    world: dict[str, Any], churn_objects: dict[str, str]
) -> None:
    """Whoever may read an object where a project holds it has it already."""
    admin = world["admin"]
    admin.post("/api/v1/users", json={"name": "bridge"}).raise_for_status()
    admin.put(f"/api/v1/projects/{OWN}/members/bridge", json={"role": "viewer"})
    admin.put(f"/api/v1/projects/{OTHER}/members/bridge", json={"role": "contributor"})
    token = admin.post("/api/v1/tokens", json={"user": "bridge", "name": "t"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=world["base_url"], headers=headers) as bridge:
        listing, table = churn_objects["listing"], churn_objects["table"]
        assert bridge.post("/api/v1/objects/missing", json={"digests": [table]}).json() == {
            "missing": []
        }
        body = _version(listing, bytes=len(TABLE), objects=[listing, table])
        added = bridge.post("/api/v1/datasets/d-bridge/versions", json=body)
        assert added.status_code == 201, added.text
