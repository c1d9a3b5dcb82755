"""The composition root: settings in, stores and services out.

Backends are chosen by URL scheme through a registry of dotted paths imported on demand,
so an embedded user never imports the HTTP client, and a client never imports SQLAlchemy's
PostgreSQL dialect. To add a backend, add its scheme and class path here.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from cairn.config import Settings, credentials_file
from cairn.core.access import Principal
from cairn.core.actor import local_user
from cairn.core.ports import (
    Accounts,
    ArtifactStore,
    Collectable,
    DataCatalog,
    LineageGraph,
    MetadataStore,
    ModelRegistry,
    ReleaseLedger,
    Releases,
)
from cairn.errors import InvalidInput, MissingExtra
from cairn.tracking.authorized import AuthorizedMetadataStore
from cairn.tracking.service import TrackingService

if TYPE_CHECKING:  # data versioning is imported by the commands that use it
    from cairn.datasets.gc import Collected
    from cairn.datasets.service import DataService
    from cairn.registry.lineage import LineageService
    from cairn.registry.service import ModelService

_METADATA_BACKENDS = {
    "sqlite": "cairn.stores.metadata.sql:SqlMetadataStore",
    "postgresql": "cairn.stores.metadata.sql:SqlMetadataStore",
    "http": "cairn.client.http:HttpMetadataStore",
}
_ACCOUNTS_CLIENT = "cairn.client.accounts:HttpAccounts"
_DATA_CATALOG_CLIENT = "cairn.client.data:HttpDataCatalog"
_MODEL_REGISTRY_CLIENT = "cairn.client.models:HttpModelRegistry"
_LINEAGE_CLIENT = "cairn.client.models:HttpLineageGraph"
_RELEASES_CLIENT = "cairn.client.releases:HttpReleases"
_ARTIFACT_BACKENDS = {
    "file": "cairn.stores.artifacts.fsspec:FsspecArtifactStore",
    "s3": "cairn.stores.artifacts.fsspec:FsspecArtifactStore",
    "memory": "cairn.stores.artifacts.fsspec:FsspecArtifactStore",
    "http": "cairn.client.http:HttpArtifactStore",
}


@dataclass(frozen=True, slots=True)
class Platform:
    """The settings and what they open. ``database`` is the one database store the
    platform holds (None through a server): every service over the same database is
    built on its engine, so a process opens, migrates and pools each database once."""

    settings: Settings
    metadata: MetadataStore
    artifacts: ArtifactStore
    tracking: TrackingService
    database: MetadataStore | None = None

    def close(self) -> None:
        self.metadata.close()  # closes ``database`` too: the embedded wrapper owns it
        self.artifacts.close()


def open_platform(settings: Settings) -> Platform:
    """Open the stores the settings name and wire the services over them.

    Raises:
        InvalidInput: a URL names a backend Cairn does not have.
        MissingExtra: the backend needs an optional dependency that is not installed.
    """
    if settings.uri is not None:
        client_args = (settings.uri, settings.token)
        metadata = _construct(_METADATA_BACKENDS["http"], *client_args)
        artifacts = _construct(_ARTIFACT_BACKENDS["http"], *client_args)
        return Platform(
            settings, metadata, artifacts, TrackingService(metadata, artifacts, settings.experiment)
        )
    database = open_audited_metadata_store(settings.db_url, settings)
    # Embedded use has one user, the local one, an admin: the same access decision is still
    # made, and the audit trail names them.
    metadata = AuthorizedMetadataStore(database, database, _local(), owned=True)  # type: ignore[arg-type]
    artifacts = open_artifact_store(settings.artifacts_url)
    tracking = TrackingService(metadata, artifacts, settings.experiment)
    return Platform(settings, metadata, artifacts, tracking, database)


def _local() -> Principal:
    """The embedded store's one user: the local account, an installation admin."""
    return Principal(local_user(), is_admin=True)


def artifact_store_opener(settings: Settings) -> Callable[[], ArtifactStore]:
    """A picklable function that opens the settings' artifact store again: what a worker
    in another process (a Ray task) reaches the store with."""
    if settings.uri is not None:
        return functools.partial(
            _construct, _ARTIFACT_BACKENDS["http"], settings.uri, settings.token
        )
    return functools.partial(open_artifact_store, settings.artifacts_url)


