"""The model package: a folder with the model's files and a manifest, ``cairn-model.yaml``.

The manifest says which flavor loads it (and in which format), the signature (inferred
from an input example), the Python version and the pinned requirements, which files rely
on pickle, where the model came from (lineage ids), and the BLAKE3 digest and size of
every other file. The package is named by the digest of the manifest's bytes: one digest
covers every byte.

Loading checks every file against the digests registered for the version before the
flavor's loader touches anything, refuses a package written in a newer format, and scans
the files again (``scan_package``): what the scan flags — and any custom model — loads
only with ``trust=True``, whatever was recorded when the version was registered.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from cairn._version import __version__
from cairn.core.model import Finding, NewModelVersion, PackageFile
from cairn.core.yaml_text import dump_yaml
from cairn.errors import IntegrityError, InvalidInput, UntrustedModel
from cairn.localfs.digest import hash_file
from cairn.models import signature
from cairn.models.flavors import Flavor, Saved, detect, flavors, named
from cairn.models.flavors.pickled import MODEL_FILE
from cairn.models.manifest import FORMAT, MANIFEST, parse_manifest, path_problem
from cairn.models.scan import unsafe_imports
from cairn.models.skops_uses import is_skops


@dataclass(frozen=True, slots=True)
class Package:
    """A package written to a folder: its manifest, files and what the scan found."""

    folder: Path
    digest: str  # of the manifest file
    manifest: Mapping[str, Any]
    files: tuple[PackageFile, ...]  # the manifest first, then the rest by path
    findings: tuple[Finding, ...]

    @property
    def flavor(self) -> str:
        return str(self.manifest["flavor"]["name"])

    def version_of(
        self, name: str, run_id: str | None = None, description: str = ""
    ) -> NewModelVersion:
        """What registering this package as the next version of ``name`` records."""
        return NewModelVersion(
            name, self.digest, self.flavor, self.files, self.manifest, run_id, self.findings,
            description,
        )  # fmt: skip


def write_package(
    model: Any,
    folder: Path,
    *,
    input_example: Any = None,
    files: Mapping[str, Path] | None = None,
    lineage: Mapping[str, Any] | None = None,
) -> Package:
    """Save ``model`` into the empty ``folder`` as a package.

    Raises:
        InvalidInput: the model is of no known flavor, or the input example does not fit
            it (the model could not predict on it).
    """
    flavor = detect(model)
    saved = flavor.save(model, folder, files or {}, input_example)
    found: dict[str, Any] | None = None
    if input_example is not None:
        # The example is predicted on by the model as it loads from its files, so the
        # package is known to work — unless they are pickles: unpickling runs code, and
        # the object in hand is what they hold. The files are this model's own: trusted.
        loaded = saved.loaded
        if loaded is None:
            details = {"name": flavor.name, **saved.details}
            loaded = model if saved.pickled else flavor.load(folder, details, trust=True)
        found = _signature(flavor, loaded, input_example)
    requirements = _pinned(saved.libraries, input_example)
    return package_from_files(folder, flavor.name, saved, requirements, found, lineage)


def package_from_files(
    folder: Path,
    flavor: str,
    saved: Saved,
    requirements: list[str],
    signature: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
) -> Package:
    """The package of the files a flavor saved in ``folder`` (or that came from elsewhere,
    an MLflow model's): its manifest written, its pickles scanned."""
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "cairn_version": __version__,
        "flavor": {"name": flavor, **saved.details},
        "python": platform.python_version(),
        "requirements": requirements,
        "pickle": list(saved.pickled),
        "files": {path: _described(folder / path) for path in sorted(saved.files)},
        "lineage": dict(lineage or {}),
    }
    if signature is not None:
        manifest["signature"] = dict(signature)
    (folder / MANIFEST).write_bytes(manifest_bytes(manifest))
    package = _package(folder, manifest, ())
    return dataclasses.replace(package, findings=scan_package(package))


def scan_package(package: Package) -> tuple[Finding, ...]:
    """What the scan finds in the package's pickle and skops files (``cairn.models.scan``):
    the pickles the manifest lists, and — whatever the manifest says — ``model.pkl``, the
    file every pickle-based flavor loads, any file that starts like a pickle, and any skops
    archive. A flavor whose loader runs code the files choose is always flagged: a custom
    model (its class is the user's code), a PyTorch archive (``flavors.pytorch``)."""
    listed = set(package.manifest.get("pickle", []))
    scanned = sorted(
        f.path for f in package.files
        if f.path != MANIFEST and (
            f.path in listed or f.path == MODEL_FILE  # what every pickle-based flavor loads
            or _starts_like_a_pickle(package.folder / f.path) or is_skops(package.folder / f.path)
        )
    )  # fmt: skip
    found = {path: unsafe_imports(package.folder / path) for path in scanned}
    flavor = flavors().get(package.flavor)
    if flavor is not None and flavor.code_on_load is not None:
        path, why = flavor.code_on_load
        found[path] = found.get(path) or (why,)
    return tuple(Finding(path, imports) for path, imports in sorted(found.items()) if imports)


