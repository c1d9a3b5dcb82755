"""Model packages in the content-addressed store: put one (each file an object, the
manifest's digest naming the whole) and read one back, verified, into a folder."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cairn.core.model import PackageFile
from cairn.core.ports import ArtifactStore
from cairn.errors import IntegrityError
from cairn.registry.package import (
    MANIFEST,
    Package,
    check_package_path,
    read_package,
    write_package,
)


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
    manifest lists them (the manifest first), fetched into ``folder``."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        artifacts.get_file(manifest_digest, manifest_path)
    manifest = yaml.safe_load(manifest_path.read_text())
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IntegrityError(f"model package {manifest_digest}: its manifest lists no files")
    files = [PackageFile(MANIFEST, manifest_digest, manifest_path.stat().st_size)]
    files += [
        PackageFile(check_package_path(str(path)), str(described["digest"]), int(described["size"]))
        for path, described in sorted(manifest["files"].items())
    ]
    for file in files[1:]:
        if not (folder / file.path).is_file():
            artifacts.get_file(file.digest, folder / file.path)
    return tuple(files)


def get_package(artifacts: ArtifactStore, manifest_digest: str, folder: Path) -> Package:
    """The stored package, fetched into ``folder`` and verified file by file."""
    return read_package(folder, package_files(artifacts, manifest_digest, folder))
