"""The quickstart: a small, real experiment logged with the SDK, end to end.

It versions the breast cancer data set that ships with scikit-learn (as a CSV file, which
gets a profile), then trains a few classifiers with different parameters on it, one
nested run per candidate under a parent run that records the data version as its input,
logging parameters, a training curve, validation metrics and report files. The best is
registered with its model card and released to ``staging``, whose policy promotes a
version as soon as its gates pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn import sdk
from cairn.core.monitor import MonitorResult
from cairn.core.release import PromotionRequest
from cairn.errors import AlreadyExists, MissingExtra, NotFound
from cairn.monitoring.retrain import Retrained
from cairn.pipelines import definition
from cairn.tracking.run import ActiveRun

EXPERIMENT = "quickstart"
OBJECTIVE = "val_auc"
DATASET = "sklearn.datasets.load_breast_cancer"
DATA_NAME = "breast-cancer"
MODEL_NAME = "breast-cancer-classifier"
CHAMPION = "champion"
STAGING = "staging"
STAGING_POLICY = f"""\
# staging: a version enters as soon as its gates pass, with no approval
auto_promote: true
gates:
  - metric: {OBJECTIVE}
    min: 0.95
  - no_unsafe_pickle: true
  - card_fields: [intended_use, limitations]
"""


@dataclass(frozen=True, slots=True)
class Candidate:
    family: str
    params: dict[str, Any]


CANDIDATES = (
    Candidate("logistic_regression", {"C": 0.01}),
    Candidate("logistic_regression", {"C": 1.0}),
    Candidate("gradient_boosting", {"n_estimators": 50, "learning_rate": 0.1, "max_depth": 2}),
    Candidate("gradient_boosting", {"n_estimators": 100, "learning_rate": 0.05, "max_depth": 3}),
    Candidate("random_forest", {"n_estimators": 100, "max_depth": 4}),
    Candidate("random_forest", {"n_estimators": 200, "max_depth": None}),
)


@dataclass(frozen=True, slots=True)
class Logged:
    parent_id: str
    data_ref: str  # the data version the runs trained on (breast-cancer@N)
    model_ref: str  # the best candidate, registered (breast-cancer-classifier/N)
    release: PromotionRequest  # its promotion to staging
    sample: list[list[float]]  # rows of the validation split, to score the served model on
    labels: list[int]  # their true classes


def run_quickstart(on_candidate: Callable[[Candidate], None] | None = None) -> Logged:
    """Version the data, train and log every candidate.

    Raises:
        MissingExtra: scikit-learn is not installed.
    """
    data = _load_data()
    data_ref = _version(data)
    with sdk.start_run(
        experiment=EXPERIMENT, name="quickstart-sweep", tags={"source": "cairn quickstart"}
    ) as parent:
        parent.log_params({"dataset": DATASET, "candidates": len(CANDIDATES)})
        parent.log_input(data_ref)
        trained = []
        for candidate in CANDIDATES:
            if on_candidate is not None:
                on_candidate(candidate)
            with sdk.start_run(
                name=_name(candidate), parent=parent, tags={"family": candidate.family}
            ) as run:
                run.log_input(data_ref)
                trained.append((_train(run, candidate, data), run))
        (score, model), best = max(trained, key=lambda found: found[0][0])
        version = best.log_model(
            model, name=MODEL_NAME, input_example=data.x_val[:5],
            description=f"the best of the quickstart's candidates, {OBJECTIVE} {score:.4f}",
            card=_card(data_ref, score),
        )  # fmt: skip
        sdk.models().registry.set_alias(MODEL_NAME, CHAMPION, version.version)
    sample, labels = data.x_val[:3].tolist(), [int(y) for y in data.y_val[:3]]
    return Logged(parent.id, data_ref, version.ref, _release(version.ref), sample, labels)


def _release(model_ref: str) -> PromotionRequest:
    """Promote the version to staging (made with its policy on first use)."""
    releases = sdk.releases()
    try:
        releases.get_environment(STAGING)
    except NotFound:
        releases.create_environment(STAGING, STAGING_POLICY)
    return releases.promote(model_ref, STAGING, "the best of the quickstart's candidates")


def _version(data: Data) -> str:
    """Write the data set as a CSV file in the Cairn home and version it: the quickstart's
    own folder keeps its cairn.lock, so the user's working directory is left alone."""
    folder = sdk.session().settings.home / "quickstart"
    table = folder / "breast_cancer.csv"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [",".join([*data.features, "target"])]
    for features, target in zip(data.rows, data.targets, strict=True):
        rows.append(",".join([*(f"{v:.6g}" for v in features), str(int(target))]))
    text = "\n".join(rows) + "\n"
    if not table.exists() or table.read_text() != text:
        table.write_text(text)
    added = sdk.session().data_in(folder).add(table, DATA_NAME, "scikit-learn's copy")
    return added.version.ref


def _name(candidate: Candidate) -> str:
    shown = ",".join(f"{k}={v}" for k, v in candidate.params.items())
    return f"{candidate.family}({shown})"


@dataclass(frozen=True, slots=True)
class Data:
    x_train: Any
    x_val: Any
    y_train: Any
    y_val: Any
    features: list[str]
    rows: Any  # every row, before the split
    targets: Any


def _load_data() -> Data:
    try:
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split
    except ModuleNotFoundError as exc:
        raise MissingExtra(
            "the quickstart trains scikit-learn models: pip install 'cairn-mlops[sklearn]'"
        ) from exc
    bunch = load_breast_cancer()
    features = [str(name).replace(" ", "_") for name in bunch.feature_names]
    return _split(bunch.data, bunch.target, features, train_test_split)


