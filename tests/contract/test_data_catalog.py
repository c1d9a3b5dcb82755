"""The DataCatalog contract, run against SQLite, PostgreSQL and a real Cairn server.

The server adds what only a shared catalog needs: it refuses a version whose objects it
does not hold, or whose listings are not a manifest a checkout can follow (see
``tests/security/test_path_escape.py``), and it lets whoever may read a dataset read the
objects it is made of, and no one else.
"""

from __future__ import annotations

import dataclasses
import io
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import orjson
import pytest

from cairn.core.access import Role
from cairn.core.data import DataKind, DataRef, NewDataVersion, parse_data_ref
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.ports import DataCatalog
from cairn.data.manifest import TREE_FORMAT
from cairn.errors import InvalidInput, NotFound, PermissionDenied
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import running_server

USERS = {"writer": Role.CONTRIBUTOR, "reader": Role.VIEWER}


@dataclass
class Backend:
    catalog: DataCatalog
    store_object: Callable[[bytes], str]  # an object the catalog's side holds: its digest


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A server with authentication on; tokens of a contributor and a viewer in the
    default project, and of an outsider who holds a role only in another project."""
    folder = tmp_path_factory.mktemp("server")
    db_url = f"sqlite:///{folder / 'cairn.db'}"
    seed = SqlMetadataStore(db_url)
    identity = IdentityStore(seed.engine)
    identity.add_project("elsewhere")
    tokens = {}
    for name, role in (*USERS.items(), ("outsider", Role.ADMIN)):
        identity.add_user(name)
        identity.set_role("elsewhere" if name == "outsider" else DEFAULT_PROJECT, name, role)
        tokens[name] = identity.create_token(name, "tests")[1]
    seed.close()
    with running_server(db_url, str(folder / "objects"), auth=True) as base_url:
        yield base_url, tokens


def _digest_of(data: bytes) -> str:
    return f"blake3:{blake3.blake3(data).hexdigest()}"


@pytest.fixture(params=["sqlite", "postgresql", "http"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "http":
        from cairn.client.data import HttpDataCatalog
        from cairn.client.http import HttpArtifactStore

        base_url, tokens = request.getfixturevalue("http_server")
        catalog = HttpDataCatalog(base_url, tokens["writer"])
        objects = HttpArtifactStore(base_url, tokens["writer"])
        yield Backend(catalog, lambda data: objects.put_stream(io.BytesIO(data)).digest)
        catalog.close()
        objects.close()
        return
    url = (
        f"sqlite:///{tmp_path / 'cairn.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = SqlMetadataStore(url)
    yield Backend(SqlDataCatalog(store.engine), _digest_of)  # no store to hold objects
    store.close()


def _name() -> str:
    return f"customers-{uuid.uuid4().hex[:8]}"


def _listing(store_object: Callable[[bytes], str], data: bytes = b"") -> tuple[str, str]:
    """A manifest of one file of 64 bytes (new ones, unless given), stored: its root and
    the file's digest."""
    part = store_object(data or os.urandom(64))
    entries = [["c.csv", "f", part, 64, "", 0]]
    return store_object(orjson.dumps({"format": TREE_FORMAT, "entries": entries})), part


def _new(backend: Backend, name: str, **extra: Any) -> NewDataVersion:
    root, _ = _listing(backend.store_object)
    return NewDataVersion(name, root, DataKind.FILE, "data/c.csv", 1, 64, **extra)


@pytest.mark.parametrize("path", ["/etc/c.csv", "../c.csv", "data/../../c.csv", ""])
def test_a_path_outside_the_project_is_refused(backend: Backend, path: str) -> None:
    new = _new(backend, _name())
    with pytest.raises(InvalidInput, match=r"^path "):
        backend.catalog.add_version(dataclasses.replace(new, path=path))
    with pytest.raises(NotFound):
        backend.catalog.get_version(DataRef(new.name))


def test_versions_are_numbered_and_unchanged_data_makes_none(backend: Backend) -> None:
    name = _name()
    first, created = backend.catalog.add_version(_new(backend, name, message="October"))
    assert (first.ref, created, first.message, first.project) == (
        f"{name}@1", True, "October", DEFAULT_PROJECT,
    )  # fmt: skip
    same, created = backend.catalog.add_version(
        NewDataVersion(name, first.digest, DataKind.FILE, "data/c.csv", 1, 64)
    )
    assert (same, created) == (first, False)
    profile = backend.store_object(b'{"tables": {}}')
    second, created = backend.catalog.add_version(_new(backend, name, profile=profile))
    assert (second.version, created, second.profile) == (2, True, profile)


