"""Release governance: ``cairn envs``, ``promote``, ``approve``, ``reject``, ``requests``,
``rollback``, ``gate check`` and ``webhooks``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from cairn.cli.output import console, format_time, print_json, table
from cairn.core.clock import parse_time
from cairn.core.release import (
    Deployment,
    GateCheck,
    PromotionRequest,
    RequestState,
    Verdict,
)
from cairn.core.release_codec import (
    deployment_to_dict,
    environment_to_dict,
    gate_check_to_dict,
    request_to_dict,
    webhook_to_dict,
)
from cairn.errors import InvalidInput

if TYPE_CHECKING:
    from cairn.core.gates.base import GateResult
    from cairn.core.ports import Releases

envs = typer.Typer(help="Environments: their policies, what they run, and their history.",
                   no_args_is_help=True)  # fmt: skip
requests = typer.Typer(help="Promotion requests: their gates and approvals.", no_args_is_help=True)
gate = typer.Typer(help="Policy gates, checked without opening a request (for CI).",
                   no_args_is_help=True)  # fmt: skip
webhooks = typer.Typer(help="Webhooks: where release events are posted, signed.",
                       no_args_is_help=True)  # fmt: skip

SECRET_VARIABLE = "CAIRN_WEBHOOK_SECRET"  # noqa: S105  # a variable's name, not a secret
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Reason = Annotated[str, typer.Option("--reason", help="Why: kept in the history and audit trail.")]
Reviewed = Annotated[
    int | None,
    typer.Option(
        "--version", help="The version you reviewed: refused if the request names another by then."
    ),
]


def _releases() -> Releases:
    from cairn.sdk import releases  # the registry and the ledger load only for these commands

    return releases()


def _policy_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"--policy {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"--policy {path}: not a UTF-8 text file") from None


# environments


@envs.command("create")
def create(
    name: Annotated[str, typer.Argument(help="staging, production …: also the alias it moves")],
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="The policy's YAML file (default: no gates, one approval)."),
    ] = None,
    json: Json = False,
) -> None:
    """Create an environment (installation admins)."""
    found = _releases().create_environment(name, _policy_text(policy) if policy else None)
    if json:
        print_json(environment_to_dict(found))
        return
    console.print(f"environment {found.name} created, policy {found.policy.digest}")


@envs.command("policy")
def set_policy(
    name: str,
    policy: Annotated[Path, typer.Argument(help="The policy's YAML file.")],
    json: Json = False,
) -> None:
    """Replace an environment's policy (installation admins). Approvals given under the
    old policy stop counting; waiting requests' gates run again when next approved."""
    found = _releases().set_policy(name, _policy_text(policy))
    if json:
        print_json(environment_to_dict(found))
        return
    console.print(f"policy of {found.name} is now {found.policy.digest}")


@envs.command("list")
def list_environments(json: Json = False) -> None:
    """List every environment with the version of each model it runs now."""
    found = _releases().list_environments()
    if json:
        print_json([environment_to_dict(e) for e in found])
        return
    rows = [
        (e.name, _running(e.deployed), len(e.policy.gates), _approvals(e.policy.approvals.required,
         e.policy.auto_promote), e.policy.digest)
        for e in found
    ]  # fmt: skip
    table("Environments", ("name", "runs", "gates", "approvals", "policy"), rows)


