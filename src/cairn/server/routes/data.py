"""Datasets and data versions (the DataCatalog port). The files themselves travel as
objects (``/objects``): a client stores a version's objects first, then records the
version, which the server refuses if its manifest or profile is not stored."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from cairn.core.access import require_to_add
from cairn.core.data import DataKind, DataRef, NewDataVersion, parse_data_ref
from cairn.core.data_codec import data_version_to_dict
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.wire import Count, Text
from cairn.data.manifest import check_new_version
from cairn.data.materialize import read_listing
from cairn.errors import NotFound
from cairn.server.auth import READ, WRITE, Caller
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Artifacts, Catalog, HeldArtifacts
from cairn.tracking.stored import require_stored

router = APIRouter(prefix="/datasets", tags=["data"])

_DIGEST = r"^blake3:[0-9a-f]{64}$"


class NewVersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digest: str = Field(pattern=_DIGEST)
    kind: Literal["file", "directory"]
    path: Text = Field(max_length=4096)
    files: Count
    bytes: Count
    message: Text = Field(default="", max_length=10_000)
    project: Text = DEFAULT_PROJECT
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
    name: str,
    body: NewVersionBody,
    catalog: Catalog,
    artifacts: Artifacts,
    held: HeldArtifacts,
    request: Request,
    caller: Caller,
) -> JsonResponse:
    """201 and the new version; or 200 and the newest one, which already has this manifest.

    ``objects`` lists every object the version is made of (listings, bundles, files):
    whoever may read the dataset may then read them. Each must be stored, and held by the
    caller: readable where another project holds it, or uploaded by the caller."""
    # Who may not write there is refused before the objects are looked at (and learns
    # nothing of them); the catalog decides again as it records the version.
    try:
        owner: str | None = request.app.state.catalog.get_version(DataRef(name)).project
    except NotFound:  # a new dataset
        owner = None
    require_to_add(caller, "dataset", name, owner, body.project)
    named = [("digest", body.digest), ("profile", body.profile)]
    named += [(f"objects[{index}]", digest) for index, digest in enumerate(body.objects)]
    require_stored(artifacts, [(field, digest) for field, digest in named if digest])
    new = NewDataVersion(
        name, body.digest, DataKind(body.kind), body.path, body.files, body.bytes,
        body.message, body.project, body.profile, tuple(body.objects),
    )  # fmt: skip
    # Whoever checks it out will write its files where its listings say: they must say
    # nowhere outside the version's folder, and hold what the version claims. The listings
    # are the caller's (stored above); each is read once, however often it is named.
    check_new_version(new, partial(read_listing, held))
    version, created = catalog.add_version(new)
    return JsonResponse(
        {"version": data_version_to_dict(version), "created": created},
        status_code=201 if created else 200,
    )
