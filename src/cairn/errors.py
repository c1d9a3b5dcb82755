"""Every error Cairn raises on purpose.

    CairnError
    ├── InvalidInput (ValueError)          bad argument, names the field
    │   ├── FilterSyntaxError              malformed search filter, points at the token
    │   ├── ParamConflict                  a param re-logged with another value
    │   └── PayloadTooLarge                a request body over what the server takes (413)
    ├── NotFound (KeyError)                unknown run, experiment, artifact, object
    ├── AmbiguousReference (LookupError)   an id prefix that matches more than one thing
    ├── AlreadyExists (ValueError)         a name that must be unique is taken
    ├── InvalidState (RuntimeError)        e.g. logging to a deleted run
    │   └── PolicyChanged                  an environment's policy changed under its gates
    ├── Unauthenticated (PermissionError)  no credentials, or ones that are not valid
    │   └── TooManyFailures                too many failures from one address (429)
    ├── PermissionDenied (PermissionError) valid credentials, not allowed to do this
    ├── UntrustedModel (PermissionError)   a model's pickles import code outside the allow-list
    ├── StepFailed (RuntimeError)          a pipeline step raised, exited or was killed
    ├── ModelFailed (RuntimeError)         a model run by Cairn raised, crashed or timed out
    ├── IntegrityError (RuntimeError)      stored bytes do not match their digest
    │   └── DigestMismatch                 sent bytes do not match the digest claimed
    ├── SchemaError (RuntimeError)         metadata store schema newer than this code
    ├── MissingExtra (ImportError)         an optional dependency is not installed
    └── ServerUnavailable (ConnectionError)  the Cairn server cannot be reached
        ├── ServerBusy                     at its limit of uploads (evaluations) at once
        └── StoreUnavailable               the metadata database cannot be opened or reached

Each class carries a stable ``code`` and an HTTP status. ``ERRORS_BY_CODE`` is the one table
the server uses to turn an error into a response and the HTTP client uses to turn the
response back into the same class, so remote calls raise what local calls raise.
"""

from __future__ import annotations

from typing import ClassVar


class CairnError(Exception):
    """Root of every error Cairn raises on purpose."""

    code: ClassVar[str] = "CAIRN_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Seconds after which the same request may succeed (a server sends Retry-After).
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class InvalidInput(CairnError, ValueError):
    code = "INVALID_INPUT"
    http_status = 400


class FilterSyntaxError(InvalidInput):
    code = "INVALID_FILTER"


class ParamConflict(InvalidInput):
    code = "PARAM_CONFLICT"
    http_status = 409


class NotFound(CairnError, KeyError):
    code = "NOT_FOUND"
    http_status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class AmbiguousReference(CairnError, LookupError):
    code = "AMBIGUOUS_REFERENCE"
    http_status = 409


class AlreadyExists(CairnError, ValueError):
    code = "ALREADY_EXISTS"
    http_status = 409


class InvalidState(CairnError, RuntimeError):
    code = "INVALID_STATE"
    http_status = 409


class PolicyChanged(InvalidState):
    """An environment's policy changed while gates ran under the one before: run them again."""

    code = "POLICY_CHANGED"


class Unauthenticated(CairnError, PermissionError):
    code = "UNAUTHENTICATED"
    http_status = 401


class TooManyFailures(Unauthenticated):
    """Too many failed authentications from one address: until its window ends, its further
    failures are answered 429 and counted rather than audited one by one."""

    code = "TOO_MANY_FAILURES"
    http_status = 429


class PayloadTooLarge(InvalidInput):
    """A request body over what the server takes (``--max-body``)."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class PermissionDenied(CairnError, PermissionError):
    code = "PERMISSION_DENIED"
    http_status = 403


class IntegrityError(CairnError, RuntimeError):
    code = "INTEGRITY_ERROR"
    http_status = 500


class DigestMismatch(IntegrityError):
    """The sender's fault (a cut or altered upload), not the store's: retry the upload."""

    code = "DIGEST_MISMATCH"
    http_status = 422


class UntrustedModel(CairnError, PermissionError):
    """A model package whose pickles import code outside the allow-list, loaded without
    an explicit trust."""

    code = "UNTRUSTED_MODEL"
    http_status = 409


class StepFailed(CairnError, RuntimeError):
    """A pipeline step raised, called ``sys.exit`` or was killed; the message names the
    step and carries the user's traceback."""

    code = "STEP_FAILED"
    http_status = 500


class ModelFailed(CairnError, RuntimeError):
    """A model's code failed where Cairn ran it for an evaluation (in a worker process):
    it raised, crashed, ran out of time or memory, or answered with something that is not
    predictions."""

    code = "MODEL_FAILED"
    http_status = 422


class SchemaError(CairnError, RuntimeError):
    code = "SCHEMA_ERROR"
    http_status = 500


class MissingExtra(CairnError, ImportError):
    code = "MISSING_EXTRA"
    http_status = 500


class ServerUnavailable(CairnError, ConnectionError):
    code = "SERVER_UNAVAILABLE"
    http_status = 503


class ServerBusy(ServerUnavailable):
    """The server is at a limit of what it takes at once (uploads, gate evaluations):
    retry in a moment."""

    code = "SERVER_BUSY"


class StoreUnavailable(ServerUnavailable):
    """The metadata database cannot be opened or reached (a wrong ``CAIRN_DB``, a file
    that is not a database, PostgreSQL down). A subclass of ServerUnavailable: what is
    retried when the server is out of reach is retried when its database is."""

    code = "STORE_UNAVAILABLE"


def _all_subclasses(cls: type[CairnError]) -> list[type[CairnError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


ERRORS_BY_CODE: dict[str, type[CairnError]] = {c.code: c for c in _all_subclasses(CairnError)}


def error_from_code(code: str, message: str) -> CairnError:
    """Rebuild the error a server reported; an unknown code becomes a plain CairnError."""
    return ERRORS_BY_CODE.get(code, CairnError)(message)