@envs.command("show")
def show(
    name: str,
    at: Annotated[
        str | None, typer.Option("--at", help="What it ran then: 2026-10-01T12:00 (UTC).")
    ] = None,
    json: Json = False,
) -> None:
    """Show what an environment runs (or ran --at a time), and its policy."""
    service = _releases()
    if at is not None:
        moment = parse_time(at, "--at")
        entries = service.deployed_at(name, moment)
        if json:
            print_json({"environment": name, "at": moment,
                        "deployed": [deployment_to_dict(d) for d in entries]})  # fmt: skip
            return
        rows = [(f"{d.model}/{d.version}", d.action.value, format_time(d.at), d.by, d.reason)
                for d in entries]  # fmt: skip
        table(f"{name} at {at}", ("ran", "since", "when", "by", "reason"), rows)
        return
    env = service.get_environment(name)
    if json:
        print_json(environment_to_dict(env))
        return
    console.print(f"[bold]{escape(env.name)}[/bold]  policy {env.policy.digest}, updated "
                  f"{format_time(env.updated_at)} by {escape(env.updated_by)}")  # fmt: skip
    console.print(f"runs: {escape(_running(env.deployed))}")
    console.print(f"approvals: {_approvals(env.policy.approvals.required, env.policy.auto_promote)}"
                  f" ({env.policy.approvals.role.value})")  # fmt: skip
    for gate_ in env.policy.gates:
        console.print(f"  gate: {escape(gate_.describe())}")


@envs.command("history")
def history(
    name: str,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    json: Json = False,
) -> None:
    """Every change to what an environment runs, newest first: who, when, from which
    version, why, and the request that passed."""
    found = _releases().history(name, model)
    if json:
        print_json([deployment_to_dict(d) for d in found])
        return
    table(f"History of {name}", ("when", "model", "version", "from", "action", "by", "reason",
          "request"), [_history_row(d) for d in found])  # fmt: skip


# requests


def promote(
    ref: Annotated[str, typer.Argument(help="The version: churn/3 or churn@candidate.")],
    to: Annotated[str, typer.Option("--to", help="The environment.")],
    reason: Reason,
    json: Json = False,
) -> None:
    """Request that an environment run a version: every gate runs and is recorded; the
    request then waits for approvals, or deploys when the policy needs none. Exits 1
    when a gate fails."""
    request = _releases().promote(ref, to, reason)
    _print_request(request, json)
    if request.state is RequestState.BLOCKED:
        raise typer.Exit(1)


def approve(
    request_id: Annotated[str, typer.Argument(help="The request (its id or first 8 characters).")],
    comment: Annotated[str, typer.Option("--comment", help="A note kept with it.")] = "",
    version: Reviewed = None,
    json: Json = False,
) -> None:
    """Approve a waiting request (approvers); it deploys once the approvals suffice."""
    _print_request(_releases().approve(request_id, comment, version), json)


def reject(
    request_id: Annotated[str, typer.Argument(help="The request (its id or first 8 characters).")],
    reason: Reason,
    version: Reviewed = None,
    json: Json = False,
) -> None:
    """Reject a waiting request (approvers)."""
    _print_request(_releases().reject(request_id, reason, version), json)


@requests.command("list")
def list_requests(
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    state: Annotated[
        RequestState | None, typer.Option("--state", help="Only requests in this state.")
    ] = None,
    json: Json = False,
) -> None:
    """List promotion requests, newest first."""
    found = _releases().list_requests(env, model, state)
    if json:
        print_json([request_to_dict(r) for r in found])
        return
    rows = [
        (r.id[:8], r.ref, r.environment, r.state.value, r.requester, format_time(r.created_at),
         r.decision)
        for r in found
    ]  # fmt: skip
    table("Promotion requests", ("id", "version", "to", "state", "by", "opened", "why"), rows)


@requests.command("show")
def show_request(
    request_id: Annotated[str, typer.Argument(help="The request (its id or first 8 characters).")],
    json: Json = False,
) -> None:
    """Show a request: each gate's result and evidence, and each approval."""
    _print_request(_releases().get_request(request_id), json)


