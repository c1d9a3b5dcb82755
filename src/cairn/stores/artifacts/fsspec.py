"""Content-addressed artifact store over any fsspec filesystem: local, ``memory://``, S3.

Objects live at ``<root>/objects/<object_key(digest)>``. No partially written object is
ever visible under its digest: filesystems with an atomic rename (local disk, memory) get
a temporary object under ``<root>/tmp/`` that is moved into place once its digest is
known; object stores (S3 and any other fsspec backend) get the digest computed first and
one upload to the final key, which they publish atomically. Reads are verified against
the digest as they stream.

Third-party exceptions (OSError from fsspec, botocore's own) are translated into
:mod:`cairn.errors` in :meth:`FsspecArtifactStore._boundary` and nowhere else.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.utils import get_protocol

from cairn.core.artifact import HASH_NAME, ObjectInfo, StoredObject, check_digest, object_key
from cairn.core.data import LinkMode
from cairn.errors import (
    CairnError,
    DigestMismatch,
    IntegrityError,
    InvalidInput,
    MissingExtra,
    NotFound,
    ServerUnavailable,
)
from cairn.localfs.atomic import write_atomically
from cairn.localfs.digest import (
    CHUNK_SIZE,
    COPY_CHUNK_SIZE,
    digest_of,
    hash_file,
    hasher,
    read_chunks,
    verified,
)
from cairn.localfs.links import link_object

_EXISTS_WORKERS = 32
# <root>/tmp: on the same filesystem as <root>/objects, so moving a finished object is atomic.
_STAGING = "tmp"
_EXTRAS = {"s3": "s3", "s3a": "s3"}  # fsspec protocol -> the Cairn extra that provides it
_T = TypeVar("_T")


class FsspecArtifactStore:
    """Immutable objects addressed by their BLAKE3 digest, below an fsspec URL.

    Args:
        url: a local directory, ``file://…``, ``memory://…`` or ``s3://bucket/prefix``.
        storage_options: passed to the fsspec filesystem (e.g. ``client_kwargs`` for s3fs).

    Raises:
        MissingExtra: the URL needs a backend that is not installed (s3fs for ``s3://``).
        InvalidInput: fsspec does not know the URL's protocol.
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self._fs, root = _filesystem(url, dict(storage_options or {}))
        self._root: str = root.rstrip("/")
        # Local disk and memory stat cheaply and rename atomically; everything else is
        # treated as an object store (no rename, one request per call).
        self._local = isinstance(self._fs, (LocalFileSystem, MemoryFileSystem))
        self._errors = _backend_errors(self._fs)

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.url!r})"

    def close(self) -> None:
        """Nothing to release: fsspec filesystems hold no connection Cairn must close."""

    def put_file(self, path: Path) -> ObjectInfo:
        """Store a local file once, however often it is put, and return its digest.

        Raises:
            IntegrityError: the file changed while it was being stored; nothing was kept.
        """
        path = Path(path)
        before = path.stat()
        if self._local:
            # One pass: hashed while it is copied (a file read twice costs twice, and a
            # memory-mapped hash of a large file would count it all as resident memory).
            with path.open("rb") as stream:
                info = self._put_via_tmp(stream, None, f"file {path}")
            _check_unchanged(path, before)
            return info
        info = ObjectInfo(hash_file(path), before.st_size)
        if not self._exists(info.digest):
            self._upload_checked(path, info.digest, before)
        return info

    def put_stream(self, stream: BinaryIO, expected_digest: str | None = None) -> ObjectInfo:
        """Store bytes read from a stream, in chunks; return their digest.

        Raises:
            InvalidInput: ``expected_digest`` is malformed or not a BLAKE3 digest.
            IntegrityError: the bytes do not hash to ``expected_digest``; nothing was kept.
        """
        if expected_digest is not None:
            _check_blake3(expected_digest)
        if self._local:
            return self._put_via_tmp(stream, expected_digest, "the uploaded bytes")
        return self._put_via_spool(stream, expected_digest)

    def missing(self, digests: Iterable[str]) -> set[str]:
        """Which of these digests the store does not hold (one batched check).

        Raises:
            InvalidInput: a digest is malformed.
        """
        wanted = {check_digest(d) for d in digests}
        with self._boundary("check which objects exist"):
            present = self._exists_many(sorted(wanted))
        return wanted - present

    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        """The size of each of these objects the store holds (one batched check).

        Raises:
            InvalidInput: a digest is malformed.
        """
        wanted = sorted({check_digest(d) for d in digests})
        with self._boundary("look up the objects' sizes"):
            found = self._each(self._size_of, [self._object_path(d) for d in wanted])
        return {d: size for d, size in zip(wanted, found, strict=True) if size is not None}

    @contextmanager
    def open(self, digest: str) -> Generator[Iterator[bytes], None, None]:
        """Stream an object's bytes in chunks of at most 1 MiB, verified.

        Raises:
            NotFound: the store does not hold the digest.
            IntegrityError: (when the last chunk is read) the bytes do not match the digest.
        """
        path = self._object_path(digest)
        with self._boundary(f"open {digest}", not_found=self._not_found_message(digest)):
            handle = self._fs.open(path, "rb")
        with handle:
            yield self._verified_chunks(handle, digest, path)

    def get_file(self, digest: str, dest: Path) -> None:
        """Write an object to ``dest`` atomically, creating its parent folders.

        Raises:
            NotFound: the store does not hold the digest; ``dest`` is left untouched.
            IntegrityError: the stored bytes do not match the digest; ``dest`` is untouched.
        """
        with self.open(digest) as chunks:
            write_atomically(chunks, Path(dest))

    def adopt_file(self, path: Path, mode: LinkMode) -> tuple[ObjectInfo, bool]:
        """Store a local file by linking it into a store on the same disk (reading it
        once, to hash it, and writing nothing); its digest, and whether it was linked.
        Where it cannot be linked (another store, another device, no reflinks, the object
        is stored already) it is put as ``put_file`` puts it. See ``cairn.localfs.links``:
        a hardlinked file becomes read-only.

        Raises:
            IntegrityError: the file changed while it was being stored; nothing was kept.
        """
        path = Path(path)
        if mode == LinkMode.COPY or not isinstance(self._fs, LocalFileSystem):
            return self.put_file(path), False
        before = path.stat()
        info = ObjectInfo(hash_file(path), before.st_size)
        _check_unchanged(path, before)
        target = self._object_path(info.digest)
        if os.path.exists(target):
            return info, False
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if link_object(str(path), target, mode) is None:
            return self.put_file(path), False
        try:
            _check_unchanged(path, before)  # what was linked is what was hashed
        except IntegrityError:
            os.unlink(target)
            raise
        return info, True

    def local_path(self, digest: str) -> str | None:
        """Where the object's bytes are on this machine's disk, if it holds them there
        (what a hardlink or reflink checkout links to); None for any other store."""
        check_digest(digest)
        if not isinstance(self._fs, LocalFileSystem):
            return None
        path = self._object_path(digest)
        return path if os.path.isfile(path) else None

    def stored(self) -> Iterator[StoredObject]:
        """Every object below ``<root>/objects``, with its size and modification time."""
        top = f"{self._root}/objects"
        with self._boundary("list the stored objects"):
            found = self._fs.find(top, detail=True) if self._fs.exists(top) else {}
        for path, info in found.items():
            algo, _, rest = path[len(top) + 1 :].partition("/")
            prefix, _, tail = rest.partition("/")
            digest = f"{algo}:{prefix}{tail}"
            try:
                check_digest(digest)
            except InvalidInput:
                continue  # not an object (a stray file): never collected
            yield StoredObject(digest, int(info.get("size") or 0), _modified_at(info))

    def remove(self, digests: Iterable[str]) -> None:
        for digest in digests:
            with self._boundary(f"remove {digest}"), suppress(FileNotFoundError):
                self._fs.rm_file(self._object_path(check_digest(digest)))

    # -- writing ---------------------------------------------------------------------

    def _put_via_tmp(self, stream: IO[bytes], expected: str | None, source: str) -> ObjectInfo:
        """Local/memory: write a temporary object, then rename it to its digest."""
        tmp = f"{self._root}/{_STAGING}/{uuid.uuid4().hex}"
        try:
            info = self._write_tmp(stream, tmp)
            _check_expected(info, expected, source)
            self._publish(tmp, info.digest)
        except BaseException:
            self._discard(tmp)
            raise
        return info

    def _write_tmp(self, stream: IO[bytes], tmp: str) -> ObjectInfo:
        def guard() -> AbstractContextManager[None]:
            return self._boundary("write a temporary object")

        with guard():
            self._fs.makedirs(tmp.rpartition("/")[0], exist_ok=True)
            out = self._fs.open(tmp, "wb")
        try:
            return _copy_hashing(stream, out, guard)
        finally:
            with guard():
                out.close()

    def _publish(self, tmp: str, digest: str) -> None:
        final = self._object_path(digest)
        with self._boundary(f"store {digest}"):
            if self._fs.exists(final):  # identical content is stored once
                self._fs.rm_file(tmp)
                return
            self._fs.makedirs(final.rpartition("/")[0], exist_ok=True)
            if isinstance(self._fs, LocalFileSystem):
                # os.replace, unlike shutil.move, is atomic on Windows too.
                os.replace(tmp, final)
            else:
                self._fs.mv(tmp, final)

    def _put_via_spool(self, stream: IO[bytes], expected: str | None) -> ObjectInfo:
        """Object stores: the key must be known before uploading, so spool to local disk."""

        def guard() -> AbstractContextManager[None]:
            return self._boundary("spool the upload to a local temporary file")

        with guard():
            fd, spool = tempfile.mkstemp(prefix="cairn-", suffix=".spool")
        try:
            with os.fdopen(fd, "wb") as out:
                info = _copy_hashing(stream, out, guard)
            _check_expected(info, expected, "the uploaded bytes")
            if not self._exists(info.digest):
                self._upload(Path(spool), info.digest)
        finally:
            Path(spool).unlink(missing_ok=True)
        return info

    def _upload_checked(self, path: Path, digest: str, before: os.stat_result) -> None:
        """Upload a hashed file; undo it if the file changed since it was hashed."""
        self._upload(path, digest)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            with self._boundary(f"remove {digest}"):
                self._fs.rm_file(self._object_path(digest))
            raise IntegrityError(
                f"file {path} changed while it was being stored; nothing was kept. "
                "Put it again once it is complete."
            )

    def _upload(self, path: Path, digest: str) -> None:
        # An S3 PUT, or the completion of a multipart upload, publishes the key atomically.
        with self._boundary(f"upload {digest}"):
            self._fs.put_file(str(path), self._object_path(digest))

    def _discard(self, tmp: str) -> None:
        # Cleanup must not hide the error that made it necessary.
        with suppress(OSError):
            self._fs.rm_file(tmp)

    # -- reading ---------------------------------------------------------------------

    def _verified_chunks(self, handle: IO[bytes], digest: str, path: str) -> Iterator[bytes]:
        def mismatch(actual: str) -> IntegrityError:
            return IntegrityError(
                f"object {digest} in artifact store {self.url} is corrupt: its bytes hash to "
                f"{actual}. Delete {self._fs.unstrip_protocol(path)} and put the original "
                "file again."
            )

        return verified(self._read_chunks(handle, digest), digest, mismatch)

    def _read_chunks(self, handle: IO[bytes], digest: str) -> Iterator[bytes]:
        while True:
            with self._boundary(f"read {digest}"):
                chunk = handle.read(CHUNK_SIZE)
            if not chunk:
                return
            yield chunk

    def _exists(self, digest: str) -> bool:
        with self._boundary(f"look up {digest}"):
            return bool(self._fs.exists(self._object_path(digest)))

    def _exists_many(self, digests: list[str]) -> set[str]:
        found = self._each(self._fs.exists, [self._object_path(d) for d in digests])
        return {d for d, ok in zip(digests, found, strict=True) if ok}

    def _each(self, look_up: Callable[[str], _T], paths: list[str]) -> list[_T]:
        if self._local or len(paths) < 2:
            return [look_up(p) for p in paths]
        # One HEAD per object, 32 in flight: the cost grows with the request, not with
        # the store (listing the key prefixes would page through every object stored
        # under them), and it works for every fsspec backend, not only s3fs. The sync
        # methods of fsspec's async filesystems are safe to call from threads.
        with ThreadPoolExecutor(max_workers=min(_EXISTS_WORKERS, len(paths))) as pool:
            return list(pool.map(look_up, paths))

    def _size_of(self, path: str) -> int | None:
        try:
            return int(self._fs.size(path))
        except FileNotFoundError:
            return None

    def _object_path(self, digest: str) -> str:
        return f"{self._root}/objects/{object_key(digest)}"

    def _not_found_message(self, digest: str) -> str:
        return (
            f"artifact store {self.url} has no object {digest}: it was never stored there "
            "or has been deleted. Put the file again, or point Cairn at the store that holds it."
        )

    # -- the boundary ----------------------------------------------------------------

    @contextmanager
    def _boundary(self, doing: str, not_found: str | None = None) -> Iterator[None]:
        """Translate fsspec and botocore exceptions into Cairn errors that say what to do."""
        errors = self._errors
        try:
            yield
        except FileNotFoundError as exc:
            raise NotFound(
                not_found
                or f"could not {doing}: {self.url} does not exist ({exc}). "
                "Create it (for S3, the bucket) or fix the artifact store URL."
            ) from exc
        except errors.denied as exc:
            raise CairnError(
                f"could not {doing}: access to artifact store {self.url} was denied ({exc}). "
                "Check the credentials and the permissions granted on the store."
            ) from exc
        except errors.unreachable as exc:
            raise ServerUnavailable(
                f"could not {doing}: artifact store {self.url} cannot be reached ({exc}). "
                "Check the endpoint URL and the network, then retry."
            ) from exc
        except errors.other as exc:
            raise CairnError(
                f"could not {doing} in artifact store {self.url}: {exc}. "
                "Check that the store is reachable, writable and has space left."
            ) from exc


