"""The scan's rule: what loading would do with each global decides whether it passes.
scikit-learn's own models pass, in every pickle protocol; what would call, patch or
create something outside the rule does not — nor what would run a class's own Python
hooks (``cairn.models.restore_hooks``) that are not on the audited list."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cairn.models.scan import unsafe_imports

X = np.random.default_rng(0).normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


def _legitimate() -> dict[str, Any]:
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        StackingClassifier,
    )
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    table = pd.DataFrame({"x": X[:, 0], "kind": pd.Categorical(np.where(Y, "a", "b"))})
    return {
        "HistGradientBoosting (its _BinMapper)": HistGradientBoostingClassifier(max_iter=3),
        "OneHotEncoder of the default dtype (numpy.float64)": make_pipeline(
            OneHotEncoder(handle_unknown="ignore"), StandardScaler(with_mean=False)
        ),
        "GradientBoosting (Cython losses, a random state)": GradientBoostingClassifier(
            n_estimators=3
        ),
        "GaussianProcess (a bit generator)": GaussianProcessClassifier(),
        "HistGradientBoosting on categories (a partial of check_array)": (
            HistGradientBoostingClassifier(max_iter=3),
            table,
        ),
        "GaussianProcess (kernels: Python __eq__, a property setter)": GaussianProcessClassifier(),
        "IsotonicRegression (its __setstate__ rebuilds a function)": (
            IsotonicRegression(),
            X[:, 0],
        ),
        "KNeighbors (a KD tree's C __setstate__ of a tuple)": KNeighborsClassifier(3),
        "Stacking (a Bunch)": StackingClassifier([("lr", LogisticRegression())], cv=2),
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_scikit_learns_models_pass_in_every_protocol(protocol: int, tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    for name, made in _legitimate().items():
        model, features = made if isinstance(made, tuple) else (made, X.round())
        path.write_bytes(pickle.dumps(model.fit(features, Y), protocol=protocol))
        assert unsafe_imports(path) == (), name


def test_a_cloudpickled_pipeline_passes(tmp_path: Path) -> None:
    """What MLflow writes by default."""
    cloudpickle = pytest.importorskip("cloudpickle")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    path = tmp_path / "model.pkl"
    path.write_bytes(
        cloudpickle.dumps(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y))
    )
    assert unsafe_imports(path) == ()


def _text(value: str) -> bytes:
    return b"X" + struct.pack("<I", len(value)) + value.encode()


def _global(module: str, name: str) -> bytes:
    return _text(module) + _text(name) + b"\x93"


def _scanned(tmp_path: Path, body: bytes) -> tuple[str, ...]:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x05" + body + b".")
    return unsafe_imports(path)


def test_a_class_set_up_by_build_is_refused_whatever_it_is_given(tmp_path: Path) -> None:
    """BUILD applied to a library's class sets its attributes in the loading process."""
    patch = _global("sklearn._loss.link", "IdentityLink") + b"(N}" + _text("inverse")
    patch += _global("numpy", "ndarray") + b"stb"  # a verified class, as the new value
    assert _scanned(tmp_path, patch) == ("sklearn._loss.link.IdentityLink",)


def test_a_class_called_with_the_files_arguments_must_be_on_the_exact_list(
    tmp_path: Path,
) -> None:
    """Being a class of an allowed library is enough to be created, not to be called."""
    estimator = _global("sklearn.linear_model._logistic", "LogisticRegression")
    assert _scanned(tmp_path, estimator + b")\x81") == ()  # created: cls.__new__(cls)
    assert _scanned(tmp_path, estimator + b")R") == (
        "sklearn.linear_model._logistic.LogisticRegression",
    )


def test_arguments_reach_a_python_new_only_on_the_exact_list(tmp_path: Path) -> None:
    """scikit-learn's deprecation wrapper of ``__new__`` is audited for no arguments: NEWOBJ
    with the file's arguments would hand them to Python code."""
    deprecated = _global("sklearn.linear_model._passive_aggressive", "PassiveAggressiveClassifier")
    assert _scanned(tmp_path, deprecated + b")\x81") == ()
    assert _scanned(tmp_path, deprecated + b"(J\x01\x00\x00\x00t\x81") == (
        "sklearn.linear_model._passive_aggressive.PassiveAggressiveClassifier",
    )


def _built(cls: bytes, state: bytes) -> bytes:
    """NEWOBJ of ``cls`` without arguments, then BUILD with ``state``."""
    return cls + b")\x81" + state + b"b"


def _mapping(values: dict[str, bytes]) -> bytes:
    return b"}(" + b"".join(_text(k) + v for k, v in values.items()) + b"u"


def test_a_library_class_whose_state_method_is_unaudited_python_is_refused(
    tmp_path: Path,
) -> None:
    """scipy's distributions ``exec`` a template their state holds: a library's own code is
    not safe on a file's data. Their ``__setstate__`` is Python and not audited."""
    template = _mapping({"_parse_arg_template": _text("pass")})
    norm = _global("scipy.stats._continuous_distns", "norm_gen")
    refused = ("scipy.stats._continuous_distns.norm_gen",)
    assert _scanned(tmp_path, _built(norm, template)) == refused
    # Created alone, with no state to restore, it is refused all the same: its __setstate__
    # is what any BUILD would run.
    assert _scanned(tmp_path, norm + b")\x81") == refused


