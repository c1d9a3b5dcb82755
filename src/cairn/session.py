"""The composition root: settings in, every store and service out, each built once.

A :class:`Session` holds one configuration's connections, either one database store (the
embedded default, or the database ``CAIRN_DB`` names) or one HTTP transport to a server
(``CAIRN_URI``), and hands out the ports and services over them, each built on first use
and then kept. The SDK keeps one session per process (``cairn.configure()`` replaces it),
the CLI works on the SDK's, and a server is built from one. Because everything over a
database shares its store, a process opens, migrates and pools each database once.

Embedded use has one user, the local account, an installation admin: the same access
decisions are made for it as for a server's callers, and the audit trail names it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from cairn.backends import (
    THROUGH_SERVER,
    TRANSPORT,
    artifact_store_opener,
    construct,
    in_database,
    local_path,
    open_artifact_store,
    open_metadata_store,
)
from cairn.config import Settings, credentials_file
from cairn.core.access import Principal
from cairn.core.authorizer import Authorizer
from cairn.core.ports import (
    ArtifactStore,
    Collectable,
    LineageGraph,
    MetadataStore,
    ModelRegistry,
    Monitors,
    ProjectScopes,
    Releases,
)
from cairn.errors import InvalidInput

if TYPE_CHECKING:  # each capability is imported when first used
    from cairn.core.account_api import CallerAccounts
    from cairn.core.data_api import Catalog
    from cairn.core.lineage import Lineage
    from cairn.core.lineage_api import Walks
    from cairn.core.model_api import Registry
    from cairn.core.tracking_api import Tracking
    from cairn.data.gc import Collected
    from cairn.data.service import DataService
    from cairn.models.attestations import Attestations
    from cairn.models.lineage import LineageService
    from cairn.models.service import ModelService
    from cairn.monitoring.service import MonitorService
    from cairn.pipelines.service import PipelineService
    from cairn.stores.metadata.audit import AuditLog
    from cairn.tracking.objects import ObjectService
    from cairn.tracking.service import TrackingService

T = TypeVar("T")


class built_once(Generic[T]):  # noqa: N801  # used as a decorator, like property
    """A session attribute built on first use, under the session's lock, then kept."""

    def __init__(self, build: Callable[[Session], T]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, session: None, owner: type) -> built_once[T]: ...
    @overload
    def __get__(self, session: Session, owner: type) -> T: ...
    def __get__(self, session: Session | None, owner: type) -> built_once[T] | T:
        if session is None:
            return self
        found = session._built.get(self._name)
        if found is None:
            with session._lock:
                found = session._built.get(self._name)
                if found is None:
                    found = session._built[self._name] = self._build(session)
        return cast(T, found)


