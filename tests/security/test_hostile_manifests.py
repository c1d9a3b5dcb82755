"""Whatever a contributor uploads — a package manifest, a skops archive, a model card, a
release policy — cannot hurt the server: bad input is a 400 naming the field, quickly,
and nothing is expanded, inflated or fetched beyond a bound a few bytes can choose.

- YAML: one reader for every YAML document Cairn reads refuses aliases (a "billion
  laughs": a few hundred bytes that stand for billions of strings once stored as JSON)
  and documents over 4 MiB; the YAML Cairn writes has no aliases, so it reads back.
- A skops archive is scanned from its schema alone, once the archive's members are known
  to inflate within bounds.
- Package file paths are ones a file system can create inside the package folder, and
  each declared size is the stored object's.
- A model card holds finite numbers and bounded text; one stored by an older Cairn with
  a NaN (stored as null) still reads, and still lets its version be checked.
- A policy's numbers beyond a float's range are a 400 naming the field.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import textwrap
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from cairn.config import read_config_document, stored_tokens
from cairn.core.yaml_text import MAX_YAML_BYTES, dump_yaml, parse_yaml
from cairn.data.lock import read_lock
from cairn.errors import InvalidInput
from cairn.models import skops_uses
from cairn.models.manifest import parse_manifest
from cairn.models.package import manifest_bytes
from cairn.models.scan import unsafe_imports
from server_process import running_server

BENIGN = pickle.dumps({"a": 1}, protocol=4)
CARD_POLICY = "gates: [{card_fields: [intended_use]}]\napprovals: {required: 1}\n"


def _alias_bomb(levels: int) -> str:
    """Nine times as many strings at each level: ``9**levels`` in a few hundred bytes."""
    lines = ["a0: &a0 [" + ",".join(['"lol"'] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# -- through a server, as the attacker did


class Server:
    def __init__(self, base_url: str, db: Path) -> None:
        self.api = httpx.Client(base_url=f"{base_url}/api/v1", timeout=60)
        self.db = db

    def put(self, data: bytes) -> str:
        digest = "blake3:" + blake3.blake3(data).hexdigest()
        assert self.api.put(f"/objects/{digest}", content=data).status_code == 201
        return digest

    def manifest(self, files: dict[str, bytes], **extra: Any) -> dict[str, Any]:
        listed = {
            path: {"digest": self.put(data), "size": len(data)} for path, data in files.items()
        }
        return {"format": 1, "flavor": {"name": "sklearn", "format": "pickle"},
                "files": listed, "pickle": [], **extra}  # fmt: skip

    def register(self, manifest: dict[str, Any] | bytes, name: str = "m") -> httpx.Response:
        raw = manifest if isinstance(manifest, bytes) else yaml.safe_dump(manifest).encode()
        return self.api.post(f"/models/{name}/versions", json={"digest": self.put(raw)})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("hostile")
    with running_server(f"sqlite:///{folder / 'cairn.db'}", str(folder / "objects")) as url:
        served = Server(url, folder / "cairn.db")
        yield served
        served.api.close()


def _refused(response: httpx.Response, *says: str) -> str:
    assert response.status_code == 400, response.text
    message: str = response.json()["error"]["message"]
    for part in says:
        assert part in message, message
    return message


def test_a_yaml_alias_bomb_in_a_manifest_is_a_400_naming_the_alias(server: Server) -> None:
    """9**6 strings in under 400 bytes: stored as the version's JSON, the manifest would
    have grown 10,000-fold (at 9**8, a 616-byte upload took 55 s and 6.5 GB)."""
    base = yaml.safe_dump(server.manifest({"model.pkl": BENIGN}))
    bomb = base + "lineage:\n" + textwrap.indent(_alias_bomb(6), "  ")
    started = time.monotonic()
    _refused(server.register(bomb.encode(), "bomb"), "alias (*name)", "(line ")
    assert time.monotonic() - started < 5


def test_a_yaml_alias_bomb_in_a_policy_is_a_400(server: Server) -> None:
    """Each gate a valid one, all naming one long list: the policy grows with the product
    of the two (with 100 kB of policy text, tens of millions of strings)."""
    first = "gates:\n  - card_fields: &f [" + ", ".join(["intended_use"] * 100) + "]\n"
    policy = first + "".join("  - {card_fields: *f}\n" for _ in range(100))
    response = server.api.post("/environments", json={"name": "laughs", "policy": policy})
    _refused(response, "alias (*name)")


PATHS_NO_FOLDER_HOLDS = {
    "a NUL in a name": (["a\x00b"], "NUL"),
    "a path both a file and a folder": (["a", "a/b"], "files['a/b']: inside 'a', which is a file"),
    "a name of 300 characters": (["x" * 300], "longer than 255 bytes"),
    "a path of 6,000 characters": (["/".join(["d" * 200] * 30)], "longer than 1024 bytes"),
    "the manifest listed as a file": (["cairn-model.yaml"], "files['cairn-model.yaml']: the "),
    "a file inside the manifest": (["cairn-model.yaml/x"], "inside 'cairn-model.yaml'"),
    "a newline": (["a\nb"], "control character"),
}


@pytest.mark.parametrize("case", list(PATHS_NO_FOLDER_HOLDS))
def test_a_package_path_no_file_system_can_hold_is_a_400_naming_it(
    server: Server, case: str
) -> None:
    paths, says = PATHS_NO_FOLDER_HOLDS[case]
    manifest = server.manifest(dict.fromkeys(paths, BENIGN))
    _refused(server.register(manifest), "is not a model package manifest", says)


def test_a_size_that_is_not_the_stored_objects_is_a_400_naming_the_file(server: Server) -> None:
    manifest = server.manifest({"model.pkl": BENIGN})
    manifest["files"]["model.pkl"]["size"] = 999
    _refused(server.register(manifest), "files['model.pkl'].size is 999", f"{len(BENIGN)} bytes")


def test_one_object_listed_under_many_paths_is_fetched_within_a_bound(server: Server) -> None:
    """70 paths naming one 1 MiB object: 70 MiB the server would copy from 1 MiB stored."""
    blob = b"\x00" * 2**20
    manifest = server.manifest({"model.pkl": BENIGN, **{f"copies/{i}": blob for i in range(70)}})
    _refused(server.register(manifest), "files: lists the same objects", "at most 64 MiB")
    few = server.manifest({"model.pkl": BENIGN, **{f"copies/{i}": blob for i in range(3)}})
    assert server.register(few, "few").status_code == 201


def test_a_zip_bomb_in_model_skops_is_a_400_naming_the_member(server: Server) -> None:
    """bzip2 makes 1 GiB of spaces 925 bytes, and zipfile inflates such a member whole;
    here 16 MiB, refused before a byte of it is inflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("schema.json", b" " * 16 * 2**20)
    manifest = server.manifest({"model.skops": out.getvalue()})
    manifest["flavor"]["format"] = "skops"
    _refused(server.register(manifest), "model.skops: member 'schema.json' is compressed with")


