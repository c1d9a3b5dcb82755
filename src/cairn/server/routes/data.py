"""Datasets and data versions (the DataCatalog port). The files themselves travel as
objects (``/objects``): a client stores a version's objects first, then records the
version, which the server refuses if its manifest or profile is not stored."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cairn.core.data import DataKind, NewDataVersion, parse_data_ref
from cairn.core.data_codec import data_version_to_dict
from cairn.core.identity import DEFAULT_PROJECT
from cairn.errors import InvalidInput
from cairn.server.auth import READ, WRITE
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Artifacts, Catalog

router = APIRouter(prefix="/datasets", tags=["data"])

_DIGEST = r"^blake3:[0-9a-f]{64}$"


class NewVersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digest: str = Field(pattern=_DIGEST)
    kind: Literal["file", "directory"]
    path: str = Field(max_length=4096)
    files: int = Field(ge=0)
    bytes: int = Field(ge=0)
    message: str = Field(default="", max_length=10_000)
    project: str = DEFAULT_PROJECT
    profile: str = Field(default="", pattern=rf"^$|{_DIGEST}")
    objects: list[Annotated[str, Field(pattern=_DIGEST)]] = Field(default=[], max_length=10_000_000)


@router.get("", dependencies=[READ])
def list_datasets(catalog: Catalog) -> JsonResponse:
    """The newest version of every dataset the caller may read."""
    return JsonResponse({"datasets": [data_version_to_dict(v) for v in catalog.list_datasets()]})


@router.get("/{name}/versions", dependencies=[READ])
def list_versions(name: str, catalog: Catalog) -> JsonResponse:
    """Newest first."""
    return JsonResponse(
        {"versions": [data_version_to_dict(v) for v in catalog.list_versions(name)]}
    )


@router.get("/{name}/versions/{selector}", dependencies=[READ])
def get_version(name: str, selector: str, catalog: Catalog) -> JsonResponse:
    """``selector``: a version number, ``latest``, or 8+ hex digits of the manifest digest."""
    return JsonResponse(
        data_version_to_dict(catalog.get_version(parse_data_ref(f"{name}@{selector}")))
    )


@router.post("/{name}/versions", dependencies=[WRITE])
def add_version(
    name: str, body: NewVersionBody, catalog: Catalog, artifacts: Artifacts
) -> JsonResponse:
    """201 and the new version; or 200 and the newest one, which already has this manifest.

    ``objects`` lists every object the version is made of (listings, bundles, files):
    whoever may read the dataset may then read them."""
    needed = [d for d in (body.digest, body.profile, *body.objects) if d]
    if absent := artifacts.missing(needed):
        raise InvalidInput(
            f"{len(absent)} of the version's objects are not stored here (such as "
            f"{min(absent)}): upload them (PUT /objects/{{digest}}) before recording it"
        )
    new = NewDataVersion(
        name, body.digest, DataKind(body.kind), body.path, body.files, body.bytes,
        body.message, body.project, body.profile, tuple(body.objects),
    )  # fmt: skip
    version, created = catalog.add_version(new)
    return JsonResponse(
        {"version": data_version_to_dict(version), "created": created},
        status_code=201 if created else 200,
    )
