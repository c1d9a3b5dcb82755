"""Data versioning benchmark: Cairn against DVC, side by side, on the same generated data.

    .venv/bin/python benchmarks/data.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/data.py --quick    # 10,000 small files and a 64 MiB file

What is measured, each as the wall time and peak memory of the tool's own command line
(``cairn data …`` under .venv, ``dvc …`` under benchmarks/.venv-dvc, which is created
when missing), each tool in its own workspace holding an identical copy of the data:

1. 100,000 files of 1 KiB (100 folders of 1,000): ``add`` cold; ``status`` with nothing
   changed (median of 3); then 10 files rewritten: ``status`` and ``add``;
2. one 2 GiB file: ``add`` cold;
3. ``checkout`` of both into emptied places (the folder and the file deleted first);
4. another 2 GiB file, linked instead of copied: ``cairn data add --link hardlink``
   against DVC with ``cache.type hardlink``; then its ``checkout`` the same way.

The data comes from fixed seeds; both workspaces are written before anything is timed, so
both tools read from the same warm page cache. Targets (docs/benchmarks.md): ≥ 20× DVC for
the small-file add and the no-change status, ≥ 10× for the 2 GiB add, peak memory under
500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _peers import ensure_venv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CAIRN = Path(sys.executable).parent / "cairn"
DVC_VENV = HERE / ".venv-dvc"
DVC = DVC_VENV / "bin" / "dvc"
DVC_REQUIREMENT = "dvc==3.67.1"  # the newest DVC the package index has here
WORK = HERE / ".work"
TIME = "/usr/bin/time"  # GNU time: the peak memory of one command
SEED = 20_261_122
CHANGED = 10  # files rewritten between the first and the second add

TARGET_ADD_SMALL = 20.0
TARGET_STATUS = 20.0
TARGET_ADD_LARGE = 10.0
TARGET_PEAK_MIB = 500.0


@dataclass(frozen=True)
class Sizes:
    small_files: int
    per_folder: int
    small_size: int
    large_size: int


FULL = Sizes(100_000, 1_000, 1024, 2 << 30)
QUICK = Sizes(10_000, 1_000, 1024, 64 << 20)


@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_mib: float


def run(command: list[str], cwd: Path, accept: tuple[int, ...] = (0,)) -> Timed:
    """Run a command to completion; its wall time and its peak resident memory.

    Memory is what GNU time reports for the command itself (a child forked from this
    process would otherwise count this process's memory as its own). ``accept``: the exit
    codes that mean it worked (``dvc status`` exits 1 when something changed).
    """
    report = cwd / ".peak-kib"
    started = time.perf_counter()
    done = subprocess.run(
        [TIME, "-f", "%M", "-o", str(report), *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in accept:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    peak_kib = int(report.read_text().split()[-1])
    report.unlink()
    return Timed(seconds, peak_kib / 1024)


def ensure_dvc() -> None:
    ensure_venv(DVC_VENV, [DVC_REQUIREMENT], "dvc")


def write_small_files(root: Path, sizes: Sizes) -> None:
    rng = random.Random(SEED)
    for index in range(sizes.small_files):
        folder = root / f"d{index // sizes.per_folder:03d}"
        if index % sizes.per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"f{index:06d}.bin").write_bytes(rng.randbytes(sizes.small_size))


def write_large_file(path: Path, size: int, seed: int = SEED + 1) -> None:
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


def prepare(work: Path, sizes: Sizes) -> dict[str, Path]:
    """Two workspaces with the same data: one for each tool."""
    spaces = {}
    for tool in ("cairn", "dvc"):
        space = work / tool
        space.mkdir(parents=True)
        print(f"  writing the data for {tool} …", flush=True)
        write_small_files(space / "small", sizes)
        write_large_file(space / "large.bin", sizes.large_size)
        write_large_file(space / "linked.bin", sizes.large_size, SEED + 3)
        spaces[tool] = space
    (spaces["cairn"] / ".cairn").mkdir()
    run([str(DVC), "init", "--no-scm", "-q"], spaces["dvc"])
    run([str(DVC), "config", "core.analytics", "false"], spaces["dvc"])
    return spaces


COMMANDS = {
    "add small": {
        "cairn": [str(CAIRN), "data", "add", "small", "--name", "small"],
        "dvc": [str(DVC), "add", "-q", "small"],
    },
    "status": {"cairn": [str(CAIRN), "data", "status"], "dvc": [str(DVC), "status", "-q"]},
    "add large": {
        "cairn": [str(CAIRN), "data", "add", "large.bin", "--name", "large"],
        "dvc": [str(DVC), "add", "-q", "large.bin"],
    },
    "checkout": {
        "cairn": [str(CAIRN), "data", "checkout", "small"],
        "dvc": [str(DVC), "checkout", "-q"],
    },
    "checkout large": {
        "cairn": [str(CAIRN), "data", "checkout", "large"],
        "dvc": [],  # one `dvc checkout` restores both: timed under "checkout"
    },
    "add linked": {
        "cairn": [str(CAIRN), "data", "add", "linked.bin", "--name", "linked", "--link",
                  "hardlink"],
        "dvc": [str(DVC), "add", "-q", "linked.bin"],  # with cache.type hardlink
    },
    "checkout linked": {
        "cairn": [str(CAIRN), "data", "checkout", "linked", "--link", "hardlink"],
        "dvc": [str(DVC), "checkout", "-q"],  # only linked.bin is missing by then
    },
}  # fmt: skip


def measure(spaces: dict[str, Path], sizes: Sizes) -> dict[str, dict[str, Timed]]:
    results: dict[str, dict[str, Timed]] = {}

    def both(label: str, step: str, repeat: int = 1) -> None:
        results[label] = {}
        for tool, space in spaces.items():
            command = COMMANDS[step][tool]
            if not command:
                continue
            accept = (0, 1) if step == "status" else (0,)
            timings = [run(command, space, accept) for _ in range(repeat)]
            median = statistics.median(t.seconds for t in timings)
            results[label][tool] = Timed(median, max(t.peak_mib for t in timings))
        print(f"  {label}: done", flush=True)

    both("add small, cold", "add small")
    both("status, nothing changed (median of 3)", "status", repeat=3)
    for space in spaces.values():
        change_files(space / "small", sizes)
    both(f"status, {CHANGED} files changed", "status")
    both(f"add, {CHANGED} files changed", "add small")
    both("add large, cold", "add large")
    for space in spaces.values():
        shutil.rmtree(space / "small")
        (space / "large.bin").unlink()
    both("checkout small (+ large for DVC)", "checkout")
    both("checkout large", "checkout large")
    run([str(DVC), "config", "cache.type", "hardlink"], spaces["dvc"])
    both("add large, linked (hardlink)", "add linked")
    for space in spaces.values():
        (space / "linked.bin").unlink()
    both("checkout large, linked (hardlink)", "checkout linked")
    return results


def check_restored(spaces: dict[str, Path]) -> None:
    """Both tools brought back the same bytes."""
    for name in ("small/d000/f000000.bin", "small/d009/f009999.bin", "large.bin", "linked.bin"):
        paths = [space / name for space in spaces.values()]
        sizes = {p.stat().st_size for p in paths}
        heads = {p.open("rb").read(1 << 16) for p in paths}
        if len(sizes) != 1 or len(heads) != 1:
            raise AssertionError(f"{name} differs between the tools after checkout")


def report(results: dict[str, dict[str, Timed]], sizes: Sizes, versions: dict[str, str]) -> str:
    large_gib = sizes.large_size / (1 << 30)
    lines = [
        f"Cairn {versions['cairn']} vs DVC {versions['dvc']} — {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"data: {sizes.small_files:,} files of {sizes.small_size:,} B in folders of "
        f"{sizes.per_folder:,}; one file of {large_gib:g} GiB",
        "",
        f"{'measurement':42} {'Cairn s':>9} {'DVC s':>9} {'ratio':>8}  "
        f"{'peak MiB Cairn / DVC':>22}  target",
        "-" * 110,
    ]
    targets = {
        "add small, cold": TARGET_ADD_SMALL,
        "status, nothing changed (median of 3)": TARGET_STATUS,
        "add large, cold": TARGET_ADD_LARGE,
        "add large, linked (hardlink)": TARGET_ADD_LARGE,
    }
    for label, row in results.items():
        cairn, dvc = row.get("cairn"), row.get("dvc")
        ratio = f"{dvc.seconds / cairn.seconds:.1f}×" if cairn and dvc else ""
        target = targets.get(label)
        verdict = ""
        if target is not None and cairn and dvc:
            met = dvc.seconds / cairn.seconds >= target
            verdict = f"≥ {target:g}×: {'met' if met else 'MISSED'}"
        peak = f"{cairn.peak_mib:,.0f} / {dvc.peak_mib:,.0f}" if cairn and dvc else ""
        lines.append(
            f"{label:42} {cairn.seconds if cairn else float('nan'):>9.2f} "
            f"{dvc.seconds if dvc else float('nan'):>9.2f} {ratio:>8}  {peak:>22}  {verdict}"
        )
    peak = max(row["cairn"].peak_mib for row in results.values() if "cairn" in row)
    verdict = "met" if peak < TARGET_PEAK_MIB else "MISSED"
    lines.append(f"Cairn's peak memory over all commands: {peak:,.0f} MiB (< 500 MB: {verdict})")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    cairn = subprocess.run([str(CAIRN), "--version"], capture_output=True, text=True).stdout
    dvc = subprocess.run([str(DVC), "--version"], capture_output=True, text=True).stdout
    return {"cairn": cairn.split()[-1], "dvc": dvc.strip()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces afterwards")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    ensure_dvc()
    work = WORK / f"data-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        print("preparing:", flush=True)
        spaces = prepare(work, sizes)
        print("measuring:", flush=True)
        results = measure(spaces, sizes)
        check_restored(spaces)
        found = versions()
        text = report(results, sizes, found)
        print(f"\n{text}\n")
        raw: dict[str, Any] = {
            "sizes": sizes.__dict__,
            "versions": found,
            "results": {k: {t: v.__dict__ for t, v in row.items()} for k, row in results.items()},
        }
        (WORK / "data-results.json").write_text(json.dumps(raw, indent=2))
        print(f"(raw results: {(WORK / 'data-results.json').relative_to(ROOT)})")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
