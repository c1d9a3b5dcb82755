"""Registering models and loading them back, over the registry and the artifact store.

Registering writes the package to a temporary folder, stores each of its files as an
object, and records the version (with the run's artifacts, when a run made it). Loading
resolves the reference, fetches the package into a local cache named by its digest, and
checks every file against the digests registered for the version before the flavor's
loader reads anything; a flagged package loads only with ``trust=True``.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cairn.core.artifact import ArtifactEntry
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.model import (
    ModelVersion,
    NewModelVersion,
    card_from_dict,
    check_model_name,
    parse_model_ref,
)
from cairn.core.ports import ArtifactStore, LineageGraph, MetadataStore, ModelRegistry
from cairn.errors import IntegrityError, InvalidInput, NotFound
from cairn.models.loaded import LoadedModel
from cairn.models.package import (
    Package,
    check_package_path,
    load_model,
    read_package,
    scan_package,
    untrusted,
)
from cairn.models.stored import get_package, put_package, store_package


def stored_version(
    artifacts: ArtifactStore,
    name: str,
    manifest_digest: str,
    run_id: str | None,
    description: str = "",
) -> NewModelVersion:
    """What registering the stored package with this manifest records: its files and
    manifest, read from the store and verified, and what a scan of its pickles finds
    (found here, from the bytes, never taken from whoever asks to register it).

    Raises:
        NotFound: the manifest or a file is not stored.
        IntegrityError: a stored file does not match the manifest.
        InvalidInput: ``manifest_digest`` names no package manifest (saying what is wrong
            with it), or one in a newer format than this Cairn reads.
    """
    with tempfile.TemporaryDirectory(prefix="cairn-model-") as folder:
        package = get_package(artifacts, manifest_digest, Path(folder))
        package = dataclasses.replace(package, findings=scan_package(package))
    return package.version_of(name, run_id, description)


class ModelService:
    """Models over the registry, the lineage graph beside it, and the platform's stores.

    ``close`` releases what was opened for the registry and the graph (``release``: a
    database connection, or an HTTP client); the platform's stores are the platform's.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        graph: LineageGraph,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        cache: Path,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self.registry, self.graph = registry, graph
        self.metadata, self.artifacts = metadata, artifacts
        self.cache = cache  # packages fetched for loading, one folder per manifest digest
        self._release = release

    def close(self) -> None:
        self._release()

    def register(
        self,
        model: Any,
        name: str,
        *,
        run_id: str | None = None,
        input_example: Any = None,
        files: Mapping[str, Path] | None = None,
        description: str = "",
        project: str | None = None,
        card: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Package ``model`` and register it as the next version of ``name``: in the
        project of the run that made it, else ``project`` (default: the default project),
        with ``card`` as its model card.

        Raises:
            InvalidInput: no flavor knows the model, or the example does not fit it.
            NotFound: the run or the project does not exist.
            PermissionDenied: the caller may not write in the model's project.
        """
        check_model_name(name)
        written = card_from_dict(card) if card is not None else None  # checked before storing
        if run_id is not None:
            run = self.metadata.get_run(run_id)
            project = project or self.metadata.get_experiment(run.experiment_id).project
        lineage = {"run_id": run_id} if run_id else {}
        package = put_package(
            model, self.artifacts, input_example=input_example, files=files, lineage=lineage
        )
        new = package.version_of(name, run_id, description)
        version = self.registry.register_version(new, project or DEFAULT_PROJECT)
        if run_id is not None:  # the run lists its packages, as MLflow users expect
            folder = f"models/{name}/{version.version}"
            entries = [ArtifactEntry(f"{folder}/{f.path}", f.digest, f.size) for f in package.files]
            self.metadata.add_artifacts(run_id, entries)
        if written is not None:
            self.registry.set_card(name, version.version, written)
        return version

    def import_mlflow(
        self, source: Path, name: str, description: str = "", project: str | None = None
    ) -> ModelVersion:
        """Register the scikit-learn model of an MLflow model folder as the next version of
        ``name`` (its pickle scanned like any other).

        Raises:
            InvalidInput: ``source`` is not an MLflow model of the sklearn flavor.
        """
        from cairn.models.mlflow_format import import_mlflow

        check_model_name(name)
        with tempfile.TemporaryDirectory(prefix="cairn-model-") as folder:
            package = import_mlflow(source, Path(folder))
            store_package(package, self.artifacts)
        new = package.version_of(name, description=description)
        return self.registry.register_version(new, project or DEFAULT_PROJECT)

    def export_mlflow(self, ref: str, dest: Path) -> ModelVersion:
        """Write the version's verified package as an MLflow model folder at ``dest``.

        Raises:
            InvalidInput: ``dest`` exists, or the version is not of the sklearn flavor.
            UntrustedModel: the model must be loaded to be exported (it is stored with
                skops, which MLflow does not read as Cairn does) and it is flagged.
        """
        from cairn.models.mlflow_format import export_mlflow

        if dest.exists():
            raise InvalidInput(f"{dest} exists: give a new folder to export into")
        version = self.registry.resolve(parse_model_ref(ref))
        package = self._verified(version)
        export_mlflow(package, dest, lambda: load_model(package, name=version.ref)[1])
        return version

    def register_stored(self, name: str, manifest_digest: str, run_id: str) -> ModelVersion:
        """Register the package already in the store (a pipeline step's output) as the
        next version of ``name``, made by ``run_id`` — unless a version of ``name`` is this
        very package, which is returned instead (a re-run registers nothing new).

        Raises:
            IntegrityError: a stored file does not match the manifest (naming it).
        """
        check_model_name(name)
        try:
            known = self.registry.list_versions(name)
        except NotFound:
            known = []
        same = next((v for v in known if v.digest == manifest_digest), None)
        if same is not None:
            return same
        new = stored_version(self.artifacts, name, manifest_digest, run_id)
        run = self.metadata.get_run(run_id)
        project = self.metadata.get_experiment(run.experiment_id).project
        return self.registry.register_version(new, project)

    def load(self, ref: str, trust: bool = False) -> LoadedModel:
        """The model a reference names (``churn@champion``, ``churn/3``, ``models:/…``).

        Raises:
            NotFound: no such model, version or alias (saying what exists).
            UntrustedModel: the package is flagged and ``trust`` is not given.
            IntegrityError: a file does not match its registered digest (naming it).
        """
        version = self.registry.resolve(parse_model_ref(ref))
        if version.flagged and not trust:  # before fetching anything
            raise untrusted(version.ref, tuple(version.findings))
        package = self._verified(version)
        # Scanned again: a version registered by an older Cairn, or through a server, is
        # judged by this Cairn's rule before its bytes are loaded.
        flavor, native = load_model(package, trust=trust, name=version.ref)
        return LoadedModel(version, package, flavor, native)

    def _verified(self, version: ModelVersion) -> Package:
        folder = self.fetch(version)
        try:
            return read_package(folder, version.files)
        except IntegrityError:  # the local copy was damaged: fetch it again, verified
            shutil.rmtree(folder, ignore_errors=True)
            return read_package(self.fetch(version), version.files)

    def fetch(self, version: ModelVersion) -> Path:
        """The version's package in the local cache, fetched where files are missing (the
        files are verified when read, not trusted for being there)."""
        folder = self.cache / version.digest.replace(":", "-")
        for file in version.files:
            path = folder / check_package_path(file.path)
            if not path.is_file():
                try:
                    self.artifacts.get_file(file.digest, path)
                except IntegrityError as exc:
                    raise IntegrityError(
                        f"model package: {file.path} does not match the digest registered "
                        f"for this version ({exc.message}); refusing to load it"
                    ) from None
        return folder
