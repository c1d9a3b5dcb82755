"""The audit trail's rules: canonical bytes, the hash chain, checkpoints, and verification.

Every state change appends one event. Each event's hash covers its content and the
previous event's hash, so editing, deleting, inserting or reordering an event breaks the
chain from that point on. Someone who can write the database can also recompute the chain
after a change; checkpoints stop that: the head of the chain (sequence number and hash) of
one installation (one database, named by its installation id) is signed with an Ed25519 key
and exported outside the database, and a chain that no longer reaches a signed head is
reported. What this promises is detection, not prevention, and only up to the newest
checkpoint verification can check: events appended after it can be cut off without a
trace, so verification says how many there are.

Verification trusts the public keys it is given and nothing else: a checkpoint signed by
another key can vouch for nothing, and is reported as not checked rather than as forged
(it may be a rotated key's, or another replica's); a checkpoint of another installation
found among this one's is reported, since the two are never mixed.

Hashing follows Certificate Transparency's domain separation: an event hash is
``SHA-256(0x00 || canonical bytes)``, and what a checkpoint signs is
``0x01 || canonical bytes``, so neither can be passed off as the other. Canonical bytes are
JSON with sorted keys, no insignificant whitespace, UTF-8 (the event itself is encoded as
an array, in a fixed field order).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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
    """A signed statement: "installation ``installation``'s chain had ``seq`` events and
    its head hash was ``hash``"."""

    seq: int
    hash: str
    ts: int
    key_id: str
    signature: str  # hex of the Ed25519 signature over ``signed_bytes``
    # None: signed before checkpoints named their installation (such a checkpoint is read
    # only from the database it was signed in, so whose it is is not in doubt).
    installation: str | None = None

    def signed_bytes(self) -> bytes:
        return checkpoint_message(self.seq, self.hash, self.ts, self.key_id, self.installation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "ts": self.ts,
            "key_id": self.key_id,
            "signature": self.signature,
            "installation": self.installation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        installation = data.get("installation")
        return cls(
            int(data["seq"]),
            str(data["hash"]),
            int(data["ts"]),
            str(data["key_id"]),
            str(data["signature"]),
            None if installation is None else str(installation),
        )


def checkpoint_message(
    seq: int, head_hash: str, ts: int, key_id: str, installation: str | None
) -> bytes:
    statement = {"hash": head_hash, "key_id": key_id, "seq": seq, "ts": ts}
    if installation is not None:  # a checkpoint from before installations were named has none
        statement["installation"] = installation
    return _CHECKPOINT_DOMAIN + canonical_json(statement).encode()


class Keys(Protocol):
    """The public keys verification trusts."""

    def knows(self, key_id: str) -> bool:
        """Whether ``key_id`` is one of them."""
        ...

    def valid(self, checkpoint: Checkpoint) -> bool:
        """Whether the checkpoint carries a valid signature of the key it names."""
        ...


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing found wrong: at which sequence number, and what."""

    seq: int
    # edited, deleted, reordered, inserted, rewritten (changed, then rehashed up to a
    # signed checkpoint), truncated (cut before a signed checkpoint), forged-checkpoint,
    # foreign-checkpoint (another installation's, found among this one's)
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Verification:
    """What verification found, and how much of the trail it can vouch for."""

    events: int
    checkpoints: int  # distinct signed heads checked against the chain
    signed_through: int  # the newest event a checked checkpoint covers; 0: none does
    problem: Problem | None
    # (key id, distinct checkpoints) signed by keys verification was not given: not checked
    unknown_keys: tuple[tuple[str, int], ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def unsigned(self) -> int:
        """Events after the newest checked checkpoint: only the chain covers them, and
        someone who can write the database can cut them off or rewrite them unseen."""
        return max(self.events - self.signed_through, 0)


# seq -> {head hash -> where a checkpoint signing it was found}
_Heads = dict[int, dict[str, str]]


def verify_chain(
    events: Iterable[AuditEvent],
    checkpoints: Iterable[tuple[str, Checkpoint]],
    installation: str,
    keys: Keys,
) -> Verification:
    """Recompute the chain and check every checkpoint against it.

    ``events`` come in stored order (by sequence number); ``checkpoints`` are
    ``(where it was found, checkpoint)``, all found as ``installation``'s. Only the first
    problem is reported: after it, the rest of the chain cannot be trusted anyway.
    """
    heads, unknown_keys, problem = _checked_heads(checkpoints, installation, keys)
    distinct = sum(len(hashes) for hashes in heads.values())
    seen = signed_through = 0
    for event, found in _walk(events):
        seen += 1
        if found is not None:
            problem = _first(problem, found)
            break
        signed = heads.pop(event.seq, {})
        differing = [where for head, where in signed.items() if head != event.hash]
        if differing:
            problem = _first(problem, _rewritten(event.seq, differing[0]))
            break
        signed_through = event.seq if signed else signed_through
    if problem is None and heads:
        problem = _truncated(seen, heads)
    return Verification(seen, distinct, signed_through, problem, unknown_keys)


def _checked_heads(
    checkpoints: Iterable[tuple[str, Checkpoint]], installation: str, keys: Keys
) -> tuple[_Heads, tuple[tuple[str, int], ...], Problem | None]:
    """The heads that checked checkpoints sign; the keys of those that could not be
    checked; the first checkpoint found wrong."""
    heads: _Heads = {}
    unknown: dict[str, set[tuple[int, str]]] = {}
    problem: Problem | None = None
    for where, checkpoint in checkpoints:
        if checkpoint.installation not in (None, installation):
            problem = _first(problem, _foreign(where, checkpoint, installation))
        elif not keys.knows(checkpoint.key_id):
            unknown.setdefault(checkpoint.key_id, set()).add((checkpoint.seq, checkpoint.hash))
        elif not keys.valid(checkpoint):
            problem = _first(problem, _forged(where, checkpoint))
        else:
            heads.setdefault(checkpoint.seq, {}).setdefault(checkpoint.hash, where)
    unknown_keys = tuple(sorted((key_id, len(signed)) for key_id, signed in unknown.items()))
    return heads, unknown_keys, problem


def _foreign(where: str, checkpoint: Checkpoint, installation: str) -> Problem:
    return Problem(
        checkpoint.seq,
        "foreign-checkpoint",
        f"the checkpoint at seq {checkpoint.seq} in {where} signs installation "
        f"{checkpoint.installation}'s chain, but this database is installation {installation}: "
        "the database's installation id was changed, or the checkpoint was copied in from "
        "another installation",
    )


def _forged(where: str, checkpoint: Checkpoint) -> Problem:
    return Problem(
        checkpoint.seq,
        "forged-checkpoint",
        f"the checkpoint at seq {checkpoint.seq} in {where} names key {checkpoint.key_id} "
        "but does not carry a valid signature of it",
    )


def _rewritten(seq: int, where: str) -> Problem:
    return Problem(
        seq,
        "rewritten",
        f"the chain's hash at seq {seq} differs from the checkpoint in {where}: events up "
        f"to {seq} were changed and rehashed (edited, inserted or deleted)",
    )


def _truncated(last_seq: int, heads: _Heads) -> Problem:
    missing_seq = min(heads)
    where = next(iter(heads[missing_seq].values()))
    if last_seq == 0:
        ends, removed = "the trail is empty", "every event was removed"
    else:
        ends, removed = f"the chain ends at seq {last_seq}", f"events after {last_seq} were removed"
    return Problem(
        missing_seq,
        "truncated",
        f"{ends}, but {where} holds a signed checkpoint at seq {missing_seq}: {removed}",
    )


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
