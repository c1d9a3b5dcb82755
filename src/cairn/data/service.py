"""Data versioning: add, status, checkout, log, ls and get, over a catalog (the metadata
store) and the content-addressed store.

The working copy is the workspace (the project folder); ``cairn.lock`` in it records
which version of each dataset it holds, and the stat cache in the Cairn home remembers
what each file hashed to, so ``status`` and a repeated ``add`` read only what changed.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

from cairn.core.data import (
    DataKind,
    DataRef,
    DataVersion,
    FileEntry,
    LinkMode,
    NewDataVersion,
    check_dataset_name,
    check_same_place,
    check_version_path,
    parse_data_ref,
    recorded_path_problem,
)
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.ports import ArtifactStore, DataCatalog, LocalObjects
from cairn.data import manifest
from cairn.data.checkout import (
    clear_the_way,
    conflict_message,
    file_name,
    folders_touched,
    keyed,
    placer,
    plan,
    present,
)
from cairn.data.clean import CleanMarks
from cairn.data.diff import DataDiff, Side, diff
from cairn.data.fence import Fence
from cairn.data.file_error import translated
from cairn.data.lock import Locked, read_lock, write_lock
from cairn.data.materialize import Linker, read_listing, read_object, write_files
from cairn.data.profile import MAX_PROFILE_BYTES, MAX_TABLES, profile_files, table_format
from cairn.data.scan import Found, scan_present
from cairn.data.snapshot import Advance, Snapshot, empty_folders_warning, snapshot
from cairn.data.stat_cache import StatCache
from cairn.data.transfer import Moved, copy_objects, objects_of, objects_of_version
from cairn.errors import IntegrityError, InvalidInput, InvalidState, MissingExtra, NotFound
from cairn.localfs.digest import hash_file
from cairn.localfs.links import UNPROTECTED, link_object, read_only_protects


@dataclass(frozen=True, slots=True)
class Added:
    version: DataVersion
    created: bool  # False: the data equals the newest version, which is returned
    read: int  # files whose bytes were read (the rest were vouched for by the stat cache)
    warnings: tuple[str, ...] = ()  # tables that could not be profiled, and why
    linked: int = 0  # files linked into the store rather than copied (``link``)


@dataclass
class Status:
    name: str
    version: int
    path: str
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.added or self.modified or self.deleted)


@dataclass(frozen=True, slots=True)
class CheckedOut:
    version: DataVersion
    target: Path
    written: int
    unchanged: int
    removed: int
    linked: int = 0  # of those written: linked to the store's object (reflink, hardlink)
    warnings: tuple[str, ...] = ()  # links that could not be made safely, and why


class DataService:
    def __init__(
        self,
        open_catalog: Callable[[], DataCatalog],
        artifacts: ArtifactStore,
        workspace: Path,
        home: Path,
    ) -> None:
        """``open_catalog`` is called on first use: ``status`` never needs the catalog,
        and opening a metadata database (its schema check, its signing key) would be most
        of what a quick command spends."""
        self._open_catalog = open_catalog
        self.artifacts = artifacts
        self.workspace = workspace
        self._cache_path = home / "data" / "stat-cache.json"
        self._marks_path = home / "data" / "clean.json"
        self._checkouts = home / "data" / "checkouts"

    @functools.cached_property
    def catalog(self) -> DataCatalog:
        return self._open_catalog()

    def close(self) -> None:
        """Close the artifact store and, once opened, a catalog that can be closed (a
        server's client; a database catalog's engine is its store's)."""
        self.artifacts.close()
        opened = self.__dict__.get("catalog")
        close = getattr(opened, "close", None)
        if callable(close):
            close()

    # add

    @translated
    def add(
        self,
        path: Path,
        name: str | None = None,
        message: str = "",
        project: str = DEFAULT_PROJECT,
        advance: Advance | None = None,
        profile: bool = True,
        link: LinkMode = LinkMode.COPY,
    ) -> Added:
        """Snapshot a file or folder as the next version of ``name`` (default: its name);
        with ``profile``, its tables (CSV, TSV, Parquet) are profiled too; with ``link``,
        files of 1 MiB and more are linked into a local store instead of copied.

        Raises:
            InvalidInput: the path cannot be read or changed while read; a bad name; the
                path is not one a version may be recorded at, or not where the dataset
                lives (checked before anything is read).
            InvalidState: a file cannot be used (naming it, and what to do).
        """
        source = Path(os.path.abspath(path))
        name = check_dataset_name(name if name is not None else source.name)
        where = self._relative(source)
        check_version_path(where, DataKind.DIRECTORY if source.is_dir() else DataKind.FILE)
        newest = self._newest(name)
        if newest is not None:
            check_same_place(name, newest.path, where)
        cache = StatCache(self._cache_path)
        try:
            taken = snapshot(source, self.artifacts, cache, advance, link)
        finally:
            cache.save()  # what was stored is remembered even if the add failed later
        built = manifest.build(taken.entries)
        self._store_trees(built)
        held = {*built.trees, *(e.bundle or e.digest for e in taken.entries)}
        profiled, warnings = self._profile(newest, source, taken) if profile else ("", [])
        warnings += empty_folders_warning(source, taken.empty) + self._unprotected(taken.copied)
        new = NewDataVersion(
            name, built.root, taken.kind, where, built.files, built.bytes,
            message, project, profiled, tuple(sorted(held)),
        )  # fmt: skip
        version, created = self.catalog.add_version(new)
        self._lock(name, version)
        marks = CleanMarks(self._marks_path)  # status need not look at these files again
        marks.mark_clean(str(source), version.digest, taken.found)
        marks.save()
        return Added(version, created, taken.read, tuple(warnings), taken.linked)

    def _profile(
        self, newest: DataVersion | None, source: Path, taken: Snapshot
    ) -> tuple[str, list[str]]:
        """The stored profile of the snapshot's tables ("" if none), and what could not
        be profiled; tables unchanged since the ``newest`` version keep their profile."""
        located = (
            (e.path, e.digest, str(source) if taken.kind == DataKind.FILE else f"{source}/{e.path}")
            for e in taken.entries
            if table_format(e.path) is not None
        )
        try:
            found = profile_files(located, self._tables_profiled(newest))
        except MissingExtra as exc:
            return "", [f"tables not profiled: {exc.message}"]
        if found is None:
            return "", []
        warnings = [f"{path}: not profiled: {t['error']}" for path, t in found["tables"].items()
                    if "error" in t]  # fmt: skip
        if found["not_profiled"]:
            warnings.append(f"{found['not_profiled']} more tables not profiled (over {MAX_TABLES})")
        data = orjson.dumps(found, option=orjson.OPT_SORT_KEYS)
        return self.artifacts.put_stream(io.BytesIO(data)).digest, warnings

    def _newest(self, name: str) -> DataVersion | None:
        try:
            return self.catalog.get_version(DataRef(name))
        except NotFound:
            return None

    def _tables_profiled(self, newest: DataVersion | None) -> dict[str, Any]:
        """The newest version's table profiles, by path (none if there is none)."""
        if newest is None or not newest.profile:
            return {}
        try:
            return dict(self.profile(newest)["tables"])
        except NotFound:
            return {}

    def profile(self, version: DataVersion) -> dict[str, Any]:
        """The version's profile document (``tables``: path → profile).

        Raises:
            NotFound: the version has no profile, or this store lacks it.
            IntegrityError: the stored profile is damaged, or larger than any may be.
        """
        if not version.profile:
            raise NotFound(
                f"{version.ref} has no profile: it holds no tables (CSV, TSV, Parquet), or "
                "was added with --no-profile"
            )
        stored = read_object(self.artifacts, version.profile, MAX_PROFILE_BYTES, "a profile")
        found: dict[str, Any] = orjson.loads(stored)
        return found

    def _store_trees(self, built: manifest.Manifest) -> None:
        for digest in sorted(self.artifacts.missing(built.trees)):
            self.artifacts.put_stream(io.BytesIO(built.trees[digest]), digest)

    # status

    @translated
    def status(self, name: str | None = None) -> list[Status]:
        """What differs between the working copy and the versions ``cairn.lock`` names.

        Raises:
            NotFound: ``name`` is not tracked in this working copy.
            InvalidState: a file cannot be read (naming it, and what to do).
        """
        locked = read_lock(self.workspace)
        if name is not None:
            if name not in locked:
                raise NotFound(f"dataset {name!r} is not tracked here (see cairn.lock)")
            locked = {name: locked[name]}
        marks = CleanMarks(self._marks_path)
        # Loaded only if some dataset is not known clean: loading it is most of what a
        # status of a clean working copy would otherwise spend.
        cache = functools.cache(lambda: StatCache(self._cache_path))
        try:
            return [self._status(n, entry, cache, marks) for n, entry in sorted(locked.items())]
        finally:
            if cache.cache_info().currsize:
                cache().save()
            marks.save()

    def _status(
        self, name: str, locked: Locked, opened: Callable[[], StatCache], marks: CleanMarks
    ) -> Status:
        status = Status(name, locked.version, locked.path)
        folder = os.path.abspath(self.workspace / locked.path)
        present = self._present(Path(folder))
        if marks.is_clean(folder, locked.digest, present):
            return status  # one scan: every file is as it was when last found clean
        tracked = {e.path: e for e in self.files(locked.digest, f"{name}@{locked.version}")}
        cache = opened()
        for found in present:
            entry = tracked.get(found.rel)
            if entry is None:
                status.added.append(found.rel)
            elif cache.digest(found.path, found.stat, entry) != entry.digest:
                status.modified.append(found.rel)
        seen = {found.rel for found in present}
        status.deleted = [p for p in tracked if p not in seen]
        if status.clean:
            marks.mark_clean(folder, locked.digest, present)
        return status

    def _present(self, root: Path) -> list[Found]:
        return scan_present(root).files

    # checkout

    @translated
    def checkout(
        self,
        ref: str,
        to: Path | None = None,
        force: bool = False,
        advance: Advance | None = None,
        link: LinkMode = LinkMode.COPY,
    ) -> CheckedOut:
        """Write a version's files to where it was added from (or into ``to``); files
        already as the version has them are left alone, the tracked version's files it
        lacks are removed. With ``link``, files stored as objects of their own are linked
        to them where the file system can (see ``cairn.localfs.links``), and copied where
        it cannot.

        It writes only inside the project folder (inside ``to``, with ``to``), and never
        into a Python environment or a ``.git`` folder there (see ``cairn.data.fence``).
        ``to`` naming the folder the version was added from (through a link, say) is a
        checkout there: ``cairn.lock`` is updated.

        Raises:
            NotFound, AmbiguousReference: no such version.
            InvalidState: a file there has local changes (not in the tracked version), or
                is in the way of the version's files, and ``force`` is not set; a folder
                it would write into leads out of its folder (a link), or into a Python
                environment or a ``.git`` folder; a file cannot be written (naming it, and
                what to do). Nothing was written, but in the last case.
            IntegrityError: the version's recorded path or manifest would write outside
                its folder, or its stored bytes are damaged.
        """
        version = self.version(ref)
        root = os.path.abspath(self._target(version, to))
        own = to is None or self._is_its_place(version, root)
        fence = self._fence(version, root, to)
        fence.check([root if version.kind == DataKind.DIRECTORY else os.path.dirname(root)])
        wanted = keyed(version, self.files_of(version))
        known = self._known(version, wanted) if own else {}
        # Loaded before the scan: loading a large cache briefly takes several times its
        # size, and the scan's results need not be held while it does.
        cache = StatCache(self._cache_path)
        try:
            found, folders = present(scan_present(Path(root)))
            done = plan(wanted, found, folders, known, cache, force)
            if done.conflicts:
                raise InvalidState(conflict_message(version, done.conflicts, root))
            fence.check(folders_touched(done, version, root))
            clear_the_way(done, root)
            links = _Links(link)
            written = write_files(
                done.writes, placer(version, root), self.artifacts, version.ref, advance,
                self._linker(links),
            )  # fmt: skip
            for entry, path, stat in written:
                cache.put(path, stat, entry.digest, entry.bundle, entry.offset)
        finally:
            cache.save()
        if own:
            self._lock(version.dataset, version)
        removed = len(done.removals) + sum(key in found for key in done.in_the_way)  # files
        warnings = (UNPROTECTED,) if links.refused else ()
        return CheckedOut(
            version, Path(root), len(done.writes), done.unchanged, removed, links.linked, warnings
        )

    def _target(self, version: DataVersion, to: Path | None) -> Path:
        """Where the version goes: where it was added from, or into ``to``.

        Raises:
            IntegrityError: its recorded path is not one a version may be recorded at
                (outside the project folder, or through a hidden folder).
        """
        if to is not None:
            return Path(to) / file_name(version) if version.kind == DataKind.FILE else Path(to)
        problem = recorded_path_problem(version.path, version.kind)
        if problem is not None:
            raise IntegrityError(
                f"{version.ref} cannot be checked out where it was added from: its path "
                f"{version.path!r}: {problem}; check it out elsewhere with --to DIR"
            )
        return self.workspace / version.path

    def _is_its_place(self, version: DataVersion, root: str) -> bool:
        """Whether ``root`` is where the version was added from, links followed."""
        if recorded_path_problem(version.path, version.kind) is not None:
            return False
        return os.path.realpath(root) == os.path.realpath(self.workspace / version.path)

    def _fence(self, version: DataVersion, root: str, to: Path | None) -> Fence:
        """What bounds the checkout of ``version`` into ``root``: the project folder, or
        ``to``."""
        project = os.path.abspath(self.workspace)
        if to is not None:
            hint = "remove the link, or check out into the folder it leads to"
            return Fence(os.path.abspath(to), project, hint)
        place = root if version.kind == DataKind.DIRECTORY else os.path.dirname(root)
        return Fence(project, project, f"to write through the link, name it: --to {place}")

    def _known(self, version: DataVersion, wanted: dict[str, FileEntry]) -> dict[str, str]:
        """The digests of the files of the version cairn.lock names, by key (``wanted``:
        the files of ``version``); none if they cannot be read (then every file that
        differs counts as a local change: nothing is lost)."""
        locked = read_lock(self.workspace).get(version.dataset)
        if locked is None:
            return {}
        try:
            if locked.version == version.version:
                tracked, entries = version, wanted
            else:
                tracked = self.catalog.get_version(DataRef(version.dataset, locked.version))
                entries = keyed(tracked, self.files_of(tracked))
        except (NotFound, IntegrityError):
            return {}
        if tracked.digest != locked.digest:
            return {}
        return {key: entry.digest for key, entry in entries.items()}

    def _linker(self, links: _Links) -> Linker | None:
        """What links a file to its object, noting it in ``links`` (None: copy all)."""
        mode = links.mode
        if mode == LinkMode.COPY or not hasattr(self.artifacts, "local_path"):
            return None
        objects = cast(LocalObjects, self.artifacts)

        def link(entry: FileEntry, target: str) -> os.stat_result | None:
            source = objects.local_path(entry.digest)
            if source is None:
                return None
            if hash_file(Path(source)) != entry.digest:  # never hand out damaged bytes
                raise IntegrityError(f"object {entry.digest} does not match its digest")
            found = link_object(source, target, mode)
            if found is not None:
                links.linked += 1
            elif mode == LinkMode.HARDLINK and not read_only_protects(os.path.dirname(target)):
                links.refused += 1
            return found

        return link

    def _unprotected(self, copied: list[str]) -> list[str]:
        """Why files ``add --link hardlink`` was asked to link were copied, if it was for
        want of a read-only mode that holds (``copied``: their digests)."""
        local_path = getattr(self.artifacts, "local_path", None)
        stored = local_path(copied[0]) if copied and local_path is not None else None
        if stored is None or read_only_protects(os.path.dirname(stored)):
            return []
        return [UNPROTECTED]

    # remotes

    def push(
        self, refs: Sequence[str], remote: ArtifactStore, advance: Advance | None = None
    ) -> Moved:
        """Send the versions' objects the remote lacks (default: the versions in
        cairn.lock)."""
        needed: dict[str, int] = {}
        for version in self._versions(refs):
            needed.update(objects_of_version(version, self.artifacts))
        return copy_objects(needed, self.artifacts, remote, advance)

    def fetch(
        self, refs: Sequence[str], remote: ArtifactStore, advance: Advance | None = None
    ) -> Moved:
        """Bring the versions' objects this store lacks from the remote (default: the
        versions in cairn.lock); ``checkout`` then writes the files."""
        needed: dict[str, int] = {}
        for version in self._versions(refs):
            needed.update(objects_of_version(version, remote))
        return copy_objects(needed, remote, self.artifacts, advance)

    def refs_or_locked(self, refs: Sequence[str]) -> list[str]:
        """``refs``, or else the versions cairn.lock names (``name@version``).

        Raises:
            NotFound: no refs given and nothing tracked here.
        """
        if refs:
            return list(refs)
        locked = read_lock(self.workspace)
        if not locked:
            raise NotFound("no data versions given and none tracked here (see cairn.lock)")
        return [f"{name}@{entry.version}" for name, entry in sorted(locked.items())]

    def _versions(self, refs: Sequence[str]) -> list[DataVersion]:
        return [self.version(ref) for ref in self.refs_or_locked(refs)]

    def diff(self, before: str, after: str) -> DataDiff:
        """Files added, removed and modified from ``before`` to ``after``; columns, types
        and row counts of the tables among them."""
        sides = []
        for ref in (before, after):
            version = self.version(ref)
            profiles = self.profile(version)["tables"] if version.profile else {}
            sides.append(Side(version.ref, self.files_of(version), profiles))
        return diff(sides[0], sides[1], self.artifacts)

    def live_objects(self) -> set[str]:
        """Every object some data version needs (what ``gc`` must keep)."""
        live: set[str] = set()
        for newest in self.catalog.list_datasets():
            for version in self.catalog.list_versions(newest.dataset):
                if version.digest not in live:
                    live.update(objects_of(version.digest, self.artifacts))
                if version.profile:
                    live.add(version.profile)
        return live

    # reading

    def log(self, name: str) -> list[DataVersion]:
        return self.catalog.list_versions(check_dataset_name(name))

    def datasets(self) -> list[DataVersion]:
        return self.catalog.list_datasets()

    def version(self, ref: str) -> DataVersion:
        """The version ``ref`` names.

        Raises:
            NotFound, AmbiguousReference: no such version, or more than one.
            IntegrityError: the catalog answered with another dataset or version.
        """
        wanted = parse_data_ref(ref)
        found = self.catalog.get_version(wanted)
        if found.dataset != wanted.name or wanted.version not in (None, found.version):
            raise IntegrityError(f"asked for {ref}, the catalog answered with {found.ref}")
        return found

    def ls(self, ref: str, prefix: str = "") -> tuple[DataVersion, list[FileEntry]]:
        version = self.version(ref)
        prefix = prefix.strip("/")
        entries = [
            e for e in self.files_of(version)
            if not prefix or e.path == prefix or e.path.startswith(f"{prefix}/")
        ]  # fmt: skip
        return version, entries

    def files_of(self, version: DataVersion) -> list[FileEntry]:
        """Every file of ``version``, in path order: no more than it claims to hold.

        Raises:
            IntegrityError: a listing is damaged, or they hold more files or bytes than the
                version claims.
            NotFound: the store lacks a listing.
        """
        return self.files(version.digest, version.ref, manifest.Bound(version.files, version.bytes))

    def files(
        self, digest: str, what: str = "the data version", bound: manifest.Bound = manifest.NO_CLAIM
    ) -> list[FileEntry]:
        """Every file of the manifest ``digest``, in path order; the walk stops at the first
        file past ``bound`` (always at ``manifest.MAX_ENTRIES``).

        Raises:
            IntegrityError: a listing is damaged, or they hold more than ``bound`` (the
                message names ``what``).
            NotFound: the store lacks a listing.
        """
        try:
            return list(
                manifest.walk(digest, functools.partial(read_listing, self.artifacts), bound)
            )
        except IntegrityError as exc:
            raise IntegrityError(f"{what}: its manifest is damaged ({exc.message})") from exc
        except NotFound as exc:
            raise NotFound(
                f"{what}: this store lacks its manifest; fetch it with `cairn data pull "
                f"{what}` ({exc.message})"
            ) from exc

    @translated
    def get(self, ref: str) -> Path:
        """A local copy of the version (made once, then reused): its folder, or its file.

        Raises:
            NotFound, AmbiguousReference: no such version.
            IntegrityError: its manifest would write outside the copy's folder, or its
                stored bytes are damaged.
        """
        version = self.version(ref)  # its dataset's name is the one asked for: a name
        folder = self._checkouts / version.dataset / str(version.version)
        done = folder.parent / f"{version.version}.complete"  # beside: a version may hold any name
        if not done.exists():
            self.checkout(version.ref, to=folder, force=True)  # Cairn's own copy
            done.touch()
        return folder / file_name(version) if version.kind == DataKind.FILE else folder

    # helpers

    def _relative(self, source: Path) -> str:
        """Where ``source`` is in the project folder: what a checkout writes back to.

        Raises:
            InvalidInput: it is outside the project folder.
        """
        as_given, resolved = (source, self.workspace), (source.resolve(), self.workspace.resolve())
        for inside, folder in (as_given, resolved):
            if inside.is_relative_to(folder):
                return inside.relative_to(folder).as_posix()
        raise InvalidInput(
            f"{source}: outside the project folder {self.workspace}, where a version must "
            "be for `cairn data checkout` to write it back; link it into the project "
            "(links are followed) or add it from a project that holds it"
        )

    def _lock(self, name: str, version: DataVersion) -> None:
        locked = read_lock(self.workspace)
        locked[name] = Locked(version.path, version.version, version.digest)
        write_lock(self.workspace, locked)


@dataclass
class _Links:
    """What a checkout asked to link, and how that went."""

    mode: LinkMode
    linked: int = 0
    refused: int = 0  # hard links not made: a read-only mode does not hold here
