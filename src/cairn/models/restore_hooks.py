"""What restoring an instance from a model file runs of its class's own code.

Loading makes an instance without calling ``__init__`` — ``cls.__new__(cls)`` for pickle's
NEWOBJ and copyreg's reconstructors, and for a skops ``ObjectNode`` — then restores its
state. What runs then is the class's *hooks*, the methods the interpreter, ``pickle`` and
skops look up on the instance while they do it:

- ``__new__`` makes it; ``__array_finalize__`` runs as NumPy makes an array subclass.
- BUILD and skops look up ``__setstate__`` (through ``__getattribute__``, and through
  ``__getattr__`` when the class has none) and hand it the state; without one, the state
  is written into ``__dict__``. BUILD's second, "slot" state is set with ``setattr``:
  ``__setattr__``, and the setter of any property or other data descriptor of that name.
- APPEND(S) calls ``extend`` or ``append``, SETITEM(S) ``__setitem__``, ADDITEMS ``add``
  (a set's are C), on whatever the file applies them to — a lookup that falls through to
  ``__getattr__`` when the class has no such method.
- An instance used as a dict key or a set member is hashed and compared: ``__hash__``,
  ``__eq__``, ``__ne__``.
- ``__del__`` runs when the instance is collected: after the load, or as soon as a failed
  load drops it.

Nothing else of the class runs: ``__init_subclass__``, ``__set_name__`` and
``__class_getitem__`` run only when a class is made or subscripted, and ``__reduce_ex__``
and ``__getstate__`` only when an object is saved — loading does none of these unless it
*calls* something, which only the exact constructors may be (``cairn.models.allowlist``).

The rule: every definition of each hook along the class's MRO is C code — the default
object protocol, a C or Cython type's own — or a Python function on the audited list
below, read line by line. Being a library's code is not enough: ``scipy.stats``'
distributions run ``exec`` on a string their state holds.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from functools import lru_cache
from typing import Any

# Each Python hook below was read; none evaluates or compiles anything, imports, opens a
# file, or takes a callable from the state to call it. Each may run the libraries' own
# code on the state's values (``len``, ``==``, NumPy conversions, a method of one of
# them) — and where such a method is looked up on a value whose attributes the file set,
# the file may have put a callable there (at most a class or function it may name: see
# docs/security.md). The audits assume what the rule enforces: the state a Python
# ``__setstate__`` is handed is a dict (``Use.RESTORE_FROM_VALUE`` is refused otherwise),
# and the values in it were built by the same rule.
AUDITED = frozenset({
    # Pops "_sklearn_version" from the state and, if it differs from the installed one,
    # warns (formatting the value into the message); then object's __setstate__ (absent:
    # AttributeError) or dict.update of __dict__ with the state.
    "sklearn.base.BaseEstimator.__setstate__",
    # BaseEstimator's, then rebuilds its interpolation: scipy.interpolate.interp1d on the
    # state's X_thresholds_ and y_thresholds_ (arrays), compared "out_of_bounds" to "raise".
    "sklearn.isotonic.IsotonicRegression.__setstate__",
    # Writes the state into __dict__, then casts "nodes" with astype to scikit-learn's
    # record dtype where its dtype differs.
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor.__setstate__",
    # Does nothing (a Bunch's items are restored by SETITEMS, as a dict's).
    "sklearn.utils._bunch.Bunch.__setstate__",
    # Raises AttributeError for every name but "fit_transform" and "fit_predict" (which it
    # composes from the request's own attributes): pickle only ever looks up __setstate__,
    # extend, append and add through it.
    "sklearn.utils._metadata_requests.MetadataRequest.__getattr__",
    # scikit-learn's @deprecated: warns with a message fixed when the class was
    # decorated, then calls the class's original __new__ (object.__new__ for these).
    "sklearn.linear_model._passive_aggressive.PassiveAggressiveClassifier.__new__",
    "sklearn.linear_model._passive_aggressive.PassiveAggressiveRegressor.__new__",
    # Made by @dataclass: compares the fields as a tuple when the other object is of the
    # same class (False otherwise); its __hash__ is None, so it is never a key.
    "sklearn._loss.link.Interval.__eq__",
    # A kernel compared with anything but a kernel of its own type returns False on its
    # first line; two kernels are never compared while loading (__hash__ is None: a kernel
    # is never a key or a member), so get_params, which follows, does not run.
    "sklearn.gaussian_process.kernels.Kernel.__eq__",
    "sklearn.gaussian_process.kernels.CompoundKernel.__eq__",
    "sklearn.gaussian_process.kernels.KernelOperator.__eq__",
    "sklearn.gaussian_process.kernels.Exponentiation.__eq__",
    # Hands the model text in the state to LightGBM's C++ parser
    # (LGBM_BoosterLoadModelFromString, encoding it with str.encode), keeps the handle it
    # returns, and writes the state into __dict__.
    "lightgbm.basic.Booster.__setstate__",
    # Frees the network if the state says one was set up (free_network: a call into
    # LightGBM) and the handle __setstate__ made: the state's own "_handle" is always
    # replaced by a parsed one, or the object never got a __dict__.
    "lightgbm.basic.Booster.__del__",
})  # fmt: skip

_BUILT = ("__new__", "__array_finalize__", "__del__", "__hash__", "__eq__", "__ne__")


def creates_safely(cls: type) -> bool:
    """Whether making an instance of ``cls`` with ``__new__`` and restoring its state from
    a dict runs only C code or audited code."""
    return all(_hook_safe(cls, hook) for hook in _BUILT) and all(
        _lookup_safe(cls, name) for name in ("__setstate__", "__dict__")
    )


def takes_arguments_safely(cls: type) -> bool:
    """Whether ``cls.__new__`` may be handed the file's arguments: no definition of it along
    the MRO is Python (``numpy.memmap.__new__`` opens the file it is given); the audits of
    Python ones assume no arguments."""
    return not any(_is_python(vars(c).get("__new__")) for c in cls.__mro__)


def sets_attributes_safely(cls: type) -> bool:
    """Whether BUILD's slot state — ``setattr`` for each name the file chose — runs only C
    code: a class with ``__setstate__`` is handed the whole state instead."""
    if _defines(cls, "__setstate__"):
        return True
    return _hook_safe(cls, "__setattr__") and not any(
        _python_setter(value) for c in cls.__mro__ for value in vars(c).values()
    )


def restores_from_any_value(cls: type) -> bool:
    """Whether the state may be something other than a dict: it goes whole to a C
    ``__setstate__`` (the audits of Python ones assume a dict; without one, skops merges
    it into ``__dict__``, which calls a value's own ``keys`` and ``__getitem__``)."""
    return _defines(cls, "__setstate__") and not any(
        _is_python(vars(c).get("__setstate__")) for c in cls.__mro__
    )


def appends_safely(cls: type) -> bool:
    """APPEND(S) on an instance: ``extend``, or ``append``, looked up and called."""
    return _lookup_safe(cls, "extend") and _lookup_safe(cls, "append")


def sets_items_safely(cls: type) -> bool:
    """SETITEM(S) on an instance: the type's ``__setitem__``."""
    return _hook_safe(cls, "__setitem__")


def adds_safely(cls: type) -> bool:
    """ADDITEMS on an instance: a set's are added in C; anything else's ``add`` is called."""
    return issubclass(cls, set) or _lookup_safe(cls, "add")


@lru_cache(maxsize=4096)  # classes are few; each is judged once per process
def _hook_safe(cls: type, hook: str) -> bool:
    """Every definition of ``hook`` along the MRO (an audited one may call the next with
    ``super()``) is C code, None, or audited."""
    return all(
        not _is_python(vars(c)[hook]) or f"{c.__module__}.{c.__qualname__}.{hook}" in AUDITED
        for c in cls.__mro__
        if hook in vars(c)
    )


def _lookup_safe(cls: type, name: str) -> bool:
    """Looking ``name`` up on an instance runs only C or audited code: the class's
    ``__getattribute__``, then what it finds, or ``__getattr__`` where it finds nothing."""
    found = name if _defines(cls, name) else "__getattr__"
    return _hook_safe(cls, "__getattribute__") and _hook_safe(cls, found)


def _defines(cls: type, name: str) -> bool:
    return any(name in vars(c) for c in cls.__mro__)


def _is_python(value: Any) -> bool:
    """Whether calling or looking up ``value`` (a class attribute) runs Python code: a
    function (wrapped as a static or class method or not), a class, a property, a partial,
    or an object whose type defines ``__get__``, ``__set__`` or ``__call__`` in Python."""
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if isinstance(value, type | types.FunctionType | property | functools.partial):
        return True  # a class called runs its own __new__ and __init__
    return any(_python_method(type(value), m) for m in ("__get__", "__set__", "__call__"))


def _python_setter(value: Any) -> bool:
    """A data descriptor whose setter is Python: a property with ``fset``, or a descriptor
    type with a Python ``__set__``."""
    if isinstance(value, property):
        return value.fset is not None
    return _python_method(type(value), "__set__")


def _python_method(kind: type, name: str) -> bool:
    method: Callable[..., Any] | None = getattr(kind, name, None)
    return isinstance(method, types.FunctionType)
