"""The CLI's one renderer: what a table shows is computed from the ``--json`` document.

Each command's report is built as the command builds it, over a store with runs, data
versions, models, a release and accounts in it; then, for each, the views are computed
again from the document after a trip through JSON text (so they read nothing else), and
every value they show is traced to the document: changing some value of the document
changes what the cell shows.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import cairn
from cairn.cli import (
    artifacts,
    audit,
    data,
    experiments,
    identity,
    lineage,
    models,
    releases,
    runs,
)
from cairn.cli.report import (
    Cell,
    Fields,
    Line,
    Outline,
    Report,
    Table,
    Verbatim,
    View,
    cell_text,
    render,
)
from cairn.core.identity import AccountKind
from cairn.session import Session
from cairn.stores.metadata.audit import EventQuery

_POLICY = {
    "gates": [{"metric": "auc", "min": 0.5}],
    "approvals": {"required": 2, "role": "approver"},
}


class _Constant:
    """A model with no library behind it: quick to register."""

    def predict(self, rows: list[Any]) -> list[int]:
        return [0 for _ in rows]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with two data versions, a pipeline-like run with steps and artifacts, a
    model made from the data, an environment with a request waiting, and an account."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    table = folder / "customers.csv"
    table.write_text("id,age,city\n1,34,Oslo\n2,,Bergen\n3,51,Oslo\n")
    service = cairn.sdk.session().data
    service.add(table, "customers", "October extract")
    table.write_text("id,age,city,churned\n1,34,Oslo,0\n2,29,Bergen,1\n3,51,Oslo,0\n4,40,Oslo,1\n")
    service.add(table, "customers", "November extract")
    table.write_text("id,age\n1,34\n")  # a change the working copy has not versioned
    (folder / "report.txt").write_text("auc 0.91\n")
    with cairn.start_run(experiment="churn", name="train", tags={"team": "growth"}) as parent:
        parent.log_params({"lr": "0.1", "depth": 6})
        parent.log_metrics({"auc": 0.91, "loss": float("nan"), "gain": float("inf")})
        parent.log_artifact(folder / "report.txt")
        parent.log_input("customers@2")
        for step, state in (("prepare", "cached"), ("fit", "ran")):
            child = cairn.start_run(parent=parent, name=step, tags={"cairn.step.state": state})
            with child:
                child.log_metric("seconds", 1.5)
        parent.log_model(_Constant(), name="churn")
    with cairn.start_run(experiment="churn", name="baseline") as baseline:
        baseline.log_params({"lr": "0.3", "depth": 4})
        baseline.log_metric("auc", 0.85)
    cairn.releases.create_environment("staging", orjson.dumps(_POLICY).decode())
    cairn.releases.promote("churn/1", to="staging", reason="first candidate")
    accounts = cairn.sdk.session().accounts
    accounts.add_user("ada", AccountKind.USER, False)
    accounts.create_token("ada", "ci", None)
    return folder


def _run(session: Session, name: str) -> str:
    [found] = session.tracking.search_runs("churn", f"attributes.name = '{name}'").runs
    return found.id


# The reports of the commands that print tables, built as the commands build them.
_REPORTS: dict[str, Callable[[Session], Report[Any]]] = {
    "runs list": lambda s: runs.list_report(
        s.tracking, ["churn"], "params.lr = '0.1'", ["metrics.auc"]
    ),
    "runs list (default columns)": lambda s: runs.list_report(s.tracking, None),
    "runs show": lambda s: runs.show_report(s.tracking, _run(s, "train")[:10]),
    "runs compare": lambda s: runs.compare_report(
        s.tracking, [_run(s, "train"), _run(s, "baseline")]
    ),
    "experiments list": lambda s: experiments.list_report(s.tracking),
    "artifacts list": lambda s: artifacts.list_report(s.tracking, _run(s, "train")),
    "data list": lambda s: data.list_report(s.data),
    "data log": lambda s: data.log_report(s.data, "customers"),
    "data ls": lambda s: data.ls_report(s.data, "customers@2"),
    "data status": lambda s: data.status_report(s.data),
    "data diff": lambda s: data.diff_report(s.data, "customers@1", "customers@2"),
    "data profile": lambda s: data.profile_report(s.data, "customers@2"),
    "models list": lambda s: models.list_report(s.models),
    "models versions": lambda s: models.versions_report(s.models, "churn"),
    "models show": lambda s: models.show_report(s.models, "churn/1"),
    "envs list": lambda s: releases.environments_report(s.releases),
    "envs show": lambda s: releases.environment_report(s.releases, "staging"),
    "requests list": lambda s: releases.requests_report(s.releases),
    "requests show": lambda s: releases.request_report(s.releases.list_requests()[0]),
    "audit log": lambda s: audit.log_report(s, EventQuery(action="run.create")),
    "users list": lambda s: identity.users_report(s.accounts),
    "tokens list": lambda s: identity.tokens_report(s.accounts),
    "lineage": lambda _: lineage.lineage_report("churn/1"),
}


def _cells(views: Iterator[View]) -> tuple[list[tuple[Any, ...]], dict[tuple[int, ...], str]]:
    """The shape of the views (what they are, their titles and sizes), and every value
    they show as text, by where it is shown."""
    shape: list[tuple[Any, ...]] = []
    shown: dict[tuple[int, ...], str] = {}
    for index, view in enumerate(views):
        if isinstance(view, Table):
            shape.append(("table", view.title, tuple(view.columns), len(view.rows)))
            for r, row in enumerate(view.rows):
                shown.update({(index, r, c): _plain(cell) for c, cell in enumerate(row)})
        elif isinstance(view, Fields):
            shape.append(("fields", view.title, tuple(label for label, _ in view.fields)))
            shown.update({(index, r): _plain(value) for r, (_, value) in enumerate(view.fields)})
        elif isinstance(view, Outline):  # a label shown is traced where a change drops it
            shape.append(("outline",))
            shown.update({(index, *at): text for at, text in _outline_labels(view, ())})
        else:
            shape.append((type(view).__name__,))
            shown[(index,)] = _plain(view.text)
    return shape, shown


def _outline_labels(outline: Outline, at: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], str]]:
    yield at, _plain(outline.label)
    for index, branch in enumerate(outline.branches):
        yield from _outline_labels(branch, (*at, index))


def _absent(text: str) -> bool:
    """The cell shows that a value is missing ("—", "— (no input example was given)")."""
    return not text or text.startswith("—")


def _plain(cell: Cell) -> str:
    return cell_text(cell).plain


def _places(document: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """Every value of a JSON document by its path (the arrays and objects too), and
    every key of its objects (``True``: the path names a key, to rename)."""
    yield at, False
    if isinstance(document, dict):
        for key, value in document.items():
            yield (*at, key), True
            yield from _places(value, (*at, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _places(value, (*at, index))


def _other(value: Any) -> list[Any]:
    """Other values of the same kind, the first that the views accept is used."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1_000_003, value + 1]
    if isinstance(value, float):
        return [value * 3 + 1.5]
    if isinstance(value, str):
        return [f"Z{value[::-1]}Z", value.upper() + "Z"]
    if isinstance(value, list):
        return [["Zz"], [{}]] if not value else [[]]
    if isinstance(value, dict):
        return [{"Zz": "Zz"}] if not value else [{}]
    return ["Zz", 1_000_003, True]  # None: a value of any kind may stand there


