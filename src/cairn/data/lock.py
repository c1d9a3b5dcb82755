"""``cairn.lock``: the data versions a working copy holds, meant to be committed to git
so that a commit pins the data as well as the code.

    # Written by `cairn data`; commit it with your code.
    datasets:
      customers:
        path: data/customers.csv
        version: 2
        digest: blake3:3f9a…
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.core.artifact import check_digest
from cairn.core.data import DataKind, check_dataset_name, version_path_problem
from cairn.core.yaml_text import dump_yaml, parse_yaml
from cairn.errors import InvalidInput
from cairn.localfs.atomic import write_atomically

LOCK_FILE = "cairn.lock"
_HEADER = "# Written by `cairn data`: the data versions of this working copy. Commit it.\n"


@dataclass(frozen=True, slots=True)
class Locked:
    path: str  # relative to the workspace, POSIX separators
    version: int
    digest: str


def read_lock(workspace: Path) -> dict[str, Locked]:
    """Raises:
    InvalidInput: the file exists but is not a lock file Cairn can read, or it names a
        dataset or a path that is not one (a path outside the project folder, say: the
        file comes with the code, from whoever committed it).
    """
    path = workspace / LOCK_FILE
    if not path.is_file():
        return {}
    try:
        document: Any = parse_yaml(path.read_bytes(), LOCK_FILE) or {}
        return {
            check_dataset_name(str(name)): _locked(str(name), e)
            for name, e in (document.get("datasets") or {}).items()
        }
    except (OSError, AttributeError, KeyError, TypeError, ValueError) as exc:  # InvalidInput too
        raise InvalidInput(f"{path}: not a readable lock file ({exc}); fix or delete it") from exc


def _locked(name: str, entry: dict[str, Any]) -> Locked:
    """Raises:
    InvalidInput: naming the field.
    """
    locked = Locked(entry["path"], int(entry["version"]), check_digest(entry["digest"]))
    if (problem := version_path_problem(locked.path, DataKind.DIRECTORY)) is not None:
        raise InvalidInput(f"datasets.{name}.path {locked.path!r}: {problem}")
    return locked


def write_lock(workspace: Path, locked: dict[str, Locked]) -> None:
    document = {
        "datasets": {
            name: {"path": e.path, "version": e.version, "digest": e.digest}
            for name, e in sorted(locked.items())
        }
    }
    text = _HEADER + dump_yaml(document, sort_keys=False)
    write_atomically([text.encode()], workspace / LOCK_FILE)
