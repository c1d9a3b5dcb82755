"""The Catalog: datasets and data versions as a user drives them, and their operations over
HTTP (one table, from which the server's routes and the HTTP client are both made).

It is the :class:`~cairn.core.ports.DataCatalog` port, decided for one caller. A version's
files travel as objects (``/objects``) first; adding the version then names them, and the
server records it only once it has checked them itself in the objects the caller holds —
its manifest whole and safe to check out, holding the files and bytes it claims — so what
a client says of its version is never taken on trust.

On the wire a data reference is the dataset's name and a selector (``3``, ``latest``, or
8 or more hex digits of the manifest's digest), both in the path; a new version is its
dataset's name, in the path, and the rest of it, in the body.
"""

from __future__ import annotations

from typing import Any, Protocol

from cairn.core.data import (
    DataKind,
    DataRef,
    NewDataVersion,
    check_dataset_name,
    parse_data_ref,
)
from cairn.core.data_codec import (
    added_from_dict,
    added_to_dict,
    data_version_from_dict,
    data_version_to_dict,
    new_data_version_from_dict,
    new_data_version_to_dict,
)
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.limits import MAX_MESSAGE
from cairn.core.operations import (
    Access,
    Arg,
    Codec,
    Kind,
    Operation,
    Place,
    Result,
    listed,
    one,
    table,
)
from cairn.core.ports import DataCatalog

MAX_PATH = 4096  # of where a version lives
MAX_OBJECTS = 10_000_000  # that one version is made of


class Catalog(DataCatalog, Protocol):
    """Datasets and their versions, as one caller may use them: what it may not read is
    not there for it."""


def _ref_values(ref: DataRef) -> dict[str, Any]:
    return {"name": ref.name, "selector": str(ref).partition("@")[2]}


def _ref(values: dict[str, Any]) -> DataRef:
    return parse_data_ref(f"{values['name']}@{values['selector']}")


def _new_values(new: NewDataVersion) -> dict[str, Any]:
    return {"name": new.name, **new_data_version_to_dict(new)}


_NAME = Codec(check_dataset_name, check_dataset_name)  # refused before it is put in a path
_DATASET = Arg("name", Place.PATH, codec=_NAME)
_VERSION_ = one(data_version_to_dict, data_version_from_dict)
_REF = Arg("ref", codec=Codec(_ref_values, _ref), parts=(_DATASET, Arg("selector", Place.PATH)))
_NEW = Arg("new", codec=Codec(_new_values, new_data_version_from_dict), parts=(
    _DATASET,
    Arg("digest", kind=Kind.DIGEST),
    Arg("kind", kind=DataKind),
    Arg("path", max_length=MAX_PATH),
    Arg("files", kind=Kind.COUNT),
    Arg("bytes", kind=Kind.COUNT),
    Arg("message", required=False, default="", max_length=MAX_MESSAGE),
    Arg("project", required=False, default=DEFAULT_PROJECT),
    Arg("profile", kind=Kind.DIGEST, required=False, default=""),
    Arg("objects", kind=Kind.DIGEST, required=False, default=(), max_items=MAX_OBJECTS),
))  # fmt: skip
_ADDED = Result(added_to_dict, added_from_dict, status=201,
                status_of=lambda added: 201 if added[1] else 200)  # fmt: skip

OPERATIONS = table(
    Operation("list_datasets", "GET", "/datasets", Access.AUTHENTICATED,
              listed("datasets", data_version_to_dict, data_version_from_dict),
              summary="The newest version of every dataset the caller may read."),
    Operation("list_versions", "GET", "/datasets/{name}/versions", Access.AUTHENTICATED,
              listed("versions", data_version_to_dict, data_version_from_dict), (_DATASET,),
              "Newest first."),
    Operation("get_version", "GET", "/datasets/{name}/versions/{selector}", Access.AUTHENTICATED,
              _VERSION_, (_REF,),
              "`selector`: a version number, `latest`, or 8+ hex digits of the manifest digest."),
    Operation("add_version", "POST", "/datasets/{name}/versions", Access.AUTHENTICATED, _ADDED,
              (_NEW,),
              "201 and the new version; or 200 and the newest one, which already has this "
              "manifest. `objects` lists every object the version is made of (listings, "
              "bundles, files): whoever may read the dataset may then read them. Each must "
              "be stored, and held by the caller: readable where another project holds it, "
              "or uploaded by the caller. The manifest's listings are checked in the objects "
              "the caller holds: safe to check out, holding the files and bytes claimed."),
)  # fmt: skip
