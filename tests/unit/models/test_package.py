"""Model packages: each flavor saved, verified and loaded back to the same predictions;
tampered files, newer formats and manifests that are not one refused; pickle-based files
scanned."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from cairn.core.model import ModelVersion
from cairn.errors import IntegrityError, InvalidInput, MissingExtra, UntrustedModel
from cairn.models.loaded import LoadedModel
from cairn.models.package import MANIFEST, Package, load_model, read_package, write_package

X = np.random.default_rng(0).normal(size=(40, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def _sklearn() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(X, Y)


def _xgboost() -> Any:
    xgboost = pytest.importorskip("xgboost")
    return xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y)


def _lightgbm() -> Any:
    lightgbm = pytest.importorskip("lightgbm")
    data = lightgbm.Dataset(X, label=Y, params={"verbose": -1})
    return lightgbm.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, data, 5)


class _Converted:
    """An ONNX model converted from scikit-learn, and the estimator it came from."""

    def __init__(self) -> None:
        pytest.importorskip("onnxruntime")
        skl2onnx = pytest.importorskip("skl2onnx")
        from skl2onnx.common.data_types import FloatTensorType

        self.estimator = _sklearn()
        self.model = skl2onnx.convert_sklearn(
            self.estimator, initial_types=[("x", FloatTensorType([None, 4]))],
            options={"zipmap": False},
        )  # fmt: skip


def _onnx() -> Any:
    return _Converted()


def torch_tensor(data: Any) -> Any:
    import torch

    return torch.from_numpy(data)


def _pytorch() -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)
    ).double()


class Doubler:
    """A custom model: predicts twice the first column, plus an offset kept in a file."""

    def __init__(self) -> None:
        self.offset = 0.0

    def load_context(self, files: dict[str, Path]) -> None:
        self.offset = float(files["offset.txt"].read_text())

    def predict(self, data: Any) -> Any:
        return np.asarray(data)[:, 0] * 2 + self.offset


def _written(model: Any, tmp_path: Path, **options: Any) -> Package:
    folder = tmp_path / "package"
    folder.mkdir()
    return write_package(model, folder, input_example=X[:5], **options)


def _loaded(package: Package, trust: bool = False) -> LoadedModel:
    again = read_package(package.folder, package.files)
    flavor, native = load_model(again, trust=trust)
    version = ModelVersion("m", 1, again.digest, flavor.name, again.files, again.manifest,
                           None, (), 0, "t")  # fmt: skip
    return LoadedModel(version, again, flavor, native)


@pytest.mark.parametrize(
    ("make", "flavor", "flagged"),
    [
        (_sklearn, "sklearn", False),  # skops
        (_xgboost, "xgboost", False),
        (_lightgbm, "lightgbm", False),
        (_onnx, "onnx", False),
        (_pytorch, "pytorch", True),  # torch.export.load runs what an archive holds
    ],
)
def test_each_flavor_round_trips_to_the_same_predictions(
    make: Any, flavor: str, flagged: bool, tmp_path: Path
) -> None:
    made = make()
    model = made.model if isinstance(made, _Converted) else made
    package = _written(model, tmp_path)
    assert package.flavor == flavor
    assert package.manifest["pickle"] == []
    assert bool(package.findings) is flagged
    if flagged:
        with pytest.raises(UntrustedModel, match=r"model\.pt2 imports <torch\.export: "):
            _loaded(package)
    loaded = _loaded(package, trust=flagged)
    # What the object in hand predicts (the estimator an ONNX model was converted from).
    if isinstance(made, _Converted):
        expected = made.estimator.predict(X)
    elif flavor == "pytorch":  # a module is called, not asked to predict
        expected = model(torch_tensor(X)).detach().numpy()
    else:
        expected = model.predict(X)
    np.testing.assert_allclose(np.asarray(loaded.predict(X)), np.asarray(expected), rtol=1e-6)
    assert loaded.signature is not None
    assert loaded.signature["inputs"] == {"type": "tensor", "dtype": "float64", "shape": [-1, 4]}
    assert any(r.startswith("numpy==") for r in package.manifest["requirements"])


def test_a_custom_model_carries_its_files_and_is_flagged(tmp_path: Path) -> None:
    offset = tmp_path / "offset.txt"
    offset.write_text("0.5")
    package = _written(Doubler(), tmp_path, files={"offset.txt": offset})
    assert package.flavor == "custom"
    assert [f.path for f in package.files] == [MANIFEST, "files/offset.txt", "model.pkl"]
    assert [f.imports for f in package.findings] == [(f"{__name__}.Doubler",)]
    with pytest.raises(UntrustedModel, match=r"model\.pkl imports .*Doubler"):
        _loaded(package)
    np.testing.assert_allclose(_loaded(package, trust=True).predict(X), X[:, 0] * 2 + 0.5)


def test_a_changed_file_is_refused_by_name(tmp_path: Path) -> None:
    package = _written(_sklearn(), tmp_path)
    (package.folder / "model.skops").write_bytes(b"PK\x05\x06" + bytes(18))
    with pytest.raises(IntegrityError, match=r"model\.skops does not match the digest"):
        read_package(package.folder, package.files)
    (package.folder / "model.skops").unlink()
    with pytest.raises(IntegrityError, match=r"model\.skops is missing"):
        read_package(package.folder, package.files)


def test_a_package_in_a_newer_format_is_refused(tmp_path: Path) -> None:
    package = _written(_sklearn(), tmp_path)
    manifest = yaml.safe_load((package.folder / MANIFEST).read_text())
    (package.folder / MANIFEST).write_text(yaml.safe_dump({**manifest, "format": 99}))
    newer = [f for f in package.files if f.path != MANIFEST]
    with pytest.raises(InvalidInput, match=r"format 99 .* pip install -U cairn-mlops"):
        read_package(package.folder, tuple(newer))


def test_an_object_of_no_flavor_lists_the_flavors_and_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no known flavor .*sklearn.*custom.*predict"):
        _written(object(), tmp_path)


def test_an_example_the_model_cannot_take_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    with pytest.raises(InvalidInput, match="input_example does not fit the model"):
        write_package(_sklearn(), folder, input_example=np.zeros((2, 7)))


def test_predict_checks_the_input_against_the_signature(tmp_path: Path) -> None:
    loaded = _loaded(_written(_sklearn(), tmp_path))
    with pytest.raises(InvalidInput, match=r"shape \[-1, 3\], expected \[-1, 4\]"):
        loaded.predict(np.zeros((2, 3)))
    with pytest.raises(InvalidInput, match="dtype"):
        loaded.predict(np.array([["a", "b", "c", "d"]]))


class Payload:
    """Unpickling this runs a command: what a malicious model file does."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> Any:
        import os

        return (os.system, (f"touch {self.canary}",))


