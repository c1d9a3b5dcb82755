"""What a model file may name, and what loading it may do with each name.

Loading a pickle (or a skops file) imports every global the file names and does one of
these things with it, which the readers of both formats report as a ``Use``:

- **call** it with arguments the file chose (pickle's REDUCE, INST and OBJ; a skops
  ``ReduceNode``; the reconstructors below that call one of their arguments): the
  callee's ``__init__`` or body runs on the file's data. Only the exact names in
  ``CONSTRUCTORS`` may be called — functions and classes that only build a value from
  plain data. ``pandas.core.computation.expr.Expr`` is a class of an allowed library, and
  calling it evaluates Python: being a class is not enough to be called.
- **create** an instance with ``cls.__new__`` and restore its state (pickle's NEWOBJ then
  BUILD; a skops ``ObjectNode``), or apply BUILD's slot state, APPENDS, SETITEMS or
  ADDITEMS to one: only its class's hooks run, and every hook each of these runs must be
  C code or on the audited list (``cairn.models.restore_hooks``); where NEWOBJ hands
  ``__new__`` the file's arguments, no ``__new__`` along the MRO may be Python.
- **name** it as a value (an argument, a dtype an encoder keeps, a class another
  reconstructor receives): an exact name, a verified class, or a ufunc NumPy or SciPy
  exports. A function off the exact list is never named: an estimator may call a
  function it holds with arguments the file chose.
- **patch** it: BUILD, SETITEMS or APPENDS applied to the global itself sets attributes
  on a library's class or module. Never allowed.

A verified class is resolved without running the file: its module is imported only if it
lies inside the allowed libraries and outside their denied parts, the dotted name is
looked up attribute by attribute, and the object must be a class (``isinstance(obj,
type)``) whose real ``__module__`` is inside the allowed libraries too — a function
re-exported from elsewhere, such as ``lightgbm.basic.NamedTemporaryFile`` (``tempfile``'s),
fails — and whose module and name contain none of the denied words (``eval``, ``exec``,
``compile``, ``parse``, ``pickle``, ``load`` …). Where an allowed library is not
installed, its names cannot be verified and are refused. A class on the exact list is
judged by the same hooks when it is created.

To allow another library, add it to ``ALLOWED_LIBRARIES``; to allow another function,
add it to ``CONSTRUCTORS`` with the positions of the arguments it calls or creates; to
allow another Python hook, read it and add it to ``restore_hooks.AUDITED``.
"""

from __future__ import annotations

import enum
import importlib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from cairn.models import restore_hooks


