"""Data versions as JSON: one shape for the server's API, its client and the CLI's
``--json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.core.data import DataKind, DataVersion, NewDataVersion
from cairn.errors import IntegrityError


def data_version_to_dict(version: DataVersion) -> dict[str, Any]:
    return {
        "ref": version.ref,
        "dataset": version.dataset,
        "version": version.version,
        "project": version.project,
        "digest": version.digest,
        "kind": version.kind.value,
        "path": version.path,
        "files": version.files,
        "bytes": version.bytes,
        "message": version.message,
        "profile": version.profile,
        "created_by": version.created_by,
        "created_at": version.created_at,
    }


def data_version_from_dict(data: Mapping[str, Any]) -> DataVersion:
    """Raises:
    IntegrityError: ``data`` is not a data version (a server's answer that is not one).
    """
    try:
        return DataVersion(
            data["dataset"],
            int(data["version"]),
            data["project"],
            data["digest"],
            DataKind(data["kind"]),
            data["path"],
            int(data["files"]),
            int(data["bytes"]),
            data["message"],
            data["created_by"],
            int(data["created_at"]),
            data.get("profile") or "",
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IntegrityError(
            f"expected a data version, got {str(data)[:200]} ({type(exc).__name__}: {exc})"
        ) from exc


def new_data_version_to_dict(new: NewDataVersion) -> dict[str, Any]:
    return {
        "digest": new.digest,
        "kind": new.kind.value,
        "path": new.path,
        "files": new.files,
        "bytes": new.bytes,
        "message": new.message,
        "project": new.project,
        "profile": new.profile,
        "objects": list(new.objects),
    }


def new_data_version_from_dict(data: Mapping[str, Any]) -> NewDataVersion:
    """What :func:`new_data_version_to_dict` wrote, with the dataset's ``name`` beside it
    (a server reads it from the path): each value already checked where it entered."""
    return NewDataVersion(
        data["name"], data["digest"], DataKind(data["kind"]), data["path"], data["files"],
        data["bytes"], data["message"], data["project"], data["profile"],
        tuple(data["objects"]),
    )  # fmt: skip


def added_to_dict(added: tuple[DataVersion, bool]) -> dict[str, Any]:
    """What adding a version answers: the version, and whether it was made (False: the
    newest version already had this manifest)."""
    version, created = added
    return {"version": data_version_to_dict(version), "created": created}


def added_from_dict(data: Mapping[str, Any]) -> tuple[DataVersion, bool]:
    """Raises:
    IntegrityError: ``data`` is not what adding a version answers.
    """
    try:
        version, created = data["version"], data["created"]
    except (KeyError, TypeError) as exc:
        raise IntegrityError(f"expected an added data version, got {str(data)[:200]}") from exc
    return data_version_from_dict(version), bool(created)
