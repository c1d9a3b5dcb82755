"""A data version cannot make anyone write outside the folder it is checked out into, nor
into what runs code inside it.

Where a checkout writes comes from a version's recorded path and from the names in its
listings, and both come from elsewhere: a catalog, a server, a remote, a committed
``cairn.lock``; where those names lead comes from the working copy, links and all, which
may come from a repository someone else committed. Each is tried hostile here, at both
ends:

- a server refuses to record a version whose path leaves the project folder, or whose
  listings name ``..``, an absolute path, a separator or NUL (a 400 naming the field);
- a client refuses to check out, pull or ``get`` such a version from a tampered store,
  a tampered server database, a hostile server or a tampered remote (an IntegrityError
  naming the entry), and writes nothing, anywhere;
- a store refuses a version recorded through a hidden folder (``.venv``, ``.git``) or at
  another path than its dataset's, so that a contributor cannot point a teammate's
  ``cairn data checkout customers`` at their virtual environment; and a checkout refuses
  to write into a Python environment or a ``.git`` folder whatever the version says, or
  through a link that leads out of the project.
"""

from __future__ import annotations

import http.server
import io
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import httpx
import orjson
import pytest
from sqlalchemy import update

from cairn.core.access import Role
from cairn.core.data import DataKind, NewDataVersion
from cairn.core.data_codec import new_data_version_to_dict
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.ports import ArtifactStore
from cairn.data.manifest import TREE_FORMAT
from cairn.data.service import DataService
from cairn.errors import IntegrityError, InvalidInput, InvalidState
from cairn.stores.artifacts.fsspec import FsspecArtifactStore
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import running_server, seed_account

ESCAPE = "escape.txt"
HOSTILE_NAMES = [
    f"../{ESCAPE}",
    f"../../{ESCAPE}",
    f"/tmp/{ESCAPE}",
    f"a/../../{ESCAPE}",
    f"..\\..\\{ESCAPE}",
    "..",
    ".",
    "",
    "x\x00y",
]
HOSTILE_PATHS = ["/tmp/escaped", "../escaped", "data/../../escaped", "C:/escaped", "data\x00"]
CONTENT = b"written by whoever tampered with the store\n"


def _digest(content: bytes) -> str:
    return f"blake3:{blake3.blake3(content).hexdigest()}"


def _tree(entries: list[list[Any]]) -> bytes:
    """A listing as Cairn writes them, but with whatever entries it is given."""
    return orjson.dumps({"format": TREE_FORMAT, "entries": entries})


@dataclass
class Hostile:
    """Objects making up a version whose listing holds ``name``, nested ``depth`` deep."""

    root: str
    objects: dict[str, bytes]


def hostile(name: str, depth: int = 0) -> Hostile:
    objects = {_digest(CONTENT): CONTENT}
    listing = _tree([[name, "f", _digest(CONTENT), len(CONTENT), "", 0]])
    for level in range(depth):
        objects[_digest(listing)] = listing
        listing = _tree([[f"level{level}", "d", _digest(listing), len(CONTENT), 1]])
    objects[_digest(listing)] = listing
    return Hostile(_digest(listing), objects)


def _store(objects: dict[str, bytes], store: ArtifactStore) -> None:
    for digest, content in objects.items():
        store.put_stream(io.BytesIO(content), digest)


def _escaped(tmp_path: Path) -> list[Path]:
    """Whatever a hostile version managed to write anywhere under the test's folder (the
    checkouts all happen two levels down), and at the absolute paths tried."""
    found = list(tmp_path.rglob(f"*{ESCAPE}*"))
    found += [p for p in (Path("/tmp") / ESCAPE, Path("/tmp/escaped")) if p.exists()]
    return found


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[DataService, SqlDataCatalog]]:
    """A workspace two levels down, its store and its catalog, as a tampered disk has them."""
    workspace = tmp_path / "deep" / "project"
    workspace.mkdir(parents=True)
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'cairn.db'}")
    catalog = SqlDataCatalog(store.engine)
    artifacts = FsspecArtifactStore(str(tmp_path / "objects"))
    yield DataService(lambda: catalog, artifacts, workspace, tmp_path / "home"), catalog
    store.close()


