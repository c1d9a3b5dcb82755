"""Scanning a model's files for what loading them would run, before anything loads them.

A pickle imports and calls whatever its opcodes name; a skops file rebuilds the types its
schema names. Each file is read without running it — a pickle opcode by opcode
(``cairn.models.pickle_uses``), a skops file by its schema (``cairn.models.skops_uses``)
— and each global it names is judged, for what loading would do with it, by the rule in
``cairn.models.allowlist``: only exact constructors are called; verified classes of the
allowed libraries may be created and named; everything else is flagged.

For a skops file, skops decides the types it trusts by default (scikit-learn's estimators,
NumPy's and SciPy's ufuncs, containers, arrays); every other type the file names is
judged by the same rule, and those that pass are the ``trusted`` list the loader hands to
``skops.io.load``, which refuses to build anything else. Every type skops would create
with ``__new__`` and its state is judged too, trusted by default or not: what runs then
is the class's own hooks (``cairn.models.restore_hooks``).

A flagged package is registered with its findings, shown with the version, and loads only
with an explicit ``trust=True``. Nothing in a file is run, and nothing outside the allowed
libraries is imported, to scan it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from cairn.errors import InvalidInput, MissingExtra
from cairn.localfs.digest import hash_file
from cairn.models.allowlist import Name, Use, refused
from cairn.models.pickle_uses import walk
from cairn.models.skops_uses import is_skops, read_schema, skops_io

UNREADABLE_SKOPS = "<unreadable skops file>"
# What skops does to a type it trusts by default that runs the class's own hooks.
_ALWAYS_JUDGED = frozenset({Use.CREATE, Use.RESTORE_FROM_VALUE})


def unsafe_imports(path: Path) -> tuple[str, ...]:
    """What loading the pickle or skops file at ``path`` would import and use beyond the
    allow-list, as ``module.name`` (or a ``<reason>`` where it cannot be read), sorted.

    Raises:
        MissingExtra: the file is a skops file, and skops is not installed here.
        InvalidInput: the file is a skops archive that would inflate beyond bounds.
    """
    if is_skops(path):
        return skops_verdict(path)[1]
    with path.open("rb") as stream:
        found = walk(stream)
    return tuple(sorted({*_refused_names(found.uses), *found.unreadable}))


def skops_verdict(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The types of the skops file at ``path`` that skops does not trust by default,
    split into those Cairn trusts (for ``skops.io.load(trusted=…)``) and those it flags.
    A file is judged once per process for its bytes: the scan before a load and the
    load itself ask about the same bytes.

    Raises:
        MissingExtra: skops is not installed here (it is what reads the file).
        InvalidInput: the archive would inflate beyond bounds (``skops_uses.read_schema``).
    """
    return _skops_verdict(hash_file(path), path)


@lru_cache(maxsize=64)
def _skops_verdict(_digest: str, path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        schema = read_schema(path)  # before skops is imported: a bomb costs nothing
        # Asked of the schema alone: which types skops trusts does not depend on an array.
        untrusted = skops_io().get_untrusted_types(data=schema.as_archive())
    except (InvalidInput, MissingExtra):
        raise
    except Exception:  # noqa: BLE001  # whatever a malformed archive raises, it is unreadable
        return (), (UNREADABLE_SKOPS,)
    uses = schema.type_uses()
    judged = ((n, u) for n, u in uses if str(n) in untrusted or u in _ALWAYS_JUDGED)
    flagged = _refused_names(judged)
    flagged |= set(untrusted) - {str(n) for n, _use in uses}  # named where we did not look
    return tuple(t for t in untrusted if t not in flagged), tuple(sorted(flagged))


def _refused_names(uses: Iterable[tuple[Name, Use]]) -> set[str]:
    return {str(name) for name, use in uses if refused(name, use)}
