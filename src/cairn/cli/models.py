"""``cairn models``: registered models, their versions and aliases."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.markup import escape

from cairn.cli.output import console, format_size, format_time, print_json, table
from cairn.core.model import ModelVersion, parse_model_ref
from cairn.core.model_codec import model_version_to_dict, registered_model_to_dict
from cairn.core.yaml_text import parse_yaml
from cairn.errors import InvalidInput

if TYPE_CHECKING:
    from cairn.models.service import ModelService

app = typer.Typer(help="Models: registered versions, aliases and packages.", no_args_is_help=True)
aliases = typer.Typer(help="Aliases: names that point at a version (churn@champion).")
app.add_typer(aliases, name="alias", no_args_is_help=True)

_SHOWN_COLUMNS = 6
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _models() -> ModelService:
    from cairn.sdk import models  # the registry loads only for these commands

    return models()


@app.command("list")
def list_models(json: Json = False) -> None:
    """List every registered model with its newest version and aliases."""
    found = _models().registry.list_models()
    if json:
        print_json([registered_model_to_dict(m) for m in found])
        return
    rows = [
        (m.name, m.project, m.latest_version, _aliases(m.aliases), format_time(m.created_at))
        for m in found
    ]
    table("Models", ("name", "project", "latest", "aliases", "created"), rows)


@app.command("versions")
def list_versions(name: str, json: Json = False) -> None:
    """List a model's versions, newest first."""
    found = _models().registry.list_versions(name)
    if json:
        print_json([model_version_to_dict(v) for v in found])
        return
    rows = [
        (v.version, v.flavor, ", ".join(v.aliases), v.run_id or "—",
         "flagged" if v.flagged else "ok", format_time(v.created_at), v.created_by)
        for v in found
    ]  # fmt: skip
    table(f"Versions of {name}", ("version", "flavor", "aliases", "run", "scan", "created", "by"),
          rows)  # fmt: skip


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="churn (the newest), churn/3 or churn@champion")],
    json: Json = False,
) -> None:
    """Show a version: its package's files, signature, requirements and scan findings."""
    version = _models().registry.resolve(parse_model_ref(ref))
    if json:
        print_json(model_version_to_dict(version))
        return
    _print_version(version)


@app.command("card")
def card(
    ref: Annotated[str, typer.Argument(help="churn/3 or churn@champion")],
    edit: Annotated[
        Path | None,
        typer.Option("--edit", help="Replace the card with this YAML or JSON file's fields."),
    ] = None,
    json: Json = False,
) -> None:
    """Show a version's model card as Markdown (intended use, limitations, training data,
    ethical considerations, metrics), or replace it with --edit FILE."""
    from cairn import models

    if edit is not None:
        found = models.set_card(ref, parse_yaml(edit.read_bytes(), f"--edit {edit}"))
    else:
        found = models.get_card(ref)
    version = models.get_version(ref)
    if json:
        print_json({"model": version.ref, **found.to_dict()})
        return
    console.out(found.to_markdown(version.ref), end="")


