"""That the objects a caller names are stored, as the caller sees the store.

An object the caller neither may read nor has uploaded counts as not stored, whether the
store has it or not (the artifact store a server reads through for a caller answers so):
naming another project's object gets the answer an object never stored gets, and the same
advice — upload it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from cairn.errors import InvalidInput

if TYPE_CHECKING:
    from cairn.core.artifact import ArtifactEntry
    from cairn.core.ports import ArtifactStore


def not_stored(digest: str) -> str:
    return f"object {digest} is not stored here: upload it (PUT /objects/{digest}) first"


def require_stored(artifacts: ArtifactStore, named: Iterable[tuple[str, str]]) -> None:
    """``named``: (field, digest) pairs, such as ``("objects[3]", "blake3:…")``.

    Raises:
        InvalidInput: naming the first field whose object is not stored, and how many are not.
    """
    listed = list(named)
    absent = artifacts.missing({digest for _, digest in listed})
    if absent:
        field, digest = next((f, d) for f, d in listed if d in absent)
        raise InvalidInput(f"{field}: {not_stored(digest)} ({len(absent)} named are not)")


def check_stored(artifacts: ArtifactStore, entries: Sequence[ArtifactEntry]) -> None:
    """Every entry of a manifest names a stored object, with that object's size.

    Raises:
        InvalidInput: naming the entry's field (``entries[2].size``) and what is stored.
    """
    sizes = artifacts.sizes({entry.digest for entry in entries if entry.digest is not None})
    for index, entry in enumerate(entries):
        stored = sizes.get(entry.digest or "")
        if stored is None:
            raise InvalidInput(f"entries[{index}].digest: {not_stored(str(entry.digest))}")
        if stored != entry.size:
            raise InvalidInput(
                f"entries[{index}].size: {entry.size}, but object {entry.digest} holds "
                f"{stored} bytes"
            )
