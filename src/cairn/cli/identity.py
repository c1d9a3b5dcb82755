"""``cairn users``, ``cairn tokens`` and ``cairn projects``: accounts, API tokens, roles.

With ``CAIRN_URI`` set these go through that server, which decides each one for the
caller's token (a project admin manages its members; installation admins manage accounts
and projects; everyone their own tokens). With ``--db``, or with no server configured,
they administer the database directly (the embedded store, or a server's database): the
way to create the first admin of a new server, before any token exists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cairn.cli.context import session
from cairn.cli.output import console, format_time, print_json, table
from cairn.core.access import Role
from cairn.core.identity import AccountKind, Token, User
from cairn.core.identity_codec import token_to_dict, user_to_dict
from cairn.core.ports import Accounts
from cairn.errors import InvalidInput

users = typer.Typer(help="Accounts: people and services.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens: shown once, stored as digests.", no_args_is_help=True)
projects = typer.Typer(help="Projects and the roles people have in them.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Db = Annotated[
    str | None,
    typer.Option(
        help="Work in this metadata database directly (default: through CAIRN_URI's "
        "server if set, else in the embedded store)."
    ),
]


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
    found: list[User] = _store(db).list_users()
    if json:
        print_json([user_to_dict(u) for u in found])
        return
    rows = [
        (u.name, u.kind.value, "yes" if u.is_admin else "", "disabled" if u.disabled else "")
        for u in found
    ]
    table("Accounts", ("name", "kind", "admin", "state"), rows)


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
    token, text = _store(db).create_token(user, name, expires_at)
    if json:
        print_json({**token_to_dict(token), "token": text})
        return
    console.print(f"token {token.id} for {user} (shown once, keep it safe):\n{text}")


@tokens.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option(help="Only this account's tokens.")] = None,
    db: Db = None,
    json: Json = False,
) -> None:
    """List tokens (never their secrets)."""
    found: list[Token] = _store(db).list_tokens(user)
    if json:
        print_json([token_to_dict(t) for t in found])
        return
    rows = [
        (
            t.id,
            t.user,
            t.name,
            format_time(t.created_at),
            format_time(t.expires_at) if t.expires_at else "never",
            "revoked" if t.revoked_at else "",
        )
        for t in found
    ]
    table("API tokens", ("id", "user", "name", "created", "expires", "state"), rows)


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
    found: list[str] = _store(db).list_projects()
    if json:
        print_json(found)
        return
    table("Projects", ("name",), [(name,) for name in found])


@projects.command("members")
def members(project: str, db: Db = None, json: Json = False) -> None:
    """Who has which role in a project."""
    found = _store(db).members(project)
    if json:
        print_json([{"user": m.user, "role": m.role.value} for m in found])
        return
    table(f"Members of {project}", ("user", "role"), [(m.user, m.role.value) for m in found])


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
