"""Accounts, tokens and memberships as JSON: one shape for the server's API, its client
and the CLI's ``--json``. A token's secret is never part of a token's shape: it travels
once, next to it, when the token is made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.core.access import Role
from cairn.core.identity import AccountKind, Membership, Token, User


def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "kind": user.kind.value,
        "admin": user.is_admin,
        "disabled": user.disabled,
        "created_at": user.created_at,
    }


def user_from_dict(data: Mapping[str, Any]) -> User:
    return User(
        data["name"],
        AccountKind(data["kind"]),
        bool(data["admin"]),
        bool(data["disabled"]),
        data["created_at"],
    )


def token_to_dict(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "user": token.user,
        "name": token.name,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


def token_from_dict(data: Mapping[str, Any]) -> Token:
    return Token(
        data["id"],
        data["user"],
        data["name"],
        data["created_at"],
        data["expires_at"],
        data["revoked_at"],
    )


def new_token_to_dict(made: tuple[Token, str]) -> dict[str, Any]:
    """A token just made, with its whole text in ``token``: the one answer holding it."""
    token, text = made
    return {**token_to_dict(token), "token": text}


def new_token_from_dict(data: Mapping[str, Any]) -> tuple[Token, str]:
    return token_from_dict(data), str(data["token"])


def membership_to_dict(membership: Membership) -> dict[str, Any]:
    return {"project": membership.project, "user": membership.user, "role": membership.role.value}


def membership_from_dict(data: Mapping[str, Any]) -> Membership:
    return Membership(data["project"], data["user"], Role(data["role"]))
