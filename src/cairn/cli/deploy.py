"""``cairn deploy``: what it takes to serve a model an environment runs elsewhere."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.context import session
from cairn.cli.output import console
from cairn.cli.report import Report, Table, render
from cairn.core.model import parse_model_ref


class Target(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


ACTIONS = ("status", "logs", "stop")  # of local deployments, in place of an environment


def deploy(
    environment: Annotated[
        str,
        typer.Argument(
            help="The environment whose model is served; or status, logs NAME, "
            "stop NAME for local deployments.",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None, typer.Argument(help="The local deployment (logs, stop).", show_default=False)
    ] = None,
    model: Annotated[str | None, typer.Option(help="The model's name.", show_default=False)] = None,
    target: Annotated[Target, typer.Option(help="Where it is served.")] = Target.LOCAL,
    port: Annotated[int, typer.Option(help="Local: the port the server listens on.")] = 8080,
    json_output: Annotated[bool, typer.Option("--json", help="status: as JSON.")] = False,
    out: Annotated[Path, typer.Option(help="Where the files are written.")] = Path("deploy"),
    cairn_uri: Annotated[
        str | None,
        typer.Option(help="The Cairn server the pods read the model from (default: CAIRN_URI)."),
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="The image the Deployment runs (default: cairn-serve-NAME).")
    ] = None,
    token_secret: Annotated[
        str, typer.Option(help="The Secret holding the pods' API token (key: token).")
    ] = "cairn-token",  # noqa: S107  # the Secret's name, not a secret
    replicas: Annotated[
        int, typer.Option(help="Replicas at least (the autoscaler's floor).", min=1)
    ] = 2,
    max_replicas: Annotated[int, typer.Option(help="The autoscaler's ceiling.", min=1)] = 10,
) -> None:
    """Serve ENVIRONMENT's version of a model: locally, a supervised `cairn serve` (restarted
    when it dies); on Kubernetes, the Dockerfile and manifests that do the same."""
    root = session().settings.home / "deployments"
    if environment in ACTIONS:
        _act(environment, name, root, json_output)
        return
    if model is None:
        raise typer.BadParameter("name the model to serve", param_hint="--model")
    current = session()
    version = current.registry.resolve(parse_model_ref(f"{model}@{environment}"))
    if target is Target.LOCAL:
        _local(root, model, environment, version.ref, port)
        return
    from cairn.serving.kubernetes import Deployment, write

    uri = cairn_uri or current.settings.uri
    if uri is None:
        raise typer.BadParameter(
            "pods read the model from a Cairn server: pass --cairn-uri (or set CAIRN_URI)",
            param_hint="--cairn-uri",
        )
    plan = Deployment(environment, version, uri, image, token_secret, replicas,
                      max(max_replicas, replicas))  # fmt: skip
    for path in write(plan, out):
        console.print(f"  wrote {path}")
    console.print(
        f"\n{plan.reference} runs {version.ref} now; every pod follows it.\n"
        f"  docker build -t {plan.image_name} {out}\n"
        f"  kubectl create secret generic {token_secret} --from-literal=token=$CAIRN_TOKEN\n"
        f"  kubectl apply -f {out / 'kubernetes.yaml'}"
    )


def _local(root: Path, model: str, environment: str, ref: str, port: int) -> None:
    from cairn.serving.supervise import start

    name = f"{model}-{environment}"
    reference = f"{model}@{environment}"
    command = [sys.executable, "-m", "cairn", "serve", reference, "--port", str(port)]
    found = start(root / name, name, reference, port, command)
    console.print(
        f"Deployed {reference} ({ref} now) as [bold]{name}[/bold] on http://127.0.0.1:{port}: "
        f"supervised (pid {found.supervisor_pid}), started again whenever it dies\n"
        f"  cairn deploy status\n  cairn deploy logs {name}\n  cairn deploy stop {name}"
    )


def _act(action: str, name: str | None, root: Path, json_output: bool) -> None:
    from cairn.serving import supervise

    if action == "status":
        found = [d.to_dict() for d in supervise.listed(root)]
        render(Report(found, _status_table), json_output)
        return
    if name is None:
        raise typer.BadParameter(f"name the deployment: cairn deploy {action} NAME")
    if action == "logs":
        log = root / supervise.find(root, name).name / supervise.LOG
        sys.stdout.write(log.read_text() if log.exists() else "")
        return
    stopped = supervise.stop(root, name)
    console.print(f"Stopped {stopped.name} ({stopped.reference})")


def _status_table(found: list[dict[str, Any]]) -> list[Table]:
    columns = ["name", "reference", "port", "running", "server pid", "restarts"]
    rows = [[d["name"], d["reference"], d["port"], "yes" if d["running"] else "no",
             d["server_pid"] or "", d["restarts"]] for d in found]  # fmt: skip
    return [Table("Local deployments", columns, rows)]
