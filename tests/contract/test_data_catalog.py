"""The data catalog's contract, on SQLite, PostgreSQL and through a Cairn server.

Every backend numbers versions, resolves references and lists datasets alike, and refuses
alike: a malformed name is InvalidInput and an unknown dataset or version NotFound, on
every backend, before anything is written. Versions are added as users add them
(``Session.catalog``): their objects stored first, then the version recorded.

A server adds what only a shared catalog needs: it decides who may add before it looks at
any object named, checks a version in the objects the caller holds — each stored and the
caller's, the listings a manifest a checkout can follow (see also
``tests/security/test_path_escape.py``) holding what the version claims — refuses at the
boundary a body it does not expect, and lets whoever may read a dataset read the objects
it is made of, and no one else.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterator
from typing import Any

import blake3
import httpx
import orjson
import pytest

from cairn.core.access import Role
from cairn.core.data import DataKind, DataRef, NewDataVersion, parse_data_ref
from cairn.core.data_codec import new_data_version_to_dict
from cairn.core.identity import DEFAULT_PROJECT
from cairn.data.manifest import TREE_FORMAT
from cairn.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from cairn.session import Session
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import running_server

Unique = Callable[[str], str]
Store = Callable[[bytes], str]  # stores bytes as an object; its digest
USERS = {"writer": Role.CONTRIBUTOR, "reader": Role.VIEWER}
ELSEWHERE = "elsewhere"  # the outsider's project: it is an admin there, and nothing here


def _stored_by(session: Session) -> Store:
    return lambda data: session.artifacts.put_stream(io.BytesIO(data)).digest


def _listing(store: Store, data: bytes = b"", name: str = "c.csv") -> tuple[str, str]:
    """A manifest of one file of 64 bytes (new ones, unless given), stored: its root and
    the file's digest."""
    part = store(data or os.urandom(64))
    entries = [[name, "f", part, 64, "", 0]]
    return store(orjson.dumps({"format": TREE_FORMAT, "entries": entries})), part


def _new(store: Store, name: str, **extra: Any) -> NewDataVersion:
    root, part = _listing(store)
    extra.setdefault("objects", (root, part))
    return NewDataVersion(name, root, DataKind.FILE, "data/c.csv", 1, 64, **extra)


@pytest.mark.parametrize("path", ["/etc/c.csv", "../c.csv", "data/../../c.csv", ""])
def test_a_path_outside_the_project_is_refused(session: Session, unique: Unique, path: str) -> None:
    new = _new(_stored_by(session), unique("customers"))
    with pytest.raises(InvalidInput, match=r"^path "):
        session.catalog.add_version(dataclasses.replace(new, path=path))
    with pytest.raises(NotFound):
        session.catalog.get_version(DataRef(new.name))


def test_versions_are_numbered_and_unchanged_data_makes_none(
    session: Session, unique: Unique, actor: str
) -> None:
    catalog, store, name = session.catalog, _stored_by(session), unique("customers")
    first, created = catalog.add_version(_new(store, name, message="October"))
    assert (first.ref, created, first.message, first.project, first.created_by) == (
        f"{name}@1", True, "October", DEFAULT_PROJECT, actor,
    )  # fmt: skip
    same, created = catalog.add_version(
        NewDataVersion(name, first.digest, DataKind.FILE, "data/c.csv", 1, 64)
    )
    assert (same, created) == (first, False)
    profile = store(b'{"tables": {}}')
    second, created = catalog.add_version(_new(store, name, profile=profile))
    assert (second.version, created, second.profile) == (2, True, profile)


def test_a_reference_finds_its_version(session: Session, unique: Unique) -> None:
    catalog, store, name = session.catalog, _stored_by(session), unique("customers")
    one, _ = catalog.add_version(_new(store, name))
    two, _ = catalog.add_version(_new(store, name))
    get = catalog.get_version
    assert get(parse_data_ref(f"{name}@1")) == one
    assert get(parse_data_ref(name)) == get(parse_data_ref(f"{name}@latest")) == two
    assert get(parse_data_ref(f"{name}@{one.digest[7:19]}")) == one
    with pytest.raises(NotFound, match=f"data version {name}@3 not found"):
        get(DataRef(name, version=3))
    with pytest.raises(NotFound, match="dataset 'nothing-here' not found"):
        get(DataRef("nothing-here"))


