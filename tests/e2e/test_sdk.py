"""The SDK as a user writes it, on the embedded store and against a real Cairn server."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn import sdk
from cairn.errors import InvalidInput, NotFound, ParamConflict, ServerUnavailable
from server_process import free_port, running_server


@pytest.fixture(params=["embedded", "remote"])
def mode(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Point the SDK at the embedded store or at a server process over HTTP."""
    if request.param == "embedded":
        yield "embedded"
        return
    db_url = f"sqlite:///{tmp_path / 'server' / 'cairn.db'}"
    with running_server(db_url, str(tmp_path / "server" / "artifacts")) as base_url:
        cairn.configure(uri=base_url)
        yield "remote"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    (folder / "reports" / "sub").mkdir(parents=True)
    (folder / "confusion.png").write_bytes(b"\x89PNG fake image")
    (folder / "reports" / "summary.md").write_text("# summary\n")
    (folder / "reports" / "sub" / "detail.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(folder)
    return folder


def test_the_issue_walkthrough(mode: str, workdir: Path) -> None:
    """The example from the tracking guide works as written and reads back exactly."""
    with cairn.start_run(experiment="churn", name="baseline", tags={"team": "growth"}) as run:
        run.log_params({"lr": 0.1, "depth": 6})
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1), step=step)
        run.log_metrics({"val_auc": 0.91, "val_acc": 0.88})
        run.set_tags({"stage": "exploration"})
        run.log_artifact("confusion.png")
        run.log_artifacts("reports/", artifact_path="reports")
        with cairn.start_run(name="fold-1", parent=run) as child:
            child.log_metric("auc", 0.90)

    runs = cairn.search_runs(
        experiment="churn",
        filter="metrics.val_auc > 0.9 and params.lr = '0.1' and tags.team = 'growth'",
        order_by=["metrics.val_auc DESC"],
        limit=50,
    )
    assert [r.id for r in runs] == [run.id]
    found = runs[0]
    assert found.status is cairn.RunStatus.FINISHED
    assert found.end_time is not None
    assert found.params == {"lr": "0.1", "depth": "6"}
    assert found.tags == {"team": "growth", "stage": "exploration"}
    assert found.metrics["val_auc"].value == 0.91

    history = cairn.get_metric_history(run.id, "loss")
    assert [m.step for m in history] == list(range(100))
    assert history[-1].value == pytest.approx(0.01)

    fold = cairn.get_run(child.id)
    assert fold.parent_id == run.id
    assert fold.experiment_id == found.experiment_id

    tracking = cairn.sdk.session().tracking
    listed = {e.path: e.size for e in tracking.list_artifacts(run.id[:8])}
    assert listed == {"confusion.png": 15, "reports": 18}
    written = tracking.download_artifacts(run.id, "reports", workdir / "out")
    assert sorted(p.relative_to(workdir / "out").as_posix() for p in written) == [
        "reports/sub/detail.csv",
        "reports/summary.md",
    ]
    assert (workdir / "out" / "reports" / "sub" / "detail.csv").read_text() == "a,b\n1,2\n"


def test_exception_in_the_block_marks_failed_and_keeps_what_was_logged(mode: str) -> None:
    with pytest.raises(ZeroDivisionError), cairn.start_run(experiment="e") as run:  # noqa: PT012  # the error must come from inside the run block
        run.log_metric("loss", 0.5, step=1)
        _ = 1 / 0
    stored = cairn.get_run(run.id)
    assert stored.status is cairn.RunStatus.FAILED
    assert stored.metrics["loss"].value == 0.5


def test_non_finite_metrics_round_trip(mode: str) -> None:
    with cairn.start_run() as run:
        run.log_metric("x", math.nan, step=0)
        run.log_metric("x", math.inf, step=1)
        run.log_metric("x", -math.inf, step=2)
    values = [m.value for m in cairn.get_metric_history(run.id, "x")]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


def test_param_relogged_with_another_value_fails_at_the_call(mode: str) -> None:
    with cairn.start_run() as run:
        run.log_param("lr", 0.1)
        with pytest.raises(ParamConflict, match="'lr'"):
            run.log_params({"depth": 3, "lr": 0.2})
        run.log_param("lr", 0.1)  # the same value again is fine
    assert cairn.get_run(run.id).params == {"lr": "0.1"}  # no partial write of depth


def test_bad_input_is_refused_before_anything_is_written(mode: str, workdir: Path) -> None:
    with cairn.start_run() as run:
        with pytest.raises(InvalidInput, match="longer than 250"):
            run.log_metric("k" * 300, 1.0)
        with pytest.raises(InvalidInput, match="expected a number"):
            run.log_metric("loss", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="step must be a 64-bit integer"):
            run.log_metric("loss", 0.5, step=2**63)
        with pytest.raises(InvalidInput, match="timestamp must be whole milliseconds"):
            run.log_metric("loss", 0.5, timestamp=1.7e12)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="expected a number"):
            run.log_metrics({"auc": 0.9, "acc": "high"})  # neither is stored
        with pytest.raises(InvalidInput, match="leave the run"):
            run.log_artifact("confusion.png", artifact_path="../outside")
        with pytest.raises(InvalidInput, match="is not a file"):
            run.log_artifact("missing.png")
    stored = cairn.get_run(run.id)
    assert stored.metrics == {}
    assert cairn.sdk.session().tracking.list_artifacts(run.id) == []


