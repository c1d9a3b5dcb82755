"""Compiling a run search into one SQL query: filters, ordering and keyset pagination.

Each metric, param or tag the filter or the ordering names becomes a join on its table's
primary key, so the database filters and sorts with indexes and returns one page. The page
token records the sort values of the last row returned; the next page starts strictly
after it (keyset pagination), so deep pages cost what the first does.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    case,
    false,
    literal,
    or_,
    select,
)

from cairn.core.filter import Comparison, Entity, OrderBy, parse_filter, parse_order_by
from cairn.core.run import Lifecycle, ViewType
from cairn.core.search import RunQuery
from cairn.errors import InvalidInput
from cairn.stores.metadata.schema import latest_metrics, params, runs, tags

_ATTRIBUTE_COLUMNS = {
    "run_id": runs.c.id,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user": runs.c.user_name,
    "parent_run_id": runs.c.parent_id,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}
_KEYED_TABLES = {Entity.METRIC: latest_metrics, Entity.PARAM: params, Entity.TAG: tags}


@dataclass(frozen=True, slots=True)
class _SortKey:
    expression: ColumnElement[Any]
    descending: bool


class _Compiler:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.source: FromClause = runs
        self.joined: dict[tuple[Entity, str, bool], FromClause] = {}

    def keyed_value(self, entity: Entity, key: str, outer: bool) -> ColumnElement[Any]:
        """The value column of the metric, param or tag ``key``, joined once."""
        if entity is Entity.ATTRIBUTE:
            return _ATTRIBUTE_COLUMNS[key]
        alias = self.joined.get((entity, key, outer))
        if alias is None:
            table = _KEYED_TABLES[entity]
            alias = table.alias(f"{entity.value}_{len(self.joined)}")
            on = and_(alias.c.run_pk == runs.c.pk, alias.c.key == key)
            self.source = self.source.join(alias, on, isouter=outer)
            self.joined[(entity, key, outer)] = alias
        return alias.c.value

    def condition(self, comparison: Comparison) -> ColumnElement[bool]:
        column = self.keyed_value(comparison.entity, comparison.key, outer=False)
        op, value = comparison.op, comparison.value
        if isinstance(value, tuple):  # IN and NOT IN take a list
            return column.in_(value) if op == "IN" else column.not_in(value)
        if op == "=":
            return column == value
        if op == "!=":
            return column != value
        if op == "<":
            return column < value
        if op == "<=":
            return column <= value
        if op == ">":
            return column > value
        if op == ">=":
            return column >= value
        if op == "ILIKE":
            return column.ilike(value)
        return self.like(column, str(value))

    def like(self, column: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        if self.dialect != "sqlite":
            return column.like(pattern)
        # SQLite's LIKE ignores case; GLOB is its case-sensitive match, so translate.
        escaped = "".join(f"[{c}]" if c in "*?[" else c for c in pattern)
        return column.op("GLOB")(escaped.replace("%", "*").replace("_", "?"))

    def sort_keys(self, order: Sequence[OrderBy]) -> list[_SortKey]:
        keys: list[_SortKey] = []
        for clause in order:
            value = self.keyed_value(clause.entity, clause.key, outer=True)
            # Rows without the value come last whichever the direction.
            keys.append(_SortKey(case((value.is_(None), 1), else_=0), descending=False))
            keys.append(_SortKey(value, clause.descending))
        keys.append(_SortKey(runs.c.pk, descending=True))  # a total order, for keyset paging
        return keys


def compile_search(query: RunQuery, dialect: str) -> tuple[Select[Any], str]:
    """The query selecting one page of run keys and their sort values, and its fingerprint.

    Raises:
        FilterSyntaxError: the filter or an ordering clause is malformed.
        InvalidInput: the page token is malformed or belongs to another search.
    """
    comparisons = parse_filter(query.filter)
    order = parse_order_by(list(query.order_by))
    compiler = _Compiler(dialect)
    conditions = [compiler.condition(c) for c in comparisons]
    sort_keys = compiler.sort_keys(order)
    conditions.extend(_scope(query))
    fingerprint = _fingerprint(query)
    if query.page_token:
        after = decode_page_token(query.page_token, fingerprint, len(sort_keys))
        conditions.append(_after(sort_keys, after))
    statement = (
        select(runs.c.pk, *(k.expression for k in sort_keys))
        .select_from(compiler.source)
        .where(*conditions)
        .order_by(*(k.expression.desc() if k.descending else k.expression for k in sort_keys))
        .limit(query.limit + 1)  # one more tells whether a next page exists
    )
    return statement, fingerprint


def _scope(query: RunQuery) -> list[ColumnElement[bool]]:
    scope: list[ColumnElement[bool]] = []
    if query.experiment_ids:
        scope.append(runs.c.experiment_id.in_(list(query.experiment_ids)))
    if query.view is ViewType.ACTIVE:
        scope.append(runs.c.lifecycle == Lifecycle.ACTIVE.value)
    elif query.view is ViewType.DELETED:
        scope.append(runs.c.lifecycle == Lifecycle.DELETED.value)
    return scope


def _after(keys: list[_SortKey], last: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``last`` in the order ``keys`` define (NULL-aware)."""
    branches: list[ColumnElement[bool]] = []
    equal_so_far: list[ColumnElement[bool]] = []
    for key, value in zip(keys, last, strict=True):
        expression = key.expression
        if value is None:  # the null-flag key already placed these rows; all NULLs tie
            equal_so_far.append(expression.is_(None))
            continue
        beyond = expression < value if key.descending else expression > value
        branches.append(and_(*equal_so_far, beyond))
        equal_so_far.append(expression == literal(value))
    return or_(*branches) if branches else false()


def _fingerprint(query: RunQuery) -> str:
    shape = [sorted(query.experiment_ids), query.filter, list(query.order_by), query.view.value]
    return hashlib.blake2s(json.dumps(shape).encode(), digest_size=8).hexdigest()


def encode_page_token(fingerprint: str, sort_values: Sequence[Any]) -> str:
    payload = json.dumps([fingerprint, list(sort_values)]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str, width: int) -> list[Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        found, values = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"page_token {token!r}: not a token Cairn issued") from exc
    if found != fingerprint or not isinstance(values, list) or len(values) != width:
        raise InvalidInput(
            "page_token: it belongs to another search; repeat the same filter, order and "
            "experiments, or start again without a token"
        )
    return values
