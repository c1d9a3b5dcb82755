"""What Cairn accepts as a key, a value, a name, a number: checked before anything is
written, the same way whether it comes through the SDK or the REST API.

Params and tags are stored as strings, as MLflow stores them: a value that is not a string
is written as MLflow writes it (``str``: ``0.1``, ``True``, ``None``), except that a mapping,
list or tuple becomes JSON (``{"depth": 6}``), which any client can read back, rather than
a Python repr.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from cairn.errors import InvalidInput

MAX_KEY = 250
MAX_NAME = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_MESSAGE = 10_000  # a data version's message, a model version's description
# Numbers the database stores as 64-bit integers (steps, timestamps, sizes, limits).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Keys name metrics, params and tags: letters, digits and a few separators, so that they
# can appear in filters and in file names without quoting surprises.
_KEY = re.compile(r"^[\w\-. /:]+$")


def check_key(key: object, field: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{field}: expected a non-empty string key, got {key!r}")
    if len(key) > MAX_KEY:
        raise InvalidInput(
            f"{field} key {key[:40]!r}…: longer than {MAX_KEY} characters ({len(key)})"
        )
    if not _KEY.match(key) or key != key.strip() or "//" in key or ".." in key.split("/"):
        raise InvalidInput(
            f"{field} key {key!r}: use letters, digits, '_', '-', '.', ' ', ':' and '/'"
        )
    return key


def check_text(text: str, field: str) -> str:
    """Text Cairn stores (names, tags, params, descriptions, messages) is valid Unicode
    without NUL (see ``text_problem``).

    Raises:
        InvalidInput: naming the field and what is wrong with the text.
    """
    problem = text_problem(text)
    if problem is not None:
        raise InvalidInput(f"{field}: {problem}")
    return text


def text_problem(text: str) -> str | None:
    """What makes ``text`` unfit to store, or None. NUL: PostgreSQL cannot store it, and C
    tools would cut the text short there. A lone surrogate (``\\ud800``, which JSON may
    escape): it is not Unicode, so it has no UTF-8 bytes to store."""
    if "\x00" in text:
        return "must not contain the NUL character (\\x00)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must be Unicode text; it holds a lone surrogate (such as \\ud800)"
    return None


def check_name(name: object, field: str) -> str:
    """Raises:
    InvalidInput: ``name`` is not a non-empty string of at most ``MAX_NAME`` characters
        of storable text (``text_problem``).
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field}: expected a non-empty name, got {name!r}")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{field}: longer than {MAX_NAME} characters ({len(name)})")
    return check_text(name, field)


def check_optional_text(text: object, field: str, longest: int) -> str | None:
    """Raises:
    InvalidInput: ``text`` is neither None nor a string of at most ``longest``
        characters of storable text (``text_problem``).
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput(f"{field}: expected a string or null, got {type(text).__name__}")
    if len(text) > longest:
        raise InvalidInput(f"{field}: longer than {longest} characters ({len(text)})")
    return check_text(text, field)


def check_int64(value: object, field: str) -> int:
    """Raises:
    InvalidInput: ``value`` is not a whole number the database can store in 64 bits.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field}: expected a whole number, got {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInput(f"{field}: expected a 64-bit integer (at most {INT64_MAX})")
    return value


def param_value(value: Any, key: str) -> str:
    """A param's value as stored: a string (see the module's docstring), at most
    ``MAX_PARAM_VALUE`` characters.

    Raises:
        InvalidInput: the value is too long, not storable text, or cannot be JSON.
    """
    return _stored_text(value, f"params[{key!r}]", MAX_PARAM_VALUE)


def tag_value(value: Any, key: str) -> str:
    """A tag's value as stored, like a param's; at most ``MAX_TAG_VALUE`` characters.

    Raises:
        InvalidInput: the value is too long, not storable text, or cannot be JSON.
    """
    return _stored_text(value, f"tags[{key!r}]", MAX_TAG_VALUE)


def _stored_text(value: Any, field: str, longest: int) -> str:
    text = value if isinstance(value, str) else _render(value, field)
    if len(text) > longest:
        raise InvalidInput(f"{field}: value longer than {longest} characters ({len(text)})")
    return check_text(text, field)


def check_params(params: Mapping[str, Any]) -> dict[str, str]:
    return {check_key(k, "params"): param_value(v, k) for k, v in params.items()}


def check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {check_key(k, "tags"): tag_value(v, k) for k, v in tags.items()}


def metric_value(value: object, key: str) -> float:
    """Numbers become floats; NaN and ±inf are allowed; bools and strings are not.

    Raises:
        InvalidInput: ``value`` is not a number, or too large for a 64-bit float.
    """
    if isinstance(value, float):
        return value
    if isinstance(value, bool | str | bytes):
        raise _not_a_number(value, key)
    try:
        return float(value)  # type: ignore[arg-type]  # int, numpy scalars, Decimal …
    except OverflowError:  # an int beyond ~1.8e308: refused, not rounded to infinity
        raise InvalidInput(
            f"metrics[{key!r}]: expected a number a 64-bit float can hold (up to about "
            f"1.8e308), got {type(value).__name__} too large for one"
        ) from None
    except (TypeError, ValueError):
        raise _not_a_number(value, key) from None


def _not_a_number(value: object, key: str) -> InvalidInput:
    return InvalidInput(
        f"metrics[{key!r}]: expected a number, got {type(value).__name__} {value!r}"
    )


def metric_step(step: object, key: str) -> int:
    """Raises:
    InvalidInput: ``step`` is not a 64-bit integer.
    """
    if isinstance(step, bool) or not isinstance(step, int) or not INT64_MIN <= step <= INT64_MAX:
        raise InvalidInput(f"metrics[{key!r}]: step must be a 64-bit integer, got {step!r}")
    return step


def _render(value: Any, field: str) -> str:
    if isinstance(value, Mapping | list | tuple):
        try:
            return json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as exc:  # keys that are not strings, a cycle …
            raise InvalidInput(f"{field}: cannot be written as JSON ({exc})") from None
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return str(value)


def _json_default(value: Any) -> Any:
    """Inside a mapping or list: numpy values as the numbers they hold, else ``str``."""
    to_list = getattr(value, "tolist", None)
    return to_list() if callable(to_list) else str(value)


def finite(number: float) -> bool:
    """Whether ``number`` is a finite float (a whole number no float can hold is not)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False
