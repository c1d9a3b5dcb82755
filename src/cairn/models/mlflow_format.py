"""Moving scikit-learn models in and out of MLflow's model format, so MLflow users can
come and go: an MLflow model folder (``MLmodel``, the pickle, ``requirements.txt``)
becomes a Cairn package, and a Cairn package becomes an MLflow model folder that
``mlflow.pyfunc.load_model`` and ``mlflow.sklearn.load_model`` read: MLflow's ``pickle``
format, which every MLflow reads (a model Cairn stores with skops is loaded — scanned,
through the verified package — and pickled for MLflow).

Signatures translate both ways: MLflow's tensor specs are Cairn's tensors; its column
types (``double``, ``long`` …) are NumPy dtype names in Cairn.
"""

from __future__ import annotations

import json
import pickle
import shutil
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn.core.yaml_text import dump_yaml, parse_yaml
from cairn.errors import InvalidInput
from cairn.models.flavors import Saved
from cairn.models.flavors.estimator import SKOPS
from cairn.models.flavors.pickled import MODEL_FILE
from cairn.models.manifest import path_problem
from cairn.models.package import Package, package_from_files

MLMODEL = "MLmodel"
# MLflow's column types and the NumPy dtypes Cairn names them by.
_COLUMN_TYPES = {
    "double": "float64", "float": "float32", "long": "int64", "integer": "int32",
    "boolean": "bool", "string": "object", "datetime": "datetime64[ns]", "binary": "object",
}  # fmt: skip
_MLFLOW_TYPES = {
    "float64": "double", "float32": "float", "int64": "long", "int32": "integer",
    "bool": "boolean", "object": "string", "datetime64[ns]": "datetime",
}  # fmt: skip


def import_mlflow(source: Path, folder: Path) -> Package:
    """A Cairn package in the empty ``folder`` from the MLflow model folder ``source``.

    Raises:
        InvalidInput: ``source`` is not an MLflow model folder, or holds no scikit-learn
            model in a format Cairn reads (``pickle`` or ``cloudpickle``).
    """
    described = _mlmodel(source)
    sklearn = described.get("flavors", {}).get("sklearn")
    if not isinstance(sklearn, Mapping):
        flavors = ", ".join(described.get("flavors", {})) or "none"
        raise InvalidInput(
            f"{source}: MLflow model of flavors {flavors}; Cairn imports the sklearn flavor"
        )
    serialization = sklearn.get("serialization_format", "cloudpickle")
    if serialization not in ("pickle", "cloudpickle"):
        raise InvalidInput(
            f"{source}: serialization_format {serialization!r}; Cairn imports pickle and "
            "cloudpickle"
        )
    named = str(sklearn.get("pickled_model", MODEL_FILE))
    if path_problem(named):  # an MLmodel must not point Cairn at a file outside its folder
        raise InvalidInput(f"{source}: pickled_model {named!r}: expected a file in the folder")
    pickled = source / named
    if not pickled.is_file():
        raise InvalidInput(f"{source}: the MLmodel names {pickled.name}, which is not there")
    shutil.copyfile(pickled, folder / MODEL_FILE)
    requirements = _requirements(source / "requirements.txt")
    saved = Saved((MODEL_FILE,), pickled=(MODEL_FILE,))
    signature = _signature_from_mlflow(described.get("signature"))
    lineage = {
        "mlflow_model_uuid": described.get("model_uuid"),
        "mlflow_run_id": described.get("run_id"),
    }
    return package_from_files(
        folder, "sklearn", saved, requirements, signature,
        {k: v for k, v in lineage.items() if v},
    )  # fmt: skip