def test_values_the_store_cannot_hold_are_refused_at_the_call(mode: str) -> None:
    """A number no float can hold, NUL and lone surrogates (which no database stores) and
    booleans for numbers: each an InvalidInput naming the key, with nothing stored."""
    with cairn.start_run() as run:
        with pytest.raises(InvalidInput, match=r"metrics\['big'\]: expected a number a 64-bit"):
            run.log_metric("big", 10**400)
        with pytest.raises(InvalidInput, match=r"metrics\['big'\]: expected a number a 64-bit"):
            run.log_metrics({"auc": 0.9, "big": -(10**400)})
        with pytest.raises(InvalidInput, match=r"metrics\['on'\]: expected a number, got bool"):
            run.log_metric("on", True)
        with pytest.raises(InvalidInput, match=r"tags\['team'\]: must not contain the NUL"):
            run.set_tag("team", "gro\x00wth")
        with pytest.raises(InvalidInput, match=r"params\['lr'\]: must be Unicode text"):
            run.log_param("lr", "0.1\ud800")
        with pytest.raises(InvalidInput, match="run name: must not contain the NUL"):
            cairn.start_run(name="base\x00line")
    stored = cairn.get_run(run.id)
    assert (stored.metrics, stored.params, stored.tags) == ({}, {}, {})


def test_free_text_the_store_cannot_hold_is_refused_everywhere(mode: str, workdir: Path) -> None:
    """NUL in a data version's message, a model version's description or card, or a
    release's reason: refused naming the field on every backend (SQLite would keep it,
    PostgreSQL cannot), with nothing recorded."""
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(InvalidInput, match="message: must not contain the NUL"):
        sdk.data().add(workdir / "confusion.png", "images", message="oct\x00ober")
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(InvalidInput, match="description: must not contain the NUL"):
        sdk.models().register(model, "churn", description="a\x00b")
    with pytest.raises(InvalidInput, match=r"card\.intended_use: must not contain the NUL"):
        sdk.models().register(model, "churn", card={"intended_use": "a\x00b"})
    with pytest.raises(NotFound):
        cairn.models.list_versions("churn")
    sdk.models().register(model, "churn")
    cairn.releases.create_environment("staging")
    with pytest.raises(InvalidInput, match="reason: must not contain the NUL"):
        cairn.releases.promote("churn/1", to="staging", reason="q4\x00")
    assert cairn.releases.requests() == []


def test_params_that_are_not_strings_are_stored_as_mlflow_stores_them(mode: str) -> None:
    """Scalars as ``str`` writes them (what MLflow stores, and what ``get_params()`` of a
    scikit-learn model needs for its None); mappings and lists as JSON, which any client
    reads back, never as a Python repr."""
    params = {"depth": None, "warm": True, "lr": 0.01, "layers": ["relu", "tanh"],
              "optimizer": {"name": "adam", "betas": [0.9, 0.999]}}  # fmt: skip
    with cairn.start_run() as run:
        run.log_params(params)
    assert cairn.get_run(run.id).params == {
        "depth": "None",
        "warm": "True",
        "lr": "0.01",
        "layers": '["relu", "tanh"]',
        "optimizer": '{"name": "adam", "betas": [0.9, 0.999]}',
    }


def test_unknown_references(mode: str) -> None:
    with pytest.raises(NotFound, match="run"):
        cairn.get_run("0123456789abcdef")
    with pytest.raises(NotFound, match="experiment 'nope'"):
        cairn.search_runs(experiment="nope")


def test_run_left_open_is_flushed_and_ended_at_exit(mode: str, tmp_path: Path) -> None:
    """A script that never ends its run still stores every point (atexit)."""
    settings = cairn.sdk.session().settings
    script = textwrap.dedent(
        """
        import cairn, sys
        run = cairn.start_run(experiment="atexit")
        for step in range(5000):
            run.log_metric("loss", 1.0, step=step)
        print(run.id)
        if sys.argv[1] == "crash":
            raise RuntimeError("boom")
        """
    )
    env = {"CAIRN_HOME": str(settings.home), "PATH": "/usr/bin:/bin"}
    if settings.uri:
        env["CAIRN_URI"] = settings.uri
    for how, status in (("exit", "FINISHED"), ("crash", "FAILED")):
        done = subprocess.run(
            [sys.executable, "-c", script, how], capture_output=True, text=True, env=env, timeout=60
        )
        run = cairn.get_run(done.stdout.strip())
        assert run.status.value == status
        assert len(cairn.get_metric_history(run.id, "loss")) == 5000


def test_server_that_is_down_gives_a_clear_error_quickly() -> None:
    cairn.configure(uri=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="cannot reach the Cairn server"):
        cairn.start_run()
    assert time.monotonic() - started < 10
