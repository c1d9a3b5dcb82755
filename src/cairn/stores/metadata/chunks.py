"""Packing a metric series into a chunk: parallel little-endian arrays.

``array`` converts a list of a million floats in milliseconds and keeps NaN and ±inf
bit-exact; little-endian is fixed so a database moved between machines reads the same.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable
from itertools import pairwise

from cairn.core.run import Metric

_SWAP = sys.byteorder != "little"


def pack(numbers: Iterable[int] | Iterable[float], typecode: str) -> bytes:
    if isinstance(numbers, array) and numbers.typecode == typecode and not _SWAP:
        return numbers.tobytes()  # validated input is already the array to store
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
    numbers.frombytes(blob)
    if _SWAP:
        numbers.byteswap()


def history(key: str, blobs: Iterable[tuple[bytes, bytes, bytes]]) -> list[Metric]:
    """Every point of the chunks, ordered by step then timestamp, ties in logged order."""
    points: list[Metric] = []
    for steps, timestamps, values in blobs:
        points.extend(
            Metric(key, v, s, t)
            for s, t, v in zip(
                unpack_ints(steps), unpack_ints(timestamps), unpack_floats(values), strict=True
            )
        )
    if any((a.step, a.timestamp) > (b.step, b.timestamp) for a, b in pairwise(points)):
        points.sort(key=lambda m: (m.step, m.timestamp))  # stable: ties keep logged order
    return points