def export_mlflow(package: Package, dest: Path, load: Callable[[], Any]) -> Path:
    """The verified package as an MLflow model folder at the new path ``dest``; ``load``
    gives the model, for a package whose model is not pickled already.

    Raises:
        InvalidInput: the package is not of the sklearn flavor.
    """
    manifest = package.manifest
    if package.flavor != "sklearn":
        raise InvalidInput(
            f"--format mlflow: a {package.flavor} package; Cairn exports the sklearn flavor"
        )
    skopsed = manifest["flavor"].get("format") == SKOPS
    model = load() if skopsed else None  # before anything is written: it may be refused
    dest.mkdir(parents=True)
    if skopsed:
        with (dest / MODEL_FILE).open("wb") as out:
            pickle.dump(model, out, protocol=pickle.DEFAULT_PROTOCOL)
    else:
        shutil.copyfile(package.folder / MODEL_FILE, dest / MODEL_FILE)
    requirements = list(manifest.get("requirements", []))
    sklearn_version = next(
        (r.partition("==")[2] for r in requirements if r.startswith("scikit-learn==")), None
    )
    python = manifest.get("python")
    described: dict[str, Any] = {
        "flavors": {
            "python_function": {
                "env": {"virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": MODEL_FILE,
                "predict_fn": "predict",
                "python_version": python,
            },
            "sklearn": {
                "code": None,
                "pickled_model": MODEL_FILE,
                "serialization_format": "pickle",
                "sklearn_version": sklearn_version,
            },
        },
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    signature = manifest.get("signature")
    if signature:
        outputs = signature.get("outputs")
        described["signature"] = {
            "inputs": json.dumps(_spec_to_mlflow(signature["inputs"])),
            "outputs": json.dumps(_spec_to_mlflow(outputs)) if outputs else None,
            "params": None,
        }
    (dest / MLMODEL).write_text(dump_yaml(described, sort_keys=False))
    (dest / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    environment = {"python": python, "build_dependencies": ["pip"],
                   "dependencies": ["-r requirements.txt"]}  # fmt: skip
    (dest / "python_env.yaml").write_text(dump_yaml(environment, sort_keys=False))
    return dest


def _mlmodel(source: Path) -> Mapping[str, Any]:
    path = source / MLMODEL
    if not path.is_file():
        raise InvalidInput(f"{source}: not an MLflow model folder (it has no {MLMODEL} file)")
    found = parse_yaml(path.read_bytes(), str(path))
    if not isinstance(found, Mapping):
        raise InvalidInput(f"{path}: expected a mapping")
    return found


def _requirements(path: Path) -> list[str]:
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return sorted(line for line in lines if line and not line.startswith(("#", "-")))


def _signature_from_mlflow(signature: Any) -> dict[str, Any] | None:
    if not isinstance(signature, Mapping) or not signature.get("inputs"):
        return None
    try:
        found = {"inputs": _spec_from_mlflow(json.loads(signature["inputs"]))}
        if signature.get("outputs"):
            found["outputs"] = _spec_from_mlflow(json.loads(signature["outputs"]))
    except (json.JSONDecodeError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise InvalidInput(f"MLmodel signature: not MLflow's schema JSON ({exc})") from None
    return found


def _spec_from_mlflow(spec: list[dict[str, Any]]) -> dict[str, Any]:
    if spec and spec[0].get("type") == "tensor":
        tensor = spec[0]["tensor-spec"]
        return {"type": "tensor", "dtype": tensor["dtype"], "shape": list(tensor["shape"])}
    columns = [
        {"name": str(c.get("name")), "type": _COLUMN_TYPES.get(str(c.get("type")), "object")}
        for c in spec
    ]
    return {"type": "columns", "columns": columns}


def _spec_to_mlflow(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    if spec["type"] == "columns":
        return [
            {"type": _MLFLOW_TYPES.get(c["type"], "string"), "name": c["name"], "required": True}
            for c in spec["columns"]
        ]
    if spec["type"] == "tensors":
        return [
            {
                "type": "tensor",
                "name": name,
                "tensor-spec": {"dtype": t["dtype"], "shape": t["shape"]},
            }
            for name, t in spec["tensors"].items()
        ]
    return [{"type": "tensor", "tensor-spec": {"dtype": spec["dtype"], "shape": spec["shape"]}}]
