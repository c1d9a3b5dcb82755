"""Release governance: ``cairn envs``, ``promote``, ``approve``, ``reject``, ``requests``,
``rollback``, ``gate check`` and ``webhooks``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from cairn.cli.options import SECRET_VARIABLE, Json, ModelRef
from cairn.cli.output import console, format_time
from cairn.cli.report import Cell, Line, Report, Table, View, render
from cairn.core.clock import parse_time
from cairn.core.policy import parse_policy
from cairn.core.release import Deployment, PromotionRequest, RequestState, Verdict
from cairn.core.release_codec import (
    deployment_from_dict,
    deployment_to_dict,
    environment_to_dict,
    gate_check_from_dict,
    gate_check_to_dict,
    gate_from_dict,
    request_from_dict,
    request_to_dict,
    webhook_to_dict,
)
from cairn.errors import InvalidInput

if TYPE_CHECKING:
    from cairn.core.ports import Releases

envs = typer.Typer(help="Environments: their policies, what they run, and their history.",
                   no_args_is_help=True)  # fmt: skip
requests = typer.Typer(help="Promotion requests: their gates and approvals.", no_args_is_help=True)
gate = typer.Typer(help="Policy gates, checked without opening a request (for CI).",
                   no_args_is_help=True)  # fmt: skip
webhooks = typer.Typer(help="Webhooks: where release events are posted, signed.",
                       no_args_is_help=True)  # fmt: skip

Reason = Annotated[str, typer.Option("--reason", help="Why: kept in the history and audit trail.")]
Reviewed = Annotated[
    int | None,
    typer.Option(
        "--version", help="The version you reviewed: refused if the request names another by then."
    ),
]
RequestId = Annotated[str, typer.Argument(help="The request (its id or first 8 characters).")]
OnlyModel = Annotated[str | None, typer.Option("--model", help="Only this model.")]
OnlyEnv = Annotated[str | None, typer.Option("--env", help="Only this environment.")]


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
    render(Report(environment_to_dict(found), _created_views), json)


def _created_views(env: Mapping[str, Any]) -> Iterator[View]:
    yield Line(f"environment {env['name']} created, policy {env['policy_digest']}")


@envs.command("policy")
def set_policy(
    name: str,
    policy: Annotated[Path, typer.Argument(help="The policy's YAML file.")],
    json: Json = False,
) -> None:
    """Replace an environment's policy (installation admins). Approvals given under the
    old policy stop counting; waiting requests' gates run again when next approved."""
    found = _releases().set_policy(name, _policy_text(policy))
    render(Report(environment_to_dict(found), _policy_views), json)


def _policy_views(env: Mapping[str, Any]) -> Iterator[View]:
    yield Line(f"policy of {env['name']} is now {env['policy_digest']}")


@envs.command("list")
def list_environments(json: Json = False) -> None:
    """List every environment with the version of each model it runs now."""
    render(environments_report(_releases()), json)


def environments_report(releases: Releases) -> Report[list[dict[str, Any]]]:
    """Every environment, its policy and what it runs now."""
    return Report([environment_to_dict(e) for e in releases.list_environments()], _envs_views)


def _envs_views(found: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (e["name"], _running(e["deployed"]), len(parse_policy(e["policy"]).gates),
         _approvals(e["approvals_required"], e["auto_promote"]), e["policy_digest"])
        for e in found
    ]  # fmt: skip
    yield Table("Environments", ("name", "runs", "gates", "approvals", "policy"), rows)


@envs.command("show")
def show(
    name: str,
    at: Annotated[
        str | None, typer.Option("--at", help="What it ran then: 2026-10-01T12:00 (UTC).")
    ] = None,
    json: Json = False,
) -> None:
    """Show what an environment runs (or ran --at a time), and its policy."""
    if at is None:
        render(environment_report(_releases(), name), json)
    else:
        render(deployed_at_report(_releases(), name, at), json)


def environment_report(releases: Releases, name: str) -> Report[dict[str, Any]]:
    """An environment: its policy and what it runs now."""
    return Report(environment_to_dict(releases.get_environment(name)), _environment_views)


def _environment_views(env: Mapping[str, Any]) -> Iterator[View]:
    policy = parse_policy(env["policy"])
    updated = f"updated {format_time(env['updated_at'])} by {env['updated_by']}"
    yield Line(Text.assemble((env["name"], "bold"), f"  policy {env['policy_digest']}, {updated}"))
    yield Line(f"runs: {_running(env['deployed'])}")
    approvals = _approvals(env["approvals_required"], env["auto_promote"])
    yield Line(f"approvals: {approvals} ({policy.approvals.role.value})")
    for gate_ in policy.gates:
        yield Line(f"  gate: {gate_.describe()}")


