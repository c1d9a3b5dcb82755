"""Data versioning benchmark: Cairn against DVC, and both against the physical floor.

    .venv/bin/python benchmarks/data.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/data.py --quick    # 10,000 small files and a 64 MiB file

Three participants take part in every round: Cairn (``cairn data …`` under .venv), DVC
(``dvc …`` under benchmarks/.venv-dvc, created when missing) and the floor (the same work
done with nothing else: reading, copying, listing, creating or linking the same files, see
benchmarks/_floors.py). Each round gives each participant fresh workspaces written the same
way from fixed seeds — no small file is deleted until every round is done, so no step
follows a mass deletion (this disk is mounted with online ``discard``: deleting 100,000
files takes minutes and slows file creation several times over meanwhile) — and times these
rows, each row by every participant in the round's order, the order turning each round
(after a warm-up round on the ``--quick`` data):

- 100,000 files of 1 KiB in 100 folders: ``add`` (cold); ``status`` with nothing changed
  (warm: median of 3; and cold); 10 files rewritten: ``status`` and ``add`` (warm);
  ``checkout`` of those files into a fresh folder (the folder renamed away first; cold);
- one 2 GiB file, copied: ``add`` (cold); ``checkout`` into a fresh name (cold);
- another 2 GiB file, linked: ``cairn data add/checkout --link hardlink`` against DVC with
  ``cache.type hardlink`` (cold): whether each really linked is read from the file's link
  count and printed.

Cold: every file of the workspace, the tool's store and DVC's index (kept in the workspace
with ``core.site_cache_dir``) evicted from the page cache just before the step; warm: all
read just before (benchmarks/_method.py). Targets (/work/shared/BENCHMARKS.md): each of
add, status and checkout of the small files, and the add of a 2 GiB file, at most 1.5× its
physical floor; peak memory under 500 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _floors
from _method import (
    ROUNDS,
    WARMUP,
    Spread,
    clean_environment,
    evict,
    files_under,
    machine,
    ratios,
    resident_bytes,
    run_timed,
    source_state,
    turn,
    verdict,
    warm,
)
from _peers import ensure_venv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CAIRN = Path(sys.executable).parent / "cairn"
DVC_VENV = HERE / ".venv-dvc"
DVC = DVC_VENV / "bin" / "dvc"
DVC_REQUIREMENT = "dvc==3.67.1"  # the newest DVC the package index has here
WORK = HERE / ".work"
RESULTS = WORK / "data-results.json"
SEED = 20_261_122
CHANGED = 10  # files rewritten between the first and the second add
TOOLS = ("cairn", "dvc")
PARTICIPANTS = (*TOOLS, "floor")
SCENARIOS = {"small": "files", "large": "large.bin", "linked": "linked.bin"}  # name: data

TARGET_FLOOR = 1.5  # at most this many times the floor
TARGET_PEAK_MB = 500.0
ENV = clean_environment()


@dataclass(frozen=True)
class Sizes:
    small_files: int
    per_folder: int
    small_size: int
    large_size: int


FULL = Sizes(100_000, 1_000, 1024, 2 << 30)
QUICK = Sizes(10_000, 1_000, 1024, 64 << 20)


# the data -------------------------------------------------------------------------------


def write_small_files(root: Path, sizes: Sizes) -> None:
    rng = random.Random(SEED)
    for index in range(sizes.small_files):
        folder = root / f"d{index // sizes.per_folder:03d}"
        if index % sizes.per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"f{index:06d}.bin").write_bytes(rng.randbytes(sizes.small_size))


def write_large_file(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    block = 64 << 20
    with path.open("wb") as out:
        for start in range(0, size, block):
            out.write(rng.randbytes(min(block, size - start)))


def change_files(root: Path, sizes: Sizes) -> None:
    """Rewrite CHANGED files spread over the folders, each with new bytes of the same size."""
    rng = random.Random(SEED + 2)
    step = sizes.small_files // CHANGED
    for index in range(0, sizes.small_files, step)[:CHANGED]:
        path = root / f"d{index // sizes.per_folder:03d}" / f"f{index:06d}.bin"
        path.write_bytes(rng.randbytes(sizes.small_size))


def write_data(space: Path, sizes: Sizes) -> None:
    """One participant's three workspaces of a round, with the same bytes as the others'."""
    write_small_files(space / "small" / SCENARIOS["small"], sizes)
    (space / "large").mkdir()
    write_large_file(space / "large" / SCENARIOS["large"], sizes.large_size, SEED + 1)
    (space / "linked").mkdir()
    write_large_file(space / "linked" / SCENARIOS["linked"], sizes.large_size, SEED + 3)


def init_tool(tool: str, space: Path) -> None:
    """Make each workspace a project of ``tool``: DVC keeps its index in the workspace, so
    that eviction reaches it and no round reuses another's."""
    for scenario in SCENARIOS:
        workspace = space / scenario
        if tool == "cairn":
            (workspace / ".cairn").mkdir()
            continue
        run_timed([str(DVC), "init", "--no-scm", "-q"], workspace, ENV)
        link = "[cache]\n    type = hardlink\n" if scenario == "linked" else ""
        (workspace / ".dvc" / "config").write_text(
            "[core]\n    no_scm = True\n    analytics = false\n    check_update = false\n"
            f"    site_cache_dir = {workspace / '.dvc-site'}\n{link}"
        )