def _record(catalog: SqlDataCatalog, name: str, made: Hostile, path: str = "data/set") -> None:
    """What a tampered catalog holds: the store checks the path, no one checked listings."""
    new = NewDataVersion(
        name, made.root, DataKind.DIRECTORY, path, 1, len(CONTENT), objects=tuple(made.objects)
    )
    catalog.add_version(new)


@pytest.mark.parametrize("depth", [0, 2])
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_listing_in_the_store_is_refused_at_checkout_and_get(
    local: tuple[DataService, SqlDataCatalog], tmp_path: Path, name: str, depth: int
) -> None:
    data, catalog = local
    made = hostile(name, depth)
    _store(made.objects, data.artifacts)
    _record(catalog, "set", made)
    with pytest.raises(IntegrityError, match=r"set@1: its manifest is damaged .*entry"):
        data.checkout("set@1")
    with pytest.raises(IntegrityError, match=r"set@1: its manifest is damaged"):
        data.checkout("set@1", to=tmp_path / "deep" / "copy", force=True)
    with pytest.raises(IntegrityError, match=r"set@1: its manifest is damaged"):
        data.get("set@1")
    assert _escaped(tmp_path) == []


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_a_recorded_path_outside_the_project_is_refused_by_the_store_and_the_checkout(
    local: tuple[DataService, SqlDataCatalog], tmp_path: Path, path: str
) -> None:
    data, catalog = local
    made = hostile("fine.txt")
    _store(made.objects, data.artifacts)
    with pytest.raises(InvalidInput, match=r"path .*: .*expected a path inside the project"):
        _record(catalog, "set", made, path)
    _record(catalog, "set", made)
    with catalog.engine.begin() as conn:  # tampered with behind the store's back
        conn.execute(update(t.data_versions).values(path=path))
    with pytest.raises(IntegrityError, match="set@1 cannot be checked out where it was added"):
        data.checkout("set@1")
    assert _escaped(tmp_path) == []
    copy = tmp_path / "deep" / "copy"
    data.checkout("set@1", to=copy)  # elsewhere, on purpose: the names are fine
    assert (copy / "fine.txt").read_bytes() == CONTENT


def test_a_tampered_remote_cannot_be_pulled(
    local: tuple[DataService, SqlDataCatalog], tmp_path: Path
) -> None:
    data, catalog = local
    remote = FsspecArtifactStore(str(tmp_path / "remote"))
    made = hostile(f"../../{ESCAPE}", depth=1)
    _store(made.objects, remote)
    _record(catalog, "set", made)
    with pytest.raises(IntegrityError, match=r"not a data manifest: entry '\.\./\.\./escape\.txt'"):
        data.fetch(["set@1"], remote)
    assert _escaped(tmp_path) == []


def test_a_lock_file_naming_a_path_outside_the_project_is_refused(
    local: tuple[DataService, SqlDataCatalog], tmp_path: Path
) -> None:
    data, _ = local
    digest = "blake3:" + "0" * 64
    (data.workspace / "cairn.lock").write_text(
        f"datasets:\n  set:\n    path: ../../outside\n    version: 1\n    digest: {digest}\n"
    )
    with pytest.raises(InvalidInput, match=r"cairn.lock: .*datasets.set.path '../../outside'"):
        data.status()


# a version cannot be turned against whoever checks it out

HIDDEN_PATHS = [".venv/lib/python3.11/site-packages", ".git/hooks", "data/.github/workflows"]
PTH = "zz_cairn_data.pth"  # a .pth file in site-packages: Python runs its import lines


@pytest.fixture
def team(database_url: str, tmp_path: Path) -> Iterator[tuple[DataService, DataService]]:
    """Two working copies of one project, sharing a store: a contributor's and a
    teammate's (on each database backend)."""
    store = SqlMetadataStore(database_url)
    catalog = SqlDataCatalog(store.engine)
    artifacts = FsspecArtifactStore(str(tmp_path / "objects"))
    copies = []
    for who in ("contributor", "teammate"):
        workspace = tmp_path / who / "project"
        workspace.mkdir(parents=True)
        copies.append(DataService(lambda: catalog, artifacts, workspace, tmp_path / who / "home"))
    yield copies[0], copies[1]
    store.close()


