"""Keys, values and paths Cairn accepts, and the errors for those it does not."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from cairn.core.access import Principal
from cairn.core.actor import Acting
from cairn.core.artifact import ArtifactEntry, clean_artifact_path, list_children
from cairn.core.ids import check_id_reference
from cairn.core.limits import (
    INT64_MAX,
    check_int64,
    check_key,
    check_name,
    check_params,
    check_tags,
    metric_value,
)
from cairn.core.run import NewRun, check_new_run, run_user
from cairn.errors import InvalidInput, PermissionDenied


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


def test_structured_params_are_json_and_what_is_not_json_is_refused() -> None:
    assert check_params({"opt": {"name": "adam", "betas": (0.9, np.float32(0.5))}}) == {
        "opt": '{"name": "adam", "betas": [0.9, 0.5]}'
    }
    with pytest.raises(InvalidInput, match=r"params\['opt'\]: cannot be written as JSON"):
        check_params({"opt": {("a", "b"): 1}})


@pytest.mark.parametrize(
    ("text", "problem"),
    [("a\x00b", "must not contain the NUL character"), ("a\ud800", "lone surrogate")],
)
def test_text_no_database_can_store_is_refused_naming_the_field(text: str, problem: str) -> None:
    for check, field in (
        (lambda: check_name(text, "run name"), "run name"),
        (lambda: check_params({"lr": text}), "params['lr']"),
        (lambda: check_tags({"team": text}), "tags['team']"),
    ):
        with pytest.raises(InvalidInput) as caught:
            check()
        assert str(caught.value).startswith(f"{field}: ")
        assert problem in str(caught.value)


def test_whole_numbers_must_fit_64_bits() -> None:
    assert check_int64(INT64_MAX, "end_time") == INT64_MAX
    for bad, words in ((INT64_MAX + 1, "64-bit integer"), (True, "whole number, got bool")):
        with pytest.raises(InvalidInput, match=f"end_time: expected a {words}"):
            check_int64(bad, "end_time")


def test_a_new_run_is_checked_field_by_field() -> None:
    good = NewRun("e" * 32, "baseline", 1, None, tags={"n": 3})  # type: ignore[dict-item]
    assert check_new_run(good).tags == {"n": "3"}
    for change, field in (
        ({"start_time": 2**70}, "start_time"),
        ({"name": ""}, "name"),
        ({"git_commit": "c" * 65}, "git_commit"),
        ({"user": "a\x00"}, "user"),
        ({"parent_id": "f" * 33}, "parent_id"),
    ):
        with pytest.raises(InvalidInput, match=f"^{field}: "):
            check_new_run(dataclasses.replace(good, **change))


def test_an_account_starts_runs_as_itself_and_others_name_whom_they_like() -> None:
    alice = Principal("alice", account=True)
    assert run_user(None, Acting("alice", None, alice)) == "alice"
    assert run_user("alice", Acting("alice", None, alice)) == "alice"
    with pytest.raises(PermissionDenied, match=r"^user: alice may not start a run as 'bob'"):
        run_user("bob", Acting("alice", None, alice))
    admin = Principal("root", is_admin=True, account=True)
    with pytest.raises(PermissionDenied):
        run_user("bob", Acting("root", None, admin))
    # The embedded store (no principal) and a server without authentication (a principal
    # that is no account) have nothing to check a name against.
    assert run_user("bob", Acting("local:bob")) == "bob"
    assert run_user(None, Acting("local:bob")) == "local:bob"
    assert run_user("bob", Acting("anonymous", None, Principal("anonymous", True))) == "bob"


def test_metric_values() -> None:
    assert metric_value(np.float32(0.5), "k") == 0.5
    assert metric_value(3, "k") == 3.0
    assert math.isnan(metric_value(math.nan, "k"))
    for bad in ("0.5", True, None, [1], 10**400):
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
