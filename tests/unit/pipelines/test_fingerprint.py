"""The code fingerprint and the canonical encoding under it: one digest for one state of
the code and its values, in every process; a different one when anything read differs."""

from __future__ import annotations

import importlib
import os
import string
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cairn.pipelines.canonical import Encoder
from cairn.pipelines.fingerprint import code_fingerprint
from cairn.pipelines.origin import followed_module

HERE = Path(__file__).resolve().parent
NAMES = {"beta", "alpha", "gamma", "delta"}
TABLE = {"rates": frozenset({"x", "y", "z"}), "order": ("b", "a")}
LOOP: list[Any] = [1]
LOOP.append(LOOP)
OTHER = 1


def reads_sets() -> Any:
    return sorted(NAMES), TABLE


def _made_by_exec() -> Any:
    namespace: dict[str, Any] = {"__name__": __name__}
    exec("def made(word):\n    return word in {'beta', 'alpha', 'gamma', 'delta'}", namespace)  # noqa: S102
    return namespace["made"]


made = _made_by_exec()  # no source to read: its compiled code is fingerprinted


def calls_code_made_by_exec() -> Any:
    return made("alpha")


def reads_a_loop() -> Any:
    return LOOP[0]


def reads_names_only() -> Any:
    return NAMES


def encoded(value: Any) -> bytes:
    notes: list[str] = []
    found = Encoder(lambda _: False, notes.append).encode(value, "X")
    assert notes == []
    return found


def test_the_fingerprint_is_the_same_in_every_process() -> None:
    """Sets of strings iterate in another order in each process (hash randomization)."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_fingerprint as t; "
        "print(t.code_fingerprint(t.reads_sets).digest, "
        "t.code_fingerprint(t.calls_code_made_by_exec).digest)"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script, str(HERE)], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }  # fmt: skip
    assert len(digests) == 1
    here = (code_fingerprint(reads_sets).digest, code_fingerprint(calls_code_made_by_exec).digest)
    assert digests == {" ".join(here)}


def test_code_without_source_has_one_fingerprint_whatever_else_holds_its_constants() -> None:
    """Code made by ``exec`` is fingerprinted by its compiled form; ``marshal`` would write a
    constant that something else also holds differently (another process, another key)."""
    one, other = _made_by_exec(), _made_by_exec()
    held = list(other.__code__.co_consts)  # a second reference to each constant
    assert code_fingerprint(one).digest == code_fingerprint(other).digest
    assert held


def test_a_value_that_holds_itself_is_encoded_and_its_changes_seen() -> None:
    before = code_fingerprint(reads_a_loop)
    assert before == code_fingerprint(reads_a_loop)
    LOOP[0] = 2
    try:
        assert code_fingerprint(reads_a_loop).digest != before.digest
    finally:
        LOOP[0] = 1


def test_a_global_the_code_does_not_name_leaves_the_digest_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = code_fingerprint(reads_names_only).digest
    monkeypatch.setattr(sys.modules[__name__], "OTHER", 2)
    assert code_fingerprint(reads_names_only).digest == before
    monkeypatch.setattr(sys.modules[__name__], "NAMES", {"alpha"})
    assert code_fingerprint(reads_names_only).digest != before


def test_modules_that_import_each_other_are_followed_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ping.py").write_text("import pong\nVALUE = 1\n")
    (tmp_path / "pong.py").write_text("import ping\n")
    (tmp_path / "use.py").write_text(
        textwrap.dedent(
            """
            import ping
            def read():
                return ping.pong.ping.pong.ping.VALUE
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("ping", "pong", "use"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import use  # type: ignore[import-not-found]

    before = code_fingerprint(use.read).digest
    monkeypatch.setattr(sys.modules["ping"], "VALUE", 2)
    assert code_fingerprint(use.read).digest != before
    for name in ("ping", "pong", "use"):
        del sys.modules[name]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (1, 1.0), (1, True), (0, False), (0.0, -0.0), ("1", 1), (b"a", "a"), ([1], (1,)),
        ({"a": 1}, [("a", 1)]), ({"a": 1, "b": 2}, {"b": 2, "a": 1}), ({1}, frozenset({1})),
        (None, "None"), ("x" * 5000, "x" * 5001), (float("nan"), float("inf")),
    ],
)  # fmt: skip
def test_values_that_differ_encode_differently(one: Any, other: Any) -> None:
    assert encoded(one) != encoded(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [({"b", "a", "c"}, {"c", "a", "b"}), ([{"k": (1, 2.5)}], [{"k": (1, 2.5)}])],
)
def test_equal_values_encode_equally(one: Any, other: Any) -> None:
    assert encoded(one) == encoded(other)


def test_a_value_the_encoding_cannot_follow_is_named_where_it_is() -> None:
    notes: list[str] = []
    Encoder(lambda _: False, notes.append).encode({"model": [1, object.__new__(Opaque)]}, "cfg.X")
    assert notes == [
        "the value of cfg.X['model'][1] (a test_fingerprint.Opaque) is not part of the cache key"
    ]


class Opaque:
    __slots__ = ()


def test_a_value_nested_too_deep_is_named_not_a_crash() -> None:
    deep: list[Any] = []
    for _ in range(1000):  # deeper than Python's stack allows a recursive walk
        deep = [deep]
    notes: list[str] = []
    Encoder(lambda _: False, notes.append).encode(deep, "cfg.TREE")
    assert len(notes) == 1
    assert "(nested more than 100 deep) is too large to follow" in notes[0]


def uses_the_standard_library() -> str:
    return string.capwords("a b")


def test_the_standard_library_is_covered_by_pythons_version_not_followed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = code_fingerprint(uses_the_standard_library).digest
    monkeypatch.setattr(string, "capwords", lambda text: text)
    assert code_fingerprint(uses_the_standard_library).digest == before


def imports_a_module_of_the_standard_library() -> Any:
    import tabnanny  # imported by nothing else

    return tabnanny.check


def test_a_module_a_version_covers_is_not_imported_to_be_fingerprinted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Importing an installed package a step imports in its body can take seconds: the
    environment's digest covers it, so a fully cached run does not pay for it."""
    monkeypatch.delitem(sys.modules, "tabnanny", raising=False)
    assert code_fingerprint(imports_a_module_of_the_standard_library).unfollowed == ()
    assert "tabnanny" not in sys.modules


@pytest.mark.parametrize(
    ("name", "followed"),
    [
        ("json", False),  # the standard library: Python's version
        ("_decimal", False),  # a compiled module of the standard library (lib-dynload)
        ("numpy", False),  # an installed distribution: its version
        ("cairn.pipelines.runner", False),  # Cairn: its version, though an editable install
        (__name__, True),  # a folder on sys.path that no version covers
    ],
)
def test_what_a_version_covers_is_not_followed_and_the_rest_is(name: str, followed: bool) -> None:
    assert followed_module(importlib.import_module(name)) is followed
