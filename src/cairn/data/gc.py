"""Garbage collection: remove the objects nothing references any more.

What is kept: every object of every data version (its listings, bundles and large files),
and every object the caller names besides (run artifacts; model packages, later). Objects
modified within the grace period are kept too, whatever references them: an ``add`` in
progress stores its objects before it records the version that names them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from cairn.core.ports import Collectable

GRACE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Collected:
    removed: int
    bytes: int
    kept: int  # referenced, or too recent to judge
    dry_run: bool


def collect(
    store: Collectable,
    referenced: Iterable[str],
    grace_seconds: float = GRACE_SECONDS,
    dry_run: bool = False,
) -> Collected:
    keep = set(referenced)
    newer_than = time.time() - grace_seconds
    garbage, size, kept = [], 0, 0
    for stored in store.stored():
        if stored.digest in keep or stored.modified_at > newer_than:
            kept += 1
        else:
            garbage.append(stored.digest)
            size += stored.size
    if not dry_run:
        store.remove(garbage)
    return Collected(len(garbage), size, kept, dry_run)
