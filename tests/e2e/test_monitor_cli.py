"""``cairn monitor`` as a user runs it: make a monitor from the training data, evaluate a
drifted file, read the status and the report — as tables, JSON and an HTML page that a
real browser opens offline (a screenshot is kept under ``CAIRN_TEST_ARTIFACTS``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from cairn import sdk

CHROMIUM = "/usr/bin/chromium"
FEATURES = ["age", "spend", "visits"]


def cairn(folder: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "cairn", *args], capture_output=True,
                          text=True, timeout=120, cwd=folder)  # fmt: skip
    if ok:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(3_000, 3)), columns=FEATURES)
    train["plan"] = rng.choice(["basic", "plus", "pro"], len(train))
    train.to_parquet(tmp_path / "train.parquet")
    current = train.sample(frac=1.0, random_state=1).reset_index(drop=True)
    current["age"] += 0.8
    current["spend"] += 0.6
    current["plan"] = np.where(np.arange(len(current)) % 3 == 0, "enterprise", current["plan"])
    current.to_csv(tmp_path / "current.csv", index=False)
    model = LogisticRegression().fit(train[FEATURES], train["age"] > 0)
    sdk.session().models.register(model, "churn", input_example=train[FEATURES][:5])
    sdk.session().models.registry.set_alias("churn", "production", 1)
    sdk.session().close()
    return tmp_path


def test_a_monitor_made_run_and_reported_from_the_command_line(folder: Path) -> None:
    cairn(folder, "monitor", "create", "churn-prod", "--model", "churn@production",
          "--reference", "train.parquet", "--window", "30m",
          "--method", "visits=psi:0.2")  # fmt: skip
    shown = cairn(folder, "monitor", "run", "churn-prod", "--current", "current.csv").stdout
    assert "drift" in shown
    assert "age, spend" in shown
    found = json.loads(cairn(folder, "monitor", "status", "--json").stdout)
    assert [(m["monitor"]["name"], m["monitor"]["state"], m["last"]["drifted"])
            for m in found] == [("churn-prod", "drift", ["age", "spend", "plan"])]  # fmt: skip
    assert found[0]["monitor"]["window_seconds"] == 1800
    report = json.loads(cairn(folder, "monitor", "report", "churn-prod", "--json").stdout)
    assert {c["column"]: c["method"] for c in report["drift"]["columns"]}["visits"] == "psi"
    assert ("plan", "unseen_category") in {(f["column"], f["kind"]) for f in report["findings"]}
    cairn(folder, "monitor", "report", "churn-prod", "--html", "report.html")
    page = (folder / "report.html").read_text()
    assert "churn-prod" in page
    assert "<script" not in page
    assert "http" not in page.split("<body")[0]


def test_bad_input_gets_an_error_naming_the_option_never_a_traceback(folder: Path) -> None:
    for args, said in (
        (("--window", "1y"), "--window '1y'"),
        (("--method", "visits"), "--method 'visits'"),
        (("--on-drift", "retrain"), "on_drift"),
    ):
        done = cairn(folder, "monitor", "create", "m", "--model", "churn@production",
                     "--reference", "train.parquet", *args, ok=False)  # fmt: skip
        assert done.returncode != 0
        assert said in done.stderr
        assert "Traceback" not in done.stderr
    done = cairn(folder, "monitor", "run", "nothing", ok=False)
    assert "monitor 'nothing' not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_html_report_opens_offline_in_a_real_browser(folder: Path) -> None:
    if not Path(CHROMIUM).exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CAIRN_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{reason}; CAIRN_REQUIRE_CHROMIUM=1 requires it")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    cairn(folder, "monitor", "create", "churn-prod", "--model", "churn@production",
          "--reference", "train.parquet")  # fmt: skip
    cairn(folder, "monitor", "run", "churn-prod", "--current", "train.parquet")
    cairn(folder, "monitor", "run", "churn-prod", "--current", "current.csv")
    cairn(folder, "monitor", "report", "churn-prod", "--html", "report.html")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        page.goto((folder / "report.html").as_uri())
        assert page.title() == "churn-prod — window 2: drift"
        assert page.locator(".state.drift").first.inner_text() == "drift"
        assert page.locator(".feature.drifted h3").all_inner_texts() == [
            "age · drifted", "spend · drifted", "plan · drifted"]  # fmt: skip
        assert page.locator(".feature svg rect").count() > 40  # bars drawn for every column
        assert page.locator("svg[aria-label='drift share by window'] rect").count() == 2
        assert [url for url in asked if not url.startswith("file:")] == []  # nothing fetched
        kept = Path(os.environ.get("CAIRN_TEST_ARTIFACTS", folder)) / "monitor-report.png"
        kept.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(kept), full_page=True)
        browser.close()
    assert kept.stat().st_size > 10_000
    shutil.copy(kept, folder / "seen.png")


def test_the_daemon_evaluates_what_is_due_once(folder: Path) -> None:
    cairn(folder, "monitor", "create", "churn-prod", "--model", "churn@production",
          "--reference", "train.parquet", "--window", "1h")  # fmt: skip
    first = json.loads(cairn(folder, "monitor", "daemon", "--once", "--json").stdout)
    assert [(r["monitor"], r["number"], r["rows"]) for r in first] == [("churn-prod", 1, 0)]
    again = cairn(folder, "monitor", "daemon", "--once").stdout
    assert "No monitor is due" in again  # its hour has not passed


def test_labels_are_kept_from_a_file(folder: Path) -> None:
    (folder / "labels.csv").write_text("request_id,label\nr1,1\nr2,0\n")
    kept = json.loads(cairn(folder, "monitor", "labels", "labels.csv", "--model", "churn",
                            "--json").stdout)  # fmt: skip
    assert kept == {"model": "churn", "labels": 2}
    (folder / "wrong.csv").write_text("id,label\nr1,1\n")
    done = cairn(folder, "monitor", "labels", "wrong.csv", "--model", "churn", ok=False)
    assert "'request_id' is not there (it has id, label)" in done.stderr


def test_monitors_declared_in_cairn_yaml_are_made_once(folder: Path) -> None:
    (folder / "cairn.yaml").write_text(
        "monitors:\n"
        "  churn-prod:\n"
        "    model: churn@production\n"
        "    reference: train.parquet\n"
        "    window: 15m\n"
        "    features: [age, spend]\n"
        "    methods: {spend: 'psi:0.2'}\n"
    )
    made = json.loads(cairn(folder, "monitor", "apply", "--json").stdout)
    assert made == [{"monitor": "churn-prod", "made": True}]
    again = json.loads(cairn(folder, "monitor", "apply", "--json").stdout)
    assert again == [{"monitor": "churn-prod", "made": False}]
    (monitor,) = json.loads(cairn(folder, "monitor", "status", "--json").stdout)
    assert monitor["monitor"]["window_seconds"] == 900
    assert monitor["monitor"]["features"] == ["age", "spend"]
    assert monitor["monitor"]["choices"] == {"spend": {"method": "psi", "threshold": 0.2}}
    mistyped = "monitors:\n  m:\n    model: churn@production\n    windows: 1h\n"
    (folder / "cairn.yaml").write_text(mistyped)
    done = cairn(folder, "monitor", "apply", ok=False)
    assert "monitors.m: unknown key 'windows'" in done.stderr
    assert "Traceback" not in done.stderr
