"""Attestations of a model version: where it came from, signed.

An in-toto Statement v1 whose subjects are the package's files (by SHA-256, which every
in-toto tool reads, and BLAKE3, which Cairn names them by) and whose predicate is SLSA
provenance v1: the build is the run that made the model; its resolved dependencies are the
code commit (with whether the tree was dirty), every data version upstream of it (by
manifest digest), the environment the pipeline recorded, and the pinned requirements; the
builder is this Cairn installation, named by its key. The statement travels in a DSSE
envelope signed with the installation's Ed25519 key (the one that signs audit checkpoints).

Verifying checks the signature against the installation's public key, then every subject
against the files of the package as they are now: a changed file fails by name.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from cairn._version import __version__
from cairn.core.lineage import PART_OF, RUN, Lineage, Node
from cairn.core.model import ModelVersion
from cairn.core.run import Run
from cairn.errors import IntegrityError, InvalidInput

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "urn:cairn-mlops:model-registration:v1"


class Signer(Protocol):
    @property
    def key_id(self) -> str: ...

    def sign_bytes(self, data: bytes) -> bytes: ...


class Verifier(Protocol):
    @property
    def key_id(self) -> str: ...

    def verifies(self, data: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class Provenance:
    """What the registry and the lineage graph know about how a version was made."""

    run_id: str | None
    started_ms: int | None
    finished_ms: int | None
    git_commit: str | None
    git_dirty: bool | None
    data_versions: Sequence[tuple[str, str]]  # (customers@4, its manifest digest)
    environment: str | None  # the digest of the pipeline's environment.json, if any


def provenance_of(
    version: ModelVersion, run: Run | None, found: Lineage, data: Mapping[str, str]
) -> Provenance:
    """The provenance of ``version`` from the run that made it and the upstream lineage
    walk from it; ``data`` maps each data version upstream to its manifest digest."""
    made_by: dict[str, Any] = {}
    if run is not None:  # a step's run has its pipeline run's dirty flag
        parents = [
            e.dst for e in found.edges if e.src == Node(RUN, run.id) and e.relation == PART_OF
        ]
        for node in [Node(RUN, run.id), *parents]:
            made_by = {**found.details.get(node, {}), **made_by}
    environment = next(
        (detail["environment"] for detail in found.details.values() if "environment" in detail),
        None,
    )
    return Provenance(
        run_id=run.id if run is not None else None,
        started_ms=run.start_time if run is not None else None,
        finished_ms=run.end_time if run is not None else None,
        git_commit=run.git_commit if run is not None else None,
        git_dirty=made_by.get("git_dirty"),
        data_versions=sorted(data.items()),
        environment=environment,
    )


def statement(version: ModelVersion, folder: Path, provenance: Provenance) -> dict[str, Any]:
    """The in-toto statement for ``version``, whose verified package is in ``folder``."""
    subjects = [
        {"name": f"{version.ref}/{f.path}",
         "digest": {"sha256": _sha256(folder / f.path), "blake3": f.digest.removeprefix("blake3:")}}
        for f in version.files
    ]  # fmt: skip
    dependencies: list[dict[str, Any]] = []
    if provenance.git_commit:
        dependencies.append({
            "uri": f"git+commit:{provenance.git_commit}",
            "digest": {"gitCommit": provenance.git_commit},
            "annotations": {"dirty": provenance.git_dirty},
        })  # fmt: skip
    dependencies += [
        {"uri": f"cairn:data/{ref}", "digest": {"blake3": digest.removeprefix("blake3:")}}
        for ref, digest in provenance.data_versions
    ]
    if provenance.environment:
        dependencies.append({
            "uri": "cairn:environment",
            "digest": {"blake3": provenance.environment.removeprefix("blake3:")},
        })  # fmt: skip
    dependencies += [
        {"uri": f"pkg:pypi/{name}@{pinned}"}
        for name, _, pinned in (r.partition("==") for r in version.manifest.get("requirements", []))
    ]
    run_details: dict[str, Any] = {
        "builder": {"id": "", "version": {"cairn-mlops": __version__}},  # id: set at signing
        "metadata": {"invocationId": provenance.run_id or ""},
    }
    for field, ms in (("startedOn", provenance.started_ms), ("finishedOn", provenance.finished_ms)):
        if ms is not None:
            run_details["metadata"][field] = _rfc3339(ms)
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"model": version.name, "version": version.version},
                "internalParameters": {
                    "flavor": version.flavor,
                    "python": version.manifest.get("python"),
                    "package": version.digest,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": run_details,
        },
    }


def sign(document: Mapping[str, Any], key: Signer) -> dict[str, Any]:
    """A DSSE envelope of the statement, signed; the builder is named by the key."""
    signed = dict(document)
    signed["predicate"]["runDetails"]["builder"]["id"] = f"cairn:installation/{key.key_id}"
    payload = orjson.dumps(signed, option=orjson.OPT_SORT_KEYS)
    signature = key.sign_bytes(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode()}],
    }


def opened(envelope: Mapping[str, Any], key: Verifier) -> dict[str, Any]:
    """The statement inside an envelope whose signature this key made.

    Raises:
        InvalidInput: the file is not a DSSE envelope of an in-toto statement.
        IntegrityError: no signature by this key verifies (the statement was changed, or
            another installation signed it).
    """
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [
            (s["keyid"], base64.b64decode(s["sig"], validate=True)) for s in envelope["signatures"]
        ]
        payload_type = envelope["payloadType"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"attestation: not a DSSE envelope ({exc})") from None
    if payload_type != PAYLOAD_TYPE:
        raise InvalidInput(f"attestation: payloadType {payload_type!r}, expected {PAYLOAD_TYPE!r}")
    message = pae(payload_type, payload)
    if not any(k == key.key_id and key.verifies(message, sig) for k, sig in signatures):
        raise IntegrityError(
            f"attestation: no signature by this installation's key ({key.key_id}) verifies: "
            "the statement was changed after signing, or another key signed it"
        )
    found: dict[str, Any] = orjson.loads(payload)
    if found.get("_type") != STATEMENT_TYPE or found.get("predicateType") != PREDICATE_TYPE:
        raise InvalidInput("attestation: not an in-toto statement of SLSA provenance")
    return found


def mismatched_subjects(found: Mapping[str, Any], folder: Path, prefix: str) -> list[str]:
    """The subjects whose file in ``folder`` (named ``prefix/<path>``) is missing or has
    other bytes than attested."""
    bad = []
    for subject in found["subject"]:
        path = folder / str(subject["name"]).removeprefix(f"{prefix}/")
        expected = subject["digest"].get("sha256")
        if not path.is_file() or _sha256(path) != expected:
            bad.append(str(subject["name"]))
    return bad


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed, with the payload's type."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _sha256(path: Path) -> str:
    state = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            state.update(chunk)
    return state.hexdigest()


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