def test_versions_list_newest_first_and_datasets_by_name(session: Session, unique: Unique) -> None:
    catalog, store = session.catalog, _stored_by(session)
    names = sorted(unique("customers") for _ in range(2))
    for name in names:
        catalog.add_version(_new(store, name))
    catalog.add_version(_new(store, names[0], message="second"))
    versions = catalog.list_versions(names[0])
    assert [(v.version, v.message) for v in versions] == [(2, "second"), (1, "")]
    newest = {v.dataset: v.version for v in catalog.list_datasets()}
    assert (newest[names[0]], newest[names[1]]) == (2, 1)
    with pytest.raises(NotFound, match="dataset 'nothing-here' not found"):
        catalog.list_versions("nothing-here")


@pytest.mark.parametrize("name", ["a/b", "../up", "", "-dash", "x" * 129])
def test_a_malformed_name_is_refused_before_anything_is_looked_up(
    session: Session, name: str
) -> None:
    catalog = session.catalog
    new = NewDataVersion(name, "blake3:" + "1" * 64, DataKind.FILE, "data/c.csv", 1, 64)
    for call in (lambda: catalog.add_version(new), lambda: catalog.list_versions(name),
                 lambda: catalog.get_version(DataRef(name))):  # fmt: skip
        with pytest.raises(InvalidInput, match="dataset name"):
            call()


