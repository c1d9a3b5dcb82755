"""What Cairn accepts as a key, a value, a name: checked before anything is written."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from cairn.errors import InvalidInput

MAX_KEY = 250
MAX_NAME = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
# Keys name metrics, params and tags: letters, digits and a few separators, so that they
# can appear in filters and in file names without quoting surprises.
_KEY = re.compile(r"^[\w\-. /:]+$")
_INT64 = 2**63


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


def check_name(name: object, field: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field}: expected a non-empty name, got {name!r}")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{field}: longer than {MAX_NAME} characters ({len(name)})")
    return name


def param_value(value: Any, key: str) -> str:
    """Params are stored as strings, like MLflow's; the limit applies to that string."""
    text = value if isinstance(value, str) else _render(value)
    if len(text) > MAX_PARAM_VALUE:
        raise InvalidInput(
            f"params[{key!r}]: value longer than {MAX_PARAM_VALUE} characters ({len(text)})"
        )
    return text


def tag_value(value: Any, key: str) -> str:
    text = value if isinstance(value, str) else _render(value)
    if len(text) > MAX_TAG_VALUE:
        raise InvalidInput(
            f"tags[{key!r}]: value longer than {MAX_TAG_VALUE} characters ({len(text)})"
        )
    return text


def check_params(params: Mapping[str, Any]) -> dict[str, str]:
    return {check_key(k, "params"): param_value(v, k) for k, v in params.items()}


def check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {check_key(k, "tags"): tag_value(v, k) for k, v in tags.items()}


def metric_value(value: object, key: str) -> float:
    """Numbers become floats; NaN and ±inf are allowed; bools and strings are not."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool | str | bytes):
        raise _not_a_number(value, key)
    try:
        return float(value)  # type: ignore[arg-type]  # int, numpy scalars, Decimal …
    except (TypeError, ValueError):
        raise _not_a_number(value, key) from None


def _not_a_number(value: object, key: str) -> InvalidInput:
    return InvalidInput(
        f"metrics[{key!r}]: expected a number, got {type(value).__name__} {value!r}"
    )


def metric_step(step: object, key: str) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or not -_INT64 <= step < _INT64:
        raise InvalidInput(f"metrics[{key!r}]: step must be a 64-bit integer, got {step!r}")
    return step


def _render(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return str(value)
