"""Keys, values and paths Cairn accepts, and the errors for those it does not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cairn.core.artifact import ArtifactEntry, clean_artifact_path, list_children
from cairn.core.ids import check_id_reference
from cairn.core.limits import check_key, check_params, metric_value
from cairn.errors import InvalidInput


@pytest.mark.parametrize("key", ["loss", "val/auc", "a.b-c_d:e f", "é"])
def test_good_keys(key: str) -> None:
    assert check_key(key, "metrics") == key


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("", "non-empty"),
        ("x" * 251, "longer than 250"),
        ("a\nb", "use letters"),
        (" a", "use letters"),
        ("a/../b", "use letters"),
        ("a//b", "use letters"),
        (3, "non-empty string"),
    ],
)
def test_bad_keys_name_the_field(key: object, words: str) -> None:
    with pytest.raises(InvalidInput, match="metrics") as caught:
        check_key(key, "metrics")
    assert words in str(caught.value)


def test_params_become_strings_within_limits() -> None:
    assert check_params({"lr": 0.1, "depth": 6, "on": True, "none": None}) == {
        "lr": "0.1",
        "depth": "6",
        "on": "True",
        "none": "None",
    }
    with pytest.raises(InvalidInput, match=r"params\['big'\].*6000"):
        check_params({"big": "x" * 6001})


def test_metric_values() -> None:
    assert metric_value(np.float32(0.5), "k") == 0.5
    assert metric_value(3, "k") == 3.0
    assert math.isnan(metric_value(math.nan, "k"))
    for bad in ("0.5", True, None, [1]):
        with pytest.raises(InvalidInput, match=r"metrics\['k'\]: expected a number"):
            metric_value(bad, "k")


@pytest.mark.parametrize("path", ["../x", "a/../../b", "/etc/passwd", "C:/x", "a/\x00b"])
def test_artifact_paths_cannot_leave_the_run(path: str) -> None:
    with pytest.raises(InvalidInput, match="artifact_path"):
        clean_artifact_path(path)


def test_artifact_paths_are_normalised() -> None:
    assert clean_artifact_path("./reports//a/") == "reports/a"
    assert clean_artifact_path("") == ""


def test_listing_groups_folders() -> None:
    entries = [
        ArtifactEntry("a.txt", "d", 1),
        ArtifactEntry("r/b.txt", "d", 2),
        ArtifactEntry("r/s/c.txt", "d", 3),
    ]
    assert list_children(entries, "") == [
        ArtifactEntry("a.txt", "d", 1),
        ArtifactEntry("r", None, 5),
    ]
    assert list_children(entries, "r") == [
        ArtifactEntry("r/b.txt", "d", 2),
        ArtifactEntry("r/s", None, 3),
    ]


def test_run_id_references() -> None:
    assert check_id_reference("ABCDEF12") == "abcdef12"
    with pytest.raises(InvalidInput, match="at least 8"):
        check_id_reference("abc")
    with pytest.raises(InvalidInput, match="hexadecimal"):
        check_id_reference("zzzzzzzzzz")