def test_a_reference_finds_its_version(backend: Backend) -> None:
    name = _name()
    one, _ = backend.catalog.add_version(_new(backend, name))
    two, _ = backend.catalog.add_version(_new(backend, name))
    get = backend.catalog.get_version
    assert get(parse_data_ref(f"{name}@1")) == one
    assert get(parse_data_ref(name)) == get(parse_data_ref(f"{name}@latest")) == two
    assert get(parse_data_ref(f"{name}@{one.digest[7:19]}")) == one
    with pytest.raises(NotFound, match=f"data version {name}@3 not found"):
        get(DataRef(name, version=3))
    with pytest.raises(NotFound, match="dataset 'nothing-here' not found"):
        get(DataRef("nothing-here"))


def test_versions_list_newest_first_and_datasets_by_name(backend: Backend) -> None:
    names = sorted(_name() for _ in range(2))
    for name in names:
        backend.catalog.add_version(_new(backend, name))
    backend.catalog.add_version(_new(backend, names[0], message="second"))
    versions = backend.catalog.list_versions(names[0])
    assert [(v.version, v.message) for v in versions] == [(2, "second"), (1, "")]
    newest = {v.dataset: v.version for v in backend.catalog.list_datasets()}
    assert (newest[names[0]], newest[names[1]]) == (2, 1)
    with pytest.raises(NotFound, match="dataset 'nothing-here' not found"):
        backend.catalog.list_versions("nothing-here")


# what only a server does


@pytest.fixture
def clients(http_server: tuple[str, dict[str, str]]) -> Iterator[dict[str, Any]]:
    from cairn.client.data import HttpDataCatalog
    from cairn.client.http import HttpArtifactStore

    base_url, tokens = http_server
    made: dict[str, Any] = {}  # "reader": its catalog, "reader-objects": its object store
    for name, token in tokens.items():
        made[name] = HttpDataCatalog(base_url, token)
        made[f"{name}-objects"] = HttpArtifactStore(base_url, token)
    yield made
    for client in made.values():
        client.close()


def test_a_server_refuses_a_version_whose_objects_it_lacks(clients: dict[str, Any]) -> None:
    catalog = clients["writer"]
    absent = _digest_of(b"never uploaded")
    new = NewDataVersion(_name(), absent, DataKind.FILE, "c.csv", 1, 14)
    with pytest.raises(InvalidInput, match=r"^digest: object .* is not stored here"):
        catalog.add_version(new)
    with pytest.raises(NotFound):
        catalog.get_version(DataRef(new.name))


def test_who_may_read_a_dataset_may_read_its_objects_and_no_one_else(
    clients: dict[str, Any],
) -> None:
    writer, writer_objects = clients["writer"], clients["writer-objects"]
    data = os.urandom(64)
    root, part = _listing(lambda made: writer_objects.put_stream(io.BytesIO(made)).digest, data)
    name = _name()
    new = NewDataVersion(name, root, DataKind.FILE, "c.csv", 1, 64, objects=(root, part))
    version, _ = writer.add_version(new)

    reader, reader_objects = clients["reader"], clients["reader-objects"]
    assert reader.get_version(DataRef(name)) == version
    with reader_objects.open(part) as chunks:
        assert b"".join(chunks) == data
    with pytest.raises(PermissionDenied, match="reader may not do this"):
        reader.add_version(_new_on(writer_objects, name))

    outsider, outsider_objects = clients["outsider"], clients["outsider-objects"]
    # What the outsider may not read is not found, as what does not exist.
    with pytest.raises(NotFound, match=rf"^dataset '{name}' not found \(see `cairn data list`\)$"):
        outsider.get_version(DataRef(name))
    with pytest.raises(NotFound, match=rf"^data version {name}@1 not found "):
        outsider.get_version(DataRef(name, version=1))
    with pytest.raises(NotFound, match=rf"^dataset '{name}' not found "):
        outsider.list_versions(name)
    assert name not in {v.dataset for v in outsider.list_datasets()}
    with (
        pytest.raises(PermissionDenied, match=f"may not read object {part}"),
        outsider_objects.open(part) as chunks,
    ):
        b"".join(chunks)


def _new_on(objects: Any, name: str) -> NewDataVersion:
    root, _ = _listing(lambda data: objects.put_stream(io.BytesIO(data)).digest)
    return NewDataVersion(name, root, DataKind.FILE, "c.csv", 1, 64)
