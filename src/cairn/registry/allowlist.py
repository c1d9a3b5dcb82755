"""What a model file may name, and what loading it may do with each name.

Loading a pickle (or a skops file) imports every global the file names and does one of
four things with it, which the readers of both formats report as a ``Use``:

- **call** it with arguments the file chose (pickle's REDUCE, INST and OBJ; a skops
  ``ReduceNode``; the reconstructors below that call one of their arguments): the
  callee's ``__init__`` or body runs on the file's data. Only the exact names in
  ``CONSTRUCTORS`` may be called — functions and classes that only build a value from
  plain data. ``pandas.core.computation.expr.Expr`` is a class of an allowed library, and
  calling it evaluates Python: being a class is not enough to be called.
- **create** an instance with ``cls.__new__`` and restore its state (pickle's NEWOBJ then
  BUILD; a skops ``ObjectNode``): the class's ``__new__`` and state methods run, nothing
  else. A verified class (below) may be created if its ``__new__`` and every method pickle
  calls to restore state — ``__setstate__``, ``__setattr__``, ``__setitem__``, ``append``,
  ``extend``, ``add``, ``update`` (and ``__getattr__``, which looks them up) — are C code
  or Python of the allowed libraries; where NEWOBJ hands ``__new__`` the file's arguments,
  no ``__new__`` along the MRO may be Python (C and Cython types take them as data;
  ``numpy.memmap.__new__`` opens the file it is given).
- **name** it as a value (an argument, a dtype an encoder keeps, a class another
  reconstructor receives): an exact name, a verified class, or a ufunc NumPy or SciPy
  exports. A function is never a verified class: an estimator may call a function it
  holds with arguments the file chose.
- **patch** it: BUILD, SETITEMS or APPENDS applied to the global itself sets attributes
  on a library's class or module. Never allowed.

A verified class is resolved without running the file: its module is imported only if it
lies inside the allowed libraries and outside their denied parts, the dotted name is
looked up attribute by attribute, and the object must be a class (``isinstance(obj,
type)``) whose real ``__module__`` is inside the allowed libraries too — a function
re-exported from elsewhere, such as ``lightgbm.basic.NamedTemporaryFile`` (``tempfile``'s),
fails — and whose module and name contain none of the denied words (``eval``, ``exec``,
``compile``, ``parse``, ``pickle``, ``load`` …). Where an allowed library is not
installed, its names cannot be verified and are refused.

To allow another library, add it to ``ALLOWED_LIBRARIES``; to allow another function,
add it to ``CONSTRUCTORS`` with the positions of the arguments it calls or creates.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import types
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple


class Use(enum.Enum):
    NAME = "named"
    CALL = "called"
    CREATE = "created"  # cls.__new__(cls), then its state restored
    CREATE_WITH_ARGS = "created with arguments"  # cls.__new__(cls, *args) with the file's args
    PATCH = "patched"


class Name(NamedTuple):
    """A global as a file names it: the module and the (possibly dotted) name in it."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, slots=True)
class Constructor:
    """A callable that may be called with a file's arguments; ``calls`` and ``creates`` are
    the positions of the arguments it calls, or makes an instance of with ``__new__``
    (handing it the file's other arguments where ``with_args``); ``calls_state``: the
    first item of the state BUILD restores into what it made is called too."""

    calls: tuple[int, ...] = ()
    creates: tuple[int, ...] = ()
    with_args: bool = False
    calls_state: bool = False