def deployed_at_report(releases: Releases, name: str, at: str) -> Report[dict[str, Any]]:
    """What an environment ran at a time (``at``, ISO 8601).

    Raises:
        InvalidInput: ``at`` is not a time.
    """
    moment = parse_time(at, "--at")
    entries = releases.deployed_at(name, moment)
    data = {"environment": name, "at": moment,
            "deployed": [deployment_to_dict(d) for d in entries]}  # fmt: skip
    return Report(data, partial(_deployed_at_views, at))


def _deployed_at_views(at: str, data: Mapping[str, Any]) -> Iterator[View]:
    rows = [
        (f"{d['model']}/{d['version']}", d["action"], format_time(d["at"]), d["by"], d["reason"])
        for d in data["deployed"]
    ]
    yield Table(f"{data['environment']} at {at}", ("ran", "since", "when", "by", "reason"), rows)


@envs.command("history")
def history(name: str, model: OnlyModel = None, json: Json = False) -> None:
    """Every change to what an environment runs, newest first: who, when, from which
    version, why, and the request that passed."""
    render(history_report(_releases(), name, model), json)


def history_report(
    releases: Releases, name: str, model: str | None = None
) -> Report[list[dict[str, Any]]]:
    """Every change to what an environment runs (of one model, or all), newest first."""
    found = [deployment_to_dict(d) for d in releases.history(name, model)]
    return Report(found, partial(_history_views, name))


def _history_views(name: str, found: list[dict[str, Any]]) -> Iterator[View]:
    columns = ("when", "model", "version", "from", "action", "by", "reason", "request")
    rows = [_history_row(deployment_from_dict(d)) for d in found]
    yield Table(f"History of {name}", columns, rows)


# requests


def promote(
    ref: ModelRef,
    to: Annotated[str, typer.Option("--to", help="The environment.")],
    reason: Reason,
    json: Json = False,
) -> None:
    """Request that an environment run a version: every gate runs and is recorded; the
    request then waits for approvals, or deploys when the policy needs none. Exits 1
    when a gate fails."""
    found = _releases().promote(ref, to, reason)
    render(request_report(found), json)
    if found.state is RequestState.BLOCKED:
        raise typer.Exit(1)


def approve(
    request_id: RequestId,
    comment: Annotated[str, typer.Option("--comment", help="A note kept with it.")] = "",
    version: Reviewed = None,
    json: Json = False,
) -> None:
    """Approve a waiting request (approvers); it deploys once the approvals suffice."""
    render(request_report(_releases().approve(request_id, comment, version)), json)


def reject(
    request_id: RequestId,
    reason: Reason,
    version: Reviewed = None,
    json: Json = False,
) -> None:
    """Reject a waiting request (approvers)."""
    render(request_report(_releases().reject(request_id, reason, version)), json)


@requests.command("list")
def list_requests(
    env: OnlyEnv = None,
    model: OnlyModel = None,
    state: Annotated[
        RequestState | None, typer.Option("--state", help="Only requests in this state.")
    ] = None,
    json: Json = False,
) -> None:
    """List promotion requests, newest first."""
    render(requests_report(_releases(), env, model, state), json)


def requests_report(
    releases: Releases,
    env: str | None = None,
    model: str | None = None,
    state: RequestState | None = None,
) -> Report[list[dict[str, Any]]]:
    """Promotion requests (to an environment, of a model, in a state), newest first."""
    found = [request_to_dict(r) for r in releases.list_requests(env, model, state)]
    return Report(found, _requests_views)


def _requests_views(found: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (r["id"][:8], r["ref"], r["environment"], r["state"], r["requester"],
         format_time(r["created_at"]), r["decision"])
        for r in found
    ]  # fmt: skip
    yield Table("Promotion requests", ("id", "version", "to", "state", "by", "opened", "why"), rows)


@requests.command("show")
def show_request(request_id: RequestId, json: Json = False) -> None:
    """Show a request: each gate's result and evidence, and each approval."""
    render(request_report(_releases().get_request(request_id)), json)


