"""What Cairn answers for something that is not there — and, word for word, for something
the caller may not read.

A caller who may not read a project must learn nothing of what it holds: a request naming
another project's run, experiment, dataset, model or promotion request gets the error the
same request naming nothing gets (``cairn.core.access.require_visible``). Both answers
are built here, from what the caller named and nothing else, so they cannot drift apart.
The one thing a request can still tell is that a name is taken: experiments, datasets and
models are named uniquely across the installation, so creating one with a name another
project holds is refused (``taken``), without saying which project or anything of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from cairn.core.data import DataRef
from cairn.errors import AlreadyExists, NotFound


def run(ref: str, what: str = "run") -> NotFound:
    return NotFound(f"{what} {ref!r} not found (see `cairn runs list`)")


def experiment(ref: str) -> NotFound:
    return NotFound(f"experiment {ref!r} not found (see `cairn experiments list`)")


def project(name: str) -> NotFound:
    return NotFound(f"project {name!r} not found (see `cairn projects list`)")


def dataset(name: str) -> NotFound:
    return NotFound(f"dataset {name!r} not found (see `cairn data list`)")


def data_version(ref: DataRef) -> NotFound:
    """The newest version of an unknown dataset is the dataset; any other, the version."""
    if ref.version is None and ref.digest_prefix is None:
        return dataset(ref.name)
    return NotFound(f"data version {ref} not found (see `cairn data log {ref.name}`)")


def model(name: str, known: Sequence[str] = ()) -> NotFound:
    """``known``: names to suggest, all of them models the caller may read."""
    hint = f"models: {', '.join(known)}" if known else "see `cairn models list`"
    return NotFound(f"model {name!r} not found ({hint})")


def request(ref: str) -> NotFound:
    return NotFound(f"promotion request {ref!r} not found (see `cairn requests list`)")


def token(token_id: str) -> NotFound:
    return NotFound(f"token {token_id!r} not found (see `cairn tokens list`)")


def taken(kind: str, name: str) -> AlreadyExists:
    return AlreadyExists(
        f"{kind} name {name!r} is taken: {kind} names are unique across the installation, "
        f"and this one belongs to a project you may not read; choose another name"
    )