def _changed(document: Any, path: tuple[Any, ...], key: bool) -> Iterator[Any]:
    for other in _other(None if key else _at(document, path)):
        changed = copy.deepcopy(document)
        parent = _at(changed, path[:-1]) if path else None
        if key:
            parent[f"Z{path[-1]}Z"] = parent.pop(path[-1])
            yield changed
            return
        if parent is None:
            yield other
        else:
            parent[path[-1]] = other
            yield changed


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    return functools.reduce(lambda found, step: found[step], path, document)


@pytest.mark.usefixtures("workspace")
@pytest.mark.parametrize("command", list(_REPORTS))
def test_each_value_a_table_shows_is_in_the_json_document(command: str) -> None:
    """The views of a command read its JSON document only, and each value they show
    comes from it: changing that value in the document changes the cell."""
    report = _REPORTS[command](cairn.sdk.session())
    views = report.views
    document = orjson.loads(orjson.dumps(report.data))
    assert _cells(views(document)) == _cells(views(report.data))  # nothing but the JSON
    shape, shown = _cells(views(document))
    assert shown, f"{command}: nothing is shown"
    untraced = {where for where, text in shown.items() if not _absent(text)}
    for path, key in _places(document):
        for changed in _changed(document, path, key):
            try:
                changed_shape, changed_shown = _cells(views(changed))
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                continue  # not a document the command makes: try another value
            if changed_shape == shape:
                untraced -= {w for w in untraced if changed_shown.get(w) != shown[w]}
            break
    assert not {shown[w]: w for w in untraced}, f"{command}: shown but not in the JSON"


def test_the_views_are_functions_of_the_document_alone() -> None:
    """A command's views are module functions, closing over nothing (a title may echo
    the command's arguments, bound with ``functools.partial``)."""
    for module in (artifacts, audit, data, experiments, identity, lineage, models, releases, runs):
        for attribute, value in vars(module).items():
            if attribute.endswith("_views") and callable(value):
                assert value.__closure__ is None, f"{module.__name__}.{attribute}"


def test_runs_show_json_carries_all_the_table_shows(workspace: Path) -> None:
    """``runs show --json``: the experiment's name, params, metrics, tags, each child
    run with its name, status, step state and duration, and the artifact files."""
    tracking = cairn.sdk.session().tracking
    [parent] = tracking.search_runs("churn", "attributes.name = 'train'").runs
    shown = runs.show_report(tracking, parent.id).data
    assert shown["experiment"] == "churn"
    assert shown["params"] == {"lr": "0.1", "depth": "6"}
    assert {k: m["value"] for k, m in shown["metrics"].items()} == {
        "auc": 0.91, "loss": "NaN", "gain": "Infinity"
    }  # fmt: skip
    assert shown["tags"]["team"] == "growth"
    steps = shown["child_runs"]
    assert [(c["name"], c["status"], c["step_state"]) for c in steps] == [
        ("prepare", "FINISHED", "cached"),
        ("fit", "FINISHED", "ran"),
    ]
    assert all(c["duration_ms"] == c["end_time"] - c["start_time"] >= 0 for c in steps)
    assert shown["children"] == [c["id"] for c in steps]  # as before: the ids
    assert "report.txt" in [a["path"] for a in shown["artifacts"]]


def test_render_prints_the_document_or_the_views(capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints the document as it is; otherwise the views, where text from the
    store is printed as it is, never read as markup."""

    def views(found: dict[str, Any]) -> Iterator[View]:
        yield Line(f"{found['name']} has [bold]{len(found['rows'])}[/bold] rows")
        yield Table("Rows", ("key", "value"), [(k, v) for k, v in found["rows"].items()])
        yield Verbatim("# raw\n")

    report = Report({"name": "x[red]", "rows": {"a": 1.5, "b": None}}, views)
    render(report, json=True)
    assert orjson.loads(capsys.readouterr().out) == report.data
    render(report)
    out = capsys.readouterr().out
    assert "x[red] has [bold]2[/bold] rows" in out
    assert "1.5" in out
    assert "—" in out
    assert out.endswith("# raw\n")