_BUILDS = Constructor()
CONSTRUCTORS: dict[str, Constructor] = {
    # Builtins and the standard library's value types: each builds a value from its arguments.
    **{f"builtins.{n}": _BUILDS for n in (
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "object", "range", "set", "slice", "str", "tuple")},
    "_codecs.encode": _BUILDS,  # bytes in protocols 0-2 (an encoding is a stdlib codec)
    "collections.OrderedDict": _BUILDS,
    "collections.defaultdict": Constructor(calls=(0,)),  # calls its factory on a miss
    **{f"datetime.{n}": _BUILDS for n in ("date", "datetime", "time", "timedelta", "timezone")},
    "decimal.Decimal": _BUILDS,
    # A partial calls its function (given, and restored by BUILD) with the file's arguments.
    "functools.partial": Constructor(calls=(0,), calls_state=True),
    # copyreg's reconstructors: __newobj__(cls, *args) is cls.__new__(cls, *args);
    # _reconstructor(cls, base, state) makes a cls with base.__new__ and calls base.__init__.
    "copyreg.__newobj__": Constructor(creates=(0,), with_args=True),
    "copyreg.__newobj_ex__": Constructor(creates=(0,), with_args=True),
    "copyreg._reconstructor": Constructor(calls=(1,), creates=(0,)),
    # NumPy's arrays, scalars, dtypes and random states.
    **{f"numpy.{core}.{n}": _BUILDS for core in ("core", "_core") for n in (
        "multiarray._reconstruct", "multiarray.scalar", "numeric._frombuffer")},
    "numpy.dtype": _BUILDS,
    "numpy.ndarray": _BUILDS,
    "numpy.random._pickle.__bit_generator_ctor": Constructor(calls=(0,)),
    "numpy.random._pickle.__generator_ctor": Constructor(calls=(1,)),
    "numpy.random._pickle.__randomstate_ctor": Constructor(calls=(1,)),
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": Constructor(creates=(0,)),
    **{f"numpy.random.{n}": _BUILDS for n in (  # bit generators: each takes a seed
        "_mt19937.MT19937", "_pcg64.PCG64", "_pcg64.PCG64DXSM", "_philox.Philox",
        "_sfc64.SFC64")},
    # scikit-learn's Cython types that pickle as a call with their parameters or sizes (a
    # Cython __pyx_unpickle_X(cls, checksum, state) is X.__new__(cls) and its fields set).
    "sklearn.tree._tree.Tree": _BUILDS,
    "sklearn.utils._bunch.Bunch": _BUILDS,  # a dict whose keys are attributes too
    # Validates and converts an array: what HistGradientBoosting's partial calls.
    "sklearn.utils.validation.check_array": _BUILDS,
    # The metrics a fitted scorer holds (TunedThresholdClassifierCV's): each computes a
    # number from arrays.
    **{f"sklearn.metrics._classification.{n}": _BUILDS for n in (
        "accuracy_score", "balanced_accuracy_score", "brier_score_loss", "cohen_kappa_score",
        "f1_score", "fbeta_score", "hamming_loss", "hinge_loss", "jaccard_score", "log_loss",
        "matthews_corrcoef", "precision_score", "recall_score", "zero_one_loss")},
    **{f"sklearn.metrics._ranking.{n}": _BUILDS for n in (
        "average_precision_score", "dcg_score", "ndcg_score", "roc_auc_score",
        "top_k_accuracy_score")},
    **{f"sklearn.metrics._regression.{n}": _BUILDS for n in (
        "d2_absolute_error_score", "d2_pinball_score", "d2_tweedie_score",
        "explained_variance_score", "max_error", "mean_absolute_error",
        "mean_absolute_percentage_error", "mean_gamma_deviance", "mean_pinball_loss",
        "mean_poisson_deviance", "mean_squared_error", "mean_squared_log_error",
        "mean_tweedie_deviance", "median_absolute_error", "r2_score", "root_mean_squared_error",
        "root_mean_squared_log_error")},
    **{f"sklearn._loss._loss.Cy{n}": _BUILDS for n in (
        "AbsoluteError", "ExponentialLoss", "HalfBinomialLoss", "HalfGammaLoss",
        "HalfMultinomialLoss", "HalfPoissonLoss", "HalfSquaredError", "HalfTweedieLoss",
        "HalfTweedieLossIdentity", "HuberLoss", "PinballLoss")},
    "sklearn._loss._loss.__pyx_unpickle_CyHalfMultinomialLoss": Constructor(creates=(0,)),
    **{f"sklearn.linear_model._sgd_fast.{n}": _BUILDS for n in (
        "EpsilonInsensitive", "Hinge", "ModifiedHuber", "SquaredEpsilonInsensitive",
        "SquaredHinge")},
    **{f"sklearn.neighbors._{kind}.newObj": Constructor(creates=(0,)) for kind in (
        "ball_tree", "kd_tree")},
    "sklearn.metrics._dist_metrics.newObj": Constructor(creates=(0,)),
}  # fmt: skip

