"""Who is calling, and the permission each route declares.

Every route declares what it needs: ``dependencies=[AUTHENTICATED]`` (any valid token: the
service built for the caller decides on the objects the call reaches, and the store again
for a write, inside its transaction), ``[READ]``, ``[WRITE]``, ``[MANAGE]``, ``[APPROVE]``
or ``[ADMINISTER]`` (an account holding that permission in some project), ``[ADMIN]``
(installation admins), or ``[PUBLIC]``. A test enumerates the routes
and fails on any without a declaration, so the server denies by default.

Without an ``Authorization: Bearer <token>`` header a declared route answers 401; with a
token that lacks the permission, 403. Both bodies name what was missing. A server started
with ``--no-auth`` treats every caller as an admin named ``anonymous``.

Tokens are checked in a thread pool of their own, so authentication never waits behind
uploads or slow routes; an address that keeps failing is answered 429 for a while (see
``cairn.server.limits``).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from fastapi import Depends, Request

from cairn.core.access import Permission, Principal, require_admin
from cairn.core.actor import set_principal
from cairn.errors import PermissionDenied, Unauthenticated
from cairn.server.limits import audit_throttled

ANONYMOUS = Principal("anonymous", is_admin=True)  # every caller, when auth is off
_DECLARED = "cairn_permission"


async def principal(request: Request) -> Principal:
    """The caller, authenticated once per request (FastAPI caches a dependency's result)."""
    identity = request.app.state.identity
    found = ANONYMOUS if identity is None else await _authenticated(request, identity)
    set_principal(found)
    return found


async def _authenticated(request: Request, identity: Any) -> Principal:
    token = _bearer_token(request)
    state = request.app.state
    await audit_throttled(request.app)
    failures, source = state.auth_failures, request.client.host if request.client else "?"
    held = failures.admit(source)
    check = partial(identity.authenticate, token, audit_failure=held is not None)
    failed = False
    try:
        found: Principal = await to_thread.run_sync(check, limiter=state.auth_threads)
    except Unauthenticated:
        failed = True
        if held is None:
            raise failures.refuse(source) from None
        raise
    finally:
        if held is not None and not failed:  # good, or not checked at all: not a failure
            failures.release(held)
    return found


def _bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "this server needs an API token: send 'Authorization: Bearer <token>' "
            "(set CAIRN_TOKEN; an admin makes one with `cairn tokens create`)"
        )
    return token.strip()


Caller = Annotated[Principal, Depends(principal)]


def requires(permission: Permission) -> Any:
    async def check(caller: Caller) -> Principal:
        if not (caller.is_admin or any(caller.may(permission, p) for p in caller.roles)):
            raise PermissionDenied(
                f"{caller.name} may not do this: it needs the {permission.value!r} "
                "permission in a project"
            )
        return caller

    setattr(check, _DECLARED, permission)
    return Depends(check)


async def installation_admin(caller: Caller) -> Principal:
    """Installation admins only (accounts, projects)."""
    require_admin(caller, "do this")
    return caller


async def public() -> None:
    """Open to anyone (health, the API's description)."""


async def signed_in(caller: Caller) -> Principal:
    """Any valid token, whatever its roles (``whoami``)."""
    return caller


setattr(public, _DECLARED, "public")
setattr(signed_in, _DECLARED, "authenticated")
setattr(installation_admin, _DECLARED, "admin")

READ = requires(Permission.READ)
WRITE = requires(Permission.WRITE)
MANAGE = requires(Permission.MANAGE)
APPROVE = requires(Permission.APPROVE)
ADMINISTER = requires(Permission.ADMINISTER)
ADMIN = Depends(installation_admin)
PUBLIC = Depends(public)
AUTHENTICATED = Depends(signed_in)


def declared_permission(call: Any) -> Permission | str | None:
    """What a dependency declares, if it is one of these."""
    found: Permission | str | None = getattr(call, _DECLARED, None)
    return found