@pytest.fixture(scope="module")
def version(server: Server) -> str:
    """A registered version, and an environment whose policy reads its card."""
    assert server.register(server.manifest({"model.pkl": BENIGN}), "carded").status_code == 201
    created = server.api.post("/environments", json={"name": "cards", "policy": CARD_POLICY})
    assert created.status_code == 201, created.text
    return "carded/1"


CARDS_REFUSED = {
    "a NaN metric": (b'{"metrics": {"auc": NaN}}', "card.metrics['auc']: expected a finite"),
    "an infinite metric": (b'{"metrics": {"auc": -Infinity}}', "card.metrics['auc']"),
    "a metric of 1e400 as an integer": (
        b'{"metrics": {"auc": 1' + b"0" * 400 + b"}}",
        "card.metrics['auc']: expected a finite number a 64-bit float holds",
    ),
    "a NUL in a metric name": (b'{"metrics": {"a\\u0000b": 1}}', "is no metric name"),
    "a text of 70,000 characters": (
        json.dumps({"intended_use": "x" * 70_000}).encode(),
        "card.intended_use: longer than 65536 characters",
    ),
    "2,000 metrics": (
        json.dumps({"metrics": {f"m{i}": 1 for i in range(2000)}}).encode(),
        "card.metrics: 2000 metrics; a card has at most 1000",
    ),
}