def open_audited_metadata_store(url: str, settings: Settings) -> MetadataStore:
    """A metadata store that also signs and exports its audit trail's head now and then,
    with the installation's key (created on first use)."""
    store = open_metadata_store(url)
    enable_checkpoints = getattr(store, "enable_checkpoints", None)
    if enable_checkpoints is not None:  # only database stores sign
        if not settings.audit_key.exists():
            _installation_key(settings.audit_key)  # made now: verifying needs its public half
        key = functools.partial(_installation_key, settings.audit_key)
        enable_checkpoints(key, settings.audit_checkpoints)
    return store


def _installation_key(path: Path) -> Any:
    """The installation's ``SigningKey`` (created if there is none yet), loaded when a
    checkpoint is due: loading it imports the cryptography library, which a command that
    signs nothing need not pay for."""
    from cairn.localfs.signing import load_or_create

    return load_or_create(path)


def open_data(
    settings: Settings, folder: Path | None = None, database: MetadataStore | None = None
) -> DataService:
    """Data versioning over the settings' stores (a server's, when ``CAIRN_URI`` is set),
    in ``folder`` (default: the workspace, the project folder, else the working
    directory), where its ``cairn.lock`` is kept. ``database``: an open database store to
    work on (a platform's); without it the settings' database is opened when first needed.
    """
    from cairn.datasets.authorized import AuthorizedDataCatalog
    from cairn.datasets.service import DataService

    if settings.uri is not None:
        client_args = (settings.uri, settings.token)
        artifacts = _construct(_ARTIFACT_BACKENDS["http"], *client_args)

        def catalog() -> DataCatalog:
            found: DataCatalog = _construct(_DATA_CATALOG_CLIENT, *client_args)
            return found
    else:
        artifacts = open_artifact_store(settings.artifacts_url)

        def catalog() -> DataCatalog:
            store = database or open_audited_metadata_store(settings.db_url, settings)
            return AuthorizedDataCatalog(data_catalog_of(store), _local())

    return DataService(catalog, artifacts, folder or workspace(settings), settings.home)


def open_platform_data(opened: Platform, folder: Path | None = None) -> DataService:
    """Data versioning over an open platform's database and stores."""
    return open_data(opened.settings, folder, opened.database)


def open_models(opened: Platform) -> ModelService:
    """The model registry and lineage graph of an open platform (a server's, when
    ``CAIRN_URI`` is set), loading into ``<home>/cache/models``; close it when done."""
    from cairn.registry.authorized import AuthorizedModelRegistry
    from cairn.registry.service import ModelService

    settings = opened.settings
    cache = settings.home / "cache" / "models"
    if settings.uri is not None:
        client_args = (settings.uri, settings.token)
        remote = _construct(_MODEL_REGISTRY_CLIENT, *client_args)
        graph = _construct(_LINEAGE_CLIENT, *client_args)

        def release() -> None:
            remote.close()
            graph.close()

        return ModelService(remote, graph, opened.metadata, opened.artifacts, cache, release)
    store = _database_of(opened)
    registry = AuthorizedModelRegistry(model_registry_of(store), _local())
    graph = lineage_graph_of(store)
    return ModelService(registry, graph, opened.metadata, opened.artifacts, cache)


def open_releases(opened: Platform, models: ModelService) -> Releases:
    """Release governance over an open platform (a server's, when ``CAIRN_URI`` is set,
    where the server gathers the evidence); fresh evaluations load models through
    ``models``. Webhooks are posted after each release, in this process; close it when
    done."""
    settings = opened.settings
    if settings.uri is not None:
        found: Releases = _construct(_RELEASES_CLIENT, settings.uri, settings.token)
        return found
    from cairn.governance.evaluate import Evaluator
    from cairn.governance.service import ReleaseService
    from cairn.governance.webhooks import deliver
    from cairn.registry.authorized import AuthorizedModelRegistry

    store = _database_of(opened)
    local = _local()
    ledger = release_ledger_of(store)
    registry = AuthorizedModelRegistry(model_registry_of(store), local)
    data = open_platform_data(opened)
    evaluate = Evaluator(models, data, private_paths(settings), settings.server.evaluations)

    def notify() -> None:  # in this process, now (a command may exit right after), briefly:
        deliver(ledger, tries=2, pause=0.2, timeout=3.0)  # the next release tries again

    return ReleaseService(ledger, registry, opened.metadata, evaluate, local, notify)


