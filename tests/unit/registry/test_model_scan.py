"""The scan's rule: what loading would do with each global decides whether it passes.
scikit-learn's own models pass, in every pickle protocol; what would call, patch or
create something outside the rule does not."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cairn.registry.scan import unsafe_imports

X = np.random.default_rng(0).normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


def _legitimate() -> dict[str, Any]:
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
    from sklearn.gaussian_process import GaussianProcessClassifier
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
    """``numpy.matrix.__new__`` is Python: NEWOBJ's arguments would be its input."""
    matrix = _global("numpy", "matrix")
    assert _scanned(tmp_path, matrix + b")\x81") == ()
    assert _scanned(tmp_path, matrix + b"(J\x01\x00\x00\x00t\x81") == ("numpy.matrix",)


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