# what only a server does


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A server with authentication on; tokens of a contributor and a viewer in the
    default project, and of an outsider who is an admin only in another project."""
    folder = tmp_path_factory.mktemp("server")
    db_url = f"sqlite:///{folder / 'cairn.db'}"
    seed = SqlMetadataStore(db_url)
    identity = IdentityStore(seed.engine)
    identity.add_project(ELSEWHERE)
    tokens = {}
    for name, role in (*USERS.items(), ("outsider", Role.ADMIN)):
        identity.add_user(name)
        identity.set_role(ELSEWHERE if name == "outsider" else DEFAULT_PROJECT, name, role)
        tokens[name] = identity.create_token(name, "tests")[1]
    seed.close()
    with running_server(db_url, str(folder / "objects"), auth=True) as base_url:
        yield base_url, tokens


@pytest.fixture
def clients(http_server: tuple[str, dict[str, str]]) -> Iterator[dict[str, Any]]:
    """Each user's catalog (``"reader"``), object store (``"reader-objects"``) and raw
    HTTP client (``"reader-http"``)."""
    from cairn.client.data import HttpDataCatalog
    from cairn.client.http import HttpArtifactStore

    base_url, tokens = http_server
    made: dict[str, Any] = {}
    for name, token in tokens.items():
        made[name] = HttpDataCatalog(base_url, token)
        made[f"{name}-objects"] = HttpArtifactStore(base_url, token)
        made[f"{name}-http"] = httpx.Client(
            base_url=f"{base_url}/api/v1", headers={"Authorization": f"Bearer {token}"}
        )
    yield made
    for client in made.values():
        client.close()


def _uploads(clients: dict[str, Any], who: str) -> Store:
    objects = clients[f"{who}-objects"]
    return lambda data: objects.put_stream(io.BytesIO(data)).digest


def _digest_of(data: bytes) -> str:
    return f"blake3:{blake3.blake3(data).hexdigest()}"


def test_a_server_refuses_a_version_whose_objects_it_lacks(
    clients: dict[str, Any], unique: Unique
) -> None:
    catalog = clients["writer"]
    absent = _digest_of(b"never uploaded")
    new = NewDataVersion(unique("customers"), absent, DataKind.FILE, "c.csv", 1, 14)
    with pytest.raises(InvalidInput, match=r"^digest: object .* is not stored here"):
        catalog.add_version(new)
    held = _new(_uploads(clients, "writer"), new.name)
    with pytest.raises(InvalidInput, match=r"^objects\[1\]: object .* is not stored here"):
        catalog.add_version(dataclasses.replace(held, objects=(held.digest, absent)))
    with pytest.raises(NotFound):
        catalog.get_version(DataRef(new.name))


def test_who_may_read_a_dataset_may_read_its_objects_and_no_one_else(
    clients: dict[str, Any], unique: Unique
) -> None:
    writer = clients["writer"]
    data = os.urandom(64)
    root, part = _listing(_uploads(clients, "writer"), data)
    name = unique("customers")
    new = NewDataVersion(name, root, DataKind.FILE, "c.csv", 1, 64, objects=(root, part))
    version, _ = writer.add_version(new)

    reader, reader_objects = clients["reader"], clients["reader-objects"]
    assert reader.get_version(DataRef(name)) == version
    with reader_objects.open(part) as chunks:
        assert b"".join(chunks) == data
    with pytest.raises(PermissionDenied, match=r"reader may not add a version .* 'write' perm"):
        reader.add_version(_new(_uploads(clients, "writer"), name))

    outsider, outsider_objects = clients["outsider"], clients["outsider-objects"]
    # What the outsider may not read is not found, as what does not exist.
    with pytest.raises(NotFound, match=rf"^dataset '{name}' not found \(see `cairn data list`\)$"):
        outsider.get_version(DataRef(name))
    with pytest.raises(NotFound, match=rf"^data version {name}@1 not found "):
        outsider.get_version(DataRef(name, version=1))
    with pytest.raises(NotFound, match=rf"^data version {name}@{root[7:15]} not found "):
        outsider.get_version(DataRef(name, digest_prefix=root[7:15]))
    with pytest.raises(NotFound, match=rf"^dataset '{name}' not found "):
        outsider.list_versions(name)
    assert name not in {v.dataset for v in outsider.list_datasets()}
    with (
        pytest.raises(PermissionDenied, match=f"may not read object {part}"),
        outsider_objects.open(part) as chunks,
    ):
        b"".join(chunks)


def test_who_may_not_read_a_dataset_is_refused_before_its_objects_are_looked_at(
    clients: dict[str, Any], unique: Unique
) -> None:
    """An admin of another project adding to the writer's dataset is told the name is
    taken, and adding a new one to the writer's project that there is no such project —
    whatever it names, held or not: nothing it names is looked at, nor recorded."""
    name = unique("customers")
    clients["writer"].add_version(_new(_uploads(clients, "writer"), name))
    outsider = clients["outsider"]
    never = NewDataVersion(name, _digest_of(b"never"), DataKind.FILE, "data/c.csv", 1, 64)
    for new in (never, _new(_uploads(clients, "outsider"), name)):
        with pytest.raises(AlreadyExists, match=rf"^dataset name '{name}' is taken"):
            outsider.add_version(dataclasses.replace(new, project=ELSEWHERE))
        with pytest.raises(NotFound, match=rf"^project '{DEFAULT_PROJECT}' not found"):
            outsider.add_version(dataclasses.replace(new, name=unique("new")))
    assert [v.version for v in clients["writer"].list_versions(name)] == [1]


def test_objects_another_caller_holds_are_answered_as_never_stored(
    clients: dict[str, Any], unique: Unique
) -> None:
    """The outsider names the writer's objects in a version of its own project: each is
    refused word for word as an object never stored."""
    writer_root, writer_part = _listing(_uploads(clients, "writer"))
    own_root, own_part = _listing(_uploads(clients, "outsider"))
    absent = _digest_of(b"never uploaded")
    outsider, name = clients["outsider"], unique("mine")

    def refusal(**named: Any) -> str:
        new = NewDataVersion(name, own_root, DataKind.FILE, "data/c.csv", 1, 64,
                             project=ELSEWHERE, objects=(own_root, own_part))  # fmt: skip
        with pytest.raises(InvalidInput) as refused:
            outsider.add_version(dataclasses.replace(new, **named))
        return refused.value.message

    for field, theirs in (("digest", writer_root), ("profile", writer_part)):
        said = refusal(**{field: theirs})
        assert said.startswith(f"{field}: object {theirs} is not stored here")
        assert said.replace(theirs, absent) == refusal(**{field: absent})
    said = refusal(objects=(own_root, writer_part))
    assert said.startswith(f"objects[1]: object {writer_part} is not stored here")
    with pytest.raises(NotFound):
        outsider.get_version(DataRef(name))


@pytest.mark.parametrize("entry", ["../escaped.csv", "a/b.csv", ".", ""])
def test_a_listing_that_leads_out_of_its_folder_is_refused(
    clients: dict[str, Any], unique: Unique, entry: str
) -> None:
    store = _uploads(clients, "writer")
    root, part = _listing(store, name=entry)
    new = NewDataVersion(unique("customers"), root, DataKind.FILE, "data/c.csv", 1, 64,
                         objects=(root, part))  # fmt: skip
    with pytest.raises(InvalidInput, match=rf"^digest {root}: not a data manifest held here"):
        clients["writer"].add_version(new)


def test_a_version_claiming_other_files_than_its_manifest_holds_is_refused(
    clients: dict[str, Any], unique: Unique
) -> None:
    new = _new(_uploads(clients, "writer"), unique("customers"))
    for claims in ({"files": 2}, {"bytes": 65}):
        with pytest.raises(InvalidInput, match=r"^files, bytes: the manifest holds 1 files"):
            clients["writer"].add_version(dataclasses.replace(new, **claims))


_TOO_LONG = "x" * 4097
BAD_BODIES = [  # (what is changed in a good body, the field a 400 names)
    ({"extra": 1}, "extra"),
    ({"digest": "blake3:" + "A" * 64}, "digest"),
    ({"digest": "sha256:" + "1" * 64}, "digest"),
    ({"profile": "blake3:short"}, "profile"),
    ({"objects": ["blake3:" + "1" * 64, "not a digest"]}, "objects.1"),
    ({"objects": "blake3:" + "1" * 64}, "objects"),
    ({"kind": "symlink"}, "kind"),
    ({"path": _TOO_LONG}, "path"),
    ({"path": "nul\0byte"}, "path"),
    ({"message": "m" * 10_001}, "message"),
    ({"files": 2**63}, "files"),
    ({"files": -1}, "files"),
    ({"bytes": 10**30}, "bytes"),
    ({"bytes": True}, "bytes"),
    ({"files": "1"}, "files"),
    ({"digest": None}, "digest"),
]


@pytest.mark.parametrize(("change", "field"), BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_a_body_the_server_does_not_expect_is_refused_naming_the_field(
    clients: dict[str, Any], unique: Unique, change: dict[str, Any], field: str
) -> None:
    name = unique("customers")
    body = new_data_version_to_dict(_new(_uploads(clients, "writer"), name)) | change
    answer = clients["writer-http"].post(f"/datasets/{name}/versions", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["message"].split(":")[0]) == ("INVALID_INPUT", field)
    assert clients["writer-http"].get(f"/datasets/{name}/versions").status_code == 404


def test_the_answer_tells_whether_a_version_was_made(
    clients: dict[str, Any], unique: Unique
) -> None:
    """201 and the new version; 200 and the newest, which already had the manifest."""
    name = unique("customers")
    body = new_data_version_to_dict(_new(_uploads(clients, "writer"), name))
    post = clients["writer-http"].post
    made, again = (post(f"/datasets/{name}/versions", json=body) for _ in range(2))
    assert (made.status_code, made.json()["created"]) == (201, True)
    assert (again.status_code, again.json()) == (200, {**made.json(), "created": False})
    assert made.json()["version"]["ref"] == f"{name}@1"
