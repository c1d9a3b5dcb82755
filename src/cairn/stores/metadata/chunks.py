"""A metric series stored as chunks: parallel packed columns (``cairn.core.packing``)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from cairn.core.packing import unpack_floats, unpack_ints
from cairn.core.run import Metric


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