def _database_of(opened: Platform) -> MetadataStore:
    if opened.database is None:  # only a platform over a server has none
        raise InvalidInput("this platform works through a server: it has no database")
    return opened.database


def server_releases(
    settings: Settings, metadata: MetadataStore, artifacts: ArtifactStore
) -> Callable[[Principal], Releases]:
    """What a server hands each caller: release governance over its own database and
    store, deciding for that caller. Evidence is gathered with the server's own stores;
    webhooks are posted in the background, after each release and now (what an earlier
    run left pending)."""
    import threading

    from cairn.datasets.service import DataService
    from cairn.governance.evaluate import Evaluator
    from cairn.governance.service import ReleaseService
    from cairn.governance.webhooks import deliver
    from cairn.registry.authorized import AuthorizedModelRegistry
    from cairn.registry.service import ModelService

    registry, ledger = model_registry_of(metadata), release_ledger_of(metadata)
    models = ModelService(registry, lineage_graph_of(metadata), metadata, artifacts,
                          settings.home / "cache" / "models")  # fmt: skip
    data = DataService(lambda: data_catalog_of(metadata), artifacts, settings.home, settings.home)
    # One evaluator for every caller: its bound on worker processes is the server's. It
    # reads data as the model's project (the catalog here is the server's, unfiltered).
    evaluate = Evaluator(models, data, private_paths(settings), settings.server.evaluations)

    one_at_a_time = threading.Lock()  # a delivery is posted by one deliverer

    def delivering() -> None:
        with one_at_a_time:
            deliver(ledger)

    def notify() -> None:
        threading.Thread(target=delivering, name="cairn-webhooks", daemon=True).start()

    def for_caller(principal: Principal) -> Releases:
        authorized = AuthorizedModelRegistry(registry, principal)
        return ReleaseService(ledger, authorized, metadata, evaluate, principal, notify)

    notify()
    return for_caller


def release_ledger_of(metadata: MetadataStore) -> ReleaseLedger:
    """The release ledger in the same database as a metadata store."""
    engine = metadata.engine  # type: ignore[attr-defined]  # every database store has one
    found: ReleaseLedger = _construct("cairn.stores.metadata.releases:SqlReleaseLedger", engine)
    return found


def open_lineage(models: ModelService, resolve_data: Callable[[str], str]) -> LineageService:
    """Lineage questions over the model service's graph and registry."""
    from cairn.registry.lineage import LineageService

    return LineageService(models.graph, models.metadata, models.registry, resolve_data)


def lineage_graph_of(metadata: MetadataStore) -> LineageGraph:
    """The lineage graph in the same database as a metadata store."""
    engine = metadata.engine  # type: ignore[attr-defined]  # every database store has one
    found: LineageGraph = _construct("cairn.stores.metadata.lineage:SqlLineage", engine)
    return found


def model_registry_of(metadata: MetadataStore) -> ModelRegistry:
    """The model registry in the same database as a metadata store."""
    engine = metadata.engine  # type: ignore[attr-defined]  # every database store has one
    found: ModelRegistry = _construct("cairn.stores.metadata.models:SqlModelRegistry", engine)
    return found


def data_catalog_of(metadata: MetadataStore) -> DataCatalog:
    """The data catalog in the same database as a metadata store (what a server serves)."""
    engine = metadata.engine  # type: ignore[attr-defined]  # every database store has one
    found: DataCatalog = _construct("cairn.stores.metadata.data:SqlDataCatalog", engine)
    return found


def private_paths(settings: Settings) -> tuple[Path, ...]:
    """What code Cairn runs without trusting it (a model evaluated for a gate) must never
    read: the home, the database file, the artifact store, the audit key and checkpoints,
    the stored tokens and the project folder."""
    stores = (settings.db_url, settings.artifacts_url, settings.audit_checkpoints)
    local = [path for path in map(_local_path, stores) if path is not None]
    project = [settings.project_root] if settings.project_root else []
    return (settings.home, settings.audit_key, credentials_file(), *local, *project)