# the rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One measured operation: each tool's command, the floor it is held against, and
    the state of the page cache before it."""

    label: str
    scenario: str
    cache: str  # "cold" or "warm"
    cairn: list[str]
    dvc: list[str]
    floor: str  # the floor of the target; others are measured beside it
    others: tuple[str, ...] = ()
    change: bool = False  # rewrite CHANGED files first, in every participant's workspace
    moves: str = ""  # renamed away first in the tools' workspaces: the checkout makes it anew
    repeat: int = 1  # runs per round; the round's figure is their median
    target: bool = False  # held to TARGET_FLOOR × its floor


def rows(sizes: Sizes) -> list[Row]:
    files = f"{sizes.small_files:,} files"
    large = f"{sizes.large_size / (1 << 30):g} GiB file"
    status = (["data", "status"], ["status", "-q"])
    return [
        Row(f"add {files}", "small", "cold", ["data", "add", "files", "--name", "small"],
            ["add", "-q", "files"], "read", target=True),
        Row("status, nothing changed", "small", "warm", *status, "stat", ("python",), repeat=3,
            target=True),
        Row("status, nothing changed", "small", "cold", *status, "stat", ("python",),
            target=True),
        Row(f"status, {CHANGED} files changed", "small", "warm", *status, "stat", change=True,
            target=True),
        Row(f"add, {CHANGED} files changed", "small", "warm",
            ["data", "add", "files", "--name", "small"], ["add", "-q", "files"], "stat",
            target=True),
        Row(f"checkout {files}, fresh folder", "small", "cold", ["data", "checkout", "small"],
            ["checkout", "-q", "files.dvc"], "create", ("copy",), moves="files", target=True),
        Row(f"add {large}, copied", "large", "cold",
            ["data", "add", "large.bin", "--name", "large"], ["add", "-q", "large.bin"],
            "copy", ("read",), target=True),
        Row(f"checkout {large}, copied", "large", "cold", ["data", "checkout", "large"],
            ["checkout", "-q", "large.bin.dvc"], "copy", moves="large.bin"),
        Row(f"add {large}, hardlink", "linked", "cold",
            ["data", "add", "linked.bin", "--name", "linked", "--link", "hardlink"],
            ["add", "-q", "linked.bin"], "read", target=True),
        Row(f"checkout {large}, hardlink", "linked", "cold",
            ["data", "checkout", "linked", "--link", "hardlink"],
            ["checkout", "-q", "linked.bin.dvc"], "link", ("read", "python"),
            moves="linked.bin"),
    ]  # fmt: skip


@dataclass
class Measured:
    """One participant's figures for one row, a list over the measured rounds."""

    seconds: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)
    floors: dict[str, list[float]] = field(default_factory=dict)
    said: str = ""  # the tool's last output for this row, when it said something