def test_a_malicious_pickle_is_flagged_without_running_it(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    package = _written(_sklearn(), tmp_path)
    (package.folder / "model.pkl").write_bytes(pickle.dumps(Payload(canary)))
    from cairn.models.scan import unsafe_imports

    found = unsafe_imports(package.folder / "model.pkl")
    assert found in (("os.system",), ("posix.system",))
    assert not canary.exists()


def test_a_model_that_cannot_be_pickled_says_why(tmp_path: Path) -> None:
    class Local:
        def predict(self, data: Any) -> Any:
            return data

    with pytest.raises(InvalidInput, match=r"Local cannot be pickled .*top level of a module"):
        _written(Local(), tmp_path)


def test_a_manifest_that_hides_a_pickle_is_scanned_anyway(tmp_path: Path) -> None:
    package = _written(_sklearn(), tmp_path)
    (package.folder / "model.pkl").write_bytes(pickle.dumps(Payload(tmp_path / "canary")))
    manifest = yaml.safe_load((package.folder / MANIFEST).read_text())
    manifest["pickle"] = []  # a forged manifest: "nothing here is a pickle"
    from cairn.models.flavors import Saved
    from cairn.models.package import package_from_files, scan_package

    forged = package_from_files(package.folder, "sklearn", Saved(("model.pkl",)), [])
    assert forged.manifest["pickle"] == []
    [finding] = scan_package(forged)
    assert finding.path == "model.pkl"
    assert not (tmp_path / "canary").exists()


def test_a_function_that_writes_files_is_outside_the_allow_list(tmp_path: Path) -> None:
    from cairn.models.scan import unsafe_imports

    class Writes:
        def __reduce__(self) -> Any:
            return (np.savetxt, (str(tmp_path / "written"), np.array(["echo hi"]), "%s"))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Writes()))
    assert unsafe_imports(path) == ("numpy.savetxt",)
    assert not (tmp_path / "written").exists()


