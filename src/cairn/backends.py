"""Opening a backend by URL: the registry of the stores Cairn can work on.

Backends are chosen by URL scheme through a table of dotted paths imported on demand,
so an embedded user never imports the HTTP client, and a client never imports SQLAlchemy's
PostgreSQL dialect. To add a backend, add its scheme and class path here; the
:class:`~cairn.session.Session` wires what these open into services.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cairn.config import Settings
from cairn.core.ports import ArtifactStore, MetadataStore
from cairn.errors import InvalidInput, MissingExtra

_METADATA_BACKENDS = {
    "sqlite": "cairn.stores.metadata.sql:SqlMetadataStore",
    "postgresql": "cairn.stores.metadata.sql:SqlMetadataStore",
}
_ARTIFACT_BACKENDS = {
    "file": "cairn.stores.artifacts.fsspec:FsspecArtifactStore",
    "s3": "cairn.stores.artifacts.fsspec:FsspecArtifactStore",
    "memory": "cairn.stores.artifacts.fsspec:FsspecArtifactStore",
}
# The stores of a database, each over the database store's engine.
IN_DATABASE = {
    "accounts": "cairn.stores.metadata.identity:IdentityStore",
    "audit": "cairn.stores.metadata.audit:AuditLog",
    "catalog": "cairn.stores.metadata.data:SqlDataCatalog",
    "graph": "cairn.stores.metadata.lineage:SqlLineage",
    "ledger": "cairn.stores.metadata.releases:SqlReleaseLedger",
    "monitors": "cairn.stores.metadata.monitors:SqlMonitors",
    "recorded": "cairn.stores.metadata.data:recorded_objects",
    "registry": "cairn.stores.metadata.models:SqlModelRegistry",
}
# The same ports through a Cairn server, each over one shared transport.
THROUGH_SERVER = {
    "accounts": "cairn.client.accounts:HttpAccounts",
    "artifacts": "cairn.client.http:HttpArtifactStore",
    "catalog": "cairn.client.data:HttpDataCatalog",
    "graph": "cairn.client.models:HttpLineageGraph",
    "metadata": "cairn.client.http:HttpMetadataStore",
    "monitors": "cairn.client.monitors:HttpMonitors",
    "registry": "cairn.client.models:HttpModelRegistry",
    "releases": "cairn.client.releases:HttpReleases",
}
TRANSPORT = "cairn.client.transport:HttpTransport"


def open_metadata_store(url: str) -> MetadataStore:
    """A database store (SQLite or PostgreSQL), its schema migrated if it must be.

    Raises:
        InvalidInput: not a database URL Cairn supports.
        MissingExtra: the backend needs an optional dependency that is not installed.
    """
    scheme = urlsplit(url).scheme.split("+")[0]
    scheme = "postgresql" if scheme == "postgres" else scheme
    if scheme not in _METADATA_BACKENDS:
        raise InvalidInput(
            f"database URL {url!r}: expected sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    store: MetadataStore = construct(_METADATA_BACKENDS[scheme], url)
    return store


def open_artifact_store(url: str) -> ArtifactStore:
    """Raises:
    InvalidInput: not a folder or a URL of an object store Cairn supports.
    """
    scheme = urlsplit(url).scheme or "file"
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = "file"
    if scheme not in _ARTIFACT_BACKENDS:
        raise InvalidInput(
            f"artifact location {url!r}: expected a folder, file://, s3://BUCKET/PREFIX "
            "or memory://"
        )
    store: ArtifactStore = construct(_ARTIFACT_BACKENDS[scheme], url)
    return store


def in_database(database: MetadataStore, kind: str) -> Any:
    """The store ``kind`` (a key of ``IN_DATABASE``) over a database store's engine."""
    engine = database.engine  # type: ignore[attr-defined]  # every database store has one
    return construct(IN_DATABASE[kind], engine)


def artifact_store_opener(settings: Settings) -> Callable[[], ArtifactStore]:
    """A picklable function that opens the settings' artifact store again: what a worker
    in another process (a Ray task) reaches the store with."""
    if settings.uri is not None:
        return functools.partial(_own_client, "artifacts", settings.uri, settings.token)
    return functools.partial(open_artifact_store, settings.artifacts_url)


def _own_client(kind: str, uri: str, token: str | None) -> Any:
    return construct(THROUGH_SERVER[kind], uri, token)


def local_path(url: str) -> Path | None:
    """The file or folder a store's URL names on this machine; None for a remote one."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):  # sqlite:///relative, sqlite:////absolute
        return Path(parts.path[1:]).resolve() if parts.path[1:] else None
    if parts.scheme in ("", "file") or len(parts.scheme) == 1:  # a folder (C:\\… on Windows)
        return Path(parts.path if parts.scheme == "file" else url).resolve()
    return None


def construct(dotted: str, *args: Any) -> Any:
    """``module:Class(*args)``, the module imported now.

    Raises:
        MissingExtra: the module needs a package that is not installed.
    """
    module_name, _, class_name = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MissingExtra(
            f"{module_name} needs {exc.name!r}, which is not installed: "
            "pip install 'cairn-mlops[all]'"
        ) from exc
    return getattr(module, class_name)(*args)
