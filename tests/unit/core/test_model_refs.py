"""Model references as users type them, and the names and aliases a registry accepts."""

from __future__ import annotations

import pytest

from cairn.core.model import ModelRef, check_alias, check_model_name, parse_model_ref
from cairn.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", ModelRef("churn")),
        ("churn@latest", ModelRef("churn")),
        ("churn/3", ModelRef("churn", version=3)),
        ("churn@champion", ModelRef("churn", alias="champion")),
        ("models:/churn@champion", ModelRef("churn", alias="champion")),
        ("models:/churn/12", ModelRef("churn", version=12)),
        ("fraud.v2@prod-eu", ModelRef("fraud.v2", alias="prod-eu")),
    ],
)
def test_references_users_type(text: str, expected: ModelRef) -> None:
    assert parse_model_ref(text) == expected


def test_a_reference_prints_as_it_is_typed() -> None:
    assert [str(parse_model_ref(t)) for t in ("churn", "churn/3", "churn@champion")] == [
        "churn@latest",
        "churn/3",
        "churn@champion",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("churn/x", "after '/' expected a version number"),
        ("churn/0", "after '/' expected a version number"),
        ("churn@3", "a version is written churn/3"),
        ("churn@Champion", "after '@' expected an alias"),
        ("", "model name ''"),
        ("-churn@x", "model name '-churn'"),
    ],
)
def test_malformed_references_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_model_ref(text)


def test_aliases_are_checked_and_latest_is_reserved() -> None:
    assert check_alias("champion") == "champion"
    with pytest.raises(InvalidInput, match="reserved"):
        check_alias("latest")
    with pytest.raises(InvalidInput, match="lowercase"):
        check_alias("3")
    with pytest.raises(InvalidInput, match="model name"):
        check_model_name("a b")