def test_a_manifest_path_out_of_the_package_is_refused(tmp_path: Path) -> None:
    from cairn.models.stored import get_package
    from cairn.stores.artifacts.fsspec import FsspecArtifactStore

    store = FsspecArtifactStore(str(tmp_path / "objects"))
    payload = tmp_path / "payload"
    payload.write_bytes(b"x")
    stored = store.put_file(payload)
    document = {"format": 1, "flavor": {"name": "sklearn"}, "pickle": [],
                "files": {"../../escaped": {"digest": stored.digest, "size": 1}}}  # fmt: skip
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(document))
    digest = store.put_file(manifest).digest
    (tmp_path / "fetch" / "here").mkdir(parents=True)
    with pytest.raises(InvalidInput, match=r"'\.\./\.\./escaped'\]: expected a relative path"):
        get_package(store, digest, tmp_path / "fetch" / "here")
    assert not (tmp_path / "escaped").exists()


def test_lightgbms_scikit_learn_wrapper_is_stored_with_skops_and_loads_without_trust(
    tmp_path: Path,
) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    model = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, Y)
    package = _written(model, tmp_path)
    assert (package.flavor, package.manifest["flavor"]["format"]) == ("lightgbm", "skops")
    assert (package.manifest["pickle"], package.findings) == ([], ())
    np.testing.assert_array_equal(_loaded(package).predict(X), model.predict(X))


def test_a_package_written_before_skops_loads_from_its_pickle(tmp_path: Path) -> None:
    """A scikit-learn package of an earlier Cairn: ``model.pkl``, a manifest naming no
    format. It still loads, its pickle scanned."""
    from cairn.models.flavors import Saved
    from cairn.models.package import package_from_files

    model = _sklearn()
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    package = package_from_files(folder, "sklearn", Saved(("model.pkl",), ("model.pkl",)), [])
    assert "format" not in package.manifest["flavor"]
    np.testing.assert_array_equal(_loaded(package).predict(X), model.predict(X))


def test_what_skops_cannot_persist_is_pickled_and_scanned(tmp_path: Path) -> None:
    model = _sklearn()
    model.calibration = complex(1, 2)  # skops writes no complex number
    package = _written(model, tmp_path)
    assert (package.manifest["flavor"]["format"], package.manifest["pickle"]) == (
        "pickle",
        ["model.pkl"],
    )
    assert package.findings == ()  # builtins.complex only builds a number
    assert _loaded(package).native.calibration == complex(1, 2)


def test_a_skops_model_without_skops_installed_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    package = _written(_sklearn(), tmp_path)
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(
        MissingExtra, match=r"stored with skops: pip install 'cairn-mlops\[sklearn\]'"
    ):
        _loaded(package)


def test_without_skops_an_estimator_is_pickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "skops", None)  # import skops raises ImportError
    monkeypatch.setitem(sys.modules, "skops.io", None)
    package = _written(_sklearn(), tmp_path)
    assert (package.manifest["flavor"]["format"], package.findings) == ("pickle", ())
    np.testing.assert_array_equal(_loaded(package).predict(X), _sklearn().predict(X))


