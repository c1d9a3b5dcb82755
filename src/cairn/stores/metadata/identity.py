"""Accounts, API tokens, projects and roles in the metadata store.

Every change is authorized and audited in its own transaction, like any other write (see
``grants``): accounts and projects are the installation admins' to make, tokens their
owner's or an admin's, members a project admin's. Every failed attempt to authenticate is
audited too (the event records the token id when one could be read, never a secret).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update

from cairn.core import missing
from cairn.core.access import Permission, Principal, Role
from cairn.core.actor import current
from cairn.core.clock import now_ms
from cairn.core.identity import (
    AccountKind,
    Membership,
    Token,
    User,
    check_name,
    new_token,
    parse_token,
    secret_matches,
)
from cairn.errors import InvalidInput, NotFound, Unauthenticated
from cairn.stores.metadata import audit
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.driver_errors import already_exists
from cairn.stores.metadata.engine import read_connection, write_transaction
from cairn.stores.metadata.grants import (
    authorize,
    authorize_admin,
    authorize_self_or_admin,
    roles_of,
)


class IdentityStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # accounts

    def add_user(
        self, name: str, kind: AccountKind = AccountKind.USER, admin: bool = False
    ) -> User:
        """Raises:
        InvalidInput: the name breaks the naming rule.
        AlreadyExists: an account of that name exists.
        """
        user = User(check_name(name, "user name"), AccountKind(kind), admin, False, now_ms())
        with (
            already_exists(f"user {name!r} already exists"),
            write_transaction(self.engine) as conn,
        ):
            authorize_admin(conn, f"add the account {name!r}")
            conn.execute(
                insert(t.users).values(
                    name=user.name,
                    kind=user.kind.value,
                    is_admin=user.is_admin,
                    disabled=False,
                    created_at=user.created_at,
                )
            )
            payload = {"kind": user.kind.value, "admin": user.is_admin}
            audit.record(conn, "user.create", "user", user.name, payload)
        return user

    def list_users(self) -> list[User]:
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(t.users).order_by(t.users.c.name)).all()
        return [_user(row) for row in rows]

    def set_disabled(self, name: str, disabled: bool) -> User:
        """A disabled account's tokens stop working at once.

        Raises:
            NotFound: no such account.
        """
        with write_transaction(self.engine) as conn:
            authorize_admin(conn, f"{'disable' if disabled else 'enable'} the account {name!r}")
            self._require_user(conn, name)
            conn.execute(update(t.users).where(t.users.c.name == name).values(disabled=disabled))
            action = "user.disable" if disabled else "user.enable"
            audit.record(conn, action, "user", name, {"disabled": disabled})
            return _user(conn.execute(select(t.users).where(t.users.c.name == name)).one())

    # tokens

    def create_token(
        self, user: str, name: str, expires_at: int | None = None
    ) -> tuple[Token, str]:
        """A new token and its whole text, which is shown once and never stored.

        Raises:
            NotFound: no such account.
            InvalidInput: ``expires_at`` is not in the future.
        """
        created = now_ms()
        if expires_at is not None and expires_at <= created:
            raise InvalidInput("expires: expected a time in the future")
        token_id, text, digest = new_token()
        token = Token(token_id, user, name, created, expires_at, None)
        with write_transaction(self.engine) as conn:
            authorize_self_or_admin(conn, user, f"create a token for {user!r}")
            self._require_user(conn, user)
            conn.execute(
                insert(t.api_tokens).values(
                    id=token_id,
                    user_name=user,
                    name=name,
                    secret_digest=digest,
                    created_at=created,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
            payload = {"user": user, "name": name, "expires_at": expires_at}
            audit.record(conn, "token.create", "token", token_id, payload)
        return token, text

    def list_tokens(self, user: str | None = None) -> list[Token]:
        statement = select(t.api_tokens).order_by(t.api_tokens.c.created_at)
        if user is not None:
            statement = statement.where(t.api_tokens.c.user_name == user)
        with read_connection(self.engine) as conn:
            return [_token(row) for row in conn.execute(statement).all()]

    def revoke_token(self, token_id: str) -> Token:
        """Raises:
        NotFound: no such token.
        """
        with write_transaction(self.engine) as conn:
            c = t.api_tokens.c
            row = conn.execute(select(t.api_tokens).where(c.id == token_id)).first()
            hidden = missing.token(token_id)  # another's token is no business of the caller's
            if row is None:
                raise hidden
            authorize_self_or_admin(conn, row.user_name, f"revoke token {token_id}", hidden)
            if row.revoked_at is None:
                conn.execute(
                    update(t.api_tokens).where(c.id == token_id).values(revoked_at=now_ms())
                )
                audit.record(conn, "token.revoke", "token", token_id, {"user": row.user_name})
            return _token(conn.execute(select(t.api_tokens).where(c.id == token_id)).one())

    def authenticate(self, text: str, audit_failure: bool = True) -> Principal:
        """The principal a presented token stands for.

        ``audit_failure=False``: a server that has audited enough failures from the caller's
        address counts the rest itself (``record_throttled``).

        Raises:
            Unauthenticated: the token is malformed, unknown, wrong, expired or revoked, or
                its account is disabled; the attempt is audited (see ``audit_failure``).
        """
        token_id: str | None = None
        try:
            token_id, secret = parse_token(text)
            with read_connection(self.engine) as conn:
                row = _usable(
                    conn.execute(
                        select(t.api_tokens, t.users.c.disabled, t.users.c.is_admin)
                        .join(t.users, t.users.c.name == t.api_tokens.c.user_name)
                        .where(t.api_tokens.c.id == token_id)
                    ).first(),
                    secret,
                )
                roles = roles_of(conn, row.user_name)
            return Principal(row.user_name, bool(row.is_admin), roles, account=True)
        except Unauthenticated as exc:
            if audit_failure:
                with write_transaction(self.engine) as conn:
                    payload = {"reason": exc.message}
                    audit.record(conn, "auth.failed", "token", token_id or "-", payload)
            raise

    def record_throttled(self, source: str, refused: int, seconds: float) -> None:
        """Audit the failed authentications from ``source`` that a server refused unaudited
        in one window of ``seconds`` (``auth.throttled``)."""
        with write_transaction(self.engine) as conn:
            payload = {"refused": refused, "window_seconds": seconds}
            audit.record(conn, "auth.throttled", "address", source[:250], payload)

    def record_login(self) -> None:
        """Audit that the current actor signed in (``auth.login``: ``cairn login``)."""
        with write_transaction(self.engine) as conn:
            audit.record(conn, "auth.login", "user", current().actor, {})

    def record_denial(self, attempted: str, reason: str) -> None:
        """Audit a refused request of the current actor (``auth.denied``)."""
        with write_transaction(self.engine) as conn:
            payload = {"attempted": attempted, "reason": reason}
            audit.record(conn, "auth.denied", "request", attempted[:250], payload)

    def principal(self, user: str) -> Principal:
        """Raises:
        NotFound: no such account.
        """
        with read_connection(self.engine) as conn:
            row = self._require_user(conn, user)
            return Principal(user, bool(row.is_admin), roles_of(conn, user), account=True)

    # projects

    def add_project(self, name: str) -> str:
        """Raises:
        InvalidInput: the name breaks the naming rule.
        AlreadyExists: the project exists.
        """
        check_name(name, "project name")
        with (
            already_exists(f"project {name!r} already exists"),
            write_transaction(self.engine) as conn,
        ):
            authorize_admin(conn, f"add the project {name!r}")
            conn.execute(insert(t.projects).values(name=name, created_at=now_ms()))
            audit.record(conn, "project.create", "project", name, {})
        return name

    def list_projects(self) -> list[str]:
        with read_connection(self.engine) as conn:
            return list(
                conn.execute(select(t.projects.c.name).order_by(t.projects.c.name)).scalars()
            )

    def set_role(self, project: str, user: str, role: Role | None) -> Membership | None:
        """Give ``user`` a role in ``project``; None takes their role away.

        Raises:
            NotFound: no such project or account.
        """
        m = t.project_members.c
        with write_transaction(self.engine) as conn:
            hidden = missing.project(project)
            if (
                conn.execute(select(t.projects.c.name).where(t.projects.c.name == project)).first()
                is None
            ):
                raise hidden
            what = f"change the members of {project!r}"
            authorize(conn, Permission.ADMINISTER, project, what, hidden)
            self._require_user(conn, user)
            conn.execute(
                t.project_members.delete().where(m.project == project, m.user_name == user)
            )
            if role is not None:
                conn.execute(
                    insert(t.project_members).values(
                        project=project, user_name=user, role=Role(role).value
                    )
                )
            payload = {"user": user, "role": None if role is None else Role(role).value}
            audit.record(conn, "project.set_role", "project", project, payload)
        return None if role is None else Membership(project, user, Role(role))

    def members(self, project: str) -> list[Membership]:
        m = t.project_members.c
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                select(t.project_members).where(m.project == project).order_by(m.user_name)
            ).all()
        return [Membership(r.project, r.user_name, Role(r.role)) for r in rows]

    def _require_user(self, conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        if row is None:
            raise NotFound(f"user {name!r} not found (see `cairn users list`)")
        return row


def _usable(row: Row[Any] | None, secret: str) -> Row[Any]:
    """The token's row, if the token may be used.

    Raises:
        Unauthenticated: with the reason; an unknown token and a wrong secret read the same.
    """
    if row is None or not secret_matches(secret, row.secret_digest):
        raise Unauthenticated("the API token is not valid")
    if row.revoked_at is not None:
        raise Unauthenticated(f"the API token {row.id} was revoked")
    if row.expires_at is not None and row.expires_at <= now_ms():
        raise Unauthenticated(f"the API token {row.id} has expired")
    if row.disabled:
        raise Unauthenticated(f"the account {row.user_name!r} is disabled")
    return row


def _user(row: Row[Any]) -> User:
    return User(
        row.name, AccountKind(row.kind), bool(row.is_admin), bool(row.disabled), row.created_at
    )


def _token(row: Row[Any]) -> Token:
    return Token(row.id, row.user_name, row.name, row.created_at, row.expires_at, row.revoked_at)