def _files(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_a_dataset_lives_at_one_path_so_no_version_can_move_a_teammates_checkout(
    team: tuple[DataService, DataService],
) -> None:
    contributor, teammate = team
    customers = _files(contributor.workspace / "data" / "customers", {"a.csv": "id\n1\n"})
    first = contributor.add(customers, "customers").version
    teammate.checkout("customers")
    moved = _files(contributor.workspace / "lib" / "site-packages", {PTH: "import os\n"})
    expected = r"path 'lib/site-packages': dataset 'customers' lives at 'data/customers'"
    with pytest.raises(InvalidInput, match=expected):
        contributor.add(moved, "customers")
    elsewhere = NewDataVersion(
        "customers", first.digest, first.kind, "lib/site-packages", first.files, first.bytes,
        objects=(first.digest,),
    )  # fmt: skip
    with pytest.raises(InvalidInput, match=expected):  # the store decides, whoever asks
        contributor.catalog.add_version(elsewhere)
    assert [v.path for v in contributor.log("customers")] == ["data/customers"]
    (customers / "a.csv").write_text("id\n1\n2\n")
    contributor.add(customers, "customers")  # where it lives, a new version is welcome
    assert teammate.checkout("customers").target == teammate.workspace / "data" / "customers"
    assert not (teammate.workspace / "lib").exists()


def test_versions_recorded_at_another_path_before_the_rule_keep_working(
    team: tuple[DataService, DataService],
) -> None:
    contributor, teammate = team
    old = _files(contributor.workspace / "data" / "old", {"a.csv": "1\n"})
    contributor.add(old, "moved")
    (old / "a.csv").write_text("2\n")
    contributor.add(old, "moved")
    with contributor.catalog.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(t.data_versions).where(t.data_versions.c.version == 2)
                     .values(path="data/new"))  # fmt: skip
    assert teammate.checkout("moved@1").target == teammate.workspace / "data" / "old"
    assert teammate.checkout("moved@2").target == teammate.workspace / "data" / "new"
    new = _files(contributor.workspace / "data" / "new", {"a.csv": "3\n"})
    assert contributor.add(new, "moved").version.version == 3  # where its newest lives
    with pytest.raises(InvalidInput, match="lives at 'data/new'"):
        contributor.add(old, "moved")


@pytest.mark.parametrize("path", HIDDEN_PATHS)
def test_a_path_through_a_hidden_folder_is_refused_by_the_store_and_the_checkout(
    local: tuple[DataService, SqlDataCatalog], tmp_path: Path, path: str
) -> None:
    data, catalog = local
    made = hostile(PTH)
    _store(made.objects, data.artifacts)
    with pytest.raises(InvalidInput, match=rf"path '{path}': '\.[a-z]+' is hidden"):
        _record(catalog, "set", made, path)
    _files(data.workspace / path, {PTH: "import os\n"})
    with pytest.raises(InvalidInput, match="is hidden"):  # before anything is read or stored
        data.add(data.workspace / path, "hidden")
    _record(catalog, "set", made)
    with catalog.engine.begin() as conn:  # recorded by an older Cairn, or tampered with
        conn.execute(update(t.data_versions).values(path=path))
    with pytest.raises(IntegrityError, match="set@1 cannot be checked out where it was added"):
        data.checkout("set@1")
    assert (data.workspace / path / PTH).read_text() == "import os\n"
    data.checkout("set@1", to=tmp_path / "copy")  # elsewhere, on purpose
    assert (tmp_path / "copy" / PTH).read_bytes() == CONTENT


def test_names_inside_a_version_may_be_hidden(
    local: tuple[DataService, SqlDataCatalog],
) -> None:
    data, _ = local
    dotfiles = _files(data.workspace / "dotfiles", {".bashrc": "x\n", ".config/app": "y\n"})
    data.add(dotfiles, "dotfiles")
    (dotfiles / ".bashrc").unlink()
    assert data.checkout("dotfiles@1").written == 1
    assert (dotfiles / ".bashrc").read_text() == "x\n"