FLOORS: dict[str, Callable[[Path, str, Path], float]] = {
    "read": lambda workspace, name, _out: _floors.read(workspace / name),
    "stat": lambda workspace, name, _out: _floors.stat(workspace / name),
    "copy": lambda workspace, name, out: _floors.copy(workspace / name, out),
    "create": lambda workspace, name, out: _floors.create(workspace / name, out),
    "link": lambda workspace, name, out: _floors.link(workspace / name, out / name),
    "python": lambda _workspace, _name, _out: _floors.start(),
}


def control_cache(row: Row, workspace: Path) -> None:
    (evict if row.cache == "cold" else warm)(workspace)


def measure_tool(row: Row, tool: str, workspace: Path) -> tuple[float, float, str]:
    """The round's seconds, peak MiB and output of ``tool`` doing ``row``."""
    if row.moves:  # renamed, not deleted: no step follows a mass deletion
        (workspace / row.moves).rename(workspace / f"{row.moves}.moved")
    base = [str(CAIRN)] if tool == "cairn" else [str(DVC)]
    command = base + (row.cairn if tool == "cairn" else row.dvc)
    accept = (0, 1) if "status" in command else (0,)  # `dvc status` exits 1 on changes
    timings = []
    for _ in range(row.repeat):
        control_cache(row, workspace)
        timings.append(run_timed(command, workspace, ENV, accept))
    seconds = statistics.median(t.seconds for t in timings)
    said = " ".join(timings[-1].output.replace(str(workspace), ".").split())
    return seconds, max(t.peak_mib for t in timings), said


def measure_floors(row: Row, workspace: Path, tag: str) -> dict[str, float]:
    found = {}
    for name in (row.floor, *row.others):
        control_cache(row, workspace)
        out = workspace / f".floor-{tag}-{name}"
        found[name] = FLOORS[name](workspace, SCENARIOS[row.scenario], out)
    return found


def run_round(
    index: int, work: Path, sizes: Sizes, table: list[Row], results: dict[int, dict[str, Measured]]
) -> dict[str, Path]:
    order = turn(PARTICIPANTS, index)
    spaces = {name: work / f"round{index}" / name for name in order}
    for name in order:
        write_data(spaces[name], sizes)
        if name in TOOLS:
            init_tool(name, spaces[name])
    for number, row in enumerate(table):
        for name in order:
            workspace = spaces[name] / row.scenario
            found = results[number][name]
            if row.change:
                change_files(workspace / SCENARIOS["small"], sizes)
            if name == "floor":
                floors = measure_floors(row, workspace, f"{number}")
                if index != WARMUP:
                    for floor, seconds in floors.items():
                        found.floors.setdefault(floor, []).append(seconds)
                continue
            seconds, peak, said = measure_tool(row, name, workspace)
            if index != WARMUP:
                found.seconds.append(seconds)
                found.peak_mib.append(peak)
                found.said = said
    return spaces


