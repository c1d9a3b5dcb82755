"""The ports: what the capabilities need from storage, whatever the backend.

Implementations: ``cairn.stores.metadata.sql`` (SQLite, PostgreSQL) and
``cairn.client.http`` (a Cairn server) for :class:`MetadataStore`;
``cairn.stores.artifacts.fsspec`` (local, S3, memory) and ``cairn.client.http`` for
:class:`ArtifactStore`; ``cairn.stores.metadata.identity`` and ``cairn.client.accounts``
for :class:`Accounts`. One contract suite in ``tests/contract/`` runs against each of them.
To add a backend, implement the protocol and register it in ``cairn.backends``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cairn.core.identity import AccountKind  # default values below
from cairn.core.limits import INT64_MAX
from cairn.core.monitor_api import Monitors as Monitors  # the port beside its operations
from cairn.core.release_api import Releases as Releases  # the port beside its operations
from cairn.core.run import ViewType

if TYPE_CHECKING:  # annotations only: a command imports the domain types it uses
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import BinaryIO

    from cairn.core.access import Principal, Role
    from cairn.core.artifact import ArtifactEntry, ObjectInfo, StoredObject
    from cairn.core.data import DataRef, DataVersion, LinkMode, NewDataVersion
    from cairn.core.identity import Membership, Token, User
    from cairn.core.lineage import Edge, Node
    from cairn.core.model import (
        ModelCard,
        ModelRef,
        ModelVersion,
        NewModelVersion,
        RegisteredModel,
        TrafficBatch,
    )
    from cairn.core.policy import Policy
    from cairn.core.release import (
        ApprovalRecord,
        Delivery,
        Deployment,
        Environment,
        PromotionRequest,
        RequestState,
        Webhook,
    )
    from cairn.core.run import (
        Experiment,
        Metric,
        MetricBatch,
        MetricPoint,
        NewRun,
        Run,
        RunRecord,
        RunStatus,
    )
    from cairn.core.search import RunPage, RunQuery


class MetadataStore(Protocol):
    """Experiments, runs and everything recorded about them.

    Every write is decided for the principal acting in the current context
    (``cairn.core.actor``) and audited, both inside the write's own transaction: a store
    over a database does it itself; a client store's server does it.
    """

    def create_experiment(self, name: str, project: str = "default") -> Experiment:
        """Create an experiment in a project; raises AlreadyExists if the name is taken,
        NotFound if the project does not exist."""

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id; raises NotFound."""

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this name, or None."""

    def list_experiments(self) -> list[Experiment]:
        """Every experiment, oldest first."""

    def create_run(self, new: NewRun) -> Run:
        """Start a run in RUNNING state."""

    def get_run(self, run_id: str) -> Run:
        """The run with its params, latest metrics and tags; raises NotFound."""

    def resolve_run_id(self, ref: str) -> str:
        """The full id for an id or a unique prefix of 8+ characters.

        Raises NotFound, or AmbiguousReference when the prefix matches several runs.
        """

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        """Record that a run ended."""

    def record_runs(self, records: Sequence[RunRecord]) -> list[Run]:
        """Record whole runs, already ended, in one transaction: all or none. Each is
        audited as if it had been created, logged to and ended one call at a time."""

    def set_run_deleted(self, run_id: str, deleted: bool) -> Run:
        """Soft-delete or restore a run."""

    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | Sequence[MetricPoint] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        batch_id: str | None = None,
    ) -> None:
        """Record a batch in one transaction; all or nothing. Metrics come as a series per
        key (the SDK's shape) or as loose ``(key, value, step, timestamp)`` points.

        A batch carrying a ``batch_id`` that was already stored is ignored, so a client
        may retry a batch whose acknowledgement it lost. Raises ParamConflict when a param
        is re-logged with another value, InvalidState when the run is deleted.
        """

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step then timestamp."""

    def search_runs(self, query: RunQuery) -> RunPage:
        """Runs matching the query, filtered and ordered by the store."""

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        """Add files to a run's artifact manifest (a path logged again is replaced)."""

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        """Every manifest file under a folder of the run (all of them for ``""``)."""

    def close(self) -> None:
        """Release connections."""

    # inputs: the lineage edges from a run to the data versions it used

    def log_inputs(self, run_id: str, refs: Sequence[str]) -> list[str]:
        """Record that the run used these data versions (``customers@2``; a reference
        without a version means the newest); returns them resolved (``name@version``).
        Raises NotFound for an unknown run or data version, InvalidInput for a bad
        reference, InvalidState for a deleted run."""

    def get_run_inputs(self, run_id: str) -> list[str]:
        """The data versions the run used, as ``name@version``, sorted; raises NotFound."""

    def log_lineage(self, run_id: str, used: Sequence[str], produced: Sequence[str]) -> None:
        """Record the objects (by digest) the run read and wrote: a pipeline step's
        inputs and output. Raises NotFound, InvalidInput (a malformed digest)."""

    def get_run_lineage(self, run_id: str) -> tuple[list[str], list[str]]:
        """The objects the run used and produced, each sorted; raises NotFound."""

    # pipelines: the runs nested in a run, and the step cache

    def child_runs(self, run_id: str, view: ViewType = ViewType.ACTIVE) -> list[Run]:
        """The runs nested directly in the run (of ``view``), newest first. Raises
        InvalidInput naming ``run_id`` when it is not a whole id, NotFound."""

    def cached_output(
        self, experiment_id: str, cache_key: str, user: str | None = None
    ) -> Run | None:
        """The newest of the experiment's finished, not deleted runs whose system tags
        record an output (``cairn.output.digest``, not empty) under ``cache_key``
        (``cairn.cache_key``), and whose user is ``user`` when given — the run started
        last, of those the one recorded last, as a search lists them — or None. Raises
        InvalidInput naming ``experiment_id`` or ``cache_key``, NotFound for an unknown
        experiment."""


class ArtifactStore(Protocol):
    """Immutable objects addressed by their BLAKE3 digest."""

    def put_file(self, path: Path) -> ObjectInfo:
        """Store a local file (once, whatever how often it is put) and return its digest."""

    def put_stream(self, stream: BinaryIO, expected_digest: str | None = None) -> ObjectInfo:
        """Store bytes read from a stream; raises IntegrityError if they do not hash to
        ``expected_digest``. Nothing is visible under the digest until it is complete."""

    def missing(self, digests: Iterable[str]) -> set[str]:
        """Which of these digests the store does not hold (one batched check)."""

    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        """The size in bytes of each of these objects the store holds; those it does not
        hold are left out (one batched check)."""

    def open(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        """Stream an object's bytes in chunks, verified: a mismatch raises IntegrityError
        when the last chunk is read. Raises NotFound."""

    def get_file(self, digest: str, dest: Path) -> None:
        """Write an object to a local file, atomically and verified."""

    def close(self) -> None:
        """Release connections."""


class ProjectScopes(Protocol):
    """Which project an object belongs to, and which stored objects a principal holds:
    what access decisions are made on. Only a database store can answer; a server asks
    its own."""

    def experiment_project(self, experiment_id: str) -> str:
        """Raises NotFound."""

    def run_project(self, run_id: str) -> str:
        """Raises NotFound."""

    def experiments_in(self, projects: frozenset[str]) -> list[str]:
        """Ids of the experiments of these projects."""

    def resolve_run_id(self, ref: str, projects: frozenset[str] | None = None) -> str:
        """The full id of the run of ``projects`` (any: None) that an id or a unique prefix
        names; raises NotFound, AmbiguousReference."""

    def readable_objects(self, principal: Principal, digests: Iterable[str]) -> set[str]:
        """Of these digests, those a run, dataset or model of a project the principal may
        read holds (every one, for an installation admin)."""

    def readable_nodes(self, principal: Principal, nodes: Iterable[Node]) -> set[Node]:
        """Of these lineage nodes, those of a project the principal may read (objects: held
        by one)."""

    def held_objects(self, principal: Principal, digests: Iterable[str]) -> set[str]:
        """Of these digests, those the principal may read, or whose bytes it uploaded."""

    def record_upload(self, digest: str, principal: Principal) -> None:
        """Remember that the principal sent the bytes of ``digest``: it holds them."""


class Accounts(Protocol):
    """Accounts, API tokens, projects and the roles held in them.

    Writes are decided (accounts and projects: installation admins; tokens: their owner
    or an admin; members: the project's admins) and audited in their own transaction.
    """

    def add_user(
        self, name: str, kind: AccountKind = AccountKind.USER, admin: bool = False
    ) -> User:
        """Raises InvalidInput for a bad name, AlreadyExists if the name is taken."""

    def list_users(self) -> list[User]: ...

    def set_disabled(self, name: str, disabled: bool) -> User:
        """A disabled account's tokens stop working at once; raises NotFound."""

    def create_token(
        self, user: str, name: str, expires_at: int | None = None
    ) -> tuple[Token, str]:
        """The token and its whole text, shown this once; raises NotFound, InvalidInput."""

    def list_tokens(self, user: str | None = None) -> list[Token]: ...

    def revoke_token(self, token_id: str) -> Token:
        """Raises NotFound."""

    def add_project(self, name: str) -> str:
        """Raises InvalidInput for a bad name, AlreadyExists if the project exists."""

    def list_projects(self) -> list[str]: ...

    def set_role(self, project: str, user: str, role: Role | None) -> Membership | None:
        """Give ``user`` a role in ``project`` (None takes it away); raises NotFound."""

    def members(self, project: str) -> list[Membership]: ...


class DataCatalog(Protocol):
    """Datasets and their versions; the bytes are in the :class:`ArtifactStore`."""

    def add_version(self, new: NewDataVersion) -> tuple[DataVersion, bool]:
        """Record a version with this manifest (True), or return the newest version if it
        already has it (False). Raises InvalidInput, NotFound, PermissionDenied."""

    def get_version(self, ref: DataRef) -> DataVersion:
        """Raises NotFound, AmbiguousReference."""

    def list_versions(self, name: str) -> list[DataVersion]:
        """Newest first; raises NotFound."""

    def list_datasets(self) -> list[DataVersion]:
        """The newest version of each dataset."""


class ModelRegistry(Protocol):
    """Registered models, their versions and aliases; package bytes are in the
    :class:`ArtifactStore`. Writes are decided and audited in their own transaction."""

    def register_version(self, new: NewModelVersion, project: str) -> ModelVersion:
        """The next version of ``new.name`` (the model is created in ``project`` if new;
        an existing model keeps its project). With a run, the lineage edge run -produced->
        version is recorded too. Raises InvalidInput, NotFound, PermissionDenied."""

    def get_model(self, name: str) -> RegisteredModel:
        """Raises NotFound (listing the models there are)."""

    def list_models(self) -> list[RegisteredModel]:
        """Every model, by name."""

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Newest first; raises NotFound."""

    def resolve(self, ref: ModelRef) -> ModelVersion:
        """The version a reference names; raises NotFound saying what exists."""

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at a version (moving it if it pointed elsewhere)."""

    def delete_alias(self, name: str, alias: str) -> None:
        """Raises NotFound when the model has no such alias."""

    def set_card(self, name: str, version: int, card: ModelCard) -> ModelCard:
        """Replace the version's model card (audited). Raises NotFound."""

    def get_card(self, name: str, version: int) -> ModelCard:
        """The version's card (an empty one if none was written). Raises NotFound."""

    def log_traffic(self, batch: TrafficBatch) -> TrafficBatch:
        """Index a batch of what a served version answered (its file already stored; the
        model holds it from then on). Audited. Raises NotFound, InvalidInput,
        PermissionDenied (``write`` in the model's project)."""

    def traffic(self, name: str, since: int = 0, until: int = INT64_MAX) -> list[TrafficBatch]:
        """The batches of the model's traffic that overlap the window (milliseconds since
        the epoch), oldest first. Raises NotFound."""


class ReleaseWork(Protocol):
    """One change to a model's releases as a unit of work of a :class:`ReleaseLedger`: what
    it reads and writes, in one transaction that took the model's lock first and commits
    everything together or nothing. It decides nothing: ``cairn.releases.workflow`` does,
    on what it reads here."""

    @property
    def project(self) -> str:
        """The model's project, read as its lock was taken."""

    def acting(self) -> Principal | None:
        """The principal acting in the current context, as its account stands now (read
        in this transaction); None for a trusted caller. Raises Unauthenticated: its
        account was disabled or removed meanwhile."""

    def environment(self, name: str) -> Environment:
        """Raises NotFound (naming the environments there are)."""

    def request(self, ref: str) -> PromotionRequest:
        """By its id or its first 8 characters or more; raises NotFound, InvalidInput,
        AmbiguousReference."""

    def request_in(
        self, model: str, environment: str, state: RequestState
    ) -> PromotionRequest | None:
        """The request to run the model in the environment that is in ``state`` (waiting,
        or serving as a canary: at most one is), if one is."""

    def version_digest(self, model: str, version: int) -> str:
        """The version's package digest; raises NotFound."""

    def running(self, environment: str, model: str) -> int | None:
        """The version of the model the environment's alias names now."""

    def history(self, environment: str, model: str) -> list[Deployment]:
        """The model's entries of the environment's history, newest first."""

    def save_request(self, request: PromotionRequest) -> None:
        """Write the request, new or changed (its approvals are added one by one)."""

    def add_approval(self, request_id: str, given: ApprovalRecord) -> None:
        """Append an approval or a rejection to the request."""

    def move_alias(self, model: str, environment: str, version: int, by: str, at: int) -> None:
        """Point the environment's alias of the model (``churn@production``) at ``version``."""

    def append_history(self, entry: Deployment) -> Deployment:
        """Append the entry to the environment's history; returns it with its id."""

    def queue_event(self, environment: str, event: str, body: Mapping[str, object]) -> None:
        """Queue a delivery of the event to each webhook of the environment or of every
        environment (posted after the commit: ``cairn.releases.webhooks``)."""

    def audit(
        self,
        action: str,
        object_type: str,
        object_id: str,
        payload: Mapping[str, object],
        object_digest: str | None = None,
    ) -> None:
        """Append the audit event of a change, after what it records."""


class ReleaseLedger(Protocol):
    """Environments, promotion requests, approvals and deployment histories, as recorded
    (``cairn.core.release``). A change to what an environment runs is one unit of work,
    serialised per model (:meth:`transaction`), in which the release workflow
    (``cairn.releases.workflow``) decides and records it. Writes are decided and audited in
    their own transaction: environments, policies and webhooks by installation admins."""

    def create_environment(self, name: str, policy_text: str, policy: Policy) -> Environment:
        """Raises InvalidInput (a bad name, or one models use as an alias), AlreadyExists."""

    def set_policy(self, name: str, policy_text: str, policy: Policy) -> Environment: ...

    def get_environment(self, name: str) -> Environment:
        """Raises NotFound (naming the environments there are)."""

    def list_environments(self) -> list[Environment]: ...

    def project_of(self, model: str) -> str:
        """The project a model belongs to (whose roles decide its releases); NotFound."""

    def transaction(self, model: str) -> AbstractContextManager[ReleaseWork]:
        """A unit of work on the model's releases that locks the model first, so racing
        changes of one model queue on that lock and each reads what the one before it
        committed; committed when the block ends, rolled back when it raises. Raises
        NotFound (no such model)."""

    def get_request(self, request_id: str) -> PromotionRequest: ...

    def list_requests(
        self,
        environment: str | None = None,
        model: str | None = None,
        state: RequestState | None = None,
    ) -> list[PromotionRequest]:
        """Newest first."""

    def history(self, environment: str, model: str | None = None) -> list[Deployment]:
        """Newest first."""

    def deployed_at(self, environment: str, at: int) -> list[Deployment]:
        """Per model, the history entry in force at ``at`` (milliseconds)."""

    def add_webhook(self, url: str, secret: str, environment: str | None) -> Webhook: ...

    def list_webhooks(self) -> list[Webhook]: ...

    def remove_webhook(self, webhook_id: str) -> None: ...

    def pending_deliveries(self, limit: int = 100) -> list[Delivery]: ...

    def mark_delivery(
        self, delivery_id: int, delivered: bool, error: str, give_up: bool
    ) -> None: ...


class LineageGraph(Protocol):
    """The generic lineage edges, walked from one node (``cairn.core.lineage``)."""

    def walk(
        self, start: Node, downstream: bool, max_hops: int = 64, reader: Principal | None = None
    ) -> list[Edge]:
        """Every edge reached from ``start`` going one way in at most ``max_hops`` steps
        (through a server, 64 at most), each once, sorted; for a ``reader``, only through
        the nodes it may read (a server decides this for the caller's account, whatever a
        client passes). Raises NotFound when ``start`` is a run, data version or model
        version there is none of, InvalidInput when it is no reference of its kind."""


class LocalObjects(Protocol):
    """A store that keeps objects as files on this machine, so files can be linked to
    them (``cairn data checkout --link``) and into them (``cairn data add --link``)."""

    def local_path(self, digest: str) -> str | None:
        """The object's file, or None if it is not held here as one."""

    def adopt_file(self, path: Path, mode: LinkMode) -> tuple[ObjectInfo, bool]:
        """Store a file, linked where possible; its digest, and whether it was linked."""


class Collectable(Protocol):
    """A store that can list and remove its objects: what ``cairn data gc`` needs (the
    stores over a file system or an object store; not a server's, whose own
    administrator collects it)."""

    def stored(self) -> Iterator[StoredObject]:
        """Every object held, in no particular order."""

    def remove(self, digests: Iterable[str]) -> None:
        """Delete these objects; one that is already gone is no error."""
