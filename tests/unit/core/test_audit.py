"""The audit chain's byte format and its verification, without a database."""

from __future__ import annotations

import hashlib
import json

from cairn.core.audit import (
    GENESIS_HASH,
    AuditEvent,
    Checkpoint,
    EventContent,
    canonical_json,
    chain_event,
    checkpoint_message,
    event_hash,
    verify_chain,
)


def _content(i: int) -> EventContent:
    return EventContent(1_700_000_000_000 + i, "alice", "run.end", "run", f"r{i}", '{"a":1}')


def _chain(n: int) -> list[AuditEvent]:
    events, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        event = chain_event(seq, _content(seq), prev)
        events.append(event)
        prev = event.hash
    return events


def test_the_event_hash_is_sha256_of_0x00_and_the_documented_array() -> None:
    content = EventContent(5, "ålice", "run.end", "run", "r1", '{"b":2}', "blake3:ab", "q-1")
    fields = [1, 7, 5, "ålice", "run.end", "run", "r1", "blake3:ab", "q-1", '{"b":2}', "f" * 64]
    expected = hashlib.sha256(
        b"\x00" + json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert event_hash(7, content, "f" * 64) == expected


def test_checkpoints_sign_a_different_domain_than_events() -> None:
    message = checkpoint_message(3, "a" * 64, 9, "k")
    assert message[:1] == b"\x01"
    assert json.loads(message[1:]) == {"hash": "a" * 64, "key_id": "k", "seq": 3, "ts": 9}


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": [1, 2], "a": "é"}) == '{"a":"é","b":[1,2]}'


def test_an_intact_chain_verifies_and_counts() -> None:
    events = _chain(5)
    signed = Checkpoint(5, events[-1].hash, 1, "k", "s")
    result = verify_chain(events, [("here", signed)], lambda c: True)
    assert result.ok
    assert (result.events, result.checkpoints) == (5, 1)


def test_a_duplicated_sequence_number_is_an_insertion() -> None:
    events = _chain(3)
    result = verify_chain([events[0], events[1], events[1], events[2]], [], lambda c: True)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("inserted", 2)


def test_only_the_first_problem_is_reported() -> None:
    events = _chain(6)
    broken = [events[0], events[2], events[3], events[5]]  # 2 and 5 are gone
    result = verify_chain(broken, [], lambda c: True)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("deleted", 2)
    assert "event 2 is missing" in result.problem.detail