# The libraries whose classes a model file may name (their tops, and what is inside).
ALLOWED_LIBRARIES = (
    "sklearn", "numpy", "scipy", "pandas", "xgboost", "lightgbm",
    "collections", "datetime", "decimal", "uuid", "fractions",
)  # fmt: skip
# Words that mark the parts of those libraries that read files, run or compile code, or
# unpickle: a module or class whose path has a word starting with one is never verified
# (words split at dots, underscores and capitals: ``computation``, ``Expr``, ``_npyio``).
DENIED_WORDS = (
    "eval", "exec", "compile", "parse", "pickle", "load", "expr", "computation", "memmap",
    "datasource", "npyio", "f2py", "ctypes", "testing", "tests", "conftest", "distutils",
    "plotting", "clipboard", "subprocess", "tempfile", "shutil",
)  # fmt: skip
DENIED_COMPONENTS = frozenset({"io", "os", "sys"})  # whole words only
_WORD = re.compile(r"[._]+|(?<=[a-z0-9])(?=[A-Z])")
# Where each library exports its ufuncs (a ufunc named elsewhere is not verified).
_UFUNC_HOMES = {"numpy": "numpy", "scipy": "scipy.special"}
# What pickle calls on an instance to restore its state (and looks the calls up with).
_STATE_METHODS = ("__setstate__", "__setattr__", "__setitem__", "append", "extend", "add",
                  "update", "__getattr__", "__getattribute__")  # fmt: skip


def refused(name: Name, use: Use) -> bool:
    """Whether a file may not do ``use`` with the global ``name``."""
    if use is Use.PATCH:
        return True
    if str(name) in CONSTRUCTORS:
        return False
    if use is Use.CALL:
        return True
    if use is Use.NAME and _verified_ufunc(name):
        return False
    found = verified_class(name)
    if found is None or use is Use.NAME:
        return found is None
    return not _creates_safely(found, with_args=use is Use.CREATE_WITH_ARGS)


def verified_class(name: Name) -> type | None:
    """The class ``name`` resolves to, if it is a class of an allowed library outside the
    denied parts; None otherwise (nothing outside the allowed libraries is imported)."""
    found = _resolved(name.module, name.name)
    if not isinstance(found, type):
        return None
    real = f"{found.__module__}.{found.__qualname__}"
    return found if _allowed_path(found.__module__) and _allowed_path(real) else None


def _verified_ufunc(name: Name) -> bool:
    """A NumPy or SciPy ufunc, as the library exports it: element-wise arithmetic (as
    skops trusts them), not a ufunc ``numpy.frompyfunc`` made around any function."""
    found = _resolved(name.module, name.name)
    home = _UFUNC_HOMES.get(name.module.split(".")[0])
    if home is None or type(found).__name__ != "ufunc":
        return False
    return getattr(_imported(home), getattr(found, "__name__", ""), None) is found


def _creates_safely(cls: type, with_args: bool) -> bool:
    """``__new__`` is the library's (and C code, where the file's arguments reach it), and
    so is every method that restores state."""
    if with_args and any(_in_python(vars(c).get("__new__")) for c in cls.__mro__):
        return False
    return all(_library_code(cls, m) for m in ("__new__", *_STATE_METHODS))


def _in_python(method: Any) -> bool:
    return isinstance(getattr(method, "__func__", method), types.FunctionType)


def _library_code(cls: type, method: str) -> bool:
    """Whether ``method`` of ``cls`` is C code, or Python of the allowed libraries: the
    class that defines it, and the function it is, both inside them."""
    owner = next((c for c in cls.__mro__ if method in vars(c)), None)
    if owner is None or owner.__module__ == "builtins":
        return True  # absent, or object's, dict's, list's …
    raw = vars(owner)[method]
    function = inspect.unwrap(getattr(raw, "__func__", None) or getattr(raw, "fget", None) or raw)
    if not _allowed_path(f"{owner.__module__}.{owner.__qualname__}"):
        return False
    if not isinstance(function, types.FunctionType):
        return True  # C or Cython code of the class
    return _allowed_path(f"{function.__module__}.{function.__qualname__}")


@lru_cache(maxsize=4096)  # a file chooses the names: the cache stays bounded
def _resolved(module: str, name: str) -> Any:
    found = _imported(module)
    if found is None:
        return None
    try:
        for part in name.split("."):
            found = getattr(found, part)
    except Exception:  # noqa: BLE001  # a name that does not resolve here is not verified
        return None
    return found


@lru_cache(maxsize=1024)
def _imported(module: str) -> Any:
    """The module, imported only if it lies inside the allowed libraries; else None."""
    if not _allowed_path(module):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated aliases (numpy.core) still resolve
            return importlib.import_module(module)
    except Exception:  # noqa: BLE001  # not installed, or failing to import: not verified
        return None


def _allowed_path(dotted: str) -> bool:
    if dotted.split(".")[0] not in ALLOWED_LIBRARIES:
        return False
    words = [w.lower() for w in _WORD.split(dotted) if w]
    return not any(w in DENIED_COMPONENTS or w.startswith(DENIED_WORDS) for w in words)
