"""Number columns as bytes: little-endian int64 and IEEE-754 doubles, back to back.

One layout serves the stored metric chunks and the packed columns of the ingest API.
``array`` converts a list of a million floats in milliseconds and keeps NaN and ±inf
bit-exact; little-endian is fixed so bytes moved between machines read the same.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable

_SWAP = sys.byteorder != "little"
ITEM_SIZE = 8  # both typecodes used here: "q" (int64) and "d" (float64)


def pack(numbers: Iterable[int] | Iterable[float], typecode: str) -> bytes:
    if isinstance(numbers, array) and numbers.typecode == typecode and not _SWAP:
        return numbers.tobytes()  # already the array to store
    packed = array(typecode, numbers)
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


def unpack_ints(blob: bytes) -> array[int]:
    numbers = array("q")
    _load(numbers, blob)
    return numbers


def unpack_floats(blob: bytes) -> array[float]:
    numbers = array("d")
    _load(numbers, blob)
    return numbers


def _load(numbers: array[int] | array[float], blob: bytes) -> None:
    """Raises:
    ValueError: the length of ``blob`` is not a multiple of 8.
    """
    numbers.frombytes(blob)
    if _SWAP:
        numbers.byteswap()