def _split(rows: Any, targets: Any, features: list[str], splitter: Any = None) -> Data:
    """Three quarters to train on, a quarter to validate, the same way every time."""
    if splitter is None:
        from sklearn.model_selection import train_test_split

        splitter = train_test_split
    x_train, x_val, y_train, y_val = splitter(
        rows, targets, test_size=0.25, random_state=7, stratify=targets
    )
    return Data(x_train, x_val, y_train, y_val, features, rows, targets)


def _model(candidate: Candidate) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if candidate.family == "logistic_regression":
        return make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, **candidate.params)
        )
    if candidate.family == "gradient_boosting":
        return GradientBoostingClassifier(random_state=7, **candidate.params)
    return RandomForestClassifier(random_state=7, n_jobs=1, **candidate.params)


def _card(data_ref: str, score: float) -> dict[str, Any]:
    return {
        "intended_use": "A demonstration: tell malignant from benign breast tumour samples.",
        "limitations": "569 samples from one clinic; not for diagnosis.",
        "training_data": f"{data_ref}, scikit-learn's Wisconsin breast cancer data set",
        "metrics": {OBJECTIVE: score},
    }


def _train(run: ActiveRun, candidate: Candidate, data: Data) -> tuple[float, Any]:
    """Train, evaluate and log one candidate; its validation score and the model."""
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, roc_auc_score

    x_train, x_val, y_train, y_val = data.x_train, data.x_val, data.y_train, data.y_val
    run.log_params({"model": candidate.family, **candidate.params})
    model = _model(candidate).fit(x_train, y_train)
    for step, loss in _training_curve(model):
        run.log_metric("train_loss", loss, step=step)
    scores = model.predict_proba(x_val)[:, 1]
    predicted = model.predict(x_val)
    run.log_metrics(
        {
            OBJECTIVE: float(roc_auc_score(y_val, scores)),
            "val_accuracy": float(accuracy_score(y_val, predicted)),
            "val_log_loss": float(log_loss(y_val, scores)),
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder)
        matrix = confusion_matrix(y_val, predicted).tolist()
        (report / "confusion_matrix.json").write_text(
            json.dumps({"labels": [0, 1], "matrix": matrix})
        )
        (report / "features.json").write_text(json.dumps(data.features))
        run.log_artifacts(report, artifact_path="report")
    return float(roc_auc_score(y_val, scores)), model


def _training_curve(model: Any) -> Iterator[tuple[int, float]]:
    """Per-iteration training loss where the model keeps one (gradient boosting)."""
    for step, loss in enumerate(getattr(model, "train_score_", [])):
        yield step, float(loss)


# Monitoring and the closed loop: staging's model is watched against its training data;
# a batch measured by a recalibrated instrument drifts, the monitor says so and retrains.
MONITOR = "breast-cancer-staging"
RETRAIN = "cairn.quickstart:retrain"  # the pipeline the monitor runs on drift
RECALIBRATED = 1.25  # the new instrument reads sizes (mean and worst) this much larger


@dataclass(frozen=True, slots=True)
class Watched:
    calm: MonitorResult  # a window like the training data
    drifted: MonitorResult  # the recalibrated batch
    data_ref: str  # the data version holding it, which the retrain trained on
    retrained: Retrained | None


def watch_and_retrain() -> Watched:
    """Make (once) the monitor of staging's model, evaluate a calm window and then a
    drifted one; the drift runs ``retrain`` on the latest data version."""
    import numpy as np

    monitoring = sdk.session().monitoring
    data = _load_data()
    with contextlib.suppress(AlreadyExists):  # a quickstart run before made it
        monitoring.create(MONITOR, f"{MODEL_NAME}@{STAGING}", _frame(data, data.x_train),
                          window_seconds=3600, on_drift=f"retrain:{RETRAIN}")  # fmt: skip
    calm = monitoring.run(MONITOR, current=_frame(data, data.x_val))
    batch = _recalibrated(data, data.x_val)
    # The new measurements, labelled, join the data set: a new version to retrain on.
    grown = dataclasses.replace(data, rows=np.vstack([data.rows, batch]),
                                targets=np.concatenate([data.targets, data.y_val]))  # fmt: skip
    data_ref = _version(grown)
    drifted = monitoring.run(MONITOR, current=_frame(data, batch))
    return Watched(calm, drifted, data_ref, monitoring.retrained.get((MONITOR, drifted.number)))


def _frame(data: Data, rows: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=data.features)


def _recalibrated(data: Data, rows: Any) -> Any:
    import numpy as np

    scaled = np.array(rows, dtype=float)
    for index, name in enumerate(data.features):
        if name.startswith(("mean_", "worst_")):
            scaled[:, index] *= RECALIBRATED
    return scaled


@definition.step
def train_on(ref: str) -> str:
    """Train the quickstart's first logistic regression on a data version; register it
    with its metrics and card, as the quickstart does."""
    import numpy as np

    ref = sdk.session().data.version(ref).ref  # breast-cancer@2, not @latest, in the record
    table = np.loadtxt(sdk.session().data.get(ref), delimiter=",", skiprows=1)
    data = _split(table[:, :-1], table[:, -1].astype(int), _load_data().features)
    with sdk.start_run(experiment=EXPERIMENT, name="retrain",
                       tags={"source": "cairn monitor"}) as run:  # fmt: skip
        run.log_input(ref)
        score, model = _train(run, CANDIDATES[1], data)
        version = run.log_model(
            model, name=MODEL_NAME, input_example=data.x_val[:5], card=_card(ref, score),
            description=f"retrained on {ref}, {OBJECTIVE} {score:.4f}",
        )  # fmt: skip
    return version.ref


@definition.pipeline
def retrain(ref: str = f"{DATA_NAME}@latest") -> None:
    train_on(ref)