def test_the_same_model_is_the_same_package_whenever_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """skops stamps write times and memory addresses into its files: the package's digest
    must depend on the model alone, or a reproduced pipeline's model always "differs"."""
    import copy
    import time

    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encoded = make_pipeline(OneHotEncoder(handle_unknown="ignore"), KNeighborsClassifier(3))
    model = encoded.fit(X.round(), Y)  # keeps a sparse matrix: a zip inside the zip
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = _written(model, tmp_path / "first")
    an_hour_later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: an_hour_later)
    second = _written(copy.deepcopy(model), tmp_path / "second")  # other objects, other ids
    assert first.manifest["flavor"]["format"] == "skops"
    assert first.digest == second.digest


def test_a_method_an_estimator_keeps_bound_to_itself_is_left_out_and_put_back(
    tmp_path: Path,
) -> None:
    """HistGradientBoosting, early stopping on a scorer, keeps its own ``_raw_predict`` in
    its ``__dict__``: skops could not write it, and pickle would write it as a ``getattr``
    call the scan refuses. Saved without it, the model loads unflagged; the object in hand
    is as it was."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=3, early_stopping=True, scoring="accuracy")
    model.fit(np.vstack([X] * 3), np.concatenate([Y] * 3))
    kept = vars(model)["_raw_predict"]
    package = _written(model, tmp_path)
    assert (package.manifest["flavor"]["format"], package.findings) == ("skops", ())
    assert vars(model)["_raw_predict"] is kept
    np.testing.assert_array_equal(_loaded(package).predict(X), model.predict(X))


def test_a_search_over_scipy_distributions_is_flagged_and_its_best_estimator_is_not(
    tmp_path: Path,
) -> None:
    """A fitted RandomizedSearchCV keeps its scipy.stats distributions, whose
    ``__setstate__`` execs a template of their state: flagged. Log ``best_estimator_``."""
    from scipy.stats import loguniform
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RandomizedSearchCV

    space = {"C": loguniform(1e-2, 1e2)}
    search = RandomizedSearchCV(LogisticRegression(), space, n_iter=2, cv=2, random_state=0)
    search.fit(X, Y)
    [finding] = _written(search, tmp_path).findings
    assert finding.imports == ("scipy.stats._continuous_distns.reciprocal_gen",)
    (tmp_path / "best").mkdir()
    assert _written(search.best_estimator_, tmp_path / "best").findings == ()


def test_a_function_transformer_of_a_function_off_the_list_stays_flagged(tmp_path: Path) -> None:
    """An estimator calls the function it holds with arguments the file chose: only
    ufuncs and the exact list pass (numpy.clip is neither)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    clipped = FunctionTransformer(np.clip, kw_args={"a_min": -1, "a_max": 1})
    model = make_pipeline(clipped, LogisticRegression()).fit(X, Y)
    [finding] = _written(model, tmp_path).findings
    assert finding.imports == ("numpy.clip",)


def _garbage(folder: Path, name: str) -> Path:
    folder.mkdir()
    (folder / name).write_bytes(b"not a model\x00\xff")
    return folder


@pytest.mark.parametrize(
    ("library", "flavor", "file", "details"),
    [
        ("xgboost", "xgboost", "model.json", {"class": "XGBClassifier"}),
        ("lightgbm", "lightgbm", "model.txt", {"format": "text"}),
        ("onnxruntime", "onnx", "model.onnx", {}),
        ("torch", "pytorch", "model.pt2", {}),
    ],
)
def test_a_file_its_library_cannot_load_is_invalid_input_naming_it(
    library: str, flavor: str, file: str, details: dict[str, Any], tmp_path: Path
) -> None:
    """Each library raises its own errors (torch a RuntimeError, ONNX Runtime its pybind11
    classes): a trusted load of bytes that are no such model says so, as Cairn's error."""
    from cairn.models.flavors import named

    pytest.importorskip(library)
    folder = _garbage(tmp_path / "package", file)
    with pytest.raises(InvalidInput, match=rf"^{file}: .* cannot load it \("):
        named(flavor).load(folder, details, trust=True)