def _local_path(url: str) -> Path | None:
    """The file or folder a store's URL names on this machine; None for a remote one."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):  # sqlite:///relative, sqlite:////absolute
        return Path(parts.path[1:]).resolve() if parts.path[1:] else None
    if parts.scheme in ("", "file") or len(parts.scheme) == 1:  # a folder (C:\\… on Windows)
        return Path(parts.path if parts.scheme == "file" else url).resolve()
    return None


def workspace(settings: Settings) -> Path:
    """The working copy data versioning works in: the project folder, else the working
    directory (where ``cairn.lock`` and the remotes of ``cairn.yaml`` live)."""
    return settings.project_root or Path.cwd()


def collect_garbage(
    settings: Settings, dry_run: bool = False, grace_seconds: float = 3600.0
) -> Collected:
    """Remove the artifact store's objects that no data version and no run refers to.

    Raises:
        InvalidInput: the settings name a server (its administrator collects its store).
    """
    if settings.uri is not None:
        raise InvalidInput(
            "cairn data gc runs where the objects are stored, not through a server: on the "
            "server's machine, unset CAIRN_URI and pass --db (its database)"
        )
    from cairn.datasets.gc import collect

    database = open_audited_metadata_store(settings.db_url, settings)
    try:
        data = open_data(settings, database=database)
        store = data.artifacts
        if not hasattr(store, "stored"):
            raise InvalidInput(f"{store!r} cannot list its objects; run gc where it is stored")
        engine = database.engine  # type: ignore[attr-defined]  # every database store has one
        recorded = _construct("cairn.stores.metadata.data:recorded_objects", engine)
        referenced = data.live_objects() | recorded
        return collect(cast(Collectable, store), referenced, grace_seconds, dry_run)
    finally:
        database.close()


def open_audit_log(db_url: str) -> Any:
    """The audit trail (an ``AuditLog``) of the database at ``db_url``, read directly:
    verifying the trail must not depend on trusting a server that wrote it."""
    return _over_database(db_url, "cairn.stores.metadata.audit:AuditLog")


def open_accounts(settings: Settings, direct: bool = False) -> Accounts:
    """Accounts, tokens and projects: through the server the settings name, as the
    caller's token allows; else (or ``direct``ly) in the database itself, where whoever
    can open the database is trusted as an installation admin."""
    if settings.uri is not None and not direct:
        accounts: Accounts = _construct(_ACCOUNTS_CLIENT, settings.uri, settings.token)
        return accounts
    # Audited as every other store: what a command changes here is signed when it exits.
    found: Accounts = identity_store_of(open_audited_metadata_store(settings.db_url, settings))
    return found


def identity_store_of(metadata: MetadataStore) -> Any:
    """The ``IdentityStore`` over an open database store's own connections."""
    engine = metadata.engine  # type: ignore[attr-defined]  # every database store has one
    return _construct("cairn.stores.metadata.identity:IdentityStore", engine)


def _over_database(db_url: str, dotted: str) -> Any:
    store = open_metadata_store(db_url)  # migrates the schema if it must
    engine = store.engine  # type: ignore[attr-defined]  # every database store has one
    return _construct(dotted, engine)


def open_metadata_store(url: str) -> MetadataStore:
    scheme = urlsplit(url).scheme.split("+")[0]
    scheme = "postgresql" if scheme == "postgres" else scheme
    if scheme not in _METADATA_BACKENDS or scheme == "http":
        raise InvalidInput(
            f"database URL {url!r}: expected sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    store: MetadataStore = _construct(_METADATA_BACKENDS[scheme], url)
    return store


def open_artifact_store(url: str) -> ArtifactStore:
    scheme = urlsplit(url).scheme or "file"
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = "file"
    if scheme not in _ARTIFACT_BACKENDS or scheme == "http":
        raise InvalidInput(
            f"artifact location {url!r}: expected a folder, file://, s3://BUCKET/PREFIX "
            "or memory://"
        )
    store: ArtifactStore = _construct(_ARTIFACT_BACKENDS[scheme], url)
    return store


def _construct(dotted: str, *args: Any) -> Any:
    module_name, _, class_name = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MissingExtra(
            f"{module_name} needs {exc.name!r}, which is not installed: "
            "pip install 'cairn-mlops[all]'"
        ) from exc
    return getattr(module, class_name)(*args)
