"""Table profiles: exact counts, bins over an even sample, categories, and what happens
with tables that are not what their suffix says."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.data import profile as profile_module
from cairn.data.profile import profile_files, profile_table, table_format
from cairn.errors import InvalidInput

pytest.importorskip("pyarrow")


def test_formats_are_told_by_suffix() -> None:
    found = [table_format(p) for p in ("a.CSV", "b/c.tsv", "d.parquet", "e.pq", "f.json")]
    assert found == ["csv", "tsv", "parquet", "parquet", None]


def test_a_large_column_is_binned_over_an_even_sample_with_exact_extremes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(profile_module, "SAMPLE_SIZE", 1_000)
    monkeypatch.setattr(profile_module, "_BATCH_ROWS", 10_000)
    rows = 100_000
    data = ("n\n" + "".join(f"{i}\n" for i in range(rows))).encode()
    [column] = profile_table(data, "csv")["columns"]
    assert (column["min"], column["max"], column["missing"]) == (0, rows - 1, 0)
    bins = column["bins"]
    assert 1_000 <= bins["sample"] <= 2_000  # every k-th value, k doubling as rows come
    assert (bins["edges"][0], bins["edges"][-1]) == (0, rows - 1)
    assert sum(bins["counts"]) == bins["sample"]
    assert max(bins["counts"]) - min(bins["counts"]) <= 2  # deciles of an even spread


def test_text_columns_count_categories_until_they_look_like_identifiers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(profile_module, "MAX_DISTINCT", 50)
    lines = ["plan\tcode\tok"] + [f"{'abc'[i % 3]}\tc{i}\t{str(i % 4 == 0).lower()}"
                                  for i in range(300)]  # fmt: skip
    plan, code, ok = profile_table("\n".join(lines).encode(), "tsv")["columns"]
    assert (plan["categories"], plan["distinct"], plan["other"]) == (
        {"a": 100, "b": 100, "c": 100}, 3, 0,
    )  # fmt: skip
    assert (code["categories"], code["distinct"]) == ({}, None)  # 300 distinct: an id
    assert (ok["kind"], ok["categories"]) == ("boolean", {"false": 225, "true": 75})


def test_a_column_that_stops_being_numeric_is_profiled_as_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(profile_module, "_CSV_BLOCK", 64)  # the type is guessed from 64 B
    data = ("n,m\n" + "1,2\n" * 40 + "x,3\n").encode()
    n, m = profile_table(data, "csv")["columns"]
    assert (n["type"], n["categories"]) == ("string", {"1": 40, "x": 1})
    assert m["type"] == "string"


def test_what_cannot_be_read_is_one_clear_error() -> None:
    with pytest.raises(InvalidInput, match="not a readable CSV table: CSV parse error"):
        profile_table(b"a,b\n1,2\n3,4,5\n", "csv")
    with pytest.raises(InvalidInput, match="not a readable PARQUET table"):
        profile_table(b"id,age\n1,2\n", "parquet")


def test_a_versions_profile_reuses_unchanged_tables_and_names_failures(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    earlier = {"kept.csv": {"digest": "blake3:k", "rows": 7, "columns": []}}
    files = [
        ("a.csv", "blake3:a", str(tmp_path / "a.csv")),
        ("kept.csv", "blake3:k", str(tmp_path / "gone.csv")),  # not read: same digest
        ("bad.parquet", "blake3:b", str(tmp_path / "bad.parquet")),
        ("image.jpg", "blake3:i", str(tmp_path / "image.jpg")),
    ]
    found = profile_files(files, earlier)
    assert found is not None
    tables = found["tables"]
    assert sorted(tables) == ["a.csv", "bad.parquet", "kept.csv"]
    assert tables["kept.csv"]["rows"] == 7
    assert (tables["a.csv"]["rows"], tables["a.csv"]["digest"]) == (1, "blake3:a")
    assert tables["bad.parquet"]["error"].startswith("not a readable PARQUET table")
    assert profile_files([("image.jpg", "blake3:i", "x")], {}) is None