def untrusted(name: str, findings: tuple[Finding, ...]) -> UntrustedModel:
    """The error for loading a flagged package without trust."""
    return UntrustedModel(
        f"model {name} is flagged: {'; '.join(str(f) for f in findings)}. Loading it runs "
        "that code: pass trust=True only if you trust whoever registered it"
    )


def _starts_like_a_pickle(path: Path) -> bool:
    """Protocol 2 and later begin with PROTO and the protocol's number."""
    with path.open("rb") as stream:
        head = stream.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def check_package_path(path: str) -> str:
    """A file's path inside a package, once it is one (``manifest.path_problem``).

    Raises:
        IntegrityError: the path is none a package holds (a forged manifest): it would
            lead out of the package, or no file system can create it.
    """
    problem = path_problem(path)
    if problem is not None:
        raise IntegrityError(f"model package: file path {path!r}: {problem}")
    return path


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as written into a package (so the same manifest has the same digest)."""
    return dump_yaml(dict(manifest), sort_keys=True).encode()


def read_package(folder: Path, registered: tuple[PackageFile, ...]) -> Package:
    """The package in ``folder``, once every file is the one registered.

    Raises:
        IntegrityError: a file is missing or its bytes are not the registered ones
            (naming the file).
        InvalidInput: the package is in a newer format than this Cairn reads, or its
            manifest is not one.
    """
    for expected in registered:
        path = folder / check_package_path(expected.path)
        if not path.is_file():
            raise IntegrityError(f"model package: {expected.path} is missing")
        if hash_file(path) != expected.digest:
            raise IntegrityError(
                f"model package: {expected.path} does not match the digest registered for "
                "this version (it was changed after registration); refusing to load it"
            )
    digest = next((f.digest for f in registered if f.path == MANIFEST), "")
    manifest = parse_manifest((folder / MANIFEST).read_bytes(), digest)
    return _package(folder, manifest, ())


def load_model(
    package: Package, trust: bool = False, name: str | None = None
) -> tuple[Flavor, Any]:
    """The flavor and the model it loads from a verified package, once its files are
    scanned again (``name`` is how errors call it).

    Raises:
        UntrustedModel: the scan flags the package and ``trust`` is not given.
    """
    if not trust and (findings := scan_package(package)):
        raise untrusted(name or package.digest, findings)
    flavor = named(package.flavor)
    return flavor, flavor.load(package.folder, package.manifest["flavor"], trust=trust)


def _package(folder: Path, manifest: Mapping[str, Any], findings: tuple[Finding, ...]) -> Package:
    files = [
        PackageFile(MANIFEST, hash_file(folder / MANIFEST), (folder / MANIFEST).stat().st_size)
    ]
    files += [
        PackageFile(path, described["digest"], described["size"])
        for path, described in sorted(manifest["files"].items())
    ]
    return Package(folder, files[0].digest, manifest, tuple(files), findings)


def _described(path: Path) -> dict[str, Any]:
    return {"digest": hash_file(path), "size": path.stat().st_size}


def _signature(flavor: Flavor, model: Any, example: Any) -> dict[str, Any]:
    inputs = signature.infer(example)
    try:
        output = flavor.predict(model, example)
    except Exception as exc:  # noqa: BLE001  # whatever the model raises, the example is wrong
        raise InvalidInput(
            f"input_example does not fit the model: predicting on it raised "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return {"inputs": inputs, "outputs": signature.infer(output)}


def _pinned(libraries: tuple[str, ...], example: Any) -> list[str]:
    """``name==version`` of the flavor's libraries and what the example is made of."""
    wanted = list(libraries)
    module = type(example).__module__.split(".")[0] if example is not None else ""
    wanted += ["numpy"] + (["pandas"] if module == "pandas" else [])
    pinned = []
    for name in dict.fromkeys(wanted):
        for distribution in _distributions(name):
            try:
                pinned.append(f"{distribution}=={metadata.version(distribution)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return sorted(pinned)


def _distributions(module: str) -> Iterator[str]:
    """The distributions that may provide ``module``: its own name first, then any other
    (``xgboost`` comes as ``xgboost-cpu`` too), looked up only when needed — listing what
    every installed distribution provides reads all their file lists (about a second)."""
    yield module
    yield from _providers().get(module, [])


@cache
def _providers() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()