def test_a_slot_state_is_refused_where_setattr_runs_a_property_setter(tmp_path: Path) -> None:
    """BUILD's second state is set with ``setattr``: on a kernel, ``theta`` is a property
    whose Python setter runs (the load below proves it); its dict state is fine."""
    from sklearn.gaussian_process.kernels import RBF

    def number(value: float) -> bytes:
        return b"G" + struct.pack(">d", value)

    rbf = _global("sklearn.gaussian_process.kernels", "RBF")
    bounds = number(1e-5) + number(1e5) + b"\x86"
    dict_state = _mapping({"length_scale": number(2.0), "length_scale_bounds": bounds})
    slot_state = dict_state + _mapping({"theta": b"]" + number(0.0) + b"a"}) + b"\x86"
    assert _scanned(tmp_path, _built(rbf, dict_state)) == ()
    assert _scanned(tmp_path, _built(rbf, slot_state)) == ("sklearn.gaussian_process.kernels.RBF",)
    loaded = pickle.loads(b"\x80\x05" + _built(rbf, slot_state) + b".")  # noqa: S301
    assert isinstance(loaded, RBF)
    assert loaded.length_scale == 1.0  # exp(theta): the setter ran, over the dict's 2.0


def test_a_python_set_state_is_handed_only_a_dict(tmp_path: Path) -> None:
    """The audits of Python ``__setstate__`` methods assume a dict; a C one (an array's, a
    dtype's) takes the tuple pickle gives it."""
    estimator = _global("sklearn.linear_model._logistic", "LogisticRegression")
    assert _scanned(tmp_path, _built(estimator, _mapping({"C": b"K\x01"}))) == ()
    assert _scanned(tmp_path, _built(estimator, b"]" + _text("C") + b"a")) == (
        "sklearn.linear_model._logistic.LogisticRegression",
    )


def test_an_array_subclass_made_by_reconstruct_is_judged_as_created(tmp_path: Path) -> None:
    """``_reconstruct`` makes an instance of the class it is given, whose ``__setstate__``
    BUILD then calls: a masked array's is Python."""
    reconstruct = _global("numpy._core.multiarray", "_reconstruct")
    shape = b"(K\x00t" + _text("b")
    masked = reconstruct + b"(" + _global("numpy.ma.core", "MaskedArray") + shape + b"tR"
    plain = reconstruct + b"(" + _global("numpy", "ndarray") + shape + b"tR"
    assert _scanned(tmp_path, plain) == ()
    assert _scanned(tmp_path, masked) == ("numpy.ma.core.MaskedArray",)


def test_a_fill_is_refused_where_the_lookup_reaches_a_python_getattr(tmp_path: Path) -> None:
    """SETITEMS on a Bunch sets a dict's items (C); APPENDS looks up ``extend``, which a
    Bunch lacks: its ``__getattr__`` would return the item the file stored as "extend", and
    the unpickler would call it."""
    bunch = _global("sklearn.utils._bunch", "Bunch") + b")\x81"
    items = b"(" + _text("a") + b"K\x01u"
    assert _scanned(tmp_path, bunch + items) == ()
    assert _scanned(tmp_path, bunch + b"(K\x01e") == ("sklearn.utils._bunch.Bunch",)


def test_every_audited_hook_is_python_code_of_an_installed_library() -> None:
    """An entry that no longer names a Python hook (a library changed) is noticed: each
    must be read again when it changes."""
    import importlib

    from cairn.models.restore_hooks import AUDITED, _is_python

    for entry in sorted(AUDITED):
        owner_path, hook = entry.rsplit(".", 1)
        module, _, owner = owner_path.rpartition(".")
        if entry.startswith("lightgbm.") and importlib.util.find_spec("lightgbm") is None:
            continue
        cls = getattr(importlib.import_module(module), owner)
        assert _is_python(vars(cls).get(hook)), entry


def test_every_class_on_the_exact_list_restores_its_state_safely() -> None:
    """What an exact constructor makes is then restored and filled by the file: BUILD,
    SETITEMS, APPENDS. Each class on the list runs only C or audited code for them."""
    from cairn.models.allowlist import CONSTRUCTORS, Name, Use, refused

    for dotted in sorted(CONSTRUCTORS):
        module, _, name = dotted.rpartition(".")
        found = Name(module, name)
        assert not refused(found, Use.CREATE) or not _is_class(module, name), dotted


def _is_class(module: str, name: str) -> bool:
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy.core's deprecated aliases
        return isinstance(getattr(importlib.import_module(module), name, None), type)


def test_a_name_resolving_outside_the_allowed_libraries_is_refused(tmp_path: Path) -> None:
    """``lightgbm.basic.Path`` is ``pathlib.Path``: its real module decides, not the name."""
    assert _scanned(tmp_path, _global("lightgbm.basic", "Path") + b")\x81") == (
        "lightgbm.basic.Path",
    )


def test_a_global_named_by_computed_strings_is_unreadable(tmp_path: Path) -> None:
    computed = _global("builtins", "str") + b"(" + _text("os") + b"tR" + _text("system") + b"\x93"
    assert "<a global named by computed strings>" in _scanned(tmp_path, computed)


def test_a_malformed_pickle_is_unreadable(tmp_path: Path) -> None:
    assert _scanned(tmp_path, b"\xff") == ("<unreadable pickle>",)


def test_every_scorer_scikit_learn_names_holds_a_listed_metric() -> None:
    """A fitted model keeps the scorer its ``scoring`` string names (a search, an early
    stopping): the metric it holds must be on the exact list, or the model is flagged."""
    from sklearn.metrics import get_scorer, get_scorer_names

    from cairn.models.allowlist import CONSTRUCTORS

    held = {getattr(get_scorer(name), "_score_func", None) for name in get_scorer_names()}
    named = {f"{f.__module__}.{f.__qualname__}" for f in held if f is not None}
    assert sorted(named - set(CONSTRUCTORS)) == []
