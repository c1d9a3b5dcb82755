"""Identifiers: how they are made and how users may abbreviate them."""

from __future__ import annotations

import re
import uuid

from cairn.errors import InvalidInput

ID_LENGTH = 32
MIN_PREFIX = 8
_HEX = re.compile(r"^[0-9a-f]+$")
_ID = re.compile(f"[0-9a-f]{{{ID_LENGTH}}}")


def new_id() -> str:
    """A fresh 32-hex identifier."""
    return uuid.uuid4().hex


def check_id_reference(ref: str, what: str = "run id") -> str:
    """Validate a full id or an abbreviation of at least 8 hex characters.

    Raises:
        InvalidInput: ``ref`` is not hexadecimal, or is shorter than 8 characters.
    """
    text = ref.strip().lower()
    if not _HEX.match(text) or len(text) > ID_LENGTH:
        raise InvalidInput(f"{what} {ref!r}: expected up to {ID_LENGTH} hexadecimal characters")
    if len(text) < MIN_PREFIX:
        raise InvalidInput(
            f"{what} {ref!r}: too short to be unique; give at least {MIN_PREFIX} characters"
        )
    return text


def check_id(value: object, field: str) -> str:
    """A whole id, as Cairn makes them (32 lowercase hexadecimal characters).

    Raises:
        InvalidInput: naming ``field``.
    """
    if not isinstance(value, str) or not _ID.fullmatch(value):
        shown = repr(value[: ID_LENGTH + 8] if isinstance(value, str) else value)
        raise InvalidInput(
            f"{field}: {shown} is not a whole id ({ID_LENGTH} lowercase hexadecimal characters)"
        )
    return value
