"""``cairn users``, ``cairn tokens`` and ``cairn projects``: accounts, API tokens, roles.

With ``CAIRN_URI`` set these go through that server, which decides each one for the
caller's token (a project admin manages its members; installation admins manage accounts
and projects; everyone their own tokens). With ``--db``, or with no server configured,
they administer the database directly (the embedded store, or a server's database): the
way to create the first admin of a new server, before any token exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any

import typer

from cairn.cli.context import session
from cairn.cli.options import Db, Json
from cairn.cli.output import console, format_time
from cairn.cli.report import Line, Report, Table, View, render
from cairn.core.access import Role
from cairn.core.identity import AccountKind, Token, User
from cairn.core.identity_codec import new_token_to_dict, token_to_dict, user_to_dict
from cairn.core.ports import Accounts
from cairn.errors import InvalidInput

users = typer.Typer(help="Accounts: people and services.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens: shown once, stored as digests.", no_args_is_help=True)
projects = typer.Typer(help="Projects and the roles people have in them.", no_args_is_help=True)


def _store(db: str | None) -> Accounts:
    return session(db).accounts


@users.command("add")
def add_user(
    name: str,
    service: Annotated[bool, typer.Option("--service", help="A service account.")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="An installation admin.")] = False,
    db: Db = None,
) -> None:
    """Create an account."""
    kind = AccountKind.SERVICE if service else AccountKind.USER
    user: User = _store(db).add_user(name, kind, admin)
    console.print(f"{user.kind.value} {user.name} created{' (admin)' if admin else ''}")


@users.command("list")
def list_users(db: Db = None, json: Json = False) -> None:
    """List every account."""
    render(users_report(_store(db)), json)


def users_report(accounts: Accounts) -> Report[list[dict[str, Any]]]:
    """Every account."""
    found: list[User] = accounts.list_users()
    return Report([user_to_dict(u) for u in found], _users_views)


def _users_views(users: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (u["name"], u["kind"], "yes" if u["admin"] else "", "disabled" if u["disabled"] else "")
        for u in users
    ]
    yield Table("Accounts", ("name", "kind", "admin", "state"), rows)


@users.command("disable")
def disable_user(name: str, db: Db = None) -> None:
    """Disable an account: its tokens stop working at once."""
    _store(db).set_disabled(name, True)
    console.print(f"{name} disabled")


_LONGEST_DAYS = 36_500  # a token that outlives a century might as well never expire


@tokens.command("create")
def create_token(
    user: Annotated[str, typer.Option(help="The account the token acts for.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "token",
    expires_in_days: Annotated[
        int | None, typer.Option(help="Days until it stops working (default: never).")
    ] = None,
    db: Db = None,
    json: Json = False,
) -> None:
    """Create a token; its text is printed once and cannot be shown again."""
    expires_at = None
    if expires_in_days is not None:
        if not 0 < expires_in_days <= _LONGEST_DAYS:  # a date's arithmetic ends at year 9999
            raise InvalidInput(f"--expires-in-days: expected 1 to {_LONGEST_DAYS:,} days")
        expires = datetime.now(UTC) + timedelta(days=expires_in_days)
        expires_at = int(expires.timestamp() * 1000)
    made = _store(db).create_token(user, name, expires_at)
    render(Report(new_token_to_dict(made), _created_token_views), json)


def _created_token_views(token: Mapping[str, Any]) -> Iterator[View]:
    yield Line(f"token {token['id']} for {token['user']} (shown once, keep it safe):")
    yield Line(token["token"])


@tokens.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option(help="Only this account's tokens.")] = None,
    db: Db = None,
    json: Json = False,
) -> None:
    """List tokens (never their secrets)."""
    render(tokens_report(_store(db), user), json)


def tokens_report(accounts: Accounts, user: str | None = None) -> Report[list[dict[str, Any]]]:
    """The tokens of every account (or one's), never their secrets."""
    found: list[Token] = accounts.list_tokens(user)
    return Report([token_to_dict(t) for t in found], _tokens_views)


def _tokens_views(tokens: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (t["id"], t["user"], t["name"], format_time(t["created_at"]),
         format_time(t["expires_at"]) if t["expires_at"] else "never",
         "revoked" if t["revoked_at"] else "")
        for t in tokens
    ]  # fmt: skip
    yield Table("API tokens", ("id", "user", "name", "created", "expires", "state"), rows)


@tokens.command("revoke")
def revoke_token(token_id: str, db: Db = None) -> None:
    """Revoke a token: it stops working at once."""
    _store(db).revoke_token(token_id)
    console.print(f"token {token_id} revoked")


@projects.command("add")
def add_project(name: str, db: Db = None) -> None:
    """Create a project."""
    _store(db).add_project(name)
    console.print(f"project {name} created")


@projects.command("list")
def list_projects(db: Db = None, json: Json = False) -> None:
    """List projects."""
    render(projects_report(_store(db)), json)


def projects_report(accounts: Accounts) -> Report[list[str]]:
    """Every project's name."""
    found: list[str] = accounts.list_projects()
    return Report(found, _projects_views)


def _projects_views(names: list[str]) -> Iterator[View]:
    yield Table("Projects", ("name",), [(name,) for name in names])


@projects.command("members")
def members(project: str, db: Db = None, json: Json = False) -> None:
    """Who has which role in a project."""
    render(members_report(_store(db), project), json)


def members_report(accounts: Accounts, project: str) -> Report[list[dict[str, Any]]]:
    """Who has which role in a project."""
    found = [{"user": m.user, "role": m.role.value} for m in accounts.members(project)]
    return Report(found, partial(_members_views, project))


def _members_views(project: str, found: list[dict[str, Any]]) -> Iterator[View]:
    yield Table(f"Members of {project}", ("user", "role"), [(m["user"], m["role"]) for m in found])


@projects.command("grant")
def grant(
    project: str,
    user: str,
    role: Annotated[
        Role, typer.Argument(help="viewer, contributor, maintainer, approver or admin")
    ],
    db: Db = None,
) -> None:
    """Give an account a role in a project (replacing the one it had)."""
    _store(db).set_role(project, user, role)
    console.print(f"{user} is {role.value} in {project}")


@projects.command("revoke")
def revoke_role(project: str, user: str, db: Db = None) -> None:
    """Take an account's role in a project away."""
    _store(db).set_role(project, user, None)
    console.print(f"{user} has no role in {project} any more")
