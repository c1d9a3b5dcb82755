"""``cairn audit``: read the audit trail, take a checkpoint, verify the chain.

These commands read the database directly (``--db``, or the embedded store), not through a
server: verification must not depend on trusting the process that wrote the trail.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from cairn.cli.context import session
from cairn.cli.options import Db, Json
from cairn.cli.output import format_time
from cairn.cli.report import Line, Report, Table, View, render
from cairn.config import load_settings
from cairn.core.audit import AuditEvent, Verification, canonical_json
from cairn.core.clock import parse_time
from cairn.errors import InvalidInput
from cairn.session import Session

if TYPE_CHECKING:
    from cairn.stores.metadata.audit import EventQuery

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


def _session(db: str | None) -> Session:
    """The audit trail is read in the database itself, never through a server."""
    if db is None and load_settings().uri is not None:
        raise InvalidInput(
            "the audit trail is read from the database, not through a server: pass "
            "--db postgresql://… (the server's database)"
        )
    return session(db)


@app.command("log")
def log(
    actor: Annotated[str | None, typer.Option(help="Only this actor's events.")] = None,
    object_ref: Annotated[
        str | None,
        typer.Option("--object", help="Only events about this object: ID or TYPE:ID."),
    ] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. run.end.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (the newest).")] = 100,
    db: Db = None,
    json: Json = False,
) -> None:
    """Show audit events, oldest first."""
    from cairn.stores.metadata.audit import EventQuery

    object_type, object_id = _object(object_ref)
    query = EventQuery(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        limit=limit,
    )
    render(log_report(_session(db), query), json)


def log_report(opened: Session, query: EventQuery) -> Report[list[dict[str, Any]]]:
    """The audit events a query selects, oldest first, each with its payload parsed."""
    return Report([_event_dict(e) for e in opened.audit_log.events(query)], _log_views)


def _log_views(events: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (e["seq"], format_time(e["ts"]), e["actor"], e["action"],
         f"{e['object_type']}:{e['object_id']}", _short(canonical_json(e["payload"])))
        for e in events
    ]  # fmt: skip
    yield Table("Audit events", ("seq", "time", "actor", "action", "object", "what"), rows)


@app.command("checkpoint")
def checkpoint(db: Db = None, json: Json = False) -> None:
    """Sign the head of the chain with the installation's key and export it."""
    render(checkpoint_report(_session(db)), json)


def checkpoint_report(opened: Session) -> Report[dict[str, Any] | None]:
    """Sign the head of the chain and export it: the checkpoint (None: the trail is
    empty)."""
    from cairn.localfs.signing import load_or_create
    from cairn.stores.metadata.audit import installation_folder

    settings, audit_log = opened.settings, opened.audit_log
    key = load_or_create(settings.audit_key)
    signed = audit_log.checkpoint(key, settings.audit_checkpoints)
    folder = installation_folder(settings.audit_checkpoints, audit_log.installation())
    return Report(signed.to_dict() if signed else None, partial(_checkpoint_views, folder))


def _checkpoint_views(folder: str, signed: Mapping[str, Any] | None) -> Iterator[View]:
    if signed is None:
        yield Line("the audit trail is empty: nothing to sign")
        return
    yield Line(
        f"checkpoint at seq {signed['seq']} ({signed['hash'][:16]}…), key {signed['key_id']}, "
        f"exported to {folder}"
    )


@app.command("verify")
def verify(
    checkpoints: Annotated[
        str | None,
        typer.Option(
            help="Where checkpoints were exported (default: the configured place); this "
            "installation's are read from its own folder there."
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            help="A public key to check checkpoints with; repeat it for a replaced key or "
            "each replica's (default: the installation's key file)."
        ),
    ] = None,
    db: Db = None,
    json: Json = False,
) -> None:
    """Recompute the chain and check every checkpoint; exit 1 at the first problem."""
    found = verify_report(_session(db), checkpoints, public_key or ())
    render(found, json)
    if not found.data["ok"]:
        raise typer.Exit(1)


def verify_report(
    opened: Session, checkpoints: str | None = None, public_keys: Sequence[Path] = ()
) -> Report[dict[str, Any]]:
    """Recompute the chain and check every checkpoint (exported to ``checkpoints``, by
    default the configured place) with the public keys given (by default the
    installation's): whether all is intact, how much the checkpoints cover, and the
    first problem."""
    from cairn.localfs.signing import KeyRing, load_verify_key
    from cairn.stores.metadata.audit import installation_folder

    settings, audit_log = opened.settings, opened.audit_log
    default_key = [settings.audit_key] if settings.audit_key.exists() else []
    keys = KeyRing(tuple(load_verify_key(path) for path in public_keys or default_key))
    location = checkpoints or settings.audit_checkpoints
    result = audit_log.verify(keys, location)
    installation = audit_log.installation()
    data = {"installation": installation, **_verification_dict(result)}
    return Report(data, partial(_verify_views, installation_folder(location, installation)))


def _verify_views(folder: str, result: Mapping[str, Any]) -> Iterator[View]:
    yield Line(f"installation {result['installation']}: checkpoints from the database and {folder}")
    yield from map(Line, _report(result))


def _verification_dict(result: Verification) -> dict[str, Any]:
    problem = result.problem
    return {
        "ok": result.ok,
        "events": result.events,
        "checkpoints": result.checkpoints,
        "signed_through": result.signed_through,
        "unsigned_events": result.unsigned,
        "unknown_keys": dict(result.unknown_keys),
        "problem": None
        if problem is None
        else {"seq": problem.seq, "kind": problem.kind, "detail": problem.detail},
    }


def _report(result: Mapping[str, Any]) -> list[str]:
    problem = result["problem"]
    if problem is not None:
        lines = [f"TAMPERED at seq {problem['seq']} ({problem['kind']}): {problem['detail']}"]
    else:
        lines = [f"ok: {_count(result['events'], 'event')}, {_covered(result)}"]
    lines += [
        f"not checked: {_count(n, 'checkpoint')} signed by key {key_id}, which was not given "
        "(pass its public key with --public-key)"
        for key_id, n in result["unknown_keys"].items()
    ]
    return lines


def _covered(result: Mapping[str, Any]) -> str:
    """How much of an intact trail the checkpoints vouch for."""
    checkpoints = _count(result["checkpoints"], "checkpoint")
    unsigned = result["unsigned_events"]
    if result["events"] == 0:
        return checkpoints
    if result["checkpoints"] == 0:
        return f"{checkpoints}: no signed checkpoint covers them, only the chain"
    if unsigned == 0:
        return f"{checkpoints}; the newest signs the last event"
    verb = "is" if unsigned == 1 else "are"
    return (
        f"{checkpoints}; {_count(unsigned, 'event')} after the newest "
        f"(seq {result['signed_through']:,}) {verb} covered by the chain only"
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _object(ref: str | None) -> tuple[str | None, str | None]:
    if ref is None:
        return None, None
    kind, sep, ident = ref.partition(":")
    return (kind, ident) if sep else (None, ref)


def _time(text: str | None, option: str) -> int | None:
    return None if text is None else parse_time(text, option)


def _short(payload: str, width: int = 60) -> str:
    return payload if len(payload) <= width else payload[: width - 1] + "…"


def _event_dict(event: AuditEvent) -> dict[str, Any]:
    row = event.to_row()
    return {**row, "payload": orjson.loads(row["payload"])}
