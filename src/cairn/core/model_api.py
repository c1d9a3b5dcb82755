"""The Registry: the model registry as a user drives it, and its operations over HTTP (one
table, from which the server's routes and the HTTP client are both made).

It is the :class:`~cairn.core.ports.ModelRegistry` port, decided for one caller, plus
``register_stored``: what a client sends to register a version. A version travels as its
package's manifest digest only (the files are uploaded first): the server reads the
package from its own store, verifies it and scans its pickles itself, so what a client
says of its package — files, flavor, findings — is never taken on trust.
``register_version`` over HTTP is therefore ``register_stored`` of the version's digest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.limits import INT64_MAX
from cairn.core.model import (
    ModelCard,
    ModelRef,
    TrafficBatch,
    card_from_dict,
    check_alias,
    check_model_name,
    parse_model_ref,
    stored_card,
)
from cairn.core.model_codec import (
    model_version_from_dict,
    model_version_to_dict,
    registered_model_from_dict,
    registered_model_to_dict,
    traffic_from_dict,
    traffic_to_dict,
)
from cairn.core.operations import (
    NOTHING,
    Access,
    Arg,
    Codec,
    Kind,
    Operation,
    Place,
    listed,
    one,
    table,
)
from cairn.core.ports import ModelRegistry
from cairn.core.wire import Count, Digest, Shape, Text, Timestamp, VersionNumber

if TYPE_CHECKING:
    from cairn.core.model import ModelVersion


class Registry(ModelRegistry, Protocol):
    """Registered models, versions, aliases and cards, as one caller may use them: what it
    may not read is not there for it."""

    def register_stored(
        self,
        name: str,
        digest: str,
        run_id: str | None = None,
        description: str = "",
        project: str = DEFAULT_PROJECT,
    ) -> ModelVersion:
        """The next version of ``name``, from the stored package whose manifest has
        ``digest``, read only from the objects the caller holds; in the model's project,
        else (a new model) the project of the run that made it, else ``project``.
        Raises NotFound (a file, the run, the project), IntegrityError, InvalidInput,
        AlreadyExists (a name another project holds), PermissionDenied."""


def _ref_text(ref: ModelRef) -> str:
    check_model_name(ref.name)  # a name holding '/' or '@' would read as another reference
    return str(ref)


_NAME = Codec(check_model_name, check_model_name)


class TrafficShape(Shape):
    model: Text
    version: VersionNumber
    first_at: Timestamp
    last_at: Timestamp
    rows: Count
    digest: Digest
    logged_at: Timestamp = 0  # the server's to set: what a client sends is not kept
    logged_by: Text = ""


# refused before it is put in a path
_MODEL = Arg("name", Place.PATH, codec=_NAME)
_VERSION = Arg("version", Place.PATH, Kind.VERSION)
_MODEL_ = one(registered_model_to_dict, registered_model_from_dict)
_VERSION_ = one(model_version_to_dict, model_version_from_dict)
_CARD_ = one(ModelCard.to_dict, stored_card)  # read as kept, whichever Cairn kept it

OPERATIONS = table(
    Operation("list_models", "GET", "/models", Access.AUTHENTICATED,
              listed("models", registered_model_to_dict, registered_model_from_dict),
              summary="Every model the caller may read."),
    Operation("resolve", "GET", "/models/resolve", Access.AUTHENTICATED, _VERSION_,
              (Arg("ref", Place.QUERY, max_length=300, codec=Codec(_ref_text, parse_model_ref)),),
              "The version a reference names (`churn@champion`, `churn/3`, `churn`)."),
    Operation("get_model", "GET", "/models/{name}", Access.AUTHENTICATED, _MODEL_, (_MODEL,)),
    Operation("list_versions", "GET", "/models/{name}/versions", Access.AUTHENTICATED,
              listed("versions", model_version_to_dict, model_version_from_dict), (_MODEL,),
              "Newest first."),
    Operation("register_stored", "POST", "/models/{name}/versions", Access.AUTHENTICATED,
              one(model_version_to_dict, model_version_from_dict, status=201),
              (_MODEL, Arg("digest", kind=Kind.DIGEST), Arg("run_id", required=False),
               Arg("description", required=False, default="", max_length=10_000),
               Arg("project", required=False, default=DEFAULT_PROJECT)),
              "The next version, from the stored package whose manifest has `digest` "
              "(upload its files first); in the model's project, else - for a new model - "
              "the project of the run that made it, else `project`. The server reads only "
              "objects the caller holds: any other is not stored."),
    Operation("set_alias", "PUT", "/models/{name}/aliases/{alias}", Access.AUTHENTICATED,
              _VERSION_, (_MODEL, Arg("alias", Place.PATH, codec=Codec(check_alias, check_alias)),
                          Arg("version", kind=Kind.VERSION))),
    Operation("delete_alias", "DELETE", "/models/{name}/aliases/{alias}", Access.AUTHENTICATED,
              NOTHING, (_MODEL, Arg("alias", Place.PATH))),
    Operation("get_card", "GET", "/models/{name}/versions/{version}/card", Access.AUTHENTICATED,
              _CARD_, (_MODEL, _VERSION)),
    Operation("set_card", "PUT", "/models/{name}/versions/{version}/card", Access.AUTHENTICATED,
              _CARD_, (_MODEL, _VERSION, Arg("card", Place.WHOLE_BODY,
                                             codec=Codec(ModelCard.to_dict, card_from_dict))),
              "Replace the card: `intended_use`, `limitations`, `training_data`, "
              "`ethical_considerations` (text) and `metrics` (numbers)."),
    Operation("log_traffic", "POST", "/traffic", Access.AUTHENTICATED,
              one(traffic_to_dict, traffic_from_dict, status=201),
              (Arg("batch", Place.WHOLE_BODY, shape=TrafficShape,
                   codec=Codec(traffic_to_dict, lambda data: TrafficBatch(**data))),),
              "Index a batch of what a served version answered: its file (upload it first) "
              "spans `first_at` to `last_at` and holds `rows` requests."),
    Operation("traffic", "GET", "/traffic", Access.AUTHENTICATED,
              listed("batches", traffic_to_dict, traffic_from_dict),
              (Arg("name", Place.QUERY, wire="model", codec=_NAME),
               Arg("since", Place.QUERY, Kind.TIMESTAMP, required=False, default=0),
               Arg("until", Place.QUERY, Kind.TIMESTAMP, required=False, default=INT64_MAX)),
              "The model's traffic batches overlapping the window, oldest first."),
)  # fmt: skip
