"""The audit chain's byte format and its verification, without a database."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

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
from cairn.localfs.signing import KeyRing, SigningKey, load_or_create

HERE = "a" * 32  # the installation verified
ELSEWHERE = "b" * 32
NO_KEYS = KeyRing(())


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return load_or_create(tmp_path / "key.pem")


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
    message = checkpoint_message(3, "a" * 64, 9, "k", HERE)
    assert message[:1] == b"\x01"
    assert json.loads(message[1:]) == {
        "hash": "a" * 64,
        "installation": HERE,
        "key_id": "k",
        "seq": 3,
        "ts": 9,
    }


def test_a_checkpoint_from_before_installations_were_named_signs_what_it_signed() -> None:
    message = checkpoint_message(3, "a" * 64, 9, "k", None)
    assert json.loads(message[1:]) == {"hash": "a" * 64, "key_id": "k", "seq": 3, "ts": 9}


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": [1, 2], "a": "é"}) == '{"a":"é","b":[1,2]}'


def test_a_checkpoint_found_in_two_places_counts_once(key: SigningKey) -> None:
    events = _chain(5)
    signed = key.sign(HERE, 5, events[-1].hash, 1)
    found = [("the database", signed), ("the export", signed)]
    result = verify_chain(events, found, HERE, key.verify_key)
    assert result.ok, result.problem
    assert (result.events, result.checkpoints, result.signed_through) == (5, 1, 5)
    assert result.unsigned == 0


def test_events_after_the_newest_checkpoint_are_counted_as_unsigned(key: SigningKey) -> None:
    events = _chain(9)
    found = [("db", key.sign(HERE, seq, events[seq - 1].hash, 1)) for seq in (3, 6)]
    result = verify_chain(events, found, HERE, key.verify_key)
    assert result.ok, result.problem
    assert (result.checkpoints, result.signed_through, result.unsigned) == (2, 6, 3)


@pytest.mark.parametrize("n", [0, 4])
def test_a_trail_without_checkpoints_is_intact_and_wholly_unsigned(n: int) -> None:
    result = verify_chain(_chain(n), [], HERE, NO_KEYS)
    assert result.ok, result.problem
    assert (result.events, result.checkpoints, result.unsigned) == (n, 0, n)


@pytest.mark.parametrize("matching_first", [True, False])
def test_two_checkpoints_that_disagree_are_a_rewrite_whichever_comes_first(
    key: SigningKey, matching_first: bool
) -> None:
    events = _chain(5)
    found = [
        ("folder A", key.sign(HERE, 4, events[3].hash, 1)),
        ("folder B", key.sign(HERE, 4, "e" * 64, 2)),  # another history's head at seq 4
    ]
    result = verify_chain(events, found if matching_first else found[::-1], HERE, key.verify_key)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("rewritten", 4)
    assert "folder B" in result.problem.detail


def test_a_checkpoint_signed_by_a_key_not_given_is_reported_not_checked(
    key: SigningKey, tmp_path: Path
) -> None:
    events = _chain(5)
    other = load_or_create(tmp_path / "other.pem")
    found = [("db", other.sign(HERE, 5, "f" * 64, 1)), ("db", key.sign(HERE, 3, events[2].hash, 1))]
    result = verify_chain(events, found, HERE, key.verify_key)
    assert result.ok, result.problem  # it vouches for nothing, and accuses nobody
    assert result.unknown_keys == ((other.key_id, 1),)
    assert (result.checkpoints, result.signed_through, result.unsigned) == (1, 3, 2)
    both = verify_chain(events, found, HERE, KeyRing((key.verify_key, other.verify_key)))
    assert both.problem is not None  # with its key given, it is checked: a rewrite
    assert (both.problem.kind, both.problem.seq) == ("rewritten", 5)


def test_a_checkpoint_naming_a_trusted_key_without_its_signature_is_forged(
    key: SigningKey,
) -> None:
    events = _chain(5)
    genuine = key.sign(HERE, 5, events[-1].hash, 1)
    forged = Checkpoint(5, events[-1].hash, 2, key.key_id, genuine.signature, HERE)  # ts changed
    result = verify_chain(events, [("export", forged)], HERE, key.verify_key)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("forged-checkpoint", 5)


def test_another_installations_checkpoint_among_this_ones_is_reported(key: SigningKey) -> None:
    events = _chain(5)
    theirs = key.sign(ELSEWHERE, 5, events[-1].hash, 1)  # even a valid signature, same head
    result = verify_chain(events, [("the database", theirs)], HERE, key.verify_key)
    assert result.problem is not None
    assert result.problem.kind == "foreign-checkpoint"
    assert ELSEWHERE in result.problem.detail


def test_a_checkpoint_from_before_installations_were_named_is_still_checked(
    key: SigningKey,
) -> None:
    events = _chain(5)
    message = checkpoint_message(5, events[-1].hash, 1, key.key_id, None)
    legacy = Checkpoint(5, events[-1].hash, 1, key.key_id, key.sign_bytes(message).hex())
    result = verify_chain(events, [("the database", legacy)], HERE, key.verify_key)
    assert result.ok, result.problem
    assert (result.checkpoints, result.unsigned) == (1, 0)


def test_an_emptied_trail_with_a_checkpoint_is_truncated(key: SigningKey) -> None:
    events = _chain(5)
    signed = key.sign(HERE, 5, events[-1].hash, 1)
    result = verify_chain([], [("the export", signed)], HERE, key.verify_key)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("truncated", 5)
    assert "the trail is empty" in result.problem.detail
    assert "every event was removed" in result.problem.detail


def test_a_duplicated_sequence_number_is_an_insertion() -> None:
    events = _chain(3)
    result = verify_chain([events[0], events[1], events[1], events[2]], [], HERE, NO_KEYS)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("inserted", 2)


def test_only_the_first_problem_is_reported() -> None:
    events = _chain(6)
    broken = [events[0], events[2], events[3], events[5]]  # 2 and 5 are gone
    result = verify_chain(broken, [], HERE, NO_KEYS)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.seq) == ("deleted", 2)
    assert "event 2 is missing" in result.problem.detail
