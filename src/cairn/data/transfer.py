"""Moving a version's objects between two content-addressed stores (push and pull).

Only what the destination lacks moves: one batched existence check for all of a version's
objects (its listings, bundles and large files), then parallel transfers, each streamed
and verified against its digest on arrival (the destination refuses bytes that do not
match). Listings are read from the source to find the rest, each once however often it is
named: what they name is a set of objects, not a walk of the files.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, cast

from cairn.core.data import DataVersion
from cairn.core.ports import ArtifactStore
from cairn.data import manifest
from cairn.data.materialize import read_listing
from cairn.errors import NotFound

WORKERS = 8  # transfers at once: object stores answer each request in tens of ms


@dataclass(frozen=True, slots=True)
class Moved:
    objects: int  # transferred
    present: int  # already at the destination
    bytes: int


def objects_of(root: str, source: ArtifactStore) -> dict[str, int]:
    """Every object a version needs, with its size: listings first, then the bytes."""
    needed: dict[str, int] = {}
    listings = {root}  # each read once: a listing may name one sub-listing many times
    pending = [root]
    while pending:
        digest = pending.pop()
        data = read_listing(source, digest)
        needed[digest] = len(data)
        for entry in manifest.decode_tree(data, digest):
            if entry[1] == "d":
                if entry[2] not in listings:
                    listings.add(entry[2])
                    pending.append(entry[2])
            elif entry[4]:  # inside a bundle: the bundle reaches at least this far
                needed[entry[4]] = max(needed.get(entry[4], 0), entry[5] + entry[3])
            else:
                needed[entry[2]] = entry[3]
    return needed


def objects_of_version(version: DataVersion, source: ArtifactStore) -> dict[str, int]:
    """Every object a data version needs: its manifest's, and its profile.

    Raises:
        NotFound: ``source`` lacks a listing, or the profile.
        IntegrityError: a listing is damaged.
    """
    needed = objects_of(version.digest, source)
    if version.profile:
        sized = source.sizes([version.profile])  # its size, not its bytes: it is not read
        if version.profile not in sized:
            raise NotFound(f"{version.ref}: the store lacks its profile {version.profile}")
        needed[version.profile] = sized[version.profile]
    return needed


def copy_objects(
    needed: dict[str, int],
    source: ArtifactStore,
    destination: ArtifactStore,
    advance: Callable[[int], None] | None = None,
) -> Moved:
    """Raises:
    NotFound: the source lacks an object. IntegrityError: bytes that do not match.
    ServerUnavailable: a store cannot be reached.
    """
    step = advance or (lambda _n: None)
    missing = sorted(destination.missing(needed))

    def move(digest: str) -> None:
        with source.open(digest) as chunks:
            stream = cast(BinaryIO, io.BufferedReader(_ChunkReader(chunks)))
            destination.put_stream(stream, digest)
        step(needed[digest])

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(move, missing))  # list(): an error in any transfer is raised here
    return Moved(len(missing), len(needed) - len(missing), sum(needed[d] for d in missing))


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (what ``open`` yields)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = chunk
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size
