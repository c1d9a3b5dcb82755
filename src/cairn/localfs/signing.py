"""The installation's Ed25519 key, which signs audit checkpoints and model attestations.

The private key is a PKCS#8 PEM file readable only by its owner; it is created on first
use. Its public half is what verification trusts: a checkpoint whose signature does not
verify against it was not made with this key. The key id is the first 16 hex digits of the
SHA-256 of the raw public key. Verification may trust several keys (a :class:`KeyRing`):
the installation's key before and after it was replaced, or each replica's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cairn.core.audit import Checkpoint, checkpoint_message
from cairn.errors import InvalidInput
from cairn.localfs.atomic import write_atomically

KEY_FILE = "audit-ed25519.pem"


@dataclass(frozen=True, slots=True)
class VerifyKey:
    public: Ed25519PublicKey
    key_id: str

    def knows(self, key_id: str) -> bool:
        return key_id == self.key_id

    def valid(self, checkpoint: Checkpoint) -> bool:
        if checkpoint.key_id != self.key_id:
            return False
        try:
            signature = bytes.fromhex(checkpoint.signature)
        except ValueError:
            return False
        return self.verifies(checkpoint.signed_bytes(), signature)

    def verifies(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's over ``data`` (an attestation's envelope)."""
        try:
            self.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: Ed25519PrivateKey
    verify_key: VerifyKey

    @property
    def key_id(self) -> str:
        return self.verify_key.key_id

    def sign_bytes(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def sign(self, installation: str, seq: int, head_hash: str, ts: int) -> Checkpoint:
        """A checkpoint of ``installation``'s chain, whose head was ``head_hash`` at ``seq``."""
        message = checkpoint_message(seq, head_hash, ts, self.key_id, installation)
        signature = self.private.sign(message).hex()
        return Checkpoint(seq, head_hash, ts, self.key_id, signature, installation)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The public keys verification trusts, by key id."""

    keys: tuple[VerifyKey, ...]

    def knows(self, key_id: str) -> bool:
        return any(key.knows(key_id) for key in self.keys)

    def valid(self, checkpoint: Checkpoint) -> bool:
        return any(key.valid(checkpoint) for key in self.keys)


def load_or_create(path: Path) -> SigningKey:
    """The key at ``path``, created (mode 0600) if there is none yet.

    Raises:
        InvalidInput: the file is not an Ed25519 private key.
    """
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_atomically([pem], path)  # a temporary file is created 0600, and stays so
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise InvalidInput(f"audit key {path}: not a PEM private key ({exc})") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidInput(f"audit key {path}: expected an Ed25519 key")
    return SigningKey(private, _verify_key(private.public_key()))


def load_verify_key(path: Path) -> VerifyKey:
    """The public half, from a private key file or a public key PEM.

    Raises:
        InvalidInput: the file is missing, or holds neither.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"public key {path}: cannot read it ({exc.strerror})") from None
    if b"PRIVATE KEY" in data:
        return load_or_create(path).verify_key
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InvalidInput(f"public key {path}: not a PEM public key ({exc})") from None
    if not isinstance(public, Ed25519PublicKey):
        raise InvalidInput(f"public key {path}: expected an Ed25519 key")
    return _verify_key(public)


def _verify_key(public: Ed25519PublicKey) -> VerifyKey:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return VerifyKey(public, hashlib.sha256(raw).hexdigest()[:16])
