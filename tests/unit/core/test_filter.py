"""The filter language: what parses, into what, and how errors point at the problem."""

from __future__ import annotations

import pytest

from cairn.core.filter import Comparison, Entity, OrderBy, parse_filter, parse_order_by
from cairn.errors import FilterSyntaxError


def test_the_issue_example_parses() -> None:
    parsed = parse_filter("metrics.val_auc > 0.9 and params.lr = '0.1' and tags.team = 'growth'")
    assert parsed == [
        Comparison(Entity.METRIC, "val_auc", ">", 0.9),
        Comparison(Entity.PARAM, "lr", "=", "0.1"),
        Comparison(Entity.TAG, "team", "=", "growth"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metric.loss <= -1e-3", Comparison(Entity.METRIC, "loss", "<=", -0.001)),
        (
            'params."learning rate" != "a\\"b"',
            Comparison(Entity.PARAM, "learning rate", "!=", 'a"b'),
        ),
        ("tags.`my tag` LIKE 'x%'", Comparison(Entity.TAG, "my tag", "LIKE", "x%")),
        ("tags.t ilike 'X%'", Comparison(Entity.TAG, "t", "ILIKE", "X%")),
        ("params.lr IN ('0.1','0.2')", Comparison(Entity.PARAM, "lr", "IN", ("0.1", "0.2"))),
        ("params.lr not in ('0.1')", Comparison(Entity.PARAM, "lr", "NOT IN", ("0.1",))),
        ("attributes.status = 'FAILED'", Comparison(Entity.ATTRIBUTE, "status", "=", "FAILED")),
        ("attribute.name = 'x'", Comparison(Entity.ATTRIBUTE, "run_name", "=", "x")),
        ("attributes.start_time >= 100", Comparison(Entity.ATTRIBUTE, "start_time", ">=", 100.0)),
        ("metrics.train/loss == 1", Comparison(Entity.METRIC, "train/loss", "=", 1.0)),
        ("metrics.a.b > 1", Comparison(Entity.METRIC, "a.b", ">", 1.0)),
    ],
)
def test_forms_of_comparison(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == [expected]


def test_empty_filter_matches_everything() -> None:
    assert parse_filter("") == []
    assert parse_filter("   ") == []
    assert parse_filter(None) == []


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("metrics.auc >> 0.9", 13, "expected a number"),
        ("metrics.auc > 'high'", 14, "expected a number"),
        ("params.lr = 0.1", 12, "quoted string"),
        ("params.lr > '0.1'", 10, "does not apply to params.lr"),
        ("auc > 0.9", 0, "expected metrics.<key>"),
        ("metricz.auc > 1", 0, "unknown entity 'metricz'"),
        ("attributes.colour = 'red'", 0, "unknown attribute 'colour'"),
        ("metrics.auc > 0.9 or metrics.x < 1", 18, "expected 'and'"),
        ("metrics.auc > 0.9 and", 21, "found the end"),
        ("params.lr IN '0.1'", 13, "expected '('"),
        ("params.lr IN ('0.1' '0.2')", 20, "expected ',' or ')'"),
        ("metrics.auc ~ 1", 12, "unexpected character"),
        ("params.lr = 'open", 12, "unexpected character"),
    ],
)
def test_errors_point_at_the_offending_token(text: str, position: int, words: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    message = str(caught.value)
    assert words in message
    assert f"position {position}" in message
    caret_line = message.splitlines()[-1]
    assert caret_line.index("^") - 2 == position  # the caret sits under the token


def test_order_by() -> None:
    assert parse_order_by(["metrics.auc DESC", "params.lr"]) == (
        OrderBy(Entity.METRIC, "auc", descending=True),
        OrderBy(Entity.PARAM, "lr", descending=False),
    )
    assert parse_order_by(None) == (OrderBy(Entity.ATTRIBUTE, "start_time", descending=True),)
    with pytest.raises(FilterSyntaxError, match="expected ASC, DESC"):
        parse_order_by(["metrics.auc DOWN"])