@pytest.mark.parametrize("case", list(CARDS_REFUSED))
def test_a_card_that_would_poison_its_version_is_a_400_naming_the_field(
    server: Server, version: str, case: str
) -> None:
    body, says = CARDS_REFUSED[case]
    path = f"/models/{version.replace('/', '/versions/')}/card"
    _refused(server.api.put(path, content=body, headers={"content-type": "application/json"}),
             says)  # fmt: skip
    assert server.api.get(path).status_code == 200
    check = server.api.post("/environments/cards/check", json={"ref": version})
    assert check.status_code == 200, check.text


def test_a_card_stored_with_a_null_metric_still_reads_and_checks(
    server: Server, version: str
) -> None:
    """What an older Cairn stored for a NaN: the card reads without it, and the version
    can still be checked and promoted."""
    path = f"/models/{version.replace('/', '/versions/')}/card"
    assert server.api.put(path, json={"intended_use": "churn", "metrics": {"auc": 0.9}}).is_success
    engine = create_engine(f"sqlite:///{server.db}")
    with engine.begin() as conn:
        old = '{"intended_use": "churn", "metrics": {"auc": null, "f1": 0.7}}'
        conn.execute(text("UPDATE model_cards SET card = :card"), {"card": old})
    engine.dispose()
    card = server.api.get(path)
    assert card.status_code == 200, card.text
    assert card.json()["metrics"] == {"f1": 0.7}
    check = server.api.post("/environments/cards/check", json={"ref": version})
    assert check.status_code == 200, check.text
    assert check.json()["passed"] is True


