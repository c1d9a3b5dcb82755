"""The stores as one principal may use them.

Reads check that the principal may read the project of what they touch, then delegate;
lists keep only what the principal may read. What it may not read is not found, exactly as
what does not exist (``cairn.core.access.require_visible``): a run id, an id prefix or an
experiment of another project gets the answer a made-up one gets, and a run's inputs list
only the data versions it may read. Writes delegate on the principal's behalf: the
metadata store decides them inside the write's own transaction (see
``cairn.stores.metadata.grants``), so a role taken away between a check and the write
cannot be outrun. The server wraps its stores in these for each request's principal, so a
route cannot reach a store without a decision.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from cairn.core import missing
from cairn.core.access import (
    Permission,
    Principal,
    Role,
    require_admin,
    require_self_or_admin,
    require_visible,
)
from cairn.core.actor import on_behalf_of
from cairn.core.artifact import ArtifactEntry, ObjectInfo, check_digest
from cairn.core.identity import DEFAULT_PROJECT, AccountKind, Membership, Token, User
from cairn.core.lineage import DATA_VERSION, Node
from cairn.core.ports import Accounts, ArtifactStore, MetadataStore, ProjectScopes
from cairn.core.run import (
    Experiment,
    Metric,
    MetricBatch,
    MetricPoint,
    NewRun,
    Run,
    RunRecord,
    RunStatus,
    ViewType,
)
from cairn.core.search import RunPage, RunQuery
from cairn.errors import NotFound, PermissionDenied
from cairn.tracking.stored import not_stored


class AuthorizedMetadataStore:
    def __init__(
        self,
        store: MetadataStore,
        scopes: ProjectScopes,
        principal: Principal,
        owned: bool = False,
    ) -> None:
        self._store, self._scopes, self.principal = store, scopes, principal
        self._owned = owned

    def close(self) -> None:
        """Close the wrapped store if it was handed over (``owned``)."""
        if self._owned:
            self._store.close()

    def _see_experiment(self, experiment_id: str) -> None:
        if not self.principal.is_admin:
            project = self._scopes.experiment_project(experiment_id)
            require_visible(self.principal, project, missing.experiment(experiment_id))

    def _see_run(self, run_id: str) -> None:
        if not self.principal.is_admin:  # an admin needs no lookup of the run's project
            project = self._scopes.run_project(run_id)
            require_visible(self.principal, project, missing.run(run_id))

    # experiments

    def create_experiment(self, name: str, project: str = DEFAULT_PROJECT) -> Experiment:
        with on_behalf_of(self.principal):
            return self._store.create_experiment(name, project)

    def get_experiment(self, experiment_id: str) -> Experiment:
        experiment = self._store.get_experiment(experiment_id)
        require_visible(self.principal, experiment.project, missing.experiment(experiment_id))
        return experiment

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        experiment = self._store.get_experiment_by_name(name)
        if experiment is None or not self.principal.may(Permission.READ, experiment.project):
            return None
        return experiment

    def list_experiments(self) -> list[Experiment]:
        found = self._store.list_experiments()
        return [e for e in found if self.principal.may(Permission.READ, e.project)]

    # runs

    def create_run(self, new: NewRun) -> Run:
        with on_behalf_of(self.principal):
            return self._store.create_run(new)

    def get_run(self, run_id: str) -> Run:
        self._see_run(run_id)
        return self._store.get_run(run_id)

    def resolve_run_id(self, ref: str) -> str:
        """Among the runs the principal may read only: a prefix names no other run."""
        readable = self.principal.readable_projects()
        if readable is None:  # an admin
            return self._store.resolve_run_id(ref)
        return self._scopes.resolve_run_id(ref, readable)

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        with on_behalf_of(self.principal):
            return self._store.end_run(run_id, status, end_time)

    def record_runs(self, records: Sequence[RunRecord]) -> list[Run]:
        with on_behalf_of(self.principal):
            return self._store.record_runs(records)

    def set_run_deleted(self, run_id: str, deleted: bool) -> Run:
        with on_behalf_of(self.principal):
            return self._store.set_run_deleted(run_id, deleted)

    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | Sequence[MetricPoint] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        batch_id: str | None = None,
    ) -> None:
        with on_behalf_of(self.principal):
            self._store.log_batch(run_id, metrics, params, tags, batch_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._see_run(run_id)
        return self._store.get_metric_history(run_id, key)

    def search_runs(self, query: RunQuery) -> RunPage:
        readable = self.principal.readable_projects()
        if readable is None:  # an admin
            return self._store.search_runs(query)
        if query.experiment_ids:
            for experiment_id in query.experiment_ids:
                self._see_experiment(experiment_id)
            return self._store.search_runs(query)
        visible = self._scopes.experiments_in(readable)
        if not visible:
            return RunPage([], None)
        return self._store.search_runs(dataclasses.replace(query, experiment_ids=tuple(visible)))

    # pipelines

    def child_runs(self, run_id: str, view: ViewType = ViewType.ACTIVE) -> list[Run]:
        """Those the principal may read (a run may be nested in another project's)."""
        self._see_run(run_id)
        found = self._store.child_runs(run_id, view)
        readable = self.principal.readable_projects()
        if readable is None:  # an admin
            return found
        visible = set(self._scopes.experiments_in(readable))
        return [run for run in found if run.experiment_id in visible]

    def cached_output(
        self, experiment_id: str, cache_key: str, user: str | None = None
    ) -> Run | None:
        self._see_experiment(experiment_id)
        return self._store.cached_output(experiment_id, cache_key, user)

    # inputs

    def log_inputs(self, run_id: str, refs: Sequence[str]) -> list[str]:
        with on_behalf_of(self.principal):
            return self._store.log_inputs(run_id, refs)

    def get_run_inputs(self, run_id: str) -> list[str]:
        """The data versions the run used that the principal may read (someone who may
        read both projects may record that a run used another project's data)."""
        self._see_run(run_id)
        found = self._store.get_run_inputs(run_id)
        if self.principal.is_admin:
            return found
        shown = self._scopes.readable_nodes(self.principal, [Node(DATA_VERSION, r) for r in found])
        return [ref for ref in found if Node(DATA_VERSION, ref) in shown]

    def log_lineage(self, run_id: str, used: Sequence[str], produced: Sequence[str]) -> None:
        with on_behalf_of(self.principal):
            self._store.log_lineage(run_id, used, produced)

    def get_run_lineage(self, run_id: str) -> tuple[list[str], list[str]]:
        self._see_run(run_id)
        return self._store.get_run_lineage(run_id)

    # artifacts

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        with on_behalf_of(self.principal):
            self._store.add_artifacts(run_id, entries)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        self._see_run(run_id)
        return self._store.list_artifacts(run_id, prefix)


class AuthorizedArtifactStore:
    """Objects are shared by content across projects, and held by whoever may read them
    where a project holds them, or uploaded their bytes (see
    ``cairn.stores.metadata.objects``). Storing one needs write access to some project,
    and the upload is recorded: the principal holds it from then on. Reading one needs
    read access to a project that holds it. Which objects exist, and their sizes, are told
    only of those the principal holds: any other is reported missing, stored or not, so
    the answer says nothing about other projects' objects.

    ``holding()`` is the view a server reads through on the principal's behalf (the
    package of a version it registers): every object the principal holds, and nothing
    else, which is NotFound exactly as an object that is not stored is.
    """

    def __init__(
        self,
        store: ArtifactStore,
        scopes: ProjectScopes,
        principal: Principal,
        reads_held: bool = False,
    ) -> None:
        self._store, self._scopes, self.principal = store, scopes, principal
        self._reads_held = reads_held

    def close(self) -> None:
        """The wrapped store belongs to whoever made it."""

    def holding(self) -> AuthorizedArtifactStore:
        return AuthorizedArtifactStore(self._store, self._scopes, self.principal, True)

    def put_file(self, path: Path) -> ObjectInfo:
        self._may_write_somewhere()
        return self._uploaded(self._store.put_file(path))

    def put_stream(self, stream: BinaryIO, expected_digest: str | None = None) -> ObjectInfo:
        self._may_write_somewhere()
        return self._uploaded(self._store.put_stream(stream, expected_digest))

    def missing(self, digests: Iterable[str]) -> set[str]:
        self._may_write_somewhere()
        wanted = {check_digest(d) for d in digests}
        held = self._scopes.held_objects(self.principal, wanted)
        return (wanted - held) | self._store.missing(held)

    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        self._may_write_somewhere()
        wanted = {check_digest(d) for d in digests}
        return self._store.sizes(self._scopes.held_objects(self.principal, wanted))

    def open(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        self._may_read(digest)
        return self._store.open(digest)

    def get_file(self, digest: str, dest: Path) -> None:
        self._may_read(digest)
        self._store.get_file(digest, dest)

    def _may_write_somewhere(self) -> None:
        p = self.principal
        if not (p.is_admin or any(p.may(Permission.WRITE, project) for project in p.roles)):
            raise PermissionDenied(
                f"{p.name} may not store artifacts: it needs the 'write' permission in a "
                "project (a role that grants it: contributor, maintainer, admin)"
            )

    def _uploaded(self, info: ObjectInfo) -> ObjectInfo:
        self._scopes.record_upload(info.digest, self.principal)
        return info

    def _may_read(self, digest: str) -> None:
        check_digest(digest)
        if self._reads_held:
            if self.missing([digest]):  # not the principal's, or not stored: the same
                raise NotFound(not_stored(digest))
        elif not self._scopes.readable_objects(self.principal, [digest]):
            raise PermissionDenied(
                f"{self.principal.name} may not read object {digest}: it needs the 'read' "
                "permission in a project whose runs, datasets or models hold it"
            )


class AuthorizedAccounts:
    """Accounts, tokens and projects as one principal may see and change them.

    Changes are decided by the store in their own transaction, on the principal's behalf.
    Reads: accounts are the installation admins' to list; a token list is the caller's
    own unless an admin asks; projects listed are those the caller holds a role in (all,
    for an admin); a project's members are visible to whoever may read the project.
    """

    def __init__(self, accounts: Accounts, principal: Principal) -> None:
        self._accounts, self.principal = accounts, principal

    def add_user(
        self, name: str, kind: AccountKind = AccountKind.USER, admin: bool = False
    ) -> User:
        with on_behalf_of(self.principal):
            return self._accounts.add_user(name, kind, admin)

    def list_users(self) -> list[User]:
        require_admin(self.principal, "list the accounts")
        return self._accounts.list_users()

    def set_disabled(self, name: str, disabled: bool) -> User:
        with on_behalf_of(self.principal):
            return self._accounts.set_disabled(name, disabled)

    def create_token(
        self, user: str, name: str, expires_at: int | None = None
    ) -> tuple[Token, str]:
        with on_behalf_of(self.principal):
            return self._accounts.create_token(user, name, expires_at)

    def list_tokens(self, user: str | None = None) -> list[Token]:
        if user is None and not self.principal.is_admin:
            user = self.principal.name  # everyone may list their own
        if user is not None:
            require_self_or_admin(self.principal, user, f"list the tokens of {user!r}")
        return self._accounts.list_tokens(user)

    def revoke_token(self, token_id: str) -> Token:
        with on_behalf_of(self.principal):
            return self._accounts.revoke_token(token_id)

    def add_project(self, name: str) -> str:
        with on_behalf_of(self.principal):
            return self._accounts.add_project(name)

    def list_projects(self) -> list[str]:
        found = self._accounts.list_projects()
        return [p for p in found if self.principal.may(Permission.READ, p)]

    def set_role(self, project: str, user: str, role: Role | None) -> Membership | None:
        with on_behalf_of(self.principal):
            return self._accounts.set_role(project, user, role)

    def members(self, project: str) -> list[Membership]:
        require_visible(self.principal, project, missing.project(project))
        return self._accounts.members(project)
