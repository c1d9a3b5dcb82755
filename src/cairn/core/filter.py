"""The run search language: MLflow's filter grammar, parsed into plain comparisons.

    metrics.val_auc > 0.9 and params.lr = '0.1' and tags.team IN ('growth', 'core')

A filter is comparisons joined by ``and``. The left side names an entity and a key
(``metrics.``, ``params.``, ``tags.``, ``attributes.``; the singular forms work too, and a key
with unusual characters can be quoted: ``metrics."val auc"`` or ``metrics.`val auc```).
Metrics compare with numbers; params and tags with strings (``= != LIKE ILIKE IN NOT IN``).

The stores compile the parsed form to their own query language; nothing here runs a query.
A malformed filter raises :class:`FilterSyntaxError` whose message quotes the filter and
puts a caret under the offending token.

A search is one SQL query, so a filter and an ordering are bounded by what a database
compiles: each metric, param or tag named is a join (SQLite joins at most 64 tables),
each comparison a term of one ``AND`` (SQLite nests expressions at most 1000 deep), each
value a bound parameter. Past one of the ``MAX_*`` limits below the parser refuses the
search, naming the limit, on the client and the server alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cairn.core.limits import MAX_TAG_VALUE, text_problem
from cairn.errors import FilterSyntaxError


class Entity(StrEnum):
    METRIC = "metrics"
    PARAM = "params"
    TAG = "tags"
    ATTRIBUTE = "attributes"


_ENTITY_NAMES = {
    "metric": Entity.METRIC,
    "metrics": Entity.METRIC,
    "param": Entity.PARAM,
    "params": Entity.PARAM,
    "parameter": Entity.PARAM,
    "parameters": Entity.PARAM,
    "tag": Entity.TAG,
    "tags": Entity.TAG,
    "attribute": Entity.ATTRIBUTE,
    "attributes": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
}

# Attributes a filter or an ordering may name, and whether they compare as numbers.
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
STRING_ATTRIBUTES = frozenset({"run_id", "run_name", "status", "user", "parent_run_id"})
_ATTRIBUTE_ALIASES = {"id": "run_id", "name": "run_name", "user_id": "user"}

MAX_FILTER_LENGTH = 100_000  # characters of a filter, or of an ordering clause
MAX_FILTER_KEYS = 32  # distinct metrics, params and tags one filter names
MAX_COMPARISONS = 100  # comparisons joined by `and`
MAX_FILTER_VALUES = 1000  # values compared with, those of IN lists included
MAX_VALUE_LENGTH = MAX_TAG_VALUE  # no stored value is longer
MAX_ORDER_BY = 8  # ordering clauses; each is a join too

NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")


@dataclass(frozen=True, slots=True)
class Comparison:
    entity: Entity
    key: str
    op: str  # one of NUMERIC_OPS or STRING_OPS, upper case
    value: float | str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OrderBy:
    entity: Entity
    key: str
    descending: bool = False

    def __str__(self) -> str:
        return f"{self.entity.value}.{self.key} {'DESC' if self.descending else 'ASC'}"


DEFAULT_ORDER = (OrderBy(Entity.ATTRIBUTE, "start_time", descending=True),)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # WORD STRING QUOTED NUMBER OP LPAREN RPAREN COMMA END
    text: str
    pos: int


_TOKEN = re.compile(
    r"""
    (?P<STRING>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<QUOTED>`[^`]*`)
  | (?P<NUMBER>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<OP><=|>=|!=|<>|==|=|<|>)
  | (?P<LPAREN>\()
  | (?P<RPAREN>\))
  | (?P<COMMA>,)
  | (?P<WORD>[A-Za-z_][\w.\-/:]*)
    """,
    re.VERBOSE,
)


def _tokenize(text: str, what: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            tokens.append(_Token("END", "", pos))
            return tokens
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise _error(text, pos, f"unexpected character {text[pos]!r}", what)
        tokens.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()


def _error(text: str, pos: int, problem: str, what: str) -> FilterSyntaxError:
    # Quote at most _SHOWN characters either side of the token: a filter may be long.
    start, end = max(0, pos - _SHOWN), pos + _SHOWN
    before, after = ("…" if start else ""), ("…" if end < len(text) else "")
    shown, caret = f"{before}{text[start:end]}{after}", len(before) + pos - start
    return FilterSyntaxError(f"{what}: {problem} at position {pos}\n  {shown}\n  {' ' * caret}^")


_SHOWN = 60


def _check_text(text: str, what: str) -> None:
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(
            f"{what}: {len(text)} characters; a search takes at most {MAX_FILTER_LENGTH}"
        )
    problem = text_problem(text)  # no stored value holds such text: bound, it would fail
    if problem is not None:
        raise FilterSyntaxError(f"{what}: {problem}")


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        _check_text(text, what)
        self.tokens = _tokenize(text, what)
        self.i = 0
        self.keys: set[tuple[Entity, str]] = set()
        self.values = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, problem: str, token: _Token | None = None) -> FilterSyntaxError:
        token = token or self.current
        return _error(self.text, token.pos, problem, self.what)

    def word_is(self, *words: str) -> bool:
        return self.current.kind == "WORD" and self.current.text.upper() in words

    def parse_filter(self) -> list[Comparison]:
        comparisons = [self.comparison()]
        while self.word_is("AND"):
            self.advance()
            if len(comparisons) == MAX_COMPARISONS:
                raise self.fail(f"more than {MAX_COMPARISONS} comparisons, the most a filter takes")
            comparisons.append(self.comparison())
        if self.current.kind != "END":
            raise self.fail(f"expected 'and' or the end of the filter, found {self.shown()}")
        return comparisons

    def count_value(self, token: _Token) -> None:
        """Count a value the filter compares with, against the limits of a query."""
        self.values += 1
        if self.values > MAX_FILTER_VALUES:
            raise self.fail(f"more than {MAX_FILTER_VALUES} values, the most a filter takes")
        if len(token.text) - 2 > MAX_VALUE_LENGTH:
            raise self.fail(f"a value longer than {MAX_VALUE_LENGTH} characters", token)

    def count_key(self, entity: Entity, key: str, token: _Token) -> None:
        if entity is Entity.ATTRIBUTE:  # a column of the run: no join
            return
        self.keys.add((entity, key))
        if len(self.keys) > MAX_FILTER_KEYS:
            raise self.fail(
                f"more than {MAX_FILTER_KEYS} distinct metrics, params and tags, the most a "
                "filter names",
                token,
            )

    def parse_order_by(self) -> OrderBy:
        entity, key = self.identifier()
        descending = False
        if self.word_is("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        if self.current.kind != "END":
            raise self.fail(f"expected ASC, DESC or the end, found {self.shown()}")
        return OrderBy(entity, key, descending)

    def shown(self) -> str:
        return "the end" if self.current.kind == "END" else repr(self.current.text)

    def identifier(self) -> tuple[Entity, str]:
        token = self.current
        if token.kind != "WORD" or "." not in token.text:
            raise self.fail(
                "expected metrics.<key>, params.<key>, tags.<key> or attributes.<name>, "
                f"found {self.shown()}"
            )
        self.advance()
        prefix, _, key = token.text.partition(".")
        entity = _ENTITY_NAMES.get(prefix.lower())
        if entity is None:
            raise self.fail(
                f"unknown entity {prefix!r}; use metrics, params, tags or attributes", token
            )
        if not key:
            key = self.quoted_key(token)
        if not key:
            raise self.fail(f"missing key after {token.text!r}", token)
        if entity is Entity.ATTRIBUTE:
            key = self.attribute(key, token)
        return entity, key

    def quoted_key(self, after: _Token) -> str:
        token = self.current
        adjacent = token.pos == after.pos + len(after.text)
        if token.kind in ("STRING", "QUOTED") and adjacent:
            self.advance()
            return _unquote(token.text)
        return ""

    def attribute(self, name: str, token: _Token) -> str:
        name = _ATTRIBUTE_ALIASES.get(name, name)
        if name not in NUMERIC_ATTRIBUTES | STRING_ATTRIBUTES:
            known = ", ".join(sorted(NUMERIC_ATTRIBUTES | STRING_ATTRIBUTES))
            raise self.fail(f"unknown attribute {name!r}; known: {known}", token)
        return name

    def comparison(self) -> Comparison:
        named = self.current
        entity, key = self.identifier()
        self.count_key(entity, key, named)
        numeric = entity is Entity.METRIC or (
            entity is Entity.ATTRIBUTE and key in NUMERIC_ATTRIBUTES
        )
        op_token = self.current
        op = self.operator()
        allowed = NUMERIC_OPS if numeric else STRING_OPS
        if op not in allowed:
            raise self.fail(
                f"operator {op} does not apply to {entity.value}.{key}; use {' '.join(allowed)}",
                op_token,
            )
        if op in ("IN", "NOT IN"):
            return Comparison(entity, key, op, self.string_list())
        value: float | str = self.number() if numeric else self.string()
        return Comparison(entity, key, op, value)

    def operator(self) -> str:
        token = self.current
        if token.kind == "OP":
            self.advance()
            return {"==": "=", "<>": "!="}.get(token.text, token.text)
        if self.word_is("LIKE", "ILIKE", "IN"):
            return self.advance().text.upper()
        if self.word_is("NOT"):
            self.advance()
            if self.word_is("IN"):
                self.advance()
                return "NOT IN"
            raise self.fail(f"expected IN after NOT, found {self.shown()}")
        raise self.fail(
            f"expected a comparison operator (= != < <= > >= LIKE ILIKE IN), found {self.shown()}"
        )

    def number(self) -> float:
        token = self.current
        if token.kind != "NUMBER":
            raise self.fail(f"expected a number, found {self.shown()}")
        self.count_value(token)
        self.advance()
        return float(token.text)

    def string(self) -> str:
        token = self.current
        if token.kind != "STRING":
            raise self.fail(f"expected a quoted string such as '0.1', found {self.shown()}")
        self.count_value(token)
        self.advance()
        return _unquote(token.text)

    def string_list(self) -> tuple[str, ...]:
        if self.current.kind != "LPAREN":
            raise self.fail(f"expected '(' to open the list, found {self.shown()}")
        self.advance()
        values = [self.string()]
        while self.current.kind == "COMMA":
            self.advance()
            values.append(self.string())
        if self.current.kind != "RPAREN":
            raise self.fail(f"expected ',' or ')' in the list, found {self.shown()}")
        self.advance()
        return tuple(values)


def _unquote(text: str) -> str:
    body = text[1:-1]
    if text[0] == "`":
        return body
    return re.sub(r"\\(.)", r"\1", body)


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse a filter string; an empty or missing filter matches everything.

    Raises:
        FilterSyntaxError: the filter is malformed, or beyond a limit of a search (see
            the module); the message points at the token.
    """
    if text is None or not text.strip():
        return []
    return _Parser(text, "filter").parse_filter()


def parse_order_by(clauses: list[str] | tuple[str, ...] | None) -> tuple[OrderBy, ...]:
    """Parse ``["metrics.val_auc DESC", "params.lr"]``; none means newest first.

    Raises:
        FilterSyntaxError: a clause is malformed, or there are more than ``MAX_ORDER_BY``.
    """
    if not clauses:
        return DEFAULT_ORDER
    if len(clauses) > MAX_ORDER_BY:
        raise FilterSyntaxError(
            f"order_by: {len(clauses)} clauses; a search orders by at most {MAX_ORDER_BY}"
        )
    return tuple(_Parser(clause, "order_by").parse_order_by() for clause in clauses)
