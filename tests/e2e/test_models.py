"""The model registry end to end, embedded: a model logged from a run, registered with
its package, aliased, loaded in a fresh process to the same predictions; tampered and
flagged packages refused."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

import cairn
from cairn.errors import IntegrityError, InvalidInput, NotFound, UntrustedModel

X, Y = load_breast_cancer(return_X_y=True)


def _trained(seed: int = 0) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=10, max_depth=4, random_state=seed).fit(X, Y)


def _predicted_elsewhere(ref: str, trust: bool = False) -> list[Any]:
    """What the model predicts when a new Python process loads it."""
    script = (
        "import json, sys, numpy as np, cairn\n"
        f"model = cairn.models.load({ref!r}, trust={trust})\n"
        "rows = np.asarray(json.load(sys.stdin))\n"
        "print(json.dumps(np.asarray(model.predict(rows)).tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(X[:50].tolist()), capture_output=True,
        text=True, env=os.environ.copy(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_a_logged_model_is_registered_aliased_and_loaded_in_a_fresh_process() -> None:
    first, second = _trained(0), _trained(1)
    with cairn.start_run(experiment="churn") as run:
        v1 = run.log_model(first, name="churn", input_example=X[:5])
        v2 = run.log_model(second, name="churn", description="more trees")
    assert (v1.ref, v2.ref, v1.flavor) == ("churn/1", "churn/2", "sklearn")
    assert v1.run_id == run.id
    assert v1.manifest["signature"]["inputs"] == {
        "type": "tensor", "dtype": "float64", "shape": [-1, 30]
    }  # fmt: skip
    assert "signature" not in v2.manifest  # no example, no signature
    assert v1.findings == ()
    cairn.models.set_alias("churn", "champion", 1)
    assert cairn.models.get_version("churn@champion").aliases == ("champion",)
    assert cairn.models.get_version("churn").version == 2  # the newest
    assert cairn.models.get_version("models:/churn/1").digest == v1.digest
    expected = first.predict(X[:50]).tolist()
    assert _predicted_elsewhere("churn@champion") == expected
    assert _predicted_elsewhere("models:/churn/1") == expected
    listed = cairn.sdk.platform().metadata.list_artifacts(run.id, "models/churn/1")
    assert {e.path for e in listed} == {
        "models/churn/1/cairn-model.yaml",
        "models/churn/1/model.pkl",
    }
    [model] = cairn.models.list_models()
    assert (model.name, model.latest_version, dict(model.aliases)) == ("churn", 2, {"champion": 1})
    assert [v.version for v in cairn.models.list_versions("churn")] == [2, 1]


def test_unknown_models_versions_and_aliases_say_what_exists() -> None:
    with cairn.start_run(experiment="churn") as run:
        run.log_model(_trained(), name="churn")
    with pytest.raises(NotFound, match=r"model 'fraud' not found \(models: churn\)"):
        cairn.models.load("fraud")
    with pytest.raises(NotFound, match=r"no version 7 .*1 to 1"):
        cairn.models.load("churn/7")
    with pytest.raises(NotFound, match=r"no alias 'champion' .*none yet"):
        cairn.models.load("churn@champion")
    with pytest.raises(InvalidInput, match="reserved"):
        cairn.models.set_alias("churn", "latest", 1)
    with pytest.raises(NotFound, match="no version 3"):
        cairn.models.set_alias("churn", "champion", 3)


def test_a_package_file_changed_after_registration_is_refused_by_name(cairn_home: Path) -> None:
    with cairn.start_run(experiment="churn") as run:
        version = run.log_model(_trained(), name="churn")
    cairn.models.load("churn/1")  # fetched into the cache
    cached = cairn_home / "cache" / "models" / version.digest.replace(":", "-") / "model.pkl"
    cached.write_bytes(pickle.dumps(_trained(5)))  # a different model, well-formed
    with pytest.raises(IntegrityError, match=r"model\.pkl does not match the digest"):
        cairn.models.load("churn/1")


class Payload:
    """A model whose unpickling runs a command."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def predict(self, data: Any) -> Any:
        return np.zeros(len(data))

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.canary}",))


def test_a_malicious_pickle_is_flagged_and_does_not_load_without_trust(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    with cairn.start_run(experiment="churn") as run:
        version = run.log_model(Payload(canary), name="evil")
    assert version.flavor == "custom"
    [finding] = version.findings
    assert finding.path == "model.pkl"
    assert any(name.endswith(".system") for name in finding.imports)
    with pytest.raises(UntrustedModel, match=r"evil/1 is flagged: model\.pkl imports .*system"):
        cairn.models.load("evil/1")
    assert not canary.exists()  # registering and refusing ran nothing


def _cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cairn", *args], capture_output=True, text=True, timeout=120,
        env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert (done.returncode == 0) is ok, done.stderr
    return done


def test_models_from_the_command_line() -> None:
    with cairn.start_run(experiment="churn") as run:
        run.log_model(_trained(0), name="churn", input_example=X[:3])
        run.log_model(_trained(1), name="churn")
    assert (
        "churn@champion → churn/1"
        in _cli("models", "alias", "set", "churn", "champion", "1").stdout
    )
    [listed] = json.loads(_cli("models", "list", "--json").stdout)
    assert (listed["name"], listed["latest_version"], listed["aliases"]) == (
        "churn",
        2,
        {"champion": 1},
    )
    versions = json.loads(_cli("models", "versions", "churn", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in versions] == [(2, []), (1, ["champion"])]
    shown = _cli("models", "show", "churn@champion").stdout
    for expected in ("churn/1", "float64 [-1, 30]", "model.pkl (pickle)"):
        assert expected in shown
    assert json.loads(_cli("models", "show", "churn", "--json").stdout)["version"] == 2
    assert "deleted" in _cli("models", "alias", "delete", "churn", "champion").stdout
    missing = _cli("models", "show", "churn@champion", ok=False)
    assert missing.stderr.startswith("error: model 'churn' has no alias 'champion'")
