"""``cairn deploy``: what it takes to serve a model an environment runs elsewhere."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cairn.cli.context import session
from cairn.cli.output import console
from cairn.core.model import parse_model_ref


class Target(StrEnum):
    KUBERNETES = "kubernetes"


def deploy(
    environment: Annotated[str, typer.Argument(help="The environment whose model is served.")],
    model: Annotated[str, typer.Option(help="The model's name.", show_default=False)],
    target: Annotated[Target, typer.Option(help="Where it is served.")] = Target.KUBERNETES,
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
    """Write a Dockerfile and Kubernetes manifests serving ENVIRONMENT's version of a model."""
    from cairn.serving.kubernetes import Deployment, write

    current = session()
    version = current.registry.resolve(parse_model_ref(f"{model}@{environment}"))
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