def _virtual_environment(folder: Path) -> Path:
    """A real one (``python -m venv``), and its site-packages, where ``.pth`` files run."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return next((folder / "lib").glob("python3*/site-packages"))


def test_a_checkout_never_writes_into_a_python_environment(
    team: tuple[DataService, DataService], tmp_path: Path
) -> None:
    contributor, teammate = team
    site = _virtual_environment(teammate.workspace / "venv")  # no dot: `python -m venv venv`
    where = site.relative_to(teammate.workspace)
    marker = tmp_path / "code-ran"
    hook = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')\n"
    contributor.add(_files(contributor.workspace / where, {PTH: hook}), "packages")
    with pytest.raises(InvalidState, match=r"venv: a Python environment \(it holds pyvenv.cfg"):
        teammate.checkout("packages")
    linked = teammate.workspace / "data" / "packages"  # whatever the path says
    linked.parent.mkdir()
    linked.symlink_to(site)
    contributor.add(_files(contributor.workspace / "data" / "packages", {PTH: hook}), "linked")
    with pytest.raises(InvalidState, match="a Python environment"):
        teammate.checkout("linked")
    assert not (site / PTH).exists()
    subprocess.run([str(teammate.workspace / "venv" / "bin" / "python"), "-c", "pass"], check=True)
    assert not marker.exists()


def test_a_checkout_never_writes_into_a_git_folder_or_a_conda_environment(
    team: tuple[DataService, DataService], tmp_path: Path
) -> None:
    contributor, teammate = team
    (teammate.workspace / ".git" / "hooks").mkdir(parents=True)
    hook = {".git/hooks/post-checkout": "#!/bin/sh\necho ran\n", "README": "data\n"}
    contributor.add(_files(contributor.workspace, hook), "everything")  # the project folder
    with pytest.raises(InvalidState, match=r"\.git: a git repository's own folder"):
        teammate.checkout("everything")
    contributor.add(_files(contributor.workspace / "data" / "set", hook), "nested")
    for to in (None, tmp_path / "copy"):  # a repository of its own, here or elsewhere
        with pytest.raises(InvalidState, match=r"set/\.git: a git repository's own folder"):
            teammate.checkout("nested", to=to / "set" if to else None)
    (teammate.workspace / "env" / "conda-meta").mkdir(parents=True)
    contributor.add(_files(contributor.workspace / "env" / "lib", {"x.py": "\n"}), "conda")
    with pytest.raises(InvalidState, match=r"env: a Python environment \(it holds conda-meta"):
        teammate.checkout("conda")
    assert not (teammate.workspace / "README").exists()
    assert list((teammate.workspace / ".git" / "hooks").iterdir()) == []
    assert not (teammate.workspace / "env" / "lib").exists()


def test_a_link_in_the_working_copy_cannot_carry_a_checkout_out_of_the_project(
    team: tuple[DataService, DataService], tmp_path: Path
) -> None:
    """A repository may commit a link (``cfg -> ~/.ssh``) where a version's folder is."""
    contributor, teammate = team
    keys = _files(contributor.workspace / "cfg", {"authorized_keys": "ssh-ed25519 AAAA x\n"})
    contributor.add(keys / "authorized_keys", "keys")
    ssh = tmp_path / "victim-ssh"
    ssh.mkdir()
    (teammate.workspace / "cfg").symlink_to(ssh)
    with pytest.raises(
        InvalidState, match=r"project/cfg: a link to .*victim-ssh, outside the project folder"
    ):
        teammate.checkout("keys")
    assert list(ssh.iterdir()) == []
    done = teammate.checkout("keys", to=teammate.workspace / "cfg")  # said on purpose
    assert (ssh / "authorized_keys").read_text() == "ssh-ed25519 AAAA x\n"
    assert [s.clean for s in teammate.status()] == [True]  # and tracked: it is its place
    assert done.version.ref == "keys@1"


