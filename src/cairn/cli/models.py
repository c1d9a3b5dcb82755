"""``cairn models``: registered models, their versions and aliases."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape

from cairn.cli.options import Json, ModelRef
from cairn.cli.output import console, format_size, format_time, print_json
from cairn.cli.report import Fields, Line, Report, Table, Verbatim, View, render
from cairn.core.model import parse_model_ref, stored_card
from cairn.core.model_codec import (
    model_version_from_dict,
    model_version_to_dict,
    registered_model_to_dict,
)
from cairn.core.yaml_text import parse_yaml
from cairn.errors import InvalidInput

if TYPE_CHECKING:
    from cairn.models.service import ModelService

app = typer.Typer(help="Models: registered versions, aliases and packages.", no_args_is_help=True)
aliases = typer.Typer(help="Aliases: names that point at a version (churn@champion).")
app.add_typer(aliases, name="alias", no_args_is_help=True)

_SHOWN_COLUMNS = 6


def _models() -> ModelService:
    from cairn.sdk import models  # the registry loads only for these commands

    return models()


@app.command("list")
def list_models(json: Json = False) -> None:
    """List every registered model with its newest version and aliases."""
    render(list_report(_models()), json)


def list_report(models: ModelService) -> Report[list[dict[str, Any]]]:
    """Every registered model, its newest version and aliases."""
    found = [registered_model_to_dict(m) for m in models.registry.list_models()]
    return Report(found, _list_views)


def _list_views(found: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (m["name"], m["project"], m["latest_version"], _aliases(m["aliases"]),
         format_time(m["created_at"]))
        for m in found
    ]  # fmt: skip
    yield Table("Models", ("name", "project", "latest", "aliases", "created"), rows)


@app.command("versions")
def list_versions(name: str, json: Json = False) -> None:
    """List a model's versions, newest first."""
    render(versions_report(_models(), name), json)


def versions_report(models: ModelService, name: str) -> Report[list[dict[str, Any]]]:
    """A model's versions, newest first."""
    found = [model_version_to_dict(v) for v in models.registry.list_versions(name)]
    return Report(found, partial(_versions_views, name))


def _versions_views(name: str, found: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (v["version"], v["flavor"], ", ".join(v["aliases"]), v["run_id"] or "—",
         "flagged" if v["findings"] else "ok", format_time(v["created_at"]), v["created_by"])
        for v in found
    ]  # fmt: skip
    columns = ("version", "flavor", "aliases", "run", "scan", "created", "by")
    yield Table(f"Versions of {name}", columns, rows)


@app.command("show")
def show(ref: ModelRef, json: Json = False) -> None:
    """Show a version: its package's files, signature, requirements and scan findings."""
    render(show_report(_models(), ref), json)


def show_report(models: ModelService, ref: str) -> Report[dict[str, Any]]:
    """A version: its package's files, manifest (signature, requirements) and findings."""
    version = models.registry.resolve(parse_model_ref(ref))
    return Report(model_version_to_dict(version), _show_views)


@app.command("card")
def card(
    ref: ModelRef,
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
    render(Report({"model": version.ref, **found.to_dict()}, _card_views), json)


def _card_views(data: Mapping[str, Any]) -> Iterator[View]:
    yield Verbatim(stored_card(data).to_markdown(data["model"]))


@app.command("attest")
def attest(
    ref: ModelRef,
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
    render(Report({"verified": True, "model": ref, "statement": found}, _verified_views), json)


def _verified_views(data: Mapping[str, Any]) -> Iterator[View]:
    files = len(data["statement"]["subject"])
    yield Line(f"verified: {data['model']}, {files} files, signed by this installation")


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
    ref: ModelRef,
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


def _show_views(data: Mapping[str, Any]) -> Iterator[View]:
    version = model_version_from_dict(data)
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
    yield Fields(None, rows, header=("field", "value"))
    pickled = set(manifest.get("pickle", []))
    files = [
        (f.path + (" (pickle)" if f.path in pickled else ""), format_size(f.size), f.digest)
        for f in version.files
    ]
    yield Table("Files", ("path", "size", "digest"), files)


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