POLICIES_REFUSED = {
    "a min of 1e400 as an integer": ("gates: [{metric: auc, min: 1" + "0" * 400 + "}]",
                                     "policy.gates[0].min: expected a number between"),
    "a comparison with 1.2.3": ("gates: [{evaluate: {data: h, metrics: {accuracy: '>= 1.2.3'}}}]",
                                "policy.gates[0].evaluate.metrics.accuracy: expected a"),
    "a comparison with 1e400": ("gates: [{evaluate: {data: h, metrics: {accuracy: '>= 1e400'}}}]",
                                "(of a finite number), got '>= 1e400'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(POLICIES_REFUSED))
def test_a_policy_number_beyond_a_float_is_a_400_naming_the_field(
    server: Server, case: str
) -> None:
    policy, says = POLICIES_REFUSED[case]
    _refused(server.api.post("/environments", json={"name": "numbers", "policy": policy}), says)


# -- the mechanisms, where each reader and writer meets them


YAML_FILES = {
    "cairn.yaml": ("cairn.yaml", "defaults: &d {experiment: churn}\nrun:\n  <<: *d\n",
                   lambda home: read_config_document(home / "cairn.yaml")),
    "cairn.lock": ("cairn.lock", "datasets:\n  a: &e {path: data, version: 1}\n  b: *e\n",
                   read_lock),
    "the credentials file": (
        "cairn/credentials.yaml", "servers:\n  http://a: &t secret\n  http://b: *t\n",
        lambda home: stored_tokens({"XDG_CONFIG_HOME": str(home)}),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(YAML_FILES))
def test_a_yaml_file_cairn_reads_refuses_aliases(case: str, tmp_path: Path) -> None:
    path, content, read = YAML_FILES[case]
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(content)
    named = re.escape(Path(path).name)
    with pytest.raises(InvalidInput, match=rf"{named}.*: the value anchored \(line \d"):
        read(tmp_path)


def test_an_alias_bomb_is_refused_before_anything_expands_it() -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="alias"):
        parse_yaml(_alias_bomb(9), "policy")  # 387 million strings, had they been expanded
    assert time.monotonic() - started < 1


def test_a_yaml_document_over_the_limit_is_not_parsed() -> None:
    with pytest.raises(InvalidInput, match=r"^policy: \d+ bytes of YAML; Cairn reads at most 4"):
        parse_yaml(b"a: 1\n" * (MAX_YAML_BYTES // 5 + 1), "policy")


def test_the_yaml_cairn_writes_has_no_aliases_and_reads_back() -> None:
    """A value that appears twice (one signature for inputs and outputs) is written out
    twice: PyYAML's own writer makes it an anchor and an alias, which Cairn then refuses."""
    spec = {"type": "tensor", "dtype": "float64", "shape": [-1, 4]}
    manifest = {"format": 1, "flavor": {"name": "sklearn"}, "files": {}, "pickle": [],
                "signature": {"inputs": spec, "outputs": spec}}  # fmt: skip
    written = manifest_bytes(manifest)
    assert b"&" not in written
    assert parse_manifest(written, "blake3:" + "0" * 64)["signature"]["outputs"] == spec
    assert parse_yaml(dump_yaml({"a": [1], "b": [1]}, sort_keys=True), "f") == {"a": [1], "b": [1]}


def _skops_like(path: Path, schema: Any, members: dict[str, bytes], method: int) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("schema.json", schema if isinstance(schema, bytes) else json.dumps(schema))
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _list_of_one_array(times: int) -> dict[str, Any]:
    """A skops schema of a list whose items all name one member, each under its own id
    (skops reads the member once for each: 64 kB of zeros inflate to 64 MB)."""
    array = {"__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode",
             "type": "numpy", "file": "1.npy"}  # fmt: skip
    items = [{**array, "__id__": i} for i in range(times)]
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": items}  # fmt: skip


SKOPS_BOMBS = {
    "a schema deflated a thousand to one": (
        lambda p: _skops_like(p, b" " * 16 * 2**20, {}, zipfile.ZIP_DEFLATED),
        "member 'schema.json' inflates to 16777216 bytes from ",
    ),
    "an LZMA member": (
        lambda p: _skops_like(p, {}, {"1.npy": b"\x00" * 10}, zipfile.ZIP_LZMA),
        "member 'schema.json' is compressed with method 14",
    ),
    "an array member named by 1,000 nodes": (
        lambda p: _skops_like(
            p, _list_of_one_array(1000), {"1.npy": b"\x00" * 2**16}, zipfile.ZIP_DEFLATED
        ),
        "member '1.npy' is named by two nodes",
    ),
}


@pytest.mark.parametrize("case", list(SKOPS_BOMBS))
def test_a_skops_archive_inflating_beyond_bounds_is_refused_by_the_scan(
    case: str, tmp_path: Path
) -> None:
    make, says = SKOPS_BOMBS[case]
    with pytest.raises(InvalidInput, match="^model\\.skops: " + re.escape(says)):
        unsafe_imports(make(tmp_path / "model.skops"))


def test_a_schema_larger_than_the_limit_is_refused_however_it_deflates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a limit of 1 kB, a 2 kB schema (the real limit, 256 MiB, scaled down)."""
    monkeypatch.setattr(skops_uses, "SCHEMA_LIMIT", 1024)
    path = _skops_like(tmp_path / "model.skops", _list_of_one_array(1)["content"] * 20, {},
                       zipfile.ZIP_STORED)  # fmt: skip
    with pytest.raises(InvalidInput, match=r"schema\.json' inflates to \d{4} bytes from"):
        unsafe_imports(path)


def test_the_schema_of_a_large_ensemble_is_within_bounds(tmp_path: Path) -> None:
    """Gradient boosting of 1,000 stumps has a 20 MB schema, deflated 55 to 1: 80,000
    nodes like a tree's, 17 MB as Cairn writes them, must be read like any schema."""
    nodes = [{"__class__": "DecisionTreeRegressor", "__module__": "sklearn.tree._classes",
              "__loader__": "ObjectNode", "content": {"max_depth": 1, "random_state": i},
              "__id__": i} for i in range(80_000)]  # fmt: skip
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", json.dumps(nodes, indent=2))
        size = archive.getinfo("schema.json").file_size
    assert size > 16 * 2**20
    assert len(skops_uses.read_schema(path).document) == 80_000


def test_a_member_declaring_more_than_deflate_can_make_is_refused(tmp_path: Path) -> None:
    path = _skops_like(tmp_path / "model.skops", {}, {}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the schema's entry in the central directory
    data[central + 24 : central + 28] = (2**31).to_bytes(4, "little")  # its size, forged
    path.write_bytes(bytes(data))
    with pytest.raises(
        InvalidInput, match=r"declares 2147483648 bytes from 4, more than .*\(a forged size\)"
    ):
        unsafe_imports(path)