def test_a_link_cannot_carry_a_checkout_out_to_remove_files_either(
    team: tuple[DataService, DataService], tmp_path: Path
) -> None:
    contributor, teammate = team
    folder = _files(contributor.workspace / "data" / "set", {"a.csv": "a\n", "sub/b.csv": "b\n"})
    contributor.add(folder, "set")
    (folder / "sub" / "b.csv").unlink()
    contributor.add(folder, "set")
    teammate.checkout("set@1")
    outside = _files(tmp_path / "outside", {"b.csv": "b\n"})  # the same bytes, tracked
    mine = teammate.workspace / "data" / "set" / "sub"
    (mine / "b.csv").unlink()
    mine.rmdir()
    mine.symlink_to(outside)
    with pytest.raises(InvalidState, match=r"set/sub: a link to .*outside, outside the project"):
        teammate.checkout("set@2")
    assert (outside / "b.csv").read_text() == "b\n"
    copy = tmp_path / "copy"
    teammate.checkout("set@1", to=copy)
    (copy / "sub").rename(tmp_path / "moved")
    (copy / "sub").symlink_to(outside)
    (outside / "b.csv").write_text("not the version's\n")
    with pytest.raises(InvalidState, match=r"copy/sub: a link to .*outside, outside its --to"):
        teammate.checkout("set@1", to=copy, force=True)
    assert (outside / "b.csv").read_text() == "not the version's\n"
    inside = teammate.workspace / "shared"  # a link that stays inside the project is fine
    (tmp_path / "moved").rename(inside)
    mine.unlink()
    mine.symlink_to(inside)
    assert teammate.checkout("set@1", force=True).unchanged == 2


# through a server


@dataclass
class Server:
    url: str
    token: str
    db_url: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    db_url = f"sqlite:///{folder / 'cairn.db'}"
    token = seed_account(db_url, "writer", Role.CONTRIBUTOR)
    with running_server(db_url, str(folder / "objects"), auth=True) as base_url:
        yield Server(base_url, token, db_url)


@pytest.fixture
def client(server: Server, tmp_path: Path) -> Iterator[DataService]:
    """A workspace two levels down whose catalog and objects are the server's."""
    from cairn.client.data import HttpDataCatalog
    from cairn.client.http import HttpArtifactStore

    workspace = tmp_path / "deep" / "project"
    workspace.mkdir(parents=True)
    artifacts = HttpArtifactStore(server.url, server.token)
    catalog = HttpDataCatalog(server.url, server.token)
    yield DataService(lambda: catalog, artifacts, workspace, tmp_path / "home")
    artifacts.close()
    catalog.close()


def _post(server: Server, name: str, new: NewDataVersion) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.token}"}
    body = new_data_version_to_dict(new)
    return httpx.post(f"{server.url}/api/v1/datasets/{name}/versions", json=body, headers=headers)


def _version_of(made: Hostile, path: str = "data/set", **claims: Any) -> NewDataVersion:
    files, size = claims.get("files", 1), claims.get("bytes", len(CONTENT))
    kind = claims.get("kind", DataKind.DIRECTORY)
    return NewDataVersion("x", made.root, kind, path, files, size, objects=tuple(made.objects))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_server_refuses_to_record_a_hostile_listing(
    server: Server, client: DataService, name: str
) -> None:
    made = hostile(name, depth=1)
    _store(made.objects, client.artifacts)
    answer = _post(server, "hostile", _version_of(made))
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert message.startswith(f"digest {made.root}: not a data manifest")
    assert "entry" in message


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_a_server_refuses_to_record_a_path_outside_the_project(
    server: Server, client: DataService, path: str
) -> None:
    made = hostile("fine.txt")
    _store(made.objects, client.artifacts)
    answer = _post(server, "outside", _version_of(made, path))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith("path")  # the field, then why


