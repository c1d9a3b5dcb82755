"""Methods an object keeps, bound to itself, among its own attributes.

scikit-learn's HistGradientBoosting, early stopping on a scorer, patches its own
``_raw_predict`` for a while and restores it by assignment: the fitted model keeps its own
method, bound to itself, in its ``__dict__``. Attribute lookup finds that same method on
the class: the entry holds nothing of the model. skops cannot write it (the method refers
back to the estimator), and pickle writes it as ``getattr(estimator, "_raw_predict")``, a
call the scan refuses. Such entries are left out while a model is saved, and put back.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# What holds no attributes of the model's: text, classes, modules, functions and methods.
_LEAVES = (str, bytes, type, types.ModuleType, types.FunctionType, types.MethodType,
           types.BuiltinFunctionType)  # fmt: skip


@contextmanager
def without_own_methods(model: Any) -> Iterator[None]:
    """Within the block, no object reachable from ``model`` holds in its ``__dict__`` a
    method bound to itself that its class would give anyway; afterwards, they all do again."""
    removed = [(attributes, name) for attributes, name in _own_methods(model)]
    kept = [attributes.pop(name) for attributes, name in removed]
    try:
        yield
    finally:
        for (attributes, name), method in zip(removed, kept, strict=True):
            attributes[name] = method


def _own_methods(model: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Each (``__dict__``, name) of such an entry, through attributes and containers."""
    pending, seen = [model], set()
    while pending:
        found = pending.pop()
        if id(found) in seen or isinstance(found, _LEAVES):
            continue
        seen.add(id(found))
        if isinstance(found, list | tuple | set | frozenset):
            pending.extend(found)
        elif isinstance(found, dict):
            pending.extend(found.values())
        elif isinstance(getattr(found, "__dict__", None), dict):
            attributes = vars(found)
            yield from ((attributes, n) for n, v in attributes.items() if _own(found, n, v))
            pending.extend(attributes.values())


def _own(holder: Any, name: str, value: Any) -> bool:
    return (
        isinstance(value, types.MethodType)
        and value.__self__ is holder
        and getattr(type(holder), name, None) is value.__func__
    )
