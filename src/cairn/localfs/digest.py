"""BLAKE3 digests of bytes, files and streams, in the ``"blake3:<hex>"`` form Cairn uses."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import blake3

from cairn.core.artifact import HASH_NAME

CHUNK_SIZE = 1 << 20  # 1 MiB: large enough for multithreaded BLAKE3, small enough to stream
# Copying a file into the store: larger reads let BLAKE3 spread each over the cores, and
# halve the time of a 2 GiB copy here against 1 MiB reads, for 8 MiB of buffer.
COPY_CHUNK_SIZE = 8 << 20


def hasher() -> Any:
    # AUTO lets BLAKE3 spread a large update over all cores.
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def digest_of(state: Any) -> str:
    return f"{HASH_NAME}:{state.hexdigest()}"


def hash_file(path: Path) -> str:
    """Read in chunks of up to 8 MiB into one buffer: memory stays flat whatever the
    file's size, and a file cut short while it is read is a short read, not a crash (as
    touching a memory-mapped page past the new end would be)."""
    state = hasher()
    with open(path, "rb", buffering=0) as stream:
        # No larger than the file: zeroing 8 MiB to read 1 KiB would cost more than the
        # read, and ``status`` after a ``touch`` of many small files hashes every one.
        buffer = bytearray(min(COPY_CHUNK_SIZE, os.fstat(stream.fileno()).st_size + 1))
        view = memoryview(buffer)
        while size := stream.readinto(buffer):
            state.update(view[:size])
    return digest_of(state)


def verified(
    chunks: Iterable[bytes], digest: str, mismatch: Callable[[str], Exception]
) -> Iterator[bytes]:
    """Pass chunks through; after the last one, raise ``mismatch(actual)`` if the bytes
    do not hash to ``digest``. A consumer that stops early gets no verification."""
    state = hasher()
    for chunk in chunks:
        state.update(chunk)
        yield chunk
    actual = digest_of(state)
    if actual != digest:
        raise mismatch(actual)


def read_chunks(stream: BinaryIO | IO[bytes], size: int = CHUNK_SIZE) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