class Session:
    """One configuration's stores and services (see the module's docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()  # reentrant: a service is built from others
        self._built: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []  # in the order things were opened

    def __repr__(self) -> str:
        where = self.settings.uri or self.settings.db_url
        return f"Session({where!r})"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def remote(self) -> bool:
        """Whether this session works through a server (``CAIRN_URI``)."""
        return self.settings.uri is not None

    def close(self) -> None:
        """Close what was opened, newest first (the database last but one: closing it
        signs the audit trail's tail), and forget it."""
        with self._lock:
            closers, self._closers, self._built = self._closers, [], {}
        for close in reversed(closers):
            close()

    def _opened(self, thing: T, close: Callable[[], None] | None = None) -> T:
        self._closers.append(close or thing.close)  # type: ignore[attr-defined]
        return thing

    # connections

    @built_once
    def transport(self) -> Any:
        """The one HTTP transport (an ``HttpTransport``) every client of the server shares."""
        if not self.remote:
            raise InvalidInput("this session works on a database, not through a server")
        return self._opened(construct(TRANSPORT, self.settings.uri, self.settings.token))

    @built_once
    def database(self) -> MetadataStore:
        """The database store, unwrapped: its own connections serve every store in the
        same database. It also signs and exports the audit trail's head now and then, with
        the installation's key (created on first use).

        Raises:
            InvalidInput: the session works through a server, which has the database.
        """
        if self.remote:
            raise InvalidInput("this session works through a server: it has no database")
        store = self._opened(open_metadata_store(self.settings.db_url))
        enable_checkpoints = getattr(store, "enable_checkpoints", None)
        if enable_checkpoints is not None:  # only database stores sign
            key = self.settings.audit_key
            if not key.exists():
                _installation_key(key)  # made now: verifying needs its public half
            enable_checkpoints(functools.partial(_installation_key, key),
                               self.settings.audit_checkpoints)  # fmt: skip
        return store

    @property
    def _scopes(self) -> ProjectScopes:
        """The database store, as what access decisions are made on (which project a run
        belongs to, which objects a principal holds)."""
        return cast(ProjectScopes, self.database)

    def _client(self, kind: str) -> Any:
        """The server's client for a port (a key of ``THROUGH_SERVER``), on the transport."""
        return construct(THROUGH_SERVER[kind], self.transport)

    # ports

    @built_once
    def metadata(self) -> Tracking:
        """Experiments, runs and what they record: through a server, as the server decides
        for the token's holder; in a database, as the local account (an installation
        admin)."""
        if self.remote:
            found: Tracking = self._client("metadata")
            return found
        from cairn.tracking.metadata import MetadataService

        return MetadataService(self.database, self._scopes, Authorizer.local_admin())

    @built_once
    def artifacts(self) -> ArtifactStore:
        if self.remote:
            found: ArtifactStore = self._client("artifacts")
            return found
        return self._opened(open_artifact_store(self.settings.artifacts_url))

    @built_once
    def catalog(self) -> Catalog:
        """The data catalog: through a server, as the server decides for the token's
        holder; in a database, as the local account (an installation admin), whose
        versions this process builds from the files it reads: none is read back to check."""
        if self.remote:
            found: Catalog = self._client("catalog")
            return found
        from cairn.data.catalog import CatalogService

        store = in_database(self.database, "catalog")
        return CatalogService(store, Authorizer.local_admin(), None)

    @built_once
    def registry(self) -> Registry:
        """The model registry: through a server, as the server decides for the token's
        holder; in a database, as the local account (an installation admin)."""
        if self.remote:
            found: Registry = self._client("registry")
            return found
        from cairn.models.registry import RegistryService

        store, scopes = in_database(self.database, "registry"), self._scopes
        return RegistryService(store, Authorizer.local_admin(), scopes, self.artifacts)

    @built_once
    def graph(self) -> LineageGraph:
        kind = "graph"
        found: LineageGraph = (
            self._client(kind) if self.remote else in_database(self.database, kind)
        )
        return found

    @built_once
    def accounts(self) -> CallerAccounts:
        """Accounts, tokens and projects: through the server, as the server decides for the
        token's holder; in a database, as the local account (an installation admin:
        whoever can open the database is trusted as one)."""
        if self.remote:
            found: CallerAccounts = self._client("accounts")
            return found
        from cairn.accounts.service import AccountsService

        return AccountsService(in_database(self.database, "accounts"), Authorizer.local_admin())

    @built_once
    def audit_log(self) -> AuditLog:
        """The audit trail, read in the database itself: verifying it must not depend on
        trusting a server that wrote it.

        Raises:
            InvalidInput: the session works through a server.
        """
        found: AuditLog = in_database(self.database, "audit")
        return found

    # services

    @built_once
    def tracking(self) -> TrackingService:
        from cairn.tracking.service import TrackingService

        return TrackingService(self.metadata, self.artifacts, self.settings.experiment)

    @built_once
    def data(self) -> DataService:
        """Data versioning in the workspace (the project folder, else the working
        directory), where its ``cairn.lock`` is kept."""
        return self.data_in(workspace(self.settings))

    def data_in(self, folder: Path) -> DataService:
        """Data versioning over this session's stores, in another working copy."""
        from cairn.data.service import DataService

        return DataService(lambda: self.catalog, self.artifacts, folder, self.settings.home)

    @built_once
    def pipelines(self) -> PipelineService:
        """Running, sweeping and reproducing pipelines, in the workspace."""
        from cairn.pipelines.service import PipelineService

        def data() -> DataService:
            return self.data

        def models() -> ModelService:
            return self.models

        settings = self.settings
        return PipelineService(self.tracking, data, models, settings.home, workspace(settings),
                               self.artifact_store_opener())  # fmt: skip

    @built_once
    def models(self) -> ModelService:
        """The model registry and lineage graph, loading into ``<home>/cache/models``."""
        from cairn.models.service import ModelService

        cache = self.settings.home / "cache" / "models"
        return ModelService(self.registry, self.graph, self.metadata, self.artifacts, cache)

    @built_once
    def attestations(self) -> Attestations:
        """Signed provenance of model versions, with the installation's key."""
        from cairn.models.attestations import Attestations

        def upstream(ref: str) -> Lineage:
            return self.lineage().lineage(ref)

        def data_digest(ref: str) -> str:
            return self.data.version(ref).digest

        key = self.settings.audit_key
        return Attestations(self.models, self.metadata, upstream, data_digest, key)

    @built_once
    def releases(self) -> Releases:
        """Release governance (through a server, the server gathers the evidence); fresh
        evaluations load models through :attr:`models`. Webhooks are posted after each
        release, in this process."""
        if self.remote:
            found: Releases = self._client("releases")
            return found
        from cairn.releases.service import ReleaseService

        ledger = in_database(self.database, "ledger")
        live = _live_traffic(self.database, self.registry, self.artifacts)
        return ReleaseService(ledger, self.registry, self.metadata, self._evaluator,
                              Authorizer.local_admin(), self._post_webhooks, live=live)  # fmt: skip

    @built_once
    def _post_webhooks(self) -> Callable[[], None]:
        """What posts the webhook events waiting in the outbox: in this process, now (a
        command may exit right after), briefly; the next change tries again."""
        from cairn.releases.webhooks import deliver

        ledger = in_database(self.database, "ledger")

        def post() -> None:
            deliver(ledger, tries=2, pause=0.2, timeout=3.0)

        return post

    @built_once
    def monitoring(self) -> MonitorService:
        """Monitors of served models: references, windows of logged traffic, results —
        evaluated in this process, kept in the database or by the server (which posts
        their webhooks)."""
        from cairn.core.model import parse_model_ref
        from cairn.monitoring.retrain import Retrainer
        from cairn.monitoring.service import MonitorService

        if self.remote:
            monitors: Monitors = self._client("monitors")
            notify: Callable[[], None] = lambda: None  # noqa: E731  # the server posts them
        else:
            monitors, notify = in_database(self.database, "monitors"), self._post_webhooks

        def run_pipeline(name: str, tags: dict[str, str]) -> str:
            from cairn.pipelines.loading import load_pipeline

            graph = load_pipeline(name, workspace(self.settings)).build()
            return self.pipelines.run(graph, tags=tags).run_id

        def releases() -> Releases:
            return self.releases

        def resolve(ref: str) -> str:
            return self.registry.resolve(parse_model_ref(ref)).ref

        def data(ref: str) -> Path:
            return self.data.get(ref)

        retrainer = Retrainer(run_pipeline, releases, resolve)
        return MonitorService(monitors, self.registry, self.artifacts, notify, retrainer, data)

    @built_once
    def _evaluator(self) -> Any:
        """What gathers a gate's evidence (an ``Evaluator``): one per session, so its bound
        on worker processes holds for every caller."""
        from cairn.releases.evaluate import Evaluator

        limit = self.settings.server.evaluations
        return Evaluator(self.models, self.data, private_paths(self.settings), limit)

    def lineage(self) -> LineageService:
        """Lineage questions over the registry and the graph, data versions named as
        data versioning resolves them."""
        from cairn.models.lineage import LineageService

        def resolve_data(ref: str) -> str:
            return self.data.version(ref).ref

        return LineageService(self.graph, self.metadata, self.registry, resolve_data)

    def releases_for_callers(self) -> Callable[[Principal], Releases]:
        """What a server hands each caller: release governance over this session's
        database, deciding for that caller. Evidence is gathered with the server's own
        stores (the catalog unfiltered: data is read as the model's project); webhooks are
        posted in the background, after each release and now (what an earlier run left
        pending)."""
        from cairn.data.service import DataService
        from cairn.models.service import ModelService
        from cairn.releases.evaluate import Evaluator
        from cairn.releases.service import ReleaseService

        database, artifacts, home = self.database, self.artifacts, self.settings.home
        registry, ledger = in_database(database, "registry"), in_database(database, "ledger")
        graph = in_database(database, "graph")
        models = ModelService(registry, graph, database, artifacts, home / "cache" / "models")
        data = DataService(lambda: in_database(database, "catalog"), artifacts, home, home)
        limit = self.settings.server.evaluations
        evaluate = Evaluator(models, data, private_paths(self.settings), limit)
        notify = self._post_in_background
        registry_for = self.registry_for_callers()
        # A canary's traffic is read with the server's own registry, as evidence is.
        live = _live_traffic(database, registry, artifacts)

        def for_caller(principal: Principal) -> Releases:
            seen = registry_for(principal)
            return ReleaseService(ledger, seen, database, evaluate, Authorizer(principal), notify,
                                  live=live)  # fmt: skip

        return for_caller

    def monitors_for_callers(self) -> Callable[[Principal], Monitors]:
        """What a server hands each caller: the monitors over this session's database
        (which decide for the acting principal), the webhooks of a monitor whose state an
        evaluation changed posted in the background."""
        from cairn.stores.metadata.monitors import SqlMonitors

        engine = self.database.engine  # type: ignore[attr-defined]  # a database store's
        store = SqlMonitors(engine, recorded=self._post_in_background)
        return lambda principal: store

    @built_once
    def _post_in_background(self) -> Callable[[], None]:
        """What a server calls after a change with webhook events: the outbox posted in a
        thread of its own, one poster at a time; called once now, for what an earlier run
        left pending."""
        from cairn.releases.webhooks import deliver

        ledger = in_database(self.database, "ledger")
        one_at_a_time = threading.Lock()  # a delivery is posted by one deliverer

        def delivering() -> None:
            with one_at_a_time:
                deliver(ledger)

        def notify() -> None:
            threading.Thread(target=delivering, name="cairn-webhooks", daemon=True).start()

        notify()
        return notify

    def accounts_for_callers(self) -> Callable[[Principal], CallerAccounts]:
        """What a server hands each caller: the accounts over this session's database,
        deciding for that caller."""
        from cairn.accounts.service import AccountsService

        store = in_database(self.database, "accounts")

        def for_caller(principal: Principal) -> CallerAccounts:
            return AccountsService(store, Authorizer(principal))

        return for_caller

    def registry_for_callers(self) -> Callable[[Principal], Registry]:
        """What a server hands each caller: the model registry over this session's
        database, deciding for that caller, reading a package only from the objects the
        caller holds."""
        from cairn.models.registry import RegistryService

        store, scopes = in_database(self.database, "registry"), self._scopes
        objects_for = self.objects_for_callers()

        def for_caller(principal: Principal) -> Registry:
            held = objects_for(principal).holding()
            return RegistryService(store, Authorizer(principal), scopes, held)

        return for_caller

    def metadata_for_callers(self) -> Callable[[Principal], Tracking]:
        """What a server hands each caller: tracking over this session's database, deciding
        for that caller; each artifact it records must be an object the caller holds."""
        from cairn.tracking.metadata import MetadataService

        database, scopes = self.database, self._scopes
        objects_for = self.objects_for_callers()

        def for_caller(principal: Principal) -> Tracking:
            held = objects_for(principal).holding()
            return MetadataService(database, scopes, Authorizer(principal), held)

        return for_caller

    def objects_for_callers(self) -> Callable[[Principal], ObjectService]:
        """What a server hands each caller: this session's artifact store, as the caller
        may use it (``cairn.tracking.objects``)."""
        from cairn.tracking.objects import ObjectService

        artifacts, scopes = self.artifacts, self._scopes

        def for_caller(principal: Principal) -> ObjectService:
            return ObjectService(artifacts, scopes, Authorizer(principal))

        return for_caller

    def walks_for_callers(self) -> Callable[[Principal], Walks]:
        """What a server hands each caller: walks of this session's lineage graph, from a
        node the caller may read (as its own registry, catalog and tracking decide), on
        through the nodes it may read."""
        from cairn.models.walks import WalkService

        graph, scopes = in_database(self.database, "graph"), self._scopes
        registry_for, catalog_for = self.registry_for_callers(), self.catalog_for_callers()
        metadata_for = self.metadata_for_callers()

        def for_caller(principal: Principal) -> Walks:
            seen = registry_for(principal), catalog_for(principal), metadata_for(principal)
            return WalkService(graph, Authorizer(principal), scopes, *seen)

        return for_caller

    def catalog_for_callers(self) -> Callable[[Principal], Catalog]:
        """What a server hands each caller: the data catalog over this session's database,
        deciding for that caller, checking a new version only in the objects the caller
        holds."""
        from cairn.data.catalog import CatalogService

        store = in_database(self.database, "catalog")
        objects_for = self.objects_for_callers()

        def for_caller(principal: Principal) -> Catalog:
            held = objects_for(principal).holding()
            return CatalogService(store, Authorizer(principal), held)

        return for_caller

    def artifact_store_opener(self) -> Callable[[], ArtifactStore]:
        """A picklable function that opens this session's artifact store again, in
        another process (a Ray task)."""
        return artifact_store_opener(self.settings)

    def collect_garbage(self, dry_run: bool = False, grace_seconds: float = 3600.0) -> Collected:
        """Remove the artifact store's objects that no data version and no run refers to.

        Raises:
            InvalidInput: the session works through a server (its administrator collects
                its store), or the artifact store cannot list its objects.
        """
        if self.remote:
            raise InvalidInput(
                "cairn data gc runs where the objects are stored, not through a server: on "
                "the server's machine, unset CAIRN_URI and pass --db (its database)"
            )
        from cairn.data.gc import collect

        store = self.artifacts
        if not hasattr(store, "stored"):
            raise InvalidInput(f"{store!r} cannot list its objects; run gc where it is stored")
        referenced = self.data.live_objects() | in_database(self.database, "recorded")
        return collect(cast(Collectable, store), referenced, grace_seconds, dry_run)


def _installation_key(path: Path) -> Any:
    """The installation's ``SigningKey`` (created if there is none yet), loaded when a
    checkpoint is due: loading it imports the cryptography library, which a command that
    signs nothing need not pay for."""
    from cairn.localfs.signing import load_or_create

    return load_or_create(path)


def private_paths(settings: Settings) -> tuple[Path, ...]:
    """What code Cairn runs without trusting it (a model evaluated for a gate) must never
    read: the home, the database file, the artifact store, the audit key and checkpoints,
    the stored tokens and the project folder."""
    stores = (settings.db_url, settings.artifacts_url, settings.audit_checkpoints)
    local = [path for path in map(local_path, stores) if path is not None]
    project = [settings.project_root] if settings.project_root else []
    return (settings.home, settings.audit_key, credentials_file(), *local, *project)


def workspace(settings: Settings) -> Path:
    """The working copy data versioning works in: the project folder, else the working
    directory (where ``cairn.lock`` and the remotes of ``cairn.yaml`` live)."""
    return settings.project_root or Path.cwd()


def _live_traffic(database: MetadataStore, registry: ModelRegistry,
                  artifacts: ArtifactStore) -> Callable[..., Any]:  # fmt: skip
    """What reads a canary's live traffic (``cairn.monitoring.canary``), imported when a
    canary is first judged: a command that judges none does not load NumPy and pyarrow.

    The callable raises InvalidInput when cairn[monitoring] is not installed."""

    def live(*asked: Any) -> Any:
        try:
            from cairn.monitoring.canary import live_traffic
        except ImportError as missing:
            raise InvalidInput(f"judging a canary needs cairn[monitoring] ({missing})") from None
        return live_traffic(registry, artifacts, in_database(database, "monitors"))(*asked)

    return live