def check_round(spaces: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Both tools brought back exactly what they were given; the links each made."""
    digests = {}
    for tool in TOOLS:
        for scenario, name in SCENARIOS.items():
            restored, given = (spaces[tool] / scenario / n for n in (name, f"{name}.moved"))
            digest = tree_digest(restored)
            same = given.is_file() and os.path.samefile(restored, given)  # one inode, linked
            if not same and digest != tree_digest(given):
                raise AssertionError(f"{tool} restored {scenario} with other bytes")
            digests.setdefault(scenario, set()).add(digest)
    if any(len(found) != 1 for found in digests.values()):
        raise AssertionError("the tools restored different data")
    return {
        tool: {
            "add": (spaces[tool] / "linked" / "linked.bin.moved").stat().st_nlink,
            "checkout": (spaces[tool] / "linked" / "linked.bin").stat().st_nlink,
        }
        for tool in TOOLS
    }


def tree_digest(root: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(files_under(root)):
        digest.update(os.path.relpath(path, root).encode())
        with open(path, "rb") as file:
            while chunk := file.read(16 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def clear_large(spaces: dict[str, Path]) -> None:
    """Between rounds: the 2 GiB workspaces go (a few files: no mass deletion); the small
    files stay until the end, so that no round's file creation follows their deletion."""
    for space in spaces.values():
        for scenario in ("large", "linked"):
            shutil.rmtree(space / scenario)
    os.sync()


def remove_later(work: Path) -> None:
    """Delete the workspaces in a process of their own, at the lowest priority: millions of
    small files take this disk a long time to delete, and the report need not wait."""
    process = subprocess.Popen(
        ["nice", "-n", "19", "ionice", "-c", "3", "rm", "-rf", str(work)],
        start_new_session=True,
    )
    print(f"deleting {work.relative_to(ROOT)} in the background (pid {process.pid})")


def eviction_check(work: Path) -> int:
    """Bytes still cached of a sample of files just evicted: the eviction works here."""
    every = sorted(files_under(work))
    sample = every[:: max(1, len(every) // 200)]
    evict(work)
    return resident_bytes(sample)


# the report -----------------------------------------------------------------------------


def summarise(table: list[Row], results: dict[int, dict[str, Measured]]) -> list[dict[str, Any]]:
    summary = []
    for number, row in enumerate(table):
        cairn, dvc, floor = (results[number][name] for name in PARTICIPANTS)
        base = floor.floors[row.floor]
        summary.append(
            {
                "label": f"{row.label}, {row.cache}",
                "target": row.target,
                "floor": row.floor,
                "cairn": Spread.of(cairn.seconds),
                "dvc": Spread.of(dvc.seconds),
                "dvc_over_cairn": ratios(dvc.seconds, cairn.seconds),
                "floor_seconds": {name: Spread.of(v) for name, v in floor.floors.items()},
                "cairn_over_floor": ratios(cairn.seconds, base),
                "dvc_over_floor": ratios(dvc.seconds, base),
                "peak_mib": (max(cairn.peak_mib), max(dvc.peak_mib)),
                "rounds": {"cairn": cairn.seconds, "dvc": dvc.seconds, **floor.floors},
                "said": {"cairn": cairn.said, "dvc": dvc.said},
            }
        )
    return summary


def seconds(spread: Spread) -> str:
    """Seconds, or milliseconds below a tenth of a second (a link takes microseconds)."""
    if spread.median >= 0.1:
        return spread.show(".2f")
    scaled = Spread(spread.median * 1000, spread.low * 1000, spread.high * 1000)
    return scaled.show(".0f" if scaled.median >= 10 else ".3f", " ms")


def times(ratio: Spread) -> str:
    return ratio.show(".1f" if ratio.high < 1000 else ",.0f", "×")


def report(summary: list[dict[str, Any]], header: list[str], links: dict[str, Any]) -> str:
    lines = [*header, "", f"{'measurement':44} {'Cairn s':>19} {'DVC s':>19} {'DVC / Cairn':>17}"]
    lines.append("-" * 102)
    for row in summary:
        lines.append(
            f"{row['label']:44} {seconds(row['cairn']):>19} {seconds(row['dvc']):>19} "
            f"{times(row['dvc_over_cairn']):>17}"
        )
    lines += [
        "",
        f"{'measurement':44} {'floor, s':>26} {'Cairn × floor':>20} {'DVC × floor':>20}  "
        f"Cairn ≤ {TARGET_FLOOR:g}× floor",
        "-" * 136,
    ]
    for row in summary:
        floor = f"{row['floor']} {seconds(row['floor_seconds'][row['floor']])}"
        met = row["cairn_over_floor"].median <= TARGET_FLOOR
        lines.append(
            f"{row['label']:44} {floor:>26} {times(row['cairn_over_floor']):>20} "
            f"{times(row['dvc_over_floor']):>20}  " + (verdict(met) if row["target"] else "")
        )
    lines += ["", "other floors measured beside the rows, s:"]
    for row in summary:
        others = [(n, s) for n, s in row["floor_seconds"].items() if n != row["floor"]]
        if others:
            shown = "; ".join(f"{name} {seconds(spread)}" for name, spread in others)
            lines.append(f"  {row['label']:44} {shown}")
    peaks = [row["peak_mib"] for row in summary]
    top = max(cairn for cairn, _ in peaks) * 1.048576
    lines += [
        "",
        "peak memory of each row, MiB (Cairn / DVC): "
        + "; ".join(f"{c:,.0f} / {d:,.0f}" for c, d in peaks),
        f"Cairn's peak over all commands: {top:,.0f} MB "
        f"(< {TARGET_PEAK_MB:g} MB: {verdict(top < TARGET_PEAK_MB)})",
        "hard links (link count of the file after add / after checkout; 1 = a copy): "
        + "; ".join(f"{tool} {v['add']} / {v['checkout']}" for tool, v in links.items()),
    ]
    for row in summary:
        if "hardlink" in row["label"] and row["said"]["cairn"]:
            lines.append(f"  cairn said ({row['label']}): {row['said']['cairn']}")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    cairn = subprocess.run([str(CAIRN), "--version"], capture_output=True, text=True).stdout
    dvc = subprocess.run([str(DVC), "--version"], capture_output=True, text=True).stdout
    return {"cairn": cairn.split()[-1], "dvc": dvc.strip()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, a smoke run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured rounds")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces afterwards")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    ensure_venv(DVC_VENV, [DVC_REQUIREMENT], "dvc")
    work = WORK / f"data-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    table = rows(sizes)
    results = {number: {name: Measured() for name in PARTICIPANTS} for number in range(len(table))}
    started = datetime.now(UTC)
    commit = source_state()
    try:
        for index in range(WARMUP, args.rounds + 1):
            # The warm-up loads each tool's code: on the small data, which is far quicker to
            # delete afterwards (every deletion is a discard on this disk).
            scale = QUICK if index == WARMUP else sizes
            spaces = run_round(index, work, scale, rows(scale), results)
            links = check_round(spaces)
            clear_large(spaces)
            what = "warm-up" if index == WARMUP else f"round {index}/{args.rounds}"
            print(f"  {what} done ({' '.join(spaces)})", flush=True)
        resident = eviction_check(work / f"round{args.rounds}")
    finally:
        if not args.keep:
            remove_later(work)
    found = versions()
    header = [
        f"Cairn {found['cairn']} vs DVC {found['dvc']} — {machine(WORK)}",
        f"command: .venv/bin/python benchmarks/data.py {' '.join(sys.argv[1:])}".rstrip(),
        f"source: {commit}; started {started:%Y-%m-%d %H:%M} UTC",
        f"data: {sizes.small_files:,} files of {sizes.small_size:,} B in folders of "
        f"{sizes.per_folder:,}; files of {sizes.large_size / (1 << 30):g} GiB",
        f"medians of {args.rounds} rounds after a warm-up (range in brackets), order turning "
        "each round; ratios: medians of the per-round ratios",
        "cold: workspace and store evicted with posix_fadvise(DONTNEED) just before "
        f"(bytes of a sample still cached after eviction: {resident:,}); warm: all read just "
        "before",
    ]
    summary = summarise(table, results)
    text = report(summary, header, links)
    print(f"\n{text}\n")
    raw = {"header": header, "sizes": asdict(sizes), "versions": found, "links": links,
           "rows": summary}  # fmt: skip
    WORK.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(raw, indent=2, default=asdict))
    print(f"(raw results: {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