@requests.command("judge")
def judge(
    request_id: Annotated[
        str | None,
        typer.Argument(
            help="A request serving as a canary (default: every canary).", show_default=False
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Judge canaries on their live traffic now (maintainers): each is promoted, rolled
    back if it did worse, or left serving while too few of its requests have labels.
    `cairn monitor daemon` and `cairn serve --monitor` judge them at every look."""
    from cairn.releases.service import judge_canaries

    releases = _releases()
    judged = [releases.judge(request_id)] if request_id else judge_canaries(releases)
    render(Report([request_to_dict(r) for r in judged], _judged_views), json)


def _judged_views(found: list[dict[str, Any]]) -> Iterator[View]:
    if not found:
        yield Line("No canary is serving.")
    for data in found:
        yield from _request_views(data)


def request_report(request: PromotionRequest) -> Report[dict[str, Any]]:
    """A promotion request: its state, each gate's result and evidence, each approval."""
    return Report(request_to_dict(request), _request_views)


def _request_views(data: dict[str, Any]) -> Iterator[View]:
    request = request_from_dict(data)
    yield Line(Text.assemble(f"request {request.id[:8]}: {request.ref} → {request.environment}: ",
                             (request.state.value, "bold"), f" ({request.decision})"))  # fmt: skip
    yield Line(f"  requested by {request.requester}: {request.reason}")
    yield from _gate_views(data["gates"])
    for given in request.approvals:
        said = f": {given.comment}" if given.comment else ""
        role = given.role.value if given.role else "no role"
        said_so = "approved" if given.verdict is Verdict.APPROVE else "rejected"
        yield Line(f"  {said_so} by {given.by} ({role}) {format_time(given.at)}{said}")


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
    render(Report(deployment_to_dict(done), _rollback_views), json)


def _rollback_views(done: Mapping[str, Any]) -> Iterator[View]:
    yield Line(f"{done['environment']} runs {done['model']}/{done['version']} again (was "
               f"{done['model']}/{done['previous']})")  # fmt: skip


@gate.command("check")
def check(
    ref: ModelRef,
    env: Annotated[str, typer.Option("--env", help="The environment whose policy applies.")],
    json: Json = False,
) -> None:
    """Run an environment's gates on a version, recording nothing; exits 1, listing each
    failed gate and why, when any fails."""
    found = _releases().check(ref, env)
    render(Report(gate_check_to_dict(found), _check_views), json)
    if not found.passed:
        raise typer.Exit(1)


def _check_views(data: dict[str, Any]) -> Iterator[View]:
    found = gate_check_from_dict(data)
    verdict = "pass" if found.passed else "FAIL"
    yield Line(Text.assemble(f"{found.model}/{found.version} against {found.environment} "
                             f"(policy {found.policy_digest}): ", (verdict, "bold")))  # fmt: skip
    yield from _gate_views(data["gates"])


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
    env: OnlyEnv = None,
    json: Json = False,
) -> None:
    """Post every release event (promote, rollback) to a URL, signed with HMAC-SHA256
    (installation admins)."""
    secret = os.environ.get(secret_env, "")
    if not secret:
        raise InvalidInput(f"--secret-env {secret_env}: that environment variable is not set")
    hook = _releases().add_webhook(url, secret, env)
    render(Report(webhook_to_dict(hook), _added_webhook_views), json)


def _added_webhook_views(hook: Mapping[str, Any]) -> Iterator[View]:
    yield Line(f"webhook {hook['id'][:8]} posts {hook['environment'] or 'every environment'}'s "
               f"events to {hook['url']}")  # fmt: skip


@webhooks.command("list")
def list_webhooks(json: Json = False) -> None:
    """List the webhooks release events are posted to."""
    render(webhooks_report(_releases()), json)


def webhooks_report(releases: Releases) -> Report[list[dict[str, Any]]]:
    """Every webhook: where it posts, and which environment's events."""
    return Report([webhook_to_dict(h) for h in releases.list_webhooks()], _webhooks_views)


def _webhooks_views(found: list[dict[str, Any]]) -> Iterator[View]:
    rows = [(h["id"][:8], h["url"], h["environment"] or "all", h["created_by"],
             format_time(h["created_at"])) for h in found]  # fmt: skip
    yield Table("Webhooks", ("id", "url", "environment", "by", "created"), rows)


@webhooks.command("show")
def show_webhook(webhook_id: str, json: Json = False) -> None:
    """Show one webhook: where it posts, which environment's events, who added it."""
    render(Report(webhook_to_dict(_releases().get_webhook(webhook_id)), _webhook_views), json)


def _webhook_views(hook: dict[str, Any]) -> Iterator[View]:
    yield from _webhooks_views([hook])


@webhooks.command("remove")
def remove_webhook(webhook_id: str) -> None:
    """Stop posting release events to a webhook."""
    _releases().remove_webhook(webhook_id)
    console.print(f"webhook {webhook_id} removed", markup=False)


# printing


def _gate_views(gates: list[dict[str, Any]]) -> Iterator[View]:
    for result in map(gate_from_dict, gates):
        mark = ("pass", "green") if result.passed else ("FAIL", "red")
        yield Line(Text.assemble("  ", mark, f" {result.gate}: {result.reason}"))


def _history_row(d: Deployment) -> tuple[Cell, ...]:
    previous = f"{d.previous}" if d.previous is not None else "—"
    return (format_time(d.at), d.model, d.version, previous, d.action.value, d.by, d.reason,
            (d.request_id or "—")[:8])  # fmt: skip


def _running(deployed: Mapping[str, int]) -> str:
    return ", ".join(f"{m}/{v}" for m, v in deployed.items()) or "nothing yet"


def _approvals(required: int, auto: bool) -> str:
    return "none (auto-promote)" if auto else str(required)