@dataclass(frozen=True, slots=True)
class _BackendErrors:
    """What a filesystem raises, by what the user should do about it."""

    denied: tuple[type[BaseException], ...] = (PermissionError,)
    unreachable: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    other: tuple[type[BaseException], ...] = (OSError,)


def _filesystem(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    """The fsspec filesystem and root path for a URL; fsspec imports backends lazily."""
    protocol = get_protocol(url)
    # A private instance: fsspec shares instances between callers by default, and a
    # directory listing cached by someone else could make an object look present or absent.
    options = {"skip_instance_cache": True, **options}
    try:
        fs, root = url_to_fs(url, **options)
    except ImportError as exc:
        extra = _EXTRAS.get(protocol)
        hint = (
            f"pip install 'cairn-mlops[{extra}]'"
            if extra
            else f"install the fsspec backend for '{protocol}://'"
        )
        raise MissingExtra(f"artifact store {url} needs a package that is missing: {hint}") from exc
    except ValueError as exc:
        raise InvalidInput(f"artifact store URL {url!r}: {exc}") from exc
    return fs, str(root)


def _backend_errors(fs: Any) -> _BackendErrors:
    """s3fs turns S3 error responses into OSError subclasses but lets botocore's own
    connection and credential errors through; botocore is imported only when s3fs is used.
    """
    if not {"s3", "s3a"} & set(_protocols(fs)):
        return _BackendErrors()
    botocore = importlib.import_module("botocore.exceptions")
    return _BackendErrors(
        denied=(PermissionError, botocore.NoCredentialsError, botocore.PartialCredentialsError),
        unreachable=(ConnectionError, TimeoutError, botocore.ConnectionError),
        other=(OSError, botocore.BotoCoreError, botocore.ClientError),
    )


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _check_blake3(digest: str) -> None:
    if not check_digest(digest).startswith(f"{HASH_NAME}:"):
        raise InvalidInput(f"expected_digest {digest!r}: this store addresses by {HASH_NAME}")


def _modified_at(info: Mapping[str, Any]) -> float:
    """Seconds since the epoch, from what the file system reports; 0 when it reports
    nothing (such an object counts as old)."""
    for key in ("mtime", "LastModified", "last_modified", "created"):  # disk, S3, memory
        value: Any = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
    return 0.0


def _check_expected(info: ObjectInfo, expected: str | None, source: str) -> None:
    if expected is not None and info.digest != expected:
        raise DigestMismatch(
            f"{source} hashed to {info.digest}, not the expected {expected}; nothing was kept. "
            "The source was cut short or changed on the way: put it again."
        )


def _check_unchanged(path: Path, before: os.stat_result) -> None:
    """Raises:
    IntegrityError: the file changed while it was being stored (what was stored is the
        bytes that were read, under their own digest; the caller should put it again).
    """
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise IntegrityError(f"file {path} changed while it was being stored; put it again")


def _copy_hashing(
    source: IO[bytes], out: IO[bytes], guard: Callable[[], AbstractContextManager[None]]
) -> ObjectInfo:
    """Copy in chunks while hashing. Only writes are guarded: an error raised by the
    caller's stream is the caller's, and reaches them unchanged."""
    state, size = hasher(), 0
    for chunk in read_chunks(source, COPY_CHUNK_SIZE):
        state.update(chunk)
        with guard():
            out.write(chunk)
        size += len(chunk)
    return ObjectInfo(digest_of(state), size)
