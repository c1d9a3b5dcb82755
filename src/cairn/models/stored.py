"""Model packages in the content-addressed store: put one (each file an object, the
manifest's digest naming the whole) and read one back, verified, into a folder.

A package read back may have been written by anyone who can upload objects: before a file
is fetched, the size its manifest declares must be the stored object's, and the bytes
fetched again for an object listed under several paths are bounded (``REPEATED_LIMIT``),
so that a small manifest cannot make a server copy one large object thousands of times.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.core.model import PackageFile
from cairn.core.ports import ArtifactStore
from cairn.core.yaml_text import MAX_YAML_BYTES
from cairn.errors import IntegrityError, InvalidInput, NotFound
from cairn.models.manifest import MANIFEST, parse_manifest
from cairn.models.package import Package, read_package, write_package

# An object larger than any YAML document Cairn reads is not fetched to be read as one.
MANIFEST_LIMIT = MAX_YAML_BYTES
# Identical files under several paths (empty ``__init__.py`` files, say) are fetched once
# per path: beyond the first copy of each, at most this many bytes.
REPEATED_LIMIT = 64 * 1024 * 1024


def put_package(
    model: Any,
    artifacts: ArtifactStore,
    *,
    input_example: Any = None,
    files: Mapping[str, Path] | None = None,
    lineage: Mapping[str, Any] | None = None,
) -> Package:
    """Write ``model`` as a package and store every file of it; the package returned
    describes what was stored (its folder is gone by then)."""
    with tempfile.TemporaryDirectory(prefix="cairn-model-") as folder:
        package = write_package(
            model, Path(folder), input_example=input_example, files=files, lineage=lineage
        )
        store_package(package, artifacts)
    return package


def store_package(package: Package, artifacts: ArtifactStore) -> None:
    """Store every file of a package written to its folder, each as an object."""
    for file in package.files:
        stored = artifacts.put_file(package.folder / file.path)
        if stored.digest != file.digest:
            raise IntegrityError(f"model package: {file.path} changed while it was stored")


def package_files(
    artifacts: ArtifactStore, manifest_digest: str, folder: Path
) -> tuple[PackageFile, ...]:
    """Every file of the stored package whose manifest has ``manifest_digest``, as the
    manifest lists them (the manifest first), fetched into ``folder``.

    Raises:
        NotFound: the manifest or a file is not stored.
        InvalidInput: the object ``manifest_digest`` names is not a package manifest, or
            one whose files are not the stored objects' sizes, or repeat more than
            ``REPEATED_LIMIT`` bytes of them.
        IntegrityError: a stored object does not match its digest.
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        _fetch_manifest(artifacts, manifest_digest, manifest_path)
    manifest = parse_manifest(manifest_path.read_bytes(), manifest_digest)
    files = [PackageFile(MANIFEST, manifest_digest, manifest_path.stat().st_size)]
    files += [
        PackageFile(path, described["digest"], described["size"])
        for path, described in sorted(manifest["files"].items())
    ]
    _check_stored(artifacts, files[1:], manifest_digest)
    for file in files[1:]:
        if not (folder / file.path).is_file():
            artifacts.get_file(file.digest, folder / file.path)
    return tuple(files)


def _check_stored(artifacts: ArtifactStore, files: list[PackageFile], manifest_digest: str) -> None:
    """Every file is a stored object of the size declared for it, and repeats are few."""
    stored = artifacts.sizes({f.digest for f in files})
    where = f"model package {manifest_digest}"
    for file in files:
        size = stored.get(file.digest)
        if size is None:
            raise NotFound(f"{where}: files[{file.path!r}]: no stored object {file.digest} "
                           "(upload the package's files first)")  # fmt: skip
        if size != file.size:
            raise InvalidInput(f"{where}: files[{file.path!r}].size is {file.size}, but the "
                               f"stored object {file.digest} holds {size} bytes")  # fmt: skip
    repeated = sum(f.size for f in files) - sum(stored[d] for d in {f.digest for f in files})
    if repeated > REPEATED_LIMIT:
        raise InvalidInput(
            f"{where}: files: lists the same objects under several paths, {repeated} bytes "
            f"again; a package repeats at most {REPEATED_LIMIT // 2**20} MiB of its files"
        )


def _fetch_manifest(artifacts: ArtifactStore, digest: str, path: Path) -> None:
    size = artifacts.sizes([digest]).get(digest)
    if size is None:
        raise NotFound(f"digest: no stored object {digest} (upload the package's files first)")
    if size > MANIFEST_LIMIT:
        raise InvalidInput(
            f"digest: {digest} is not a model package manifest ({size} bytes; a manifest is "
            f"under {MANIFEST_LIMIT // 1024 // 1024} MiB)"
        )
    artifacts.get_file(digest, path)


def get_package(artifacts: ArtifactStore, manifest_digest: str, folder: Path) -> Package:
    """The stored package, fetched into ``folder`` and verified file by file."""
    return read_package(folder, package_files(artifacts, manifest_digest, folder))