class Use(enum.Enum):
    NAME = "named"
    CALL = "called"
    CREATE = "created"  # cls.__new__(cls), then its state restored from a dict
    CREATE_WITH_ARGS = "created with arguments"  # cls.__new__(cls, *args) with the file's args
    RESTORE_FROM_VALUE = "restored from a value that is not a dict"
    SET_ATTRIBUTES = "given attributes by setattr"  # BUILD's slot state
    APPENDED = "appended to"
    ITEMS_SET = "given items"
    ADDED_TO = "added to"
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
    first item of the state BUILD restores into what it made is called too; ``makes``: the
    position of the class whose instance it returns, where not its own (or what it
    creates)."""

    calls: tuple[int, ...] = ()
    creates: tuple[int, ...] = ()
    with_args: bool = False
    calls_state: bool = False
    makes: int | None = None

    @property
    def instance_of(self) -> int | None:
        """The position of the argument whose instance a call returns; None: the callee's."""
        return self.makes if self.makes is not None else next(iter(self.creates), None)


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
        "multiarray.scalar", "numeric._frombuffer")},
    # _reconstruct(subtype, shape, dtype) makes an empty array of the subtype, which BUILD
    # then restores: the subtype is created.
    **{f"numpy.{core}.multiarray._reconstruct": Constructor(creates=(0,))
       for core in ("core", "_core")},
    "numpy.dtype": _BUILDS,
    "numpy.ndarray": _BUILDS,
    "numpy.random._pickle.__bit_generator_ctor": Constructor(calls=(0,), makes=0),
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
    # The functions fitted estimators hold, each computing arrays or numbers from arrays:
    # univariate selectors' score functions, BisectingKMeans' k-means step,
    # FeatureAgglomeration's pooling, the array conversion SciPy's B-splines keep.
    **{f"sklearn.feature_selection._univariate_selection.{n}": _BUILDS for n in (
        "chi2", "f_classif", "f_oneway", "f_regression", "r_regression")},
    **{f"sklearn.feature_selection._mutual_info.{n}": _BUILDS for n in (
        "mutual_info_classif", "mutual_info_regression")},
    **{f"sklearn.cluster._kmeans.{n}": _BUILDS for n in (
        "_kmeans_single_elkan", "_kmeans_single_lloyd")},
    "numpy.mean": _BUILDS,
    "scipy._lib.array_api_compat.numpy._aliases.asarray": _BUILDS,
    # The metrics a fitted scorer holds (every scorer scikit-learn names by a string): each
    # computes a number from arrays.
    **{f"sklearn.metrics._classification.{n}": _BUILDS for n in (
        "accuracy_score", "balanced_accuracy_score", "brier_score_loss", "cohen_kappa_score",
        "d2_brier_score", "d2_log_loss_score", "f1_score", "fbeta_score", "hamming_loss",
        "hinge_loss", "jaccard_score", "log_loss", "matthews_corrcoef", "precision_score",
        "recall_score", "zero_one_loss")},
    **{f"sklearn.metrics._scorer.{n}": _BUILDS for n in (
        "negative_likelihood_ratio", "positive_likelihood_ratio")},
    **{f"sklearn.metrics.cluster._supervised.{n}": _BUILDS for n in (
        "adjusted_mutual_info_score", "adjusted_rand_score", "completeness_score",
        "fowlkes_mallows_score", "homogeneity_score", "mutual_info_score",
        "normalized_mutual_info_score", "rand_score", "v_measure_score")},
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
# What each use of an instance runs of its class, and whether that is C or audited code.
_SAFE_FOR: dict[Use, Callable[[type], bool]] = {
    Use.CREATE: restore_hooks.creates_safely,
    Use.CREATE_WITH_ARGS: lambda cls: (
        restore_hooks.creates_safely(cls) and restore_hooks.takes_arguments_safely(cls)
    ),
    Use.RESTORE_FROM_VALUE: restore_hooks.restores_from_any_value,
    Use.SET_ATTRIBUTES: restore_hooks.sets_attributes_safely,
    Use.APPENDED: restore_hooks.appends_safely,
    Use.ITEMS_SET: restore_hooks.sets_items_safely,
    Use.ADDED_TO: restore_hooks.adds_safely,
}


def refused(name: Name, use: Use) -> bool:
    """Whether a file may not do ``use`` with the global ``name``."""
    if use is Use.PATCH:
        return True
    listed = str(name) in CONSTRUCTORS
    if use is Use.CALL:
        return not listed
    if use is Use.NAME:
        return not (listed or _verified_ufunc(name) or verified_class(name) is not None)
    found = verified_class(name) or _listed_class(name)
    return found is None or not _SAFE_FOR[use](found)


def verified_class(name: Name) -> type | None:
    """The class ``name`` resolves to, if it is a class of an allowed library outside the
    denied parts; None otherwise (nothing outside the allowed libraries is imported)."""
    found = _resolved(name.module, name.name)
    if not isinstance(found, type):
        return None
    real = f"{found.__module__}.{found.__qualname__}"
    return found if _allowed_path(found.__module__) and _allowed_path(real) else None


def _listed_class(name: Name) -> type | None:
    """A class on the exact list (``builtins.list``, ``collections.OrderedDict`` …): what
    it makes may be restored and filled like any instance."""
    if str(name) not in CONSTRUCTORS:
        return None
    try:  # the list's own modules: the standard library's and the allowed libraries'
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated aliases (numpy.core) still resolve
            found = getattr(importlib.import_module(name.module), name.name, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


def _verified_ufunc(name: Name) -> bool:
    """A NumPy or SciPy ufunc, as the library exports it: element-wise arithmetic (as
    skops trusts them), not a ufunc ``numpy.frompyfunc`` made around any function."""
    found = _resolved(name.module, name.name)
    home = _UFUNC_HOMES.get(name.module.split(".")[0])
    if home is None or type(found).__name__ != "ufunc":
        return False
    return getattr(_imported(home), getattr(found, "__name__", ""), None) is found


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
