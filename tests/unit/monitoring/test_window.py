"""Logged traffic as columns: what drift and quality checks read of a served model's
window."""

from __future__ import annotations

import numpy as np
import pytest

from cairn.errors import InvalidInput
from cairn.monitoring.window import window_columns


def test_a_tensor_model_s_rows_become_columns_by_position() -> None:
    logged = [
        {"request_id": "a", "inputs": [[1.0, 2.0], [3.0, 4.0]], "outputs": [0, 1]},
        {"request_id": "b", "inputs": [[5.0, 6.0]], "outputs": [1]},
    ]
    found = window_columns(logged)
    assert list(found) == ["0", "1", "prediction", "request_id"]
    assert found["0"].tolist() == [1.0, 3.0, 5.0]
    assert found["request_id"].tolist() == ["a", "a", "b"]  # where each row's label is
    assert found["prediction"].tolist() == [0.0, 1.0, 1.0]


def test_records_by_name_with_a_missing_column_as_none() -> None:
    logged = [
        {"request_id": "a", "inputs": [{"age": 30, "plan": "pro"}], "outputs": [[0.2, 0.8]]},
        {"request_id": "b", "inputs": [{"age": 41}], "outputs": [[0.6, 0.4]]},
    ]
    found = window_columns(logged)
    assert found["plan"].tolist() == ["pro", None]
    assert found["age"].tolist() == [30.0, 41.0]
    assert found["prediction[1]"].tolist() == [0.8, 0.4]


def test_named_tensors_and_ten_features_in_their_order() -> None:
    logged = [{"request_id": "a", "inputs": {"x": [list(range(11))], "flag": [1]},
               "outputs": [2]}]  # fmt: skip
    found = window_columns(logged)
    assert list(found) == ["flag", *(f"x[{i}]" for i in range(11)), "prediction",
                           "request_id"]  # fmt: skip
    assert found["flag"].tolist() == [1.0]


def test_a_tampered_log_is_refused_naming_the_request() -> None:
    with pytest.raises(InvalidInput, match="logged request 'r1': 1 answers to 2 rows"):
        window_columns([{"request_id": "r1", "inputs": [[1], [2]], "outputs": [0]}])
    with pytest.raises(InvalidInput, match="logged request 'r2': inputs: expected a number"):
        window_columns([{"request_id": "r2", "inputs": [[{"deep": 1}]], "outputs": [0]}])
    with pytest.raises(InvalidInput, match="expected a list of rows, got str"):
        window_columns([{"request_id": "r3", "inputs": "rows", "outputs": [0]}])
    assert np.isnan(window_columns([{"request_id": "r4", "inputs": [[None]],
                                     "outputs": [1]}])["0"][0])  # fmt: skip


def test_the_vectorised_path_reads_a_tensor_window_as_the_general_one_does() -> None:
    rows = [[1.0, None], [2.5, 4.0], [3.0, 5.0]]
    tensor = [{"request_id": f"r{i}", "inputs": [row], "outputs": [i]}
              for i, row in enumerate(rows)]  # fmt: skip
    # A request of named tensors sends the whole window down the general path.
    named = {"request_id": "n", "inputs": {"0": [9.0], "1": [9.0]}, "outputs": [9]}
    fast, general = window_columns(tensor), window_columns([*tensor, named])
    assert list(fast) == list(general)
    for name, values in fast.items():
        first = general[name][: len(values)]
        if values.dtype == object:
            assert values.tolist() == first.tolist()
        else:
            np.testing.assert_array_equal(values, first.astype(float))  # NaN equals NaN
    assert fast["request_id"].tolist() == ["r0", "r1", "r2"]
    # Text that reads as a number stays text, whichever path reads it.
    text = window_columns([{"request_id": "t", "inputs": [["1.5", 2.0]], "outputs": [1]}])
    assert text["0"].tolist() == ["1.5"]
