"""Where a request goes besides the version a reference resolves to: a canary takes a share
of a model's requests (``--canary churn/4=10%``), the same requests every time for one
request key (the ``X-Request-Id``, or a header the user names), and a shadow gets a copy of
every request (``--shadow churn/4``), whose answer is compared with the primary's and
counted, never returned."""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cairn.core.model import parse_model_ref
from cairn.errors import InvalidInput

if TYPE_CHECKING:
    from cairn.serving.served import ServedModel

_CANARY = re.compile(r"^(?P<ref>[^=]+)=(?P<share>\d+(?:\.\d+)?)%$")
_BUCKETS = 10_000
# A caller's request id is kept in the payload log and in the server's log, and keys the
# canary: bounded and printable, so no caller writes a megabyte or a line break there.
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
# The ids the server gives: a random prefix per process and a count, unique across workers
# and restarts, without a uuid4's read of the system's randomness on every request.
_PREFIX, _ISSUED = f"{secrets.token_hex(6)}-", itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}{next(_ISSUED):x}"


def request_id(given: str | None, field: str) -> str:
    """The caller's request id (``field`` is where it came from), else a new one.

    Raises:
        InvalidInput: not 1 to 128 visible ASCII characters.
    """
    if not given:
        return new_request_id()
    if _REQUEST_ID.fullmatch(given) is None:
        raise InvalidInput(
            f"{field}: expected 1 to 128 visible ASCII characters (letters, digits, "
            f"punctuation), got {len(given)} characters"
        )
    return given


@dataclass(frozen=True)
class Canary:
    model: ServedModel
    share: float  # of the model's requests, 0 to 1

    def takes(self, key: str) -> bool:
        """Whether the request of this key goes to the canary: the same answer for one key
        every time, and for a share of keys."""
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % _BUCKETS < self.share * _BUCKETS


def parse_canary(text: str) -> tuple[str, float]:
    """``churn/4=10%`` → (``churn/4``, 0.1).

    Raises:
        InvalidInput: not a reference, '=', and a share from 0% to 100%.
    """
    found = _CANARY.match(text.strip())
    share = float(found["share"]) / 100 if found else -1.0
    if found is None or not 0 <= share <= 1:
        raise InvalidInput(f"--canary {text!r}: expected a version and its share, churn/4=10%")
    parse_model_ref(found["ref"])
    return found["ref"], share


@dataclass(frozen=True)
class Traffic:
    """Each served model's canary and shadow, by model name. A canary an environment
    runs comes and goes as it is judged (``ServedModels.refresh``): one assignment to
    ``canaries``, seen whole by each request."""

    canaries: dict[str, Canary]
    shadows: Mapping[str, ServedModel]

    def route(self, primary: ServedModel, key: str) -> ServedModel:
        canary = self.canaries.get(primary.name)
        return canary.model if canary is not None and canary.takes(key) else primary


def check_names(served: Sequence[str], given: Sequence[str], option: str) -> None:
    """Raises:
    InvalidInput: a canary or shadow of a model that is not served.
    """
    for reference in given:
        name = parse_model_ref(reference).name
        if name not in served:
            raise InvalidInput(f"{option} {reference}: model {name!r} is not served "
                               f"(served: {', '.join(served)})")  # fmt: skip
