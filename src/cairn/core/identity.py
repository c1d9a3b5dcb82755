"""Users, service accounts, API tokens and projects: their shapes and their rules.

An API token reads ``cairn_<id>_<secret>``: the id (16 hex digits) names the token and is
safe to show; the secret (32 random bytes, base64url) is shown once, when the token is made,
and only its SHA-256 is stored. A secret that long needs no slow hash: guessing it is out of
reach however fast each guess is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from cairn.core.access import Role
from cairn.errors import InvalidInput, Unauthenticated

TOKEN_PREFIX = "cairn_"  # noqa: S105  # a marker, not a secret
_TOKEN = re.compile(r"^cairn_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
DEFAULT_PROJECT = "default"


class AccountKind(StrEnum):
    USER = "user"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    kind: AccountKind
    is_admin: bool
    disabled: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class Token:
    """A token as stored: never its secret."""

    id: str
    user: str
    name: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class Membership:
    project: str
    user: str
    role: Role


def check_name(name: str, what: str) -> str:
    """User, service account and project names: lower-case letters, digits, ``. _ -``.

    Raises:
        InvalidInput: naming the field and what was expected.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{what} {name!r}: expected 1 to 63 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def new_token() -> tuple[str, str, str]:
    """``(token id, the whole token to show once, the digest to store)``."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}", secret_digest(secret)


def parse_token(text: str) -> tuple[str, str]:
    """``(token id, secret)`` of a presented token.

    Raises:
        Unauthenticated: the text is not a Cairn API token.
    """
    found = _TOKEN.match(text.strip())
    if found is None:
        raise Unauthenticated(
            "the API token is malformed: expected cairn_<16 hex digits>_<43 characters> "
            "(create one with `cairn tokens create`)"
        )
    return found.group(1), found.group(2)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(secret_digest(secret), stored_digest)