@app.command("attest")
def attest(
    ref: Annotated[str, typer.Argument(help="churn/3 or churn@champion")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write it here, not to stdout.")
    ] = None,
) -> None:
    """Write a signed attestation of a version: an in-toto statement of SLSA provenance
    (its package's files; the run, commit, data versions and environment it came from)
    in a DSSE envelope signed with this installation's key."""
    from cairn.sdk import attest_model

    envelope = attest_model(ref)
    if output is None:
        print_json(envelope)
        return
    output.write_bytes(orjson.dumps(envelope, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(f"attestation of {escape(ref)} written to {escape(str(output))}")


@app.command("verify")
def verify(
    attestation: Annotated[Path, typer.Argument(help="A file `cairn models attest` wrote.")],
    package: Annotated[
        Path | None,
        typer.Option("--package", help="Check this package folder, not the registered one."),
    ] = None,
    json: Json = False,
) -> None:
    """Check an attestation: its signature is this installation's, and every file it
    names has the attested bytes. Exits 1, naming what differs, if not."""
    from cairn.sdk import verify_attestation

    try:
        envelope = orjson.loads(attestation.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InvalidInput(f"{attestation}: not a JSON attestation ({exc})") from None
    found = verify_attestation(envelope, package)
    attested = found["predicate"]["buildDefinition"]["externalParameters"]
    ref = f"{attested['model']}/{attested['version']}"
    if json:
        print_json({"verified": True, "model": ref, "statement": found})
        return
    console.print(f"verified: {ref}, {len(found['subject'])} files, signed by this installation")


@app.command("import-mlflow")
def import_mlflow(
    source: Annotated[Path, typer.Argument(help="An MLflow model folder (with its MLmodel).")],
    name: Annotated[str, typer.Option("--name", help="The model to register it as.")],
    description: Annotated[str, typer.Option(help="A note kept with the version.")] = "",
) -> None:
    """Register the scikit-learn model of an MLflow model folder as a new version."""
    version = _models().import_mlflow(source, name, description)
    flagged = f" — flagged: {'; '.join(map(str, version.findings))}" if version.flagged else ""
    console.print(f"imported {escape(str(source))} as {version.ref}{escape(flagged)}")


@app.command("export")
def export(
    ref: Annotated[str, typer.Argument(help="churn/3 or churn@champion")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A new folder to write.")],
    to: Annotated[
        str, typer.Option("--format", help="The format to write: mlflow (scikit-learn models).")
    ] = "mlflow",
) -> None:
    """Write a version as an MLflow model folder, which mlflow.pyfunc.load_model reads."""
    if to != "mlflow":
        raise InvalidInput(f"--format {to!r}: expected mlflow")
    version = _models().export_mlflow(ref, output)
    console.print(f"{version.ref} exported to {escape(str(output))} (MLflow model)")


@aliases.command("set")
def set_alias(name: str, alias: str, version: int) -> None:
    """Point ALIAS at VERSION of the model NAME (moving it if it pointed elsewhere)."""
    moved = _models().registry.set_alias(name, alias, version)
    console.print(f"{name}@{alias} → {moved.ref}")


@aliases.command("delete")
def delete_alias(name: str, alias: str) -> None:
    """Remove an alias; the version it pointed at stays."""
    _models().registry.delete_alias(name, alias)
    console.print(f"{name}@{alias} deleted")


def _print_version(version: ModelVersion) -> None:
    manifest = version.manifest
    rows = [
        ("version", version.ref),
        ("aliases", ", ".join(version.aliases) or "—"),
        ("flavor", version.flavor),
        ("digest", version.digest),
        ("run", version.run_id or "—"),
        ("created", f"{format_time(version.created_at)} by {version.created_by}"),
        ("description", version.description or "—"),
        ("python", manifest.get("python", "—")),
        ("requirements", ", ".join(manifest.get("requirements", [])) or "—"),
        ("signature", _signature(manifest.get("signature"))),
        ("scan", "; ".join(str(f) for f in version.findings) or "no findings"),
    ]
    table(None, ("field", "value"), rows)
    files = [(f.path, format_size(f.size), f.digest) for f in version.files]
    pickled = set(manifest.get("pickle", []))
    table("Files", ("path", "size", "digest"),
          [(p + (" (pickle)" if p in pickled else ""), s, d) for p, s, d in files])  # fmt: skip


def _signature(found: object) -> str:
    if not isinstance(found, dict):
        return "— (no input example was given)"
    inputs = found["inputs"]
    if inputs["type"] == "columns":
        columns = [f"{c['name']}: {c['type']}" for c in inputs["columns"]]
        shown = ", ".join(columns[:_SHOWN_COLUMNS])
        more = len(columns) - _SHOWN_COLUMNS
        return f"{len(columns)} columns: {shown}" + (
            f" … and {more} more (--json)" if more > 0 else ""
        )
    if inputs["type"] == "tensor":
        return f"{inputs['dtype']} {inputs['shape']}"
    return ", ".join(f"{k}: {v['dtype']} {v['shape']}" for k, v in inputs["tensors"].items())


def _aliases(found: Mapping[str, int]) -> str:
    return ", ".join(f"{alias} → {version}" for alias, version in sorted(found.items())) or "—"
