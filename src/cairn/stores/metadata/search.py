"""Compiling a run search into one SQL query: filters, ordering and keyset pagination.

Each metric, param or tag the filter or the ordering names becomes a join on its table's
primary key, so the database filters and sorts with indexes and returns one page. The page
token records the sort values of the last row returned; the next page starts strictly
after it (keyset pagination), so deep pages cost what the first does.

A token is the caller's to read and to forge: it holds what the caller has seen and no
more. Its last row is named by the run's id, never by the table's internal key (which
counts the runs of every project); the next page looks that key up among the runs the
search covers only, so the id of a run from elsewhere finds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
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
from cairn.core.limits import INT64_MAX, INT64_MIN, text_problem
from cairn.core.run import Lifecycle, ViewType
from cairn.core.search import RunPage, RunQuery
from cairn.errors import InvalidInput
from cairn.stores.metadata import summary
from cairn.stores.metadata.engine import read_connection
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
_RUN_ID = re.compile(r"[0-9a-f]{32}")


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


def search_runs(engine: Engine, query: RunQuery) -> RunPage:
    """One page of the runs ``query`` asks for, and the token of the next (None: last).

    Raises:
        InvalidInput: a malformed filter, ordering or page token.
    """
    statement, fingerprint = compile_search(query, engine.dialect.name)
    with read_connection(engine) as conn:
        page = conn.execute(statement).all()
        more = len(page) > query.limit
        page = page[: query.limit]
        token = encode_page_token(fingerprint, list(page[-1][1:])) if more else None
        pks = [row[0] for row in page]
        rows = conn.execute(select(runs).where(runs.c.pk.in_(pks))).all() if pks else []
        by_pk = {row.pk: row for row in rows}
        return RunPage([summary.run_from_row(by_pk[pk]) for pk in pks], token)


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
        _check_sort_values(after[:-1], sort_keys[:-1])
        conditions.append(_after(sort_keys, _at_run(after, query)))
    statement = (
        # the key, then what a page token records: the sort values, ending with the run id
        select(runs.c.pk, *(k.expression for k in sort_keys[:-1]), runs.c.id)
        .select_from(compiler.source)
        .where(*conditions)
        .order_by(*(k.expression.desc() if k.descending else k.expression for k in sort_keys))
        .limit(query.limit + 1)  # one more tells whether a next page exists
    )
    return statement, fingerprint


def _scope(query: RunQuery, table: FromClause = runs) -> list[ColumnElement[bool]]:
    scope: list[ColumnElement[bool]] = []
    if query.experiment_ids:
        scope.append(table.c.experiment_id.in_(list(query.experiment_ids)))
    return scope + in_view(query.view, table)


def in_view(view: ViewType, table: FromClause = runs) -> list[ColumnElement[bool]]:
    """The conditions on a run's row for ``view`` to see it (none: every run)."""
    if view is ViewType.ACTIVE:
        return [table.c.lifecycle == Lifecycle.ACTIVE.value]
    if view is ViewType.DELETED:
        return [table.c.lifecycle == Lifecycle.DELETED.value]
    return []


def _at_run(values: list[Any], query: RunQuery) -> list[Any]:
    """A token's values, its last — the id of the last run shown — replaced by that run's
    key, looked up among the runs ``query`` covers (none, for a run of elsewhere).

    Raises:
        InvalidInput: the last value is not a run id.
    """
    run_id = values[-1]
    if not (isinstance(run_id, str) and _RUN_ID.fullmatch(run_id)):
        raise InvalidInput("page_token: not a token Cairn issued (it ends with no run id)")
    last = runs.alias("last_run")
    key = select(last.c.pk).where(last.c.id == run_id, *_scope(query, last))
    return [*values[:-1], key.scalar_subquery()]


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
        equal_so_far.append(expression == _bound(value))
    return or_(*branches) if branches else false()


def _bound(value: Any) -> ColumnElement[Any]:
    return value if isinstance(value, ColumnElement) else literal(value)


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
    except (ValueError, TypeError, RecursionError) as exc:  # nested too deep: forged
        raise InvalidInput(f"page_token {token[:100]!r}: not a token Cairn issued") from exc
    if found != fingerprint or not isinstance(values, list) or len(values) != width:
        raise InvalidInput(
            "page_token: it belongs to another search; repeat the same filter, order and "
            "experiments, or start again without a token"
        )
    return values


def _check_sort_values(values: list[Any], keys: list[_SortKey]) -> None:
    """A token's sort values are bound as query parameters: each must be of its key's
    type, and storable, or the token was not issued here.

    Raises:
        InvalidInput: naming ``page_token``.
    """
    for value, key in zip(values, keys, strict=True):
        kind = _python_type(key.expression)
        if value is not None and not _fits(value, kind):
            raise InvalidInput(
                f"page_token: not a token Cairn issued (it holds {json.dumps(value)[:40]} "
                f"where the search sorts by {_TYPE_NAMES[kind]})"
            )


def _python_type(expression: ColumnElement[Any]) -> type | None:
    try:
        found: type = expression.type.python_type
    except NotImplementedError:  # a type SQLAlchemy cannot name: any scalar will do
        return None
    return found if found in _TYPE_NAMES else None


def _fits(value: Any, kind: type | None) -> bool:
    whole = type(value) is int and INT64_MIN <= value <= INT64_MAX  # bool is not a number
    if kind is int:
        return whole
    if kind is float:
        return whole or type(value) is float
    text = type(value) is str and text_problem(value) is None
    return text if kind is str else whole or text or type(value) is float


_TYPE_NAMES: dict[type | None, str] = {
    int: "a whole number",
    float: "a number",
    str: "text",
    None: "a number or text",
}
