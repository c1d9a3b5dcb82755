"""Registered models and versions as JSON: one shape for the server's API, its client and
the CLI's ``--json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cairn.core.model import Finding, ModelVersion, PackageFile, RegisteredModel, TrafficBatch
from cairn.errors import IntegrityError


def model_version_to_dict(version: ModelVersion) -> dict[str, Any]:
    return {
        "ref": version.ref,
        "name": version.name,
        "version": version.version,
        "digest": version.digest,
        "flavor": version.flavor,
        "run_id": version.run_id,
        "aliases": list(version.aliases),
        "description": version.description,
        "files": files_to_list(version.files),
        "findings": findings_to_list(version.findings),
        "manifest": dict(version.manifest),
        "created_by": version.created_by,
        "created_at": version.created_at,
    }


def model_version_from_dict(data: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=data["name"],
        version=int(data["version"]),
        digest=data["digest"],
        flavor=data["flavor"],
        files=files_from_list(data["files"]),
        manifest=dict(data["manifest"]),
        run_id=data["run_id"],
        findings=findings_from_list(data["findings"]),
        created_at=int(data["created_at"]),
        created_by=data["created_by"],
        description=data["description"],
        aliases=tuple(data["aliases"]),
    )


def registered_model_to_dict(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "project": model.project,
        "created_at": model.created_at,
        "latest_version": model.latest_version,
        "aliases": dict(model.aliases),
    }


def registered_model_from_dict(data: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        data["name"],
        data["project"],
        int(data["created_at"]),
        int(data["latest_version"]),
        {str(k): int(v) for k, v in data["aliases"].items()},
    )


def files_to_list(files: Sequence[PackageFile]) -> list[dict[str, Any]]:
    return [{"path": f.path, "digest": f.digest, "size": f.size} for f in files]


def files_from_list(data: Sequence[Mapping[str, Any]]) -> tuple[PackageFile, ...]:
    return tuple(PackageFile(f["path"], f["digest"], int(f["size"])) for f in data)


def findings_to_list(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    return [{"path": f.path, "imports": list(f.imports)} for f in findings]


def findings_from_list(data: Sequence[Mapping[str, Any]]) -> tuple[Finding, ...]:
    return tuple(Finding(f["path"], tuple(f["imports"])) for f in data)


def traffic_to_dict(batch: TrafficBatch) -> dict[str, Any]:
    return {"model": batch.model, "version": batch.version, "first_at": batch.first_at,
            "last_at": batch.last_at, "rows": batch.rows, "digest": batch.digest,
            "logged_at": batch.logged_at, "logged_by": batch.logged_by}  # fmt: skip


def traffic_from_dict(data: Mapping[str, Any]) -> TrafficBatch:
    """Raises:
    IntegrityError: ``data`` is not a traffic batch (a server's answer that is not one).
    """
    try:
        return TrafficBatch(
            str(data["model"]), int(data["version"]), int(data["first_at"]),
            int(data["last_at"]), int(data["rows"]), str(data["digest"]),
            int(data.get("logged_at") or 0), str(data.get("logged_by") or ""),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"expected a traffic batch, got {str(data)[:200]}") from exc
