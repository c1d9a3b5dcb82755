"""Manifests: canonical, content-addressed listings; a change rewrites only its path."""

from __future__ import annotations

import re

import orjson
import pytest

from cairn.core.data import DataRef, FileEntry, parse_data_ref
from cairn.data.manifest import TREE_FORMAT, build, decode_tree, walk
from cairn.errors import IntegrityError, InvalidInput

FILES = [
    FileEntry("images/cats/a.jpg", "blake3:" + "1" * 64, 10, "blake3:" + "b" * 64, 0),
    FileEntry("images/cats/b.jpg", "blake3:" + "2" * 64, 20, "blake3:" + "b" * 64, 10),
    FileEntry("images/dogs/c.jpg", "blake3:" + "3" * 64, 30),
    FileEntry("labels.csv", "blake3:" + "4" * 64, 40),
]


def test_the_same_files_in_any_order_give_the_same_manifest() -> None:
    first, second = build(FILES), build(list(reversed(FILES)))
    assert first.root == second.root
    assert (first.files, first.bytes) == (4, 100)
    assert list(walk(first.root, first.trees.__getitem__)) == FILES  # path order, whole


def test_changing_one_file_rewrites_only_the_listings_above_it() -> None:
    before = build(FILES)
    changed = [*FILES[:2], FILES[2]._replace(digest="blake3:" + "9" * 64), FILES[3]]
    after = build(changed)
    new_trees = set(after.trees) - set(before.trees)
    assert len(new_trees) == 3  # images/dogs, images, and the root
    assert after.root in new_trees
    assert len(set(before.trees) & set(after.trees)) == 1  # images/cats is shared


def test_an_empty_folder_has_a_manifest_too() -> None:
    empty = build([])
    assert (empty.files, empty.bytes) == (0, 0)
    assert list(walk(empty.root, empty.trees.__getitem__)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("customers", DataRef("customers")),
        ("customers@latest", DataRef("customers")),
        ("customers@4", DataRef("customers", version=4)),
        ("customers@3f9a2c1b", DataRef("customers", digest_prefix="3f9a2c1b")),
        ("img.v2@12", DataRef("img.v2", version=12)),
    ],
)
def test_references(text: str, expected: DataRef) -> None:
    assert parse_data_ref(text) == expected


@pytest.mark.parametrize("text", ["", "@3", "customers@", "customers@0", "customers@zz", "a b@1"])
def test_bad_references_say_what_was_expected(text: str) -> None:
    with pytest.raises(InvalidInput, match="expected"):
        parse_data_ref(text)


D = "blake3:" + "1" * 64


@pytest.mark.parametrize(
    "entries",
    [
        [["a", "f", D, 1, ""]],  # a field short
        [["a", "f", D, 1, "", 0, "extra"]],
        [["a", "f", D, -1, "", 0]],
        [["a", "f", D, True, "", 0]],
        [["a", "f", D, 1, "", 1.5]],
        [["a", "x", D, 1, "", 0]],
        [["a", "d", D, 1, -2]],
        [["a", "f", 7, 1, "", 0]],
        [["a", "f", D, 1, "", 0], ["a", "d", D, 1, 1]],  # a file and a folder of one name
        [[3, "f", D, 1, "", 0]],
        ["a"],
        {"a": 1},
    ],
)
def test_a_listing_that_is_not_well_formed_is_damage_not_a_crash(entries: object) -> None:
    data = orjson.dumps({"format": TREE_FORMAT, "entries": entries})
    with pytest.raises(IntegrityError, match=r"object blake3:.* is not a data manifest"):
        decode_tree(data, "blake3:" + "2" * 64)


@pytest.mark.parametrize("name", ["..", ".", "", "../x", "a/b", "/abs", "a\\b", "a\x00b"])
def test_a_listing_naming_anything_but_one_file_or_folder_is_refused(name: str) -> None:
    data = orjson.dumps({"format": TREE_FORMAT, "entries": [[name, "f", D, 1, "", 0]]})
    with pytest.raises(IntegrityError, match=f"entry {re.escape(repr(name))}"):
        list(walk("root", lambda _digest: data))


@pytest.mark.parametrize("name", ["back\\slash.csv", "caf\udce9.csv"])
def test_a_file_whose_name_a_listing_cannot_hold_is_named_when_added(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"images/.*: cannot be versioned: .*rename it"):
        build([*FILES, FileEntry(f"images/{name}", D, 1)])