def rollback(
    env: Annotated[str, typer.Argument(help="The environment.")],
    model: Annotated[str, typer.Option("--model", help="The model to roll back.")],
    reason: Reason,
    to: Annotated[
        int | None,
        typer.Option(
            "--to", help="A version it ran before (default: the one the current one replaced)."
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Run again the version an environment ran before (maintainers): no gates, no
    approvals, one command; recorded in the history and the audit trail."""
    done = _releases().rollback(env, model, reason, to)
    if json:
        print_json(deployment_to_dict(done))
        return
    console.print(f"{escape(env)} runs {escape(done.model)}/{done.version} again (was "
                  f"{done.model}/{done.previous})")  # fmt: skip


@gate.command("check")
def check(
    ref: Annotated[str, typer.Argument(help="The version: churn/3 or churn@candidate.")],
    env: Annotated[str, typer.Option("--env", help="The environment whose policy applies.")],
    json: Json = False,
) -> None:
    """Run an environment's gates on a version, recording nothing; exits 1, listing each
    failed gate and why, when any fails."""
    found = _releases().check(ref, env)
    if json:
        print_json(gate_check_to_dict(found))
    else:
        _print_check(found)
    if not found.passed:
        raise typer.Exit(1)


# webhooks


@webhooks.command("add")
def add_webhook(
    url: Annotated[str, typer.Argument(help="Where to post: https://…")],
    secret_env: Annotated[
        str,
        typer.Option(
            "--secret-env",
            help="The environment variable holding the shared secret "
            "that signs each event (16+ characters).",
        ),
    ] = SECRET_VARIABLE,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment's.")] = None,
    json: Json = False,
) -> None:
    """Post every release event (promote, rollback) to a URL, signed with HMAC-SHA256
    (installation admins)."""
    secret = os.environ.get(secret_env, "")
    if not secret:
        raise InvalidInput(f"--secret-env {secret_env}: that environment variable is not set")
    hook = _releases().add_webhook(url, secret, env)
    if json:
        print_json(webhook_to_dict(hook))
        return
    console.print(f"webhook {hook.id[:8]} posts {escape(env or 'every environment')}'s events "
                  f"to {escape(url)}")  # fmt: skip


@webhooks.command("list")
def list_webhooks(json: Json = False) -> None:
    found = _releases().list_webhooks()
    if json:
        print_json([webhook_to_dict(h) for h in found])
        return
    rows = [(h.id[:8], h.url, h.environment or "all", h.created_by, format_time(h.created_at))
            for h in found]  # fmt: skip
    table("Webhooks", ("id", "url", "environment", "by", "created"), rows)


@webhooks.command("remove")
def remove_webhook(webhook_id: str) -> None:
    _releases().remove_webhook(webhook_id)
    console.print(f"webhook {escape(webhook_id)} removed")


# printing


def _print_request(request: PromotionRequest, json: bool) -> None:
    if json:
        print_json(request_to_dict(request))
        return
    console.print(f"request {request.id[:8]}: {request.ref} → {escape(request.environment)}: "
                  f"[bold]{request.state.value}[/bold] ({escape(request.decision)})")  # fmt: skip
    console.print(f"  requested by {escape(request.requester)}: {escape(request.reason)}")
    _print_gates(request.gates)
    for given in request.approvals:
        said = f": {given.comment}" if given.comment else ""
        role = given.role.value if given.role else "no role"
        said_so = "approved" if given.verdict is Verdict.APPROVE else "rejected"
        console.print(f"  {said_so} by {escape(given.by)} ({role}) "
                      f"{format_time(given.at)}{escape(said)}")  # fmt: skip


def _print_check(found: GateCheck) -> None:
    verdict = "pass" if found.passed else "FAIL"
    console.print(f"{found.model}/{found.version} against {escape(found.environment)} "
                  f"(policy {found.policy_digest}): [bold]{verdict}[/bold]")  # fmt: skip
    _print_gates(found.gates)


def _print_gates(gates: tuple[GateResult, ...]) -> None:
    for result in gates:
        mark = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
        console.print(f"  {mark} {escape(result.gate)}: {escape(result.reason)}")


def _history_row(d: Deployment) -> tuple[object, ...]:
    previous = f"{d.previous}" if d.previous is not None else "—"
    return (format_time(d.at), d.model, d.version, previous, d.action.value, d.by, d.reason,
            (d.request_id or "—")[:8])  # fmt: skip


def _running(deployed: dict[str, int]) -> str:
    return ", ".join(f"{m}/{v}" for m, v in deployed.items()) or "nothing yet"


def _approvals(required: int, auto: bool) -> str:
    return "none (auto-promote)" if auto else str(required)
