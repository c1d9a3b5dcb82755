"""Attesting a model version and verifying an attestation: what ``cairn models attest`` and
``cairn models verify`` (and ``cairn.sdk.attest_model``) do, over the registry, the lineage
walk, data versioning's digests and the installation's key (``cairn.models.attest`` holds
the statement's format and the signature)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cairn.core.lineage import DATA_VERSION, Lineage
from cairn.core.model import parse_model_ref
from cairn.core.ports import MetadataStore
from cairn.errors import IntegrityError
from cairn.models.service import ModelService


class Attestations:
    """``lineage``: a reference's upstream lineage; ``data_digest``: a data version's
    manifest digest; ``key``: the installation's signing key (created when first needed)."""

    def __init__(
        self,
        models: ModelService,
        metadata: MetadataStore,
        lineage: Callable[[str], Lineage],
        data_digest: Callable[[str], str],
        key: Path,
    ) -> None:
        self.models, self.metadata, self.key = models, metadata, key
        self._lineage, self._data_digest = lineage, data_digest

    def attest(self, ref: str) -> dict[str, Any]:
        """A signed attestation of a model version (an in-toto statement of SLSA
        provenance in a DSSE envelope, signed with the installation's key).

        Raises:
            NotFound: no such version. IntegrityError: its package does not verify.
        """
        from cairn.localfs.signing import load_or_create
        from cairn.models.attest import provenance_of, sign, statement
        from cairn.models.package import read_package

        version = self.models.registry.resolve(parse_model_ref(ref))
        folder = self.models.fetch(version)
        read_package(folder, version.files)  # what is attested is what was registered
        found = self._lineage(version.ref)
        digests = {n.id: self._data_digest(n.id) for n in found.nodes if n.kind == DATA_VERSION}
        run = self.metadata.get_run(version.run_id) if version.run_id else None
        provenance = provenance_of(version, run, found, digests)
        return sign(statement(version, folder, provenance), load_or_create(self.key))

    def verify(self, envelope: Mapping[str, Any], package: Path | None = None) -> dict[str, Any]:
        """The attested statement, once its signature is the installation's and every
        subject is the bytes of the package now: the registered version's, or the folder
        ``package``.

        Raises:
            IntegrityError: a signature that does not verify, or subjects that differ.
            InvalidInput: not an attestation.
        """
        from cairn.localfs.signing import load_verify_key
        from cairn.models.attest import mismatched_subjects, opened

        found = opened(envelope, load_verify_key(self.key))
        attested = found["predicate"]["buildDefinition"]["externalParameters"]
        ref = f"{attested['model']}/{attested['version']}"
        registry = self.models.registry
        folder = package or self.models.fetch(registry.resolve(parse_model_ref(ref)))
        changed = mismatched_subjects(found, folder, ref)
        if changed:
            raise IntegrityError(
                f"attestation of {ref}: {', '.join(changed)} differ from what was attested"
            )
        return found
