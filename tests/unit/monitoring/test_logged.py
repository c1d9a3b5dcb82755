"""A window of logged traffic read into columns by Arrow gives what the general path gives,
row for row, for every shape traffic comes in; the shapes Arrow's path reads, it reads
itself, and the rest fall back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from cairn import sdk
from cairn.monitoring import logged
from cairn.monitoring.window import window_columns
from cairn.serving.payloads import PayloadLog, read_window

Requests = list[tuple[Any, Any]]
TENSOR_ROWS: Requests = [([[1.0, 2.0]], [1]), ([[3, None], [5, 6]], [0.5, 1])]
RECORDS: Requests = [([{"age": 1, "plan": "x"}], ["yes"]), ([{"age": 2.5}], ["no"]),
                     ([{"plan": None, "b": True}], [None])]  # fmt: skip
GENERAL: dict[str, Requests] = {
    "several answers a row": [([[1.0, 2.0]], [[1, 2]])],
    "ragged rows": [([[1.0, 2.0]], [1]), ([[1.0]], [1])],
    "numbers and text in a column": [([{"a": 1}], [1]), ([{"a": "x"}], [1])],
    "named tensors": [({"t": [[1, 2]]}, [1])],
}


def _logged(requests: Requests, version: int = 1) -> None:
    session = sdk.session()
    while not _exists() or len(session.registry.list_versions("m")) < version:
        session.models.register(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
    log = PayloadLog(session.registry, session.artifacts, flush_seconds=0.05)
    for index, (inputs, outputs) in enumerate(requests):
        log.record("m", version, f"v{version}-{index}", inputs, outputs)
    log.close()


def _exists() -> bool:
    return any(m.name == "m" for m in sdk.session().registry.list_models())


def _both() -> tuple[dict[str, np.ndarray], logged.LoggedWindow]:
    session = sdk.session()
    general = window_columns(read_window(session.registry, session.artifacts, "m"))
    return general, logged.logged_window(session.registry, session.artifacts, "m")


def _same(general: dict[str, np.ndarray], columnar: dict[str, np.ndarray]) -> None:
    assert list(general) == list(columnar)
    for name, values in general.items():
        assert values.dtype == columnar[name].dtype, name
        if values.dtype.kind == "f":
            np.testing.assert_array_equal(values, columnar[name])
        else:
            assert values.tolist() == columnar[name].tolist(), name


@pytest.mark.parametrize("requests", [TENSOR_ROWS, RECORDS], ids=["tensor rows", "records"])
def test_arrows_path_reads_the_common_shapes_as_the_general_one(
    requests: Requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    _logged(requests)
    monkeypatch.setattr(logged, "read_window", _no_fallback)
    general, columnar = _both()
    _same(general, columnar.columns)
    assert columnar.versions.tolist() == [1] * len(general["request_id"])


@pytest.mark.parametrize("requests", list(GENERAL.values()), ids=list(GENERAL))
def test_any_other_shape_is_read_the_general_way(requests: Requests) -> None:
    _logged(requests)
    general, columnar = _both()
    _same(general, columnar.columns)


def test_each_row_names_the_version_that_answered_it() -> None:
    _logged(TENSOR_ROWS, version=1)
    _logged([([[7.0, 8.0]], [0])], version=2)
    _, columnar = _both()
    assert columnar.versions.tolist() == [1, 1, 1, 2]
    assert columnar.columns["request_id"].tolist() == ["v1-0", "v1-1", "v1-1", "v2-0"]


def _no_fallback(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the general path was taken")
