"""The audit trail's rules: canonical bytes, the hash chain, checkpoints, and verification.

Every state change appends one event. Each event's hash covers its content and the
previous event's hash, so editing, deleting, inserting or reordering an event breaks the
chain from that point on. Someone who can write the database can also recompute the chain
after a change; checkpoints stop that: the head of the chain (sequence number and hash) is
signed with the installation's Ed25519 key and exported outside the database, and a chain
that no longer reaches a signed head is reported. What this promises is detection, not
prevention, and only up to the last exported checkpoint: events appended after it can be
cut off without a trace.

Hashing follows Certificate Transparency's domain separation: an event hash is
``SHA-256(0x00 || canonical bytes)``, and what a checkpoint signs is
``0x01 || canonical bytes``, so neither can be passed off as the other. Canonical bytes are
JSON with sorted keys, no insignificant whitespace, UTF-8 (the event itself is encoded as
an array, in a fixed field order).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64  # the "previous hash" of the first event
_EVENT_DOMAIN = b"\x00"
_CHECKPOINT_DOMAIN = b"\x01"
_FORMAT = 1  # part of every hashed event, so a later format can never collide
# How far from its own place a moved event is looked for when telling "reordered" apart
# from "edited".
_REORDER_WINDOW = 64


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class EventContent:
    """What an event says; the chain adds its sequence number and the hashes."""

    ts: int  # milliseconds since the epoch
    actor: str
    action: str  # e.g. "run.create", "run.log_batch", "auth.denied"
    object_type: str
    object_id: str
    payload: str  # canonical JSON of what changed
    object_digest: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    content: EventContent
    prev_hash: str
    hash: str

    def to_row(self) -> dict[str, Any]:
        """Every field, flat, as stored (the payload as its canonical JSON text)."""
        content = self.content
        return {
            "seq": self.seq,
            "ts": content.ts,
            "actor": content.actor,
            "action": content.action,
            "object_type": content.object_type,
            "object_id": content.object_id,
            "object_digest": content.object_digest,
            "request_id": content.request_id,
            "payload": content.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def event_hash(seq: int, content: EventContent, prev_hash: str) -> str:
    fields = [
        _FORMAT,
        seq,
        content.ts,
        content.actor,
        content.action,
        content.object_type,
        content.object_id,
        content.object_digest,
        content.request_id,
        content.payload,
        prev_hash,
    ]
    canonical = canonical_json(fields).encode()
    return hashlib.sha256(_EVENT_DOMAIN + canonical).hexdigest()


def chain_event(seq: int, content: EventContent, prev_hash: str) -> AuditEvent:
    return AuditEvent(seq, content, prev_hash, event_hash(seq, content, prev_hash))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: "the chain had ``seq`` events and its head hash was ``hash``"."""

    seq: int
    hash: str
    ts: int
    key_id: str
    signature: str  # hex of the Ed25519 signature over ``signed_bytes``

    def signed_bytes(self) -> bytes:
        return checkpoint_message(self.seq, self.hash, self.ts, self.key_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "ts": self.ts,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        return cls(
            int(data["seq"]),
            str(data["hash"]),
            int(data["ts"]),
            str(data["key_id"]),
            str(data["signature"]),
        )


def checkpoint_message(seq: int, head_hash: str, ts: int, key_id: str) -> bytes:
    statement = {"hash": head_hash, "key_id": key_id, "seq": seq, "ts": ts}
    return _CHECKPOINT_DOMAIN + canonical_json(statement).encode()


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing found wrong: at which sequence number, and what."""

    seq: int
    # edited, deleted, reordered, inserted, rewritten (changed, then rehashed up to a
    # signed checkpoint), truncated (cut before a signed checkpoint), forged-checkpoint
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Verification:
    events: int
    checkpoints: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(
    events: Iterable[AuditEvent],
    checkpoints: Iterable[tuple[str, Checkpoint]],
    signature_valid: Callable[[Checkpoint], bool],
) -> Verification:
    """Recompute the chain and check every checkpoint against it.

    ``events`` come in stored order (by sequence number); ``checkpoints`` are
    ``(where it was found, checkpoint)``; ``signature_valid(checkpoint) -> bool`` checks a
    signature with the installation's public key. Only the first problem is reported:
    after it, the rest of the chain cannot be trusted anyway.
    """
    wanted: dict[int, tuple[str, str]] = {}
    problem: Problem | None = None
    counted = 0
    for where, checkpoint in checkpoints:
        counted += 1
        if not signature_valid(checkpoint):
            problem = _first(
                problem,
                Problem(
                    checkpoint.seq,
                    "forged-checkpoint",
                    f"the checkpoint at seq {checkpoint.seq} in {where} does not carry a valid "
                    "signature of this installation's key",
                ),
            )
            continue
        wanted.setdefault(checkpoint.seq, (where, checkpoint.hash))
    seen = 0
    last_seq = 0
    for event, found in _walk(events):
        seen += 1
        last_seq = event.seq
        if found is not None:
            problem = _first(problem, found)
            break
        expected = wanted.pop(event.seq, None)
        if expected is not None and expected[1] != event.hash:
            problem = _first(
                problem,
                Problem(
                    event.seq,
                    "rewritten",
                    f"the chain's hash at seq {event.seq} differs from the checkpoint in "
                    f"{expected[0]}: events up to {event.seq} were changed and rehashed "
                    "(edited, inserted or deleted)",
                ),
            )
            break
    if problem is None and wanted:
        missing_seq = min(wanted)
        problem = Problem(
            missing_seq,
            "truncated",
            f"the chain ends at seq {last_seq}, but {wanted[missing_seq][0]} holds a signed "
            f"checkpoint at seq {missing_seq}: events after {last_seq} were removed",
        )
    return Verification(seen, counted, problem)


def _first(current: Problem | None, found: Problem) -> Problem:
    return found if current is None or found.seq < current.seq else current


def _walk(events: Iterable[AuditEvent]) -> Iterator[tuple[AuditEvent, Problem | None]]:
    """Each event with the problem it shows, if any (the caller stops at the first)."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    recent: dict[str, int] = {}  # hash -> seq, for telling reordered from inserted
    for event in events:
        if event.seq > expected_seq:
            last = event.seq - 1
            missing = (
                f"event {last} is missing"
                if last == expected_seq
                else f"events {expected_seq}–{last} are missing"
            )
            yield event, Problem(expected_seq, "deleted", missing)
            return
        if event.seq < expected_seq:
            yield event, Problem(event.seq, "inserted", f"seq {event.seq} appears twice")
            return
        if event_hash(event.seq, event.content, event.prev_hash) != event.hash:
            moved = _written_as(event)
            if moved is not None and moved < event.seq:
                detail = (
                    f"event {event.seq} was written as seq {moved}: {event.seq - moved} "
                    "event(s) were inserted before it and the rest renumbered"
                )
                yield event, Problem(event.seq, "inserted", detail)
            elif moved is not None:
                detail = (
                    f"event {event.seq} was written as seq {moved}: events were reordered "
                    "(or deleted before it and the rest renumbered)"
                )
                yield event, Problem(event.seq, "reordered", detail)
            else:
                detail = f"event {event.seq} does not match its hash: its content was edited"
                yield event, Problem(event.seq, "edited", detail)
            return
        if event.prev_hash != prev_hash:
            if event.prev_hash in recent:
                kind, detail = (
                    "reordered",
                    f"event {event.seq} follows event {recent[event.prev_hash]} in the chain, "
                    f"not event {event.seq - 1}",
                )
            else:
                kind, detail = (
                    "inserted",
                    f"event {event.seq} does not link to event {event.seq - 1}: an event "
                    "was inserted or replaced before it",
                )
            yield event, Problem(event.seq, kind, detail)
            return
        recent[event.hash] = event.seq
        if len(recent) > _REORDER_WINDOW:
            recent.pop(next(iter(recent)))
        prev_hash = event.hash
        expected_seq += 1
        yield event, None


def _written_as(event: AuditEvent) -> int | None:
    """The sequence number the event's hash was computed with, if it is a nearby one."""
    for offset in range(1, _REORDER_WINDOW + 1):
        for seq in (event.seq - offset, event.seq + offset):
            if seq > 0 and event_hash(seq, event.content, event.prev_hash) == event.hash:
                return seq
    return None
