"""YAML from a file someone wrote: whatever is wrong with it is one ``InvalidInput``
naming the file and the problem, never a parser's exception."""

from __future__ import annotations

import time

import pytest
import yaml

from cairn.core.yaml_text import parse_yaml
from cairn.errors import InvalidInput

NOT_YAML = {
    "not UTF-8": (b"experiment: caf\xe9\n", r"not UTF-8 text \(byte 0xe9 at offset 15\)"),
    "nested 5,000 deep": (b"[" * 5000 + b"]" * 5000, "exceeded maximum nesting depth"),
    "nested 1,100 deep in blocks": (  # 1.2 MB: its indentation grows with the depth
        "".join("  " * i + "a:\n" for i in range(1100)).encode(),
        "exceeded maximum nesting depth",
    ),
    "a date that is no date": (b"since: 2024-13-45\n", "month must be in 1..12"),
    "a NUL character": (b"a: \x00\n", "unacceptable character #x0000"),
    "a key that is a list": (b"a: {[1]: 2}\n", r"\(line 1, column 5\): found unhashable key"),
    "a Python object": (b"a: !!python/object:os.system x\n", "could not determine a constructor"),
    "an integer of 5,000 digits": (b"a: 1" + b"0" * 5000 + b"\n", "Exceeds the limit"),
}


@pytest.mark.parametrize("case", NOT_YAML)
def test_what_is_not_yaml_is_named(case: str) -> None:
    data, problem = NOT_YAML[case]
    with pytest.raises(InvalidInput, match=f"^/p/cairn.yaml: .*{problem}"):
        parse_yaml(data, "/p/cairn.yaml")


def test_deep_nesting_is_refused_quickly() -> None:
    """A 10 kB file must not cost seconds of parsing (a server parses policies)."""
    started = time.monotonic()
    with pytest.raises(InvalidInput):
        parse_yaml(b"[" * 5000 + b"]" * 5000, "policy")
    assert time.monotonic() - started < 0.5


def test_without_libyaml_deep_nesting_is_the_same_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML built without libyaml recurses instead: the same error, not a RecursionError."""
    monkeypatch.delattr(yaml, "CSafeLoader")
    with pytest.raises(InvalidInput, match=r"^policy: not valid YAML: exceeded maximum nesting"):
        parse_yaml(b"[" * 600 + b"]" * 600, "policy")


def test_yaml_reads_as_plain_values() -> None:
    assert parse_yaml(b"\xef\xbb\xbfa: [1, caf\xc3\xa9]\n", "f") == {"a": [1, "café"]}
    assert parse_yaml("", "f") is None
