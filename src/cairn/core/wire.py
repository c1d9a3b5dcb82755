"""The types values must have on the wire, declared once for the server to check them
where they enter (pydantic validates a request against them, and a refusal is a 400
``INVALID_INPUT`` naming the field) and for a table of operations to name
(``cairn.core.operations.Arg.shape``).

JSON numbers have no limit and JSON strings may hold NUL or a lone surrogate (``\\ud800``),
but the database stores whole numbers in 64 bits and text as UTF-8 without NUL: a field is
an ``Int64`` or a ``Timestamp`` rather than an ``int``, and a ``Text`` rather than a ``str``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from cairn.core.limits import INT64_MAX, INT64_MIN, text_problem


def _storable(text: str) -> str:
    problem = text_problem(text)
    if problem is not None:  # reported by pydantic, which knows the field's name
        raise PydanticCustomError("text", problem)
    return text


# A whole number the database stores in 64 bits; true and false are not numbers here.
Int64 = Annotated[int, Strict(), Field(ge=INT64_MIN, le=INT64_MAX)]
Timestamp = Annotated[Int64, Field(description="milliseconds since the epoch")]
# In a query string every value is text: the number is parsed from it, so not strict.
TimestampParameter = Annotated[
    int, Field(ge=INT64_MIN, le=INT64_MAX, description="milliseconds since the epoch")
]
# A count or a size: 0 or more.
Count = Annotated[Int64, Field(ge=0)]
# The same in a path or a query string, where it is parsed from text.
CountParameter = Annotated[int, Field(ge=0, le=INT64_MAX)]
# A model version's number: 1 or more (not true, nor the text "1").
VersionNumber = Annotated[Int64, Field(ge=1)]
# The same in a path or a query string, where it is parsed from text.
VersionParameter = Annotated[int, Field(ge=1, le=INT64_MAX)]
# A content digest, as the artifact store names objects.
_DIGEST = r"blake3:[0-9a-f]{64}"
Digest = Annotated[str, Strict(), Field(pattern=rf"^{_DIGEST}$")]
# The same, or "" where no object is named (a data version's profile, when it has no tables).
DigestOrEmpty = Annotated[str, Strict(), Field(pattern=rf"^$|^{_DIGEST}$")]
Text = Annotated[str, AfterValidator(_storable)]


class Shape(BaseModel):
    """A JSON object's shape: the fields it may hold, and no other."""

    model_config = ConfigDict(extra="forbid")
