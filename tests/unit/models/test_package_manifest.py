"""Registering a version from a stored object's digest: an object that is not a package
manifest is bad input naming the field, never a failure deep inside registration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cairn.errors import InvalidInput, NotFound
from cairn.models.service import stored_version
from cairn.models.stored import MANIFEST_LIMIT
from cairn.stores.artifacts.fsspec import FsspecArtifactStore

GOOD_FILE = {"digest": "blake3:" + "0" * 64, "size": 1}


def _manifest(**fields: object) -> bytes:
    document = {"format": 1, "flavor": {"name": "sklearn"}, "pickle": [],
                "files": {"model.skops": GOOD_FILE}, **fields}  # fmt: skip
    return yaml.safe_dump(document).encode()


NOT_MANIFESTS = {
    "binary bytes": (b"\x80\x05\x95\x00\xff\xfe", "not UTF-8 text"),
    "a CSV file": (b"x,y\n1,2\n", "expected a mapping"),
    "YAML nested deeper than a parser recurses": (b"[" * 5000 + b"]" * 5000, "not valid YAML"),
    "a date that is no date": (b"format: 2024-13-45\n", "not valid YAML"),
    "a YAML list": (b"- 1\n- 2\n", "expected a mapping"),
    "no format": (yaml.safe_dump({"files": {}}).encode(), "format: expected a number"),
    "no files": (_manifest(files=None), "files: expected a mapping"),
    "a file without a digest": (_manifest(files={"m": {"size": 1}}), r"files\['m'\]\.digest"),
    "a negative size": (_manifest(files={"m": {**GOOD_FILE, "size": -1}}), r"\['m'\]\.size"),
    "a path out of the package": (_manifest(files={"../m": GOOD_FILE}), "relative path"),
    "a flavor this Cairn lacks": (_manifest(flavor={"name": "keras"}), "flavor 'keras'"),
    "requirements not strings": (_manifest(requirements=[1]), "requirements: expected a list"),
    "a signature of no known type": (
        _manifest(signature={"inputs": {"type": "image"}}),
        r"signature\.inputs: expected",
    ),
    "a tensor of no shape": (
        _manifest(signature={"inputs": {"type": "tensor", "dtype": "float64", "shape": "x"}}),
        r"signature\.inputs\.shape",
    ),
}


@pytest.fixture
def store(tmp_path: Path) -> FsspecArtifactStore:
    return FsspecArtifactStore(str(tmp_path / "objects"))


def _stored(store: FsspecArtifactStore, data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "object"
    path.write_bytes(data)
    return store.put_file(path).digest


@pytest.mark.parametrize("case", list(NOT_MANIFESTS))
def test_an_object_that_is_not_a_manifest_is_invalid_input_naming_the_digest(
    case: str, store: FsspecArtifactStore, tmp_path: Path
) -> None:
    data, says = NOT_MANIFESTS[case]
    digest = _stored(store, data, tmp_path)
    with pytest.raises(InvalidInput) as raised:
        stored_version(store, "churn", digest, None)
    if case != "a flavor this Cairn lacks":  # that error names the flavor and the cure
        assert str(raised.value).startswith(f"digest: {digest} is not a model package manifest")
    assert raised.match(says)


def test_an_object_too_large_for_a_manifest_is_not_read(
    store: FsspecArtifactStore, tmp_path: Path
) -> None:
    digest = _stored(store, b"a: 1\n" * (MANIFEST_LIMIT // 5 + 1), tmp_path)
    with pytest.raises(InvalidInput, match=r"is not a model package manifest \(\d+ bytes"):
        stored_version(store, "churn", digest, None)


def test_a_digest_nothing_is_stored_under_is_not_found(store: FsspecArtifactStore) -> None:
    with pytest.raises(NotFound, match="digest: no stored object"):
        stored_version(store, "churn", "blake3:" + "1" * 64, None)