def test_a_server_refuses_to_move_a_dataset_or_to_record_it_in_a_hidden_folder(
    server: Server, client: DataService
) -> None:
    made = hostile("fine.txt")
    _store(made.objects, client.artifacts)
    assert _post(server, "placed", _version_of(made)).status_code == 201
    for path in ("elsewhere/set", ".venv/lib/python3.11/site-packages"):
        answer = _post(server, "placed", _version_of(made, path))
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["message"].startswith(f"path {path!r}: ")
    answer = _post(server, "new", _version_of(made, ".git/hooks"))
    assert answer.status_code == 400, answer.text
    assert "is hidden" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("claims", "field"),
    [
        ({"files": 2}, "files, bytes"),
        ({"bytes": 1}, "files, bytes"),
        ({"kind": DataKind.FILE}, "kind"),
    ],
)
def test_a_server_refuses_a_version_that_is_not_what_its_manifest_holds(
    server: Server, client: DataService, claims: dict[str, Any], field: str
) -> None:
    made = hostile("fine.txt", depth=1)
    _store(made.objects, client.artifacts)
    answer = _post(server, "claims", _version_of(made, **claims))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith(f"{field}: ")
    plain = client.artifacts.put_stream(io.BytesIO(b"not a listing")).digest
    answer = _post(server, "claims", _version_of(Hostile(plain, {plain: b"not a listing"})))
    assert answer.status_code == 400
    assert "not a data manifest" in answer.json()["error"]["message"]


def test_a_tampered_server_database_cannot_make_a_client_write_outside(
    server: Server, client: DataService, tmp_path: Path
) -> None:
    store = SqlMetadataStore(server.db_url)
    try:
        catalog = SqlDataCatalog(store.engine)
        made = hostile(f"../../{ESCAPE}", depth=1)
        _store(made.objects, client.artifacts)
        _record(catalog, "tampered-listing", made)  # straight into the server's database
        fine = hostile("fine.txt")
        _store(fine.objects, client.artifacts)
        _record(catalog, "tampered-path", fine)
        with catalog.engine.begin() as conn:
            conn.execute(
                update(t.data_versions)
                .where(t.data_versions.c.dataset == "tampered-path")
                .values(path=f"../../{ESCAPE}")
            )
    finally:
        store.close()
    for ref in ("tampered-listing@1", "tampered-path@1"):
        with pytest.raises(IntegrityError, match=ref.partition("@")[0]):
            client.checkout(ref)
    with pytest.raises(IntegrityError, match="its manifest is damaged"):
        client.get("tampered-listing@1")
    assert _escaped(tmp_path) == []


@pytest.fixture
def hostile_server() -> Iterator[Callable[[dict[str, Any]], str]]:
    """A server that answers every request for a data version with what it is given."""
    answers: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server calls
            body = orjson.dumps(answers[-1])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def serve(answer: dict[str, Any]) -> str:
        answers.append(answer)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield serve
    httpd.shutdown()
    httpd.server_close()


def test_a_hostile_server_cannot_name_the_copy_get_writes(
    hostile_server: Callable[[dict[str, Any]], str], tmp_path: Path
) -> None:
    from cairn.client.data import HttpDataCatalog

    answer = {
        "dataset": f"../../../{ESCAPE}", "version": 1, "project": DEFAULT_PROJECT,
        "digest": "blake3:" + "0" * 64, "kind": "directory", "path": "data", "files": 0,
        "bytes": 0, "message": "", "created_by": "someone", "created_at": 0,
    }  # fmt: skip
    catalog = HttpDataCatalog(hostile_server(answer), "token")
    workspace = tmp_path / "deep" / "project"
    workspace.mkdir(parents=True)
    objects = FsspecArtifactStore(str(tmp_path / "objects"))
    data = DataService(lambda: catalog, objects, workspace, tmp_path / "deep" / "home")
    with pytest.raises(IntegrityError, match=r"asked for set, the catalog answered with \.\./"):
        data.get("set")
    assert _escaped(tmp_path) == []
    assert not (tmp_path / "deep" / "home").exists()


def test_an_answer_that_is_not_a_data_version_is_named_not_a_crash(
    hostile_server: Callable[[dict[str, Any]], str], tmp_path: Path
) -> None:
    from cairn.client.data import HttpDataCatalog

    catalog = HttpDataCatalog(hostile_server({"dataset": "set", "version": "one"}), "token")
    objects = FsspecArtifactStore(str(tmp_path / "objects"))
    data = DataService(lambda: catalog, objects, tmp_path / "project", tmp_path / "home")
    with pytest.raises(IntegrityError, match="expected a data version, got"):
        data.get("set")
    assert not (tmp_path / "home").exists()
